//! The office wing: what the IT office runs (`pintuctl`'s office commands, the archive).
//!
//! - [`register`]: the register of cardholders the access list is made from.
//! - [`keys`]: signing keys.
//! - [`client`]: the office's MQTT client (publishing lists and commands, reading door status).
//! - [`archive`]: every door's events over MQTT, stored durably, de-duplicated by (door, seq),
//!   with gap detection.
//! - [`review`]: the periodic access review from the register and the archive.
//! - [`report`]: the access report for a period, as CSV and printable HTML.

pub mod archive;
pub mod client;
pub mod keys;
pub mod register;
pub mod report;
pub mod review;
