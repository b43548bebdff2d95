//! Fuzzes the signed-list gate (`pintu_core::list::verify`): envelope, signatures, payload.
//!
//! The policy trusts the demo key (`config/demo/`), so the committed seed is a valid list the
//! fuzzer mutates. Checked: no panic on any input; an accepted list is internally consistent and
//! offering the same bytes again is a replay (never accepted twice); an accepted list is refused
//! as a rollback by a door already holding a higher version.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use pintu_core::list::{verify, Accepted, Rejection, TrustPolicy, TrustedKey};

const DEMO_PUBLIC_KEY: &str = "AfHd0oQtC+RFk6Nuu6lFSzlgrzHM1sluUUnYQ2617Qk=";

fn policy() -> TrustPolicy {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(DEMO_PUBLIC_KEY)
        .expect("demo key is base64");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw.try_into().expect("32 bytes"))
        .expect("demo key is a point");
    TrustPolicy {
        keys: vec![TrustedKey {
            id: "demo-2026".into(),
            key,
        }],
        threshold: 1,
        site: Some("diskominfo-demo".into()),
        door: Some("server-room".into()),
        max_bytes: 1 << 20,
    }
}

fuzz_target!(|data: &[u8]| {
    let policy = policy();
    let Ok(list) = verify(data, &policy, None, None) else {
        return;
    };
    assert_eq!(list.meta.entry_count, list.payload.entries.len());
    assert_eq!(list.meta.version, list.payload.version);
    assert!(!list.meta.signed_by.is_empty());
    assert_eq!(
        verify(data, &policy, Some(list.meta.accepted()), None).err(),
        Some(Rejection::Replay {
            version: list.meta.version
        })
    );
    if let Some(higher) = list.meta.version.checked_add(1) {
        let current = Accepted {
            version: higher,
            payload_digest: None,
        };
        assert!(matches!(
            verify(data, &policy, Some(current), None),
            Err(Rejection::Rollback { .. })
        ));
    }
});
