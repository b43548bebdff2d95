//! Pintu: a door controller for server rooms that decides offline from a signed access list.
//!
//! Map of the crate:
//! - [`core`]: the pure decision core — card ids, the signed list format and its verification,
//!   weekly schedules, the access decision, lock timing and event drafts. No I/O.
//! - [`config`]: the daemon's TOML configuration, parsed then validated.
//! - [`store`]: sled-backed state that survives power cuts: the active list cache (swapped
//!   atomically), list metadata and the durable event outbox; plus the last good list file.
//! - [`hw`]: small traits for the hardware edges (lock, card sources) and simulated backends.
//! - [`control`]: the local control socket (protocol, server and client).
//! - [`daemon`]: `pintud`'s runtime: the door task, list intake and the inbox watcher.
//! - [`failure`]: `pintud --report-failure`, run by systemd when it gives up on pintud.
//! - [`mqtt`]: the MQTT link: events out of the outbox, status, signed lists and commands in.
//! - [`keys`], [`register`]: the operator side used by `pintuctl` (signing keys, the register).
//! - [`office`]: the office side's MQTT (publishing lists, reading door status).
//! - [`clock`]: wall-clock source, injectable for tests.
//! - [`archive`]: the office's event archive (`pintuctl archive`): every door's events over MQTT,
//!   stored durably, de-duplicated by (door, seq), with gap detection.
//! - [`review`]: the periodic access review (`pintuctl review`) from the register and the archive.
//! - [`report`]: the access report for a period (`pintuctl report`), as CSV and printable HTML.
#![warn(missing_docs)]

pub mod archive;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod failure;
pub mod fsutil;
pub mod hw;
pub mod keys;
pub mod mqtt;
pub mod office;
pub mod register;
pub mod report;
pub mod review;
pub mod store;

/// An error and its causes on one line (`what: because: because`), for operator messages.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
