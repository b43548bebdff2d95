//! The one support kit of Pintu's integration tests (`tests/`) and benchmarks (`benches/`):
//! - [`site`]: a site in a temp dir (keys, card key, door config), lists built and signed;
//! - [`synthetic`]: lists of any size with a realistic mix of entries;
//! - [`pintud`]: a running `pintud` asked over its control socket, one-shot `pintuctl` runs;
//! - [`broker`]: a real Mosquitto per test or bench (TLS, ACLs, persistence, restarts) and MQTT
//!   clients;
//! - [`vcard`]: pcscd with vsmartcard-vpcd and a virtual contactless card.
//!
//! Tests and benches share these so that they start, configure and ask a door the same way.
#![allow(clippy::new_without_default)]

pub mod broker;
pub mod pintud;
pub mod site;
pub mod synthetic;
pub mod vcard;

use std::path::PathBuf;

pub use pintud::{pintuctl, pintud, spawn_pintud_with_log_lines, text, Pintud};
pub use site::{sign_with, Site, DOOR, SITE};
pub use synthetic::{known_uid, unknown_uid};

/// The path of one of the package's binaries (`pintud`, `pintuctl`), built by cargo next to the
/// test or bench executable that runs (`target/<profile>/deps/…` → `target/<profile>/…`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("profile dir")
    } else {
        deps
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built (cargo builds it for tests and benches of the pintu package)",
        path.display()
    );
    path
}
