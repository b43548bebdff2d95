//! Pintu's integration tests: one binary (links once), one module per area.
//! Fixtures come from the `pintu-testkit` crate (shared with the benches), re-exported with a few
//! test-only helpers by `common`; the broker's own tests are in `mqtt_broker`.

mod common;

mod archive;
mod attacks;
mod cli;
mod config;
mod crash;
mod daemon;
mod damage;
mod faults;
mod lists;
mod mqtt;
mod mqtt_broker;
mod mqtt_refusals;
mod pcsc;
mod presence;
mod register;
mod register_imported;
mod report;
mod serial;
mod store;
mod systemd;
mod visits;
