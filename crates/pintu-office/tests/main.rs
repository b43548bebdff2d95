//! Integration tests of pintu-office.

mod archive;
