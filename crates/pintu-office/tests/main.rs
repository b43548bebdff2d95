//! Integration tests of pintu-office.
