//! Unit tests of the signed list: verification tables, rejection codes, properties.

use super::*;

#[test]
fn check_head_refuses_what_cannot_be_an_envelope() {
    for ok in [
        &b"{\"format\":1}"[..],
        b"  \r\n\t{ \"format\"",
        b"{}",
        b"{",
        // Cut inside a character: not an error.
        "{\"k\":\"\u{e9}"
            .as_bytes()
            .split_last()
            .map(|(_, h)| h)
            .unwrap_or(b""),
    ] {
        assert_eq!(check_head(ok), Ok(()), "{:?}", String::from_utf8_lossy(ok));
    }
    for (bad, says) in [
        (&b""[..], "empty or blank"),
        (b"   \n", "empty or blank"),
        (b"\x89PNG\r\n", "not UTF-8"),
        (b"[1,2]", "starts with '['"),
        (b"this is not a list", "starts with 't'"),
        (b"{{{{", "'{' at byte 1"),
        (b"{\"a\":\xff}", "byte 5 is not UTF-8"),
    ] {
        match check_head(bad) {
            Err(Rejection::Malformed(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(check_head(&[b' '; HEAD_BYTES]).is_err());
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn policy(keys: &[(&str, &SigningKey)], threshold: usize) -> TrustPolicy {
    TrustPolicy {
        keys: keys
            .iter()
            .map(|(id, k)| TrustedKey {
                id: id.to_string(),
                key: k.verifying_key(),
            })
            .collect(),
        threshold,
        site: Some("site-a".into()),
        door: Some("door-1".into()),
        max_bytes: 1 << 20,
    }
}

fn payload(version: u64) -> Payload {
    Payload {
        format: 1,
        site: "site-a".into(),
        doors: vec!["door-1".into()],
        version,
        issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        expires_at: "2026-02-01T00:00:00Z".parse().unwrap(),
        time_zone: "Asia/Jakarta".into(),
        entries: vec![Entry {
            card: CardHash([9; 32]),
            holder: "budi".into(),
            name: "Budi".into(),
            role: Role::Staff,
            valid_from: "2026-01-01T00:00:00Z".parse().unwrap(),
            valid_until: "2027-01-01T00:00:00Z".parse().unwrap(),
            doors: None,
            schedule: vec![],
            request_ref: "REQ-1".into(),
            approver: "kabid".into(),
        }],
    }
}

fn now() -> Option<Timestamp> {
    Some("2026-01-15T00:00:00Z".parse().unwrap())
}

#[test]
fn sign_then_verify_round_trip() {
    let k = key(1);
    let bytes = sign(
        &serde_json::to_vec(&payload(3)).unwrap(),
        &[("k1".into(), k.clone())],
    );
    let v = verify(&bytes, &policy(&[("k1", &k)], 1), None, now()).unwrap();
    assert_eq!(v.meta.version, 3);
    assert_eq!(v.meta.entry_count, 1);
    assert_eq!(v.meta.signed_by, vec!["k1".to_string()]);
    assert_eq!(v.payload, payload(3));
}

#[test]
fn duplicate_signature_of_one_key_counts_once() {
    let k = key(1);
    let bytes = sign(
        &serde_json::to_vec(&payload(3)).unwrap(),
        &[("k1".into(), k.clone()), ("k1".into(), k.clone())],
    );
    let err = verify(&bytes, &policy(&[("k1", &k)], 2), None, now()).unwrap_err();
    assert_eq!(
        err,
        Rejection::ThresholdNotMet {
            valid: 1,
            needed: 2
        }
    );
    // The same key listed under two ids still counts once.
    let bytes = sign(
        &serde_json::to_vec(&payload(3)).unwrap(),
        &[("a".into(), k.clone()), ("b".into(), k.clone())],
    );
    let err = verify(&bytes, &policy(&[("a", &k), ("b", &k)], 2), None, now()).unwrap_err();
    assert_eq!(
        err,
        Rejection::ThresholdNotMet {
            valid: 1,
            needed: 2
        }
    );
}

#[test]
fn duplicate_cards_are_malformed() {
    let mut p = payload(1);
    p.entries.push(p.entries[0].clone());
    let err = check_payload(&p).unwrap_err();
    assert!(
        err.contains("entries[1]") && err.contains("more than one entry"),
        "{err}"
    );
}
