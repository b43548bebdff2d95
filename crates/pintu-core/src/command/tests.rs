//! Unit tests of signed commands: the gate's tables and properties.

use super::*;
use crate::list::TrustedKey;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn policy() -> CommandPolicy {
    CommandPolicy {
        trust: TrustPolicy {
            keys: vec![
                TrustedKey {
                    id: "office-1".into(),
                    key: key(1).verifying_key(),
                },
                TrustedKey {
                    id: "office-2".into(),
                    key: key(2).verifying_key(),
                },
            ],
            threshold: 1,
            site: Some("dc1".into()),
            door: Some("a".into()),
            max_bytes: 1 << 20,
        },
        max_lifetime: DEFAULT_MAX_LIFETIME,
        list_trust: None,
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn payload(action: Action) -> CommandPayload {
    CommandPayload {
        format: 1,
        site: "dc1".into(),
        doors: vec!["a".into()],
        id: Uuid::from_u128(7),
        issued_at: at("2026-11-23T10:00:00Z"),
        expires_at: at("2026-11-23T10:05:00Z"),
        operator: "ani".into(),
        command: action,
    }
}

fn unlock() -> CommandPayload {
    payload(Action::UnlockOnce {
        reason: "vendor visit".into(),
    })
}

fn signed(p: &CommandPayload) -> Vec<u8> {
    sign(p, &[("office-1".into(), key(1))])
}

const NOW: &str = "2026-11-23T10:01:00Z";

#[test]
fn a_signed_command_verifies_with_every_action() {
    for action in [
        Action::UnlockOnce { reason: "r".into() },
        Action::Lockdown {
            allow_role: list::Role::Staff,
        },
        Action::ReleaseLockdown {},
        Action::Capture {
            reader: Some("front".into()),
        },
        Action::Capture { reader: None },
    ] {
        let p = payload(action.clone());
        let v = verify(&signed(&p), &policy(), at(NOW)).expect("verifies");
        assert_eq!(v.payload, p);
        assert_eq!(v.signed_by, vec!["office-1".to_string()]);
    }
}

#[test]
fn each_rejection_has_its_code() {
    let now = at(NOW);
    let pol = policy();
    let check = |bytes: &[u8], code: &str| {
        let err = verify(bytes, &pol, now).expect_err("must be refused");
        assert_eq!(err.code(), code, "{err}");
    };
    check(&vec![b' '; COMMAND_MAX_BYTES + 1], "oversize");
    check(b"not json", "malformed");
    check(
        br#"{"format":"pintu.signed-list.v1","payload":"","signatures":[]}"#,
        "unknown_format",
    );
    let good = unlock();
    // No signature.
    check(&sign(&good, &[]), "missing_signature");
    // Unknown key.
    check(&sign(&good, &[("mallory".into(), key(9))]), "unknown_key");
    // Right id, wrong key.
    check(
        &sign(&good, &[("office-1".into(), key(9))]),
        "bad_signature",
    );
    // A list signature over the same bytes does not pass as a command signature.
    let bytes = serde_json::to_vec(&good).expect("serializes");
    let as_list = list::sign(&bytes, &[("office-1".into(), key(1))]);
    let text = String::from_utf8(as_list)
        .expect("utf8")
        .replace(list::ENVELOPE_FORMAT, COMMAND_ENVELOPE_FORMAT);
    check(text.as_bytes(), "bad_signature");
    // Threshold 2, one key signing twice.
    let mut two = policy();
    two.trust.threshold = 2;
    let twice = sign(
        &good,
        &[("office-1".into(), key(1)), ("office-1".into(), key(1))],
    );
    assert_eq!(
        verify(&twice, &two, now).expect_err("one key twice").code(),
        "threshold_not_met"
    );
    let both = sign(
        &good,
        &[("office-1".into(), key(1)), ("office-2".into(), key(2))],
    );
    assert!(verify(&both, &two, now).is_ok());
    check(
        &signed(&CommandPayload {
            site: "dc2".into(),
            ..unlock()
        }),
        "wrong_site",
    );
    check(
        &signed(&CommandPayload {
            doors: vec!["b".into()],
            ..unlock()
        }),
        "wrong_door",
    );
    check(
        &signed(&CommandPayload {
            issued_at: at("2026-11-23T10:02:01Z"),
            expires_at: at("2026-11-23T10:04:00Z"),
            ..unlock()
        }),
        "not_yet_valid",
    );
    check(
        &signed(&CommandPayload {
            issued_at: at("2026-11-23T09:55:00Z"),
            expires_at: at("2026-11-23T10:01:00Z"),
            ..unlock()
        }),
        "expired",
    );
    check(
        &signed(&CommandPayload {
            expires_at: at("2026-11-23T10:10:01Z"),
            ..unlock()
        }),
        "lifetime_too_long",
    );
    check(
        &signed(&CommandPayload {
            command: Action::UnlockOnce {
                reason: "  ".into(),
            },
            ..unlock()
        }),
        "malformed",
    );
    check(
        &signed(&CommandPayload {
            format: 2,
            ..unlock()
        }),
        "unknown_format",
    );
}

#[test]
fn window_edges() {
    let pol = policy();
    let p = unlock();
    let bytes = signed(&p);
    // Exactly at expiry: refused; one second before: accepted.
    assert_eq!(
        verify(&bytes, &pol, p.expires_at)
            .expect_err("at expiry")
            .code(),
        "expired"
    );
    let just_before = p
        .expires_at
        .saturating_sub(jiff::SignedDuration::from_secs(1));
    assert!(verify(&bytes, &pol, just_before.expect("in range")).is_ok());
    // Issued up to CLOCK_SKEW ahead of the door's clock: accepted.
    let skewed = p
        .issued_at
        .saturating_sub(jiff::SignedDuration::from_secs(60))
        .expect("in range");
    assert!(verify(&bytes, &pol, skewed).is_ok());
    // A window of exactly max_lifetime is accepted.
    let exact = CommandPayload {
        expires_at: at("2026-11-23T10:10:00Z"),
        ..unlock()
    };
    assert!(verify(&signed(&exact), &pol, at(NOW)).is_ok());
}

/// Signs a payload given as raw JSON (to smuggle in what `CommandPayload` cannot express).
fn sign_value(value: &serde_json::Value) -> Vec<u8> {
    let bytes = serde_json::to_vec(value).expect("bytes");
    list::sign_envelope(
        COMMAND_ENVELOPE_FORMAT,
        COMMAND_SIGNING_CONTEXT,
        &bytes,
        &[("office-1".into(), key(1))],
    )
}

#[test]
fn unknown_fields_and_actions_are_refused() {
    let mut value = serde_json::to_value(unlock()).expect("value");
    value["extra"] = serde_json::json!(1);
    let err = verify(&sign_value(&value), &policy(), at(NOW)).expect_err("unknown field");
    assert_eq!(err.code(), "malformed");
    assert!(err.to_string().contains("extra"), "{err}");

    let mut value = serde_json::to_value(unlock()).expect("value");
    value["command"] = serde_json::json!({"type": "open_forever"});
    let err = verify(&sign_value(&value), &policy(), at(NOW)).expect_err("unknown action");
    assert_eq!(err.code(), "malformed");
    assert!(err.to_string().contains("command"), "{err}");
}

/// Command keys k3 (threshold 1), list keys office-1/office-2 (threshold 2).
fn split_policy() -> CommandPolicy {
    let mut list_trust = policy().trust;
    list_trust.threshold = 2;
    let mut p = policy();
    p.trust.keys = vec![TrustedKey {
        id: "ops".into(),
        key: key(3).verifying_key(),
    }];
    p.list_trust = Some(list_trust);
    p
}

#[test]
fn unlock_once_and_resets_are_narrow() {
    let pol = policy();
    let now = at(NOW);
    for action in [
        Action::UnlockOnce { reason: "r".into() },
        Action::ResetTimeFloor {},
        Action::ResetListFloor { version: 3 },
    ] {
        let name = action.name();
        // "*" is refused, alone or next to this door.
        for doors in [vec!["*".to_string()], vec!["a".into(), "*".into()]] {
            let p = CommandPayload {
                doors,
                ..payload(action.clone())
            };
            let err = verify(&signed(&p), &pol, now).expect_err(name);
            assert_eq!(err.code(), "door_not_named", "{name}: {err}");
        }
        // At most 10 minutes, even where the door allows longer windows.
        let mut long = policy();
        long.max_lifetime = Duration::from_secs(3600);
        let p = CommandPayload {
            expires_at: at("2026-11-23T10:10:01Z"),
            ..payload(action.clone())
        };
        let err = verify(&signed(&p), &long, now).expect_err(name);
        assert_eq!(err.code(), "lifetime_too_long", "{name}: {err}");
    }
    // Other commands keep the door's limit and may name "*".
    let mut long = policy();
    long.max_lifetime = Duration::from_secs(3600);
    let p = CommandPayload {
        doors: vec!["*".into()],
        expires_at: at("2026-11-23T10:30:00Z"),
        ..payload(Action::ReleaseLockdown {})
    };
    assert!(verify(&signed(&p), &long, now).is_ok());
}

#[test]
fn command_keys_sign_commands_and_only_list_keys_sign_resets() {
    let pol = split_policy();
    let now = at(NOW);
    let ops = [("ops".to_string(), key(3))];
    let lists = [
        ("office-1".to_string(), key(1)),
        ("office-2".to_string(), key(2)),
    ];
    // The command key signs an unlock.
    let v = verify(&sign(&unlock(), &ops), &pol, now).expect("ops signs commands");
    assert_eq!(v.signed_by, ["ops"]);
    // A reset signed by the command key alone: refused with its own reason.
    let reset = payload(Action::ResetListFloor { version: 1 });
    let err = verify(&sign(&reset, &ops), &pol, now).expect_err("ops cannot reset");
    assert_eq!(err.code(), "reset_threshold_not_met", "{err}");
    // One list key of two: still refused.
    let err = verify(&sign(&reset, &lists[..1]), &pol, now).expect_err("1 of 2");
    assert_eq!(err.code(), "reset_threshold_not_met", "{err}");
    // Both list keys: accepted; only they are named.
    let v = verify(&sign(&reset, &lists), &pol, now).expect("2 of 2 list keys");
    assert_eq!(v.signed_by, ["office-1", "office-2"]);
    // A list key does not sign ordinary commands when command keys are set.
    let err = verify(&sign(&unlock(), &lists), &pol, now).expect_err("list key");
    assert_eq!(err.code(), "threshold_not_met", "{err}");
    // A key in neither list is unknown.
    let err = verify(&sign(&unlock(), &[("x".into(), key(9))]), &pol, now).expect_err("unknown");
    assert_eq!(err.code(), "unknown_key");
}

#[test]
fn windows_are_checked_on_the_trusted_time_but_a_time_reset_on_the_wall_clock() {
    let pol = policy();
    // The wall clock was set back into the window; the trusted time is past it.
    let clocks = CommandClocks {
        trusted: at("2026-11-23T12:00:00Z"),
        wall: at(NOW),
    };
    let err = verify_at(&signed(&unlock()), &pol, clocks).expect_err("expired");
    assert_eq!(err.code(), "expired");
    let err = verify_at(
        &signed(&payload(Action::ResetListFloor { version: 2 })),
        &pol,
        clocks,
    )
    .expect_err("expired");
    assert_eq!(err.code(), "expired");
    // The floor is what is in doubt: a time reset is checked on the wall clock.
    assert!(verify_at(&signed(&payload(Action::ResetTimeFloor {})), &pol, clocks).is_ok());
}
