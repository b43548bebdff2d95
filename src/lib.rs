//! Pintu: a door controller for server rooms that decides offline from a signed access list.
//!
//! One house with two wings and a shared floor:
//! - [`core`]: the pure decision core (the `pintu-core` crate) — card ids, the signed list and
//!   its verification, schedules, the access decision, the door procedure, event drafts. No I/O.
//! - [`door`]: everything `pintud` runs at the door (config, store, hardware, runtime, control
//!   socket, MQTT link).
//! - [`office`]: what the IT office runs (register, keys, publishing, archive, review, report).
//! - [`mqtt`]: shared by both wings: broker settings and flags, topics, the connection loop.
//! - [`util`]: shared by both wings (files, error text, strict TOML).
//!
//! The door wing never imports the office wing, nor the reverse; docs/architecture.md has the map.
#![warn(missing_docs)]

/// The pure decision core: the `pintu-core` crate, re-exported so paths read `pintu::core::…`.
pub use pintu_core as core;
pub mod door;
pub mod mqtt;
pub mod office;
pub mod util;
