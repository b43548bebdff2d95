//! Integration tests of `pintu-office`: a real service on a loopback port, on SQLite and on
//! PostgreSQL (`db_test!`), driven over HTTP, and the signing library on both engines.
//! PostgreSQL comes from `scripts/with-postgres`.

mod api_accounts;
mod api_docs;
mod api_fulfil;
mod api_requests;
mod api_session;
mod archive;
mod archive_api;
mod archive_import;
mod auth_login;
mod auth_passkey;
mod cli;
mod directory;
mod directory_cli;
mod end_to_end;
mod instances;
mod signing;
mod signing_api;
mod signing_publish;
mod signing_security;
mod signing_support;
mod support;
