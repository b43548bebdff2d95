//! The office wing: what the IT office runs (`pintuctl`'s office commands, the archive).
//!
//! - [`register`]: the register of cardholders the access list is made from.
//! - [`keys`]: signing keys.
//! - [`publish`]: signing the register into a list and delivering it (file and/or broker) in
//!   the order that never reuses a version.
//! - [`enroll`]: adding a card (or a new holder with it) to the register.
//! - [`commands`]: signed commands for doors, checked as doors check them.
//! - [`offline`]: the files of offline signing (a payload out, a signature back).
//! - [`client`]: the office's MQTT client (publishing lists and commands, reading door status).
//! - [`archive`]: every door's events over MQTT, stored durably, de-duplicated by (door, seq),
//!   with gap detection.
//! - [`review`]: the periodic access review from the register and the archive.
//! - [`report`]: the access report for a period, as CSV and printable HTML.
//! - [`format`]: CSV, HTML and time formatting shared by the review and the report.

pub mod archive;
pub mod client;
pub mod commands;
pub mod enroll;
pub mod format;
pub mod keys;
pub mod offline;
pub mod publish;
pub mod register;
pub mod report;
pub mod review;
