//! Fuzzes the signed-command gate (`pintu_core::command::verify`).
//!
//! The policy trusts the demo key (`config/demo/`) and accepts long windows so the committed
//! seeds (valid commands) verify at the fixed "now". Checked: no panic on any input; an
//! accepted command is for this site and door, inside its window, signed by a trusted key.
#![no_main]

use std::time::Duration;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use pintu_core::command::{verify, CommandPolicy};
use pintu_core::list::{TrustPolicy, TrustedKey};

const DEMO_PUBLIC_KEY: &str = "AfHd0oQtC+RFk6Nuu6lFSzlgrzHM1sluUUnYQ2617Qk=";

fuzz_target!(|data: &[u8]| {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(DEMO_PUBLIC_KEY)
        .expect("demo key is base64");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw.try_into().expect("32 bytes"))
        .expect("demo key is a point");
    let policy = CommandPolicy {
        trust: TrustPolicy {
            keys: vec![TrustedKey {
                id: "demo-2026".into(),
                key,
            }],
            threshold: 1,
            site: Some("diskominfo-demo".into()),
            door: Some("server-room".into()),
            max_bytes: 1 << 20,
        },
        max_lifetime: Duration::from_secs(400 * 86_400),
        list_trust: None,
    };
    let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().expect("timestamp");
    let Ok(cmd) = verify(data, &policy, now) else {
        return;
    };
    assert_eq!(cmd.payload.site, "diskominfo-demo");
    assert!(cmd
        .payload
        .doors
        .iter()
        .any(|d| d == "server-room" || d == "*"));
    assert!(cmd.payload.expires_at > now);
    assert!(cmd.payload.issued_at < cmd.payload.expires_at);
    assert_eq!(cmd.signed_by, vec!["demo-2026".to_string()]);
});
