//! Pintu's integration tests: one binary (links once), one module per area.
//! Shared fixtures live in `common`; the MQTT ones (Mosquitto, test PKI, clients) in
//! `support_broker` (fixtures, no tests; the broker's tests are in `mqtt_broker`).

mod common;
mod support_broker;

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
mod register;
mod report;
mod serial;
mod store;
mod systemd;
mod visits;
