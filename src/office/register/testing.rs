//! The office dir the office's unit tests start from: a one-holder register (site `s`, door `d`,
//! Alice, staff, card `04A1B2C3`, approved by `kabid`; list version 4 last signed) and its card
//! key, in a temp dir.

use std::path::PathBuf;

/// The register's text.
pub(crate) const REGISTER: &str = r#"# Test register.
site = "s"
time_zone = "Asia/Jakarta"
doors = ["d"]
card_key_file = "card.key"

[list]
version = 4  # last signed

[[holder]]
id = "alice"
name = "Alice"
role = "staff"
cards = ["04A1B2C3"]
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-1"
approver = "kabid"
"#;

/// A temp dir holding `register.toml` ([`REGISTER`]) and `card.key`; returns the dir and the
/// register's path.
pub(crate) fn office_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    crate::office::keys::card_keygen(&dir.path().join("card.key")).expect("card key");
    let path = dir.path().join("register.toml");
    std::fs::write(&path, REGISTER).expect("register");
    (dir, path)
}
