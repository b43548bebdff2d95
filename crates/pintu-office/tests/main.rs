//! Integration tests of `pintu-office`: a real service on a loopback port, on SQLite and on
//! PostgreSQL (`db_test!`), driven over HTTP. PostgreSQL comes from `scripts/with-postgres`.

mod api_docs;
mod api_requests;
mod api_session;
mod archive;
mod archive_api;
mod archive_import;
mod cli;
mod instances;
mod support;
