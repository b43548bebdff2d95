//! Pintu's integration tests: one binary (links once), one module per area.
//! Shared fixtures live in `common`.

mod common;

mod cli;
mod config;
mod daemon;
mod lists;
mod pcsc;
mod serial;
mod store;
