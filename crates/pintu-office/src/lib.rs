//! `pintu-office`: the service of the IT office. One database (SQLite by default, PostgreSQL at
//! scale) holds the whole procedure — accounts, requests and their steps, approvals that are
//! signatures, holders and cards, the audit trail and the archive of door events — and an HTTP
//! API serves the console.
//!
//! Layout: [`config`] (two-phase TOML), [`db`] (the pool and the migrations), [`secret`] (the
//! service key: sealing at rest, the audit chain's key), [`audit`] (the hash-chained trail),
//! [`signing`] (approvers' sealed keys, payloads signed by k approvers, publishing),
//! [`directory`] (holders, cards, badges, visits, doors, rooms; import and export of the
//! register), [`lists`] (the next list from the database),
//! [`archive`] (the door-event archive: MQTT ingest, queries, import of the sled archive).

pub mod api;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod directory;
pub mod input;
pub mod lists;
pub mod requests;
pub mod secret;
pub mod server;
pub mod signing;
#[doc(hidden)]
pub mod testing;
