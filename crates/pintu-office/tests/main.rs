//! Integration tests of pintu-office.

mod archive;
mod archive_import;
