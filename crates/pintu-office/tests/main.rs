//! Integration tests of pintu-office.

mod signing;
mod signing_publish;
mod signing_security;
mod signing_support;
