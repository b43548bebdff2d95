//! Pintu's integration tests: one binary (links once), one module per area.
//! Shared fixtures live in `common`; the MQTT ones (Mosquitto, test PKI, clients) in `broker`.

mod broker;
mod common;

mod archive;
mod cli;
mod config;
mod daemon;
mod lists;
mod mqtt;
mod mqtt_broker;
mod pcsc;
mod register;
mod report;
mod serial;
mod store;
mod visits;
