//! The door wing: everything `pintud` runs at the door.
//!
//! - [`config`]: the daemon's TOML configuration, parsed then validated.
//! - [`store`]: sled-backed state that survives power cuts: the active list, list metadata and
//!   floors, the durable event outbox; plus the last good list file.
//! - [`hw`]: small traits for the hardware edges (lock, card sources, door inputs), their real
//!   backends (PC/SC, serial, GPIO) and simulated ones.
//! - [`daemon`]: `pintud`'s wiring: starts the runtime, the control server, the sources, the
//!   MQTT link and the watchdog, and stops them with the lock secured.
//! - [`runtime`]: the door task (lock, procedure, lockdown, presence), the
//!   [`DaemonHandle`](runtime::DaemonHandle) everyone else calls, list intake and the inbox.
//! - [`control`]: the local control socket (protocol, server and client).
//! - [`link`]: the door's MQTT link: events out of the outbox, status, signed lists and commands in.
//! - [`failure`]: `pintud --report-failure`, run by systemd when it gives up on pintud.
//! - [`clock`]: the wall-clock source, injectable for tests.

pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod failure;
pub mod hw;
pub mod link;
pub mod runtime;
pub mod store;
