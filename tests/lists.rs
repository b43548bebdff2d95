//! The list attack catalogue: every way a signed list can be refused, one test each, exercised
//! through the real `Store::verify_and_apply` on a sled store in a temp dir.
//!
//! Every rejection test starts from a door that holds list v5 and checks, besides the rejection
//! variant and its event code, that nothing changed: the active list (version and digest), what
//! lookups answer, the highest accepted version and the bytes of the last good list file.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, Verifier as _, VerifyingKey};
use jiff::{SignedDuration, Timestamp};
use pintu::core::card::Uid;
use pintu::core::list::{self, Entry, ListMeta, Payload, Rejection, TrustPolicy, TrustedKey};
use pintu::door::store::{OpenReport, Store, LIST_FILE};

use crate::common::{sign_with, Site, DOOR, SITE};

/// Cards in every list (holder names carry the list version: `alice-v5`).
const ALICE: &str = "04A1B2C3";
const BOB: &str = "04B0B0B0B0B0B0";
/// A card in no list.
const CAROL: &str = "04C0C0C0";

/// The version every rejection test starts from.
const HELD: u64 = 5;

/// A door with a sled store in a temp dir, the policy it enforces and the keys that sign its lists.
struct Door {
    site: Site,
    policy: TrustPolicy,
    signers: Vec<(String, SigningKey)>,
    store: Store,
}

/// Everything a rejected list must leave untouched.
#[derive(Debug, PartialEq)]
struct State {
    active_version: Option<u64>,
    active_digest: Option<[u8; 32]>,
    highest_version: u64,
    alice: Option<String>,
    bob: Option<String>,
    carol: Option<String>,
    list_file: Option<Vec<u8>>,
}

fn trusted(id: &str, key: VerifyingKey) -> TrustedKey {
    TrustedKey { id: id.into(), key }
}

impl Door {
    /// The site's default door: trusts `k1`, threshold 1, lists signed by `k1`.
    fn new() -> Door {
        let site = Site::new();
        let policy = site.policy();
        let signers = site.keys[..1].to_vec();
        Door::open(site, policy, signers)
    }

    fn with_policy(
        policy: impl FnOnce(&Site) -> TrustPolicy,
        signers: impl FnOnce(&Site) -> Vec<(String, SigningKey)>,
    ) -> Door {
        let site = Site::new();
        let policy = policy(&site);
        let signers = signers(&site);
        Door::open(site, policy, signers)
    }

    fn open(site: Site, policy: TrustPolicy, signers: Vec<(String, SigningKey)>) -> Door {
        let (store, report) = Store::open(&site.store_options(), &policy).expect("open store");
        assert!(
            report.events.is_empty(),
            "a fresh store reports nothing: {:?}",
            report.events
        );
        Door {
            site,
            policy,
            signers,
            store,
        }
    }

    /// Closes the store (all sled handles) and opens it again, as a restart does.
    fn restart(self) -> (Door, OpenReport) {
        let Door {
            site,
            policy,
            signers,
            store,
        } = self;
        drop(store);
        let (store, report) = Store::open(&site.store_options(), &policy).expect("reopen store");
        (
            Door {
                site,
                policy,
                signers,
                store,
            },
            report,
        )
    }

    /// A valid payload for this door at `version`.
    fn payload(&self, version: u64) -> Payload {
        self.site.payload(version, entries(&self.site, version))
    }

    /// A valid signed list at `version`.
    fn list(&self, version: u64) -> Vec<u8> {
        self.signed(&self.payload(version))
    }

    fn signed(&self, payload: &Payload) -> Vec<u8> {
        sign_with(payload, &self.signers)
    }

    fn offer(&self, bytes: &[u8]) -> Result<ListMeta, Rejection> {
        self.store
            .verify_and_apply(bytes, &self.policy, Timestamp::now())
            .expect("the store itself does not fail")
    }

    /// Applies list v5 and checks it is active: the state every rejection test starts from.
    fn holding_v5(self) -> Door {
        let bytes = self.list(HELD);
        let meta = self.offer(&bytes).expect("list v5 is accepted");
        assert_eq!(meta.version, HELD);
        let state = self.state();
        assert_eq!(state.active_version, Some(HELD));
        assert_eq!(state.highest_version, HELD);
        assert_eq!(state.alice.as_deref(), Some("alice-v5"));
        assert_eq!(state.bob.as_deref(), Some("bob-v5"));
        assert_eq!(state.carol, None);
        assert_eq!(state.list_file.as_deref(), Some(&bytes[..]));
        self
    }

    fn lookup(&self, uid: &str) -> Option<String> {
        let active = self.store.active()?;
        let card = self.site.card_key.hash(&uid.parse::<Uid>().expect("uid"));
        active
            .lookup(&card)
            .expect("lookup")
            .map(|entry| entry.holder)
    }

    fn state(&self) -> State {
        let active = self.store.active();
        State {
            active_version: active.as_ref().map(|a| a.meta.version),
            active_digest: active.as_ref().map(|a| a.meta.payload_digest),
            highest_version: self.store.highest_version(),
            alice: self.lookup(ALICE),
            bob: self.lookup(BOB),
            carol: self.lookup(CAROL),
            list_file: std::fs::read(self.site.state_dir().join(LIST_FILE)).ok(),
        }
    }

    /// Offers `bytes`, expects a rejection, and checks that nothing changed.
    fn reject(&self, bytes: &[u8]) -> Rejection {
        let before = self.state();
        let rejection = match self.offer(bytes) {
            Ok(meta) => panic!(
                "list was accepted (version {}), expected a rejection",
                meta.version
            ),
            Err(r) => r,
        };
        assert_eq!(
            self.state(),
            before,
            "a rejected list ({rejection}) changed the door's state"
        );
        rejection
    }
}

fn entries(site: &Site, version: u64) -> Vec<Entry> {
    vec![
        site.entry(
            ALICE,
            &format!("alice-v{version}"),
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        ),
        site.entry(
            BOB,
            &format!("bob-v{version}"),
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        ),
    ]
}

/// Parses an envelope, lets `f` edit it as JSON, and serializes it again.
fn edit_envelope(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("envelope json");
    f(&mut v);
    serde_json::to_vec_pretty(&v).expect("envelope serializes")
}

fn signature_bytes(envelope: &serde_json::Value, i: usize) -> [u8; 64] {
    let text = envelope["signatures"][i]["signature"]
        .as_str()
        .expect("signature string");
    B64.decode(text)
        .expect("base64")
        .try_into()
        .expect("64 bytes")
}

fn set_signature(envelope: &mut serde_json::Value, i: usize, sig: &[u8; 64]) {
    envelope["signatures"][i]["signature"] = B64.encode(sig).into();
}

fn signing_message(payload: &[u8]) -> Vec<u8> {
    [list::SIGNING_CONTEXT, payload].concat()
}

// --- signatures and trust ---------------------------------------------------------------------

#[test]
fn bad_signature_when_payload_is_tampered_after_signing() {
    let door = Door::new().holding_v5();
    let bytes = edit_envelope(&door.list(6), |env| {
        let payload = B64.decode(env["payload"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(payload).unwrap();
        assert!(text.contains("alice-v6"));
        // Still a well-formed payload: only the signature can tell.
        let forged = text.replace("alice-v6", "mallory");
        env["payload"] = B64.encode(forged).into();
    });
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::BadSignature("k1".into()));
    assert_eq!(r.code(), "bad_signature");
}

#[test]
fn bad_signature_when_signature_bytes_are_flipped() {
    let door = Door::new().holding_v5();
    let bytes = edit_envelope(&door.list(6), |env| {
        let mut sig = signature_bytes(env, 0);
        sig[10] ^= 0x01;
        set_signature(env, 0, &sig);
    });
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::BadSignature("k1".into()));
    assert_eq!(r.code(), "bad_signature");
}

#[test]
fn bad_signature_when_signature_has_wrong_length() {
    let door = Door::new().holding_v5();
    let bytes = edit_envelope(&door.list(6), |env| {
        let sig = signature_bytes(env, 0);
        env["signatures"][0]["signature"] = B64.encode(&sig[..63]).into();
    });
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::BadSignature("k1".into()));
}

#[test]
fn missing_signature_when_signatures_array_is_empty() {
    let door = Door::new().holding_v5();
    let bytes = edit_envelope(&door.list(6), |env| {
        env["signatures"] = serde_json::json!([]);
    });
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::MissingSignature);
    assert_eq!(r.code(), "missing_signature");
}

#[test]
fn unknown_key_when_signed_by_a_key_the_door_does_not_trust() {
    let door = Door::new().holding_v5();
    // k2 is a real key of the site, but this door's policy trusts only k1.
    let bytes = sign_with(&door.payload(6), &door.site.keys[1..2]);
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::UnknownKey("k2".into()));
    assert_eq!(r.code(), "unknown_key");
}

#[test]
fn bad_signature_when_another_key_claims_a_trusted_key_id() {
    let door = Door::new().holding_v5();
    // An attacker's key presenting itself as "k1": the signature does not verify under k1.
    let attacker = vec![("k1".to_string(), SigningKey::from_bytes(&[99; 32]))];
    let bytes = sign_with(&door.payload(6), &attacker);
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::BadSignature("k1".into()));
}

/// A door trusting k1 and k2 that needs both.
fn two_of_two(site: &Site) -> TrustPolicy {
    TrustPolicy {
        keys: vec![
            trusted("k1", site.keys[0].1.verifying_key()),
            trusted("k2", site.keys[1].1.verifying_key()),
        ],
        threshold: 2,
        ..site.policy()
    }
}

#[test]
fn threshold_not_met_when_only_one_of_two_required_keys_signed() {
    let door = Door::with_policy(two_of_two, |site| site.keys.clone()).holding_v5();
    let bytes = sign_with(&door.payload(6), &door.site.keys[..1]);
    let r = door.reject(&bytes);
    assert_eq!(
        r,
        Rejection::ThresholdNotMet {
            valid: 1,
            needed: 2
        }
    );
    assert_eq!(r.code(), "threshold_not_met");
    // Control: both keys together meet it.
    assert_eq!(door.offer(&door.list(6)).expect("k1 + k2").version, 6);
}

#[test]
fn threshold_not_met_when_one_key_signature_is_duplicated() {
    let door = Door::with_policy(two_of_two, |site| site.keys.clone()).holding_v5();
    let k1 = door.site.keys[0].clone();
    let bytes = sign_with(&door.payload(6), &[k1.clone(), k1]);
    let env: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(env["signatures"].as_array().unwrap().len(), 2);
    let r = door.reject(&bytes);
    assert_eq!(
        r,
        Rejection::ThresholdNotMet {
            valid: 1,
            needed: 2
        }
    );
}

#[test]
fn threshold_not_met_when_one_key_is_trusted_under_two_ids() {
    // A misconfigured policy (config refuses this, the verifier must not rely on it): k1 listed
    // as "k1" and as "k1-alias". Two signatures by the same key count once.
    let door = Door::with_policy(
        |site| TrustPolicy {
            keys: vec![
                trusted("k1", site.keys[0].1.verifying_key()),
                trusted("k1-alias", site.keys[0].1.verifying_key()),
                trusted("k2", site.keys[1].1.verifying_key()),
            ],
            threshold: 2,
            ..site.policy()
        },
        |site| site.keys.clone(),
    )
    .holding_v5();
    let k1 = door.site.keys[0].1.clone();
    let bytes = sign_with(
        &door.payload(6),
        &[("k1".into(), k1.clone()), ("k1-alias".into(), k1)],
    );
    let r = door.reject(&bytes);
    assert_eq!(
        r,
        Rejection::ThresholdNotMet {
            valid: 1,
            needed: 2
        }
    );
}

#[test]
fn non_canonical_signature_is_rejected() {
    // Ed25519 malleability: (R, S + L) verifies under a lax check wherever (R, S) does.
    // verify_strict must refuse the non-canonical S.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let door = Door::new().holding_v5();
    let good = door.list(6);
    let bytes = edit_envelope(&good, |env| {
        let mut sig = signature_bytes(env, 0);
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = sig[32 + i] as u16 + L[i] as u16 + carry;
            sig[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + L fits in 32 bytes since S < L < 2^253");
        set_signature(env, 0, &sig);
    });
    assert_ne!(bytes, good);
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::BadSignature("k1".into()));
    // Control: the canonical original is fine.
    assert_eq!(door.offer(&good).expect("canonical signature").version, 6);
}

/// The identity point: a small-order ("weak") ed25519 public key.
const WEAK_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    k[0] = 1;
    k
};

#[test]
fn weak_public_key_is_refused_by_config_decoding() {
    let err = pintu::door::config::decode_public_key(&B64.encode(WEAK_KEY)).unwrap_err();
    assert!(err.contains("weak"), "{err}");
    // Control: a real key decodes.
    let real = Site::new().keys[0].1.verifying_key();
    assert_eq!(
        pintu::door::config::decode_public_key(&B64.encode(real.to_bytes())).unwrap(),
        real
    );
}

#[test]
fn weak_trusted_key_cannot_be_used_to_forge_a_list() {
    // If a weak key ever reached the policy, the signature (R = identity, S = 0) would verify for
    // ANY message under a lax check. verify_strict must refuse it.
    let weak = VerifyingKey::from_bytes(&WEAK_KEY).expect("identity point decodes");
    assert!(weak.is_weak());
    let door = Door::with_policy(
        |site| TrustPolicy {
            keys: vec![
                trusted("k1", site.keys[0].1.verifying_key()),
                trusted("weak", weak),
            ],
            ..site.policy()
        },
        |site| site.keys[..1].to_vec(),
    )
    .holding_v5();
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&WEAK_KEY);
    let payload = serde_json::to_vec(&door.payload(6)).unwrap();
    // The attack is real: the lax check accepts the forgery.
    assert!(weak
        .verify(&signing_message(&payload), &Signature::from_bytes(&forged))
        .is_ok());
    let bytes = serde_json::to_vec(&serde_json::json!({
        "format": list::ENVELOPE_FORMAT,
        "payload": B64.encode(&payload),
        "signatures": [{"key_id": "weak", "signature": B64.encode(forged)}],
    }))
    .unwrap();
    let r = door.reject(&bytes);
    assert_eq!(r, Rejection::BadSignature("weak".into()));
}

// --- version: rollback, replay --------------------------------------------------------------------

#[test]
fn rollback_to_an_older_version_is_rejected() {
    let door = Door::new().holding_v5();
    let r = door.reject(&door.list(4));
    assert_eq!(
        r,
        Rejection::Rollback {
            version: 4,
            current: 5
        }
    );
    assert_eq!(r.code(), "rollback");
}

#[test]
fn replay_of_the_current_list_is_rejected() {
    let door = Door::new().holding_v5();
    let same = std::fs::read(door.site.state_dir().join(LIST_FILE)).unwrap();
    let r = door.reject(&same);
    assert_eq!(r, Rejection::Replay { version: 5 });
    assert_eq!(r.code(), "replay");
}

#[test]
fn same_version_with_different_bytes_is_rejected() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(HELD);
    payload.entries.pop();
    let r = door.reject(&door.signed(&payload));
    assert_eq!(r, Rejection::SameVersionDifferentBytes { version: 5 });
    assert_eq!(r.code(), "same_version_different_bytes");
}

// --- scope: site, door, expiry --------------------------------------------------------------------

#[test]
fn list_for_another_site_is_rejected() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(6);
    payload.site = "site-b".into();
    let r = door.reject(&door.signed(&payload));
    assert_eq!(
        r,
        Rejection::WrongSite {
            list: "site-b".into(),
            expected: SITE.into()
        }
    );
    assert_eq!(r.code(), "wrong_site");
}

#[test]
fn list_for_other_doors_is_rejected_but_star_is_accepted() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(6);
    payload.doors = vec!["door-2".into(), "door-3".into()];
    let r = door.reject(&door.signed(&payload));
    assert_eq!(
        r,
        Rejection::WrongDoor {
            door: DOOR.into(),
            doors: vec!["door-2".into(), "door-3".into()]
        }
    );
    assert_eq!(r.code(), "wrong_door");

    // "*" means every door of the site.
    payload.doors = vec![list::ALL_DOORS.into()];
    let meta = door
        .offer(&door.signed(&payload))
        .expect("\"*\" covers this door");
    assert_eq!(meta.version, 6);
    assert_eq!(door.lookup(ALICE).as_deref(), Some("alice-v6"));
}

#[test]
fn expired_list_is_rejected() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(6);
    let now = Timestamp::now();
    payload.issued_at = now - SignedDuration::from_hours(48);
    payload.expires_at = now - SignedDuration::from_hours(1);
    let r = door.reject(&door.signed(&payload));
    assert_eq!(
        r,
        Rejection::Expired {
            expires_at: payload.expires_at
        }
    );
    assert_eq!(r.code(), "expired");
}

// --- size and format ------------------------------------------------------------------------------

fn small_cap(site: &Site) -> TrustPolicy {
    TrustPolicy {
        max_bytes: 4096,
        ..site.policy()
    }
}

#[test]
fn oversize_list_is_rejected() {
    let door = Door::with_policy(small_cap, |site| site.keys[..1].to_vec()).holding_v5();
    let mut payload = door.payload(6);
    for i in 0..20 {
        payload.entries.push(door.site.entry(
            &format!("0A{i:06X}"),
            &format!("extra-{i}"),
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        ));
    }
    let bytes = door.signed(&payload);
    assert!(bytes.len() > 4096);
    let r = door.reject(&bytes);
    assert_eq!(
        r,
        Rejection::Oversize {
            size: bytes.len(),
            max: 4096
        }
    );
    assert_eq!(r.code(), "oversize");
}

#[test]
fn oversize_is_checked_before_parsing() {
    let door = Door::with_policy(small_cap, |site| site.keys[..1].to_vec()).holding_v5();
    // Under the cap, this blob is malformed...
    let small = vec![b'x'; 100];
    assert!(matches!(door.reject(&small), Rejection::Malformed(_)));
    // ...over it, it is refused on its size alone: the parser never sees it.
    let huge = vec![b'x'; 4097];
    let r = door.reject(&huge);
    assert_eq!(
        r,
        Rejection::Oversize {
            size: 4097,
            max: 4096
        }
    );
}

#[test]
fn unknown_envelope_format_is_rejected() {
    let door = Door::new().holding_v5();
    let bytes = edit_envelope(&door.list(6), |env| {
        env["format"] = "pintu.signed-list.v2".into();
    });
    let r = door.reject(&bytes);
    assert!(
        matches!(&r, Rejection::UnknownFormat(m) if m.contains("pintu.signed-list.v2")),
        "{r:?}"
    );
    assert_eq!(r.code(), "unknown_format");
}

#[test]
fn unknown_payload_format_is_rejected() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(6);
    payload.format = 2;
    // Properly signed: the door trusts the signer but does not understand format 2.
    let r = door.reject(&door.signed(&payload));
    assert!(
        matches!(&r, Rejection::UnknownFormat(m) if m.contains("payload format 2")),
        "{r:?}"
    );
    assert_eq!(r.code(), "unknown_format");
}

#[test]
fn malformed_when_not_json() {
    let door = Door::new().holding_v5();
    let r = door.reject(b"this is not a signed list\n");
    assert!(matches!(&r, Rejection::Malformed(_)), "{r:?}");
    assert_eq!(r.code(), "malformed");
}

#[test]
fn malformed_when_payload_is_not_base64() {
    let door = Door::new().holding_v5();
    let bytes = edit_envelope(&door.list(6), |env| {
        env["payload"] = "!!! not base64 !!!".into();
    });
    let r = door.reject(&bytes);
    assert!(
        matches!(&r, Rejection::Malformed(m) if m.contains("base64")),
        "{r:?}"
    );
}

#[test]
fn malformed_when_an_entry_ends_before_it_starts() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(6);
    payload.entries[1].valid_from = "2026-06-01T00:00:00Z".parse().unwrap();
    payload.entries[1].valid_until = "2026-05-01T00:00:00Z".parse().unwrap();
    // Signed by a trusted key: the content rules still apply.
    let r = door.reject(&door.signed(&payload));
    match &r {
        Rejection::Malformed(m) => {
            assert!(m.contains("entries[1]"), "names the entry index: {m}");
            assert!(m.contains("bob-v6"), "names the holder: {m}");
            assert!(m.contains("valid_until"), "{m}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_when_a_card_appears_twice() {
    let door = Door::new().holding_v5();
    let mut payload = door.payload(6);
    let mut twin = payload.entries[0].clone();
    twin.holder = "alice-twin".into();
    payload.entries.push(twin);
    let r = door.reject(&door.signed(&payload));
    match &r {
        Rejection::Malformed(m) => {
            assert!(m.contains("entries[2]"), "{m}");
            assert!(m.contains("more than one entry"), "{m}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

// --- what survives a restart ----------------------------------------------------------------------

#[test]
fn highest_accepted_version_survives_restart() {
    let door = Door::new().holding_v5();
    let before = door.state();
    let (door, report) = door.restart();
    assert!(
        report.events.is_empty(),
        "a clean restart rebuilds nothing: {:?}",
        report.events
    );
    assert_eq!(door.state(), before);
    assert_eq!(door.store.highest_version(), HELD);
    // Anti-rollback holds across the restart, and so does replay detection.
    assert_eq!(
        door.reject(&door.list(4)),
        Rejection::Rollback {
            version: 4,
            current: 5
        }
    );
    assert_eq!(
        door.reject(before.list_file.as_deref().unwrap()),
        Rejection::Replay { version: 5 }
    );
    // And the door still moves forward.
    assert_eq!(door.offer(&door.list(6)).expect("v6").version, 6);
    assert_eq!(door.lookup(ALICE).as_deref(), Some("alice-v6"));
}

// --- fast-forward: the overall rollback floor and recovery by a signed floor reset -----------------

/// A key the site never had: what the office rotates to.
fn new_key(seed: u8, id: &str) -> (String, SigningKey) {
    (id.to_string(), SigningKey::from_bytes(&[seed; 32]))
}

fn policy_of(site: &Site, keys: &[&(String, SigningKey)], threshold: usize) -> TrustPolicy {
    TrustPolicy {
        keys: keys
            .iter()
            .map(|(id, k)| trusted(id, k.verifying_key()))
            .collect(),
        threshold,
        ..site.policy()
    }
}

impl Door {
    /// Restarts with another trust policy (the operator edited the config).
    fn restart_with(mut self, policy: impl FnOnce(&Site) -> TrustPolicy) -> (Door, OpenReport) {
        self.policy = policy(&self.site);
        self.restart()
    }

    fn signed_by(&self, payload: &Payload, keys: &[(String, SigningKey)]) -> Vec<u8> {
        sign_with(payload, keys)
    }

    fn floor_of(&self, key: &SigningKey) -> u64 {
        self.store
            .key_floor(&key.verifying_key())
            .expect("key floor")
    }
}

/// Issue 15 item 6: removing the stolen key lowers nothing (on the old code the floor fell to
/// what the remaining keys vouched for); a signed floor reset (`Store::reset_list_floor`, what a
/// verified `reset_list_floor` command runs) does.
#[test]
fn fast_forward_with_a_stolen_key_is_undone_by_a_floor_reset_not_by_removing_the_key() {
    // Trusts k1 (the office) and k2 (about to be stolen), threshold 1; the office signs with k1.
    let door = Door::with_policy(
        |site| policy_of(site, &[&site.keys[0], &site.keys[1]], 1),
        |site| site.keys[..1].to_vec(),
    )
    .holding_v5();
    let k1 = door.site.keys[0].clone();
    let k2 = door.site.keys[1].clone();
    let absurd = u64::MAX - 1;
    let attack = door.signed_by(&door.payload(absurd), std::slice::from_ref(&k2));
    assert_eq!(door.offer(&attack).expect("k2 is trusted").version, absurd);
    assert_eq!(door.store.highest_version(), absurd);
    assert_eq!((door.floor_of(&k1.1), door.floor_of(&k2.1)), (HELD, absurd));
    // Every legitimate list is now a rollback.
    assert_eq!(
        door.reject(&door.list(6)),
        Rejection::Rollback {
            version: 6,
            current: absurd
        }
    );

    // k2 leaves the config: its list no longer verifies, but the floor stays.
    let (door, report) = door.restart_with(|site| policy_of(site, &[&site.keys[0]], 1));
    assert_eq!(
        reasons(&report),
        ["unknown_key"],
        "the stored list is refused"
    );
    assert!(door.store.active().is_none());
    assert_eq!(
        door.store.highest_version(),
        absurd,
        "no key removal lowers it"
    );
    assert!(matches!(
        door.reject(&door.list(6)),
        Rejection::Rollback { .. }
    ));

    // The signed reset: the floor becomes the last legitimate version, durably.
    assert_eq!(door.store.reset_list_floor(HELD).expect("reset"), absurd);
    assert_eq!(door.store.highest_version(), HELD);
    assert_eq!(door.floor_of(&k2.1), HELD, "no key's floor stays above it");
    let (door, _) = door.restart_with(|site| policy_of(site, &[&site.keys[0]], 1));
    assert_eq!(door.store.highest_version(), HELD, "survives a restart");
    // The held list again is not above the floor; the next one is.
    assert!(matches!(
        door.reject(&door.list(HELD)),
        Rejection::Rollback { .. }
    ));
    assert_eq!(
        door.offer(&door.list(6))
            .expect("v6 after the reset")
            .version,
        6
    );
    assert_eq!(door.floor_of(&k1.1), 6);
    assert_eq!(
        door.reject(&door.list(4)),
        Rejection::Rollback {
            version: 4,
            current: 6
        }
    );
    assert_eq!(door.reject(&attack), Rejection::UnknownKey("k2".into()));
    // Were k2 trusted again, its absurd list would still be refused... as a list the door
    // already passed: the reset lowered k2's floor too, and the overall floor is 6.
    let (door, _) = door.restart_with(|site| policy_of(site, &[&site.keys[0], &site.keys[1]], 1));
    assert_eq!(door.store.highest_version(), 6);
}

#[test]
fn a_key_keeps_its_floor_under_a_new_id() {
    let door = Door::new().holding_v5();
    let k1 = door.site.keys[0].1.clone();
    // The operator renames k1 in the config: same key bytes, same floor. (The stored list names
    // the key "k1", an id the door no longer knows: it starts without a list.)
    let renamed = ("office-2026".to_string(), k1.clone());
    let (mut door, report) = door.restart_with(|site| policy_of(site, &[&renamed], 1));
    assert_eq!(reasons(&report), ["unknown_key"]);
    door.signers = vec![renamed.clone()];
    assert_eq!(door.store.highest_version(), HELD);
    assert_eq!(door.floor_of(&k1), HELD);
    assert_eq!(
        door.reject(&door.list(4)),
        Rejection::Rollback {
            version: 4,
            current: HELD
        }
    );
    assert_eq!(
        door.offer(&door.list(6))
            .expect("v6 under the new id")
            .version,
        6
    );
    assert_eq!(door.floor_of(&k1), 6);
}

#[test]
fn with_threshold_two_a_rotation_keeps_the_floor_until_a_reset() {
    let door = Door::with_policy(two_of_two, |site| site.keys.clone()).holding_v5();
    let (k1, k2) = (door.site.keys[0].clone(), door.site.keys[1].clone());
    let (k3, k4) = (new_key(33, "k3"), new_key(44, "k4"));
    assert_eq!((door.floor_of(&k1.1), door.floor_of(&k2.1)), (HELD, HELD));

    // Both keys stolen: an absurd version signed by both.
    let absurd = u64::MAX - 1;
    let attack = door.list(absurd);
    assert_eq!(door.offer(&attack).expect("k1 + k2").version, absurd);
    assert_eq!(
        (door.floor_of(&k1.1), door.floor_of(&k2.1)),
        (absurd, absurd)
    );

    // Rotating both out lowers nothing: the new keys inherit the door's floor.
    let k3_k4 = [k3.clone(), k4.clone()];
    let (door, report) = door.restart_with(|site| policy_of(site, &[&k3, &k4], 2));
    assert_eq!(reasons(&report), ["unknown_key"]);
    assert_eq!(door.store.highest_version(), absurd);
    let v6 = door.signed_by(&door.payload(6), &k3_k4);
    assert!(matches!(door.reject(&v6), Rejection::Rollback { .. }));

    // The reset (k3 + k4 sign it) recovers; the new keys vouch from then on.
    door.store.reset_list_floor(HELD).expect("reset");
    assert_eq!(door.offer(&v6).expect("k3 + k4").version, 6);
    assert_eq!((door.floor_of(&k3.1), door.floor_of(&k4.1)), (6, 6));
    assert_eq!(door.reject(&attack), Rejection::UnknownKey("k1".into()));
    assert!(matches!(
        door.reject(&door.signed_by(&door.payload(5), &k3_k4)),
        Rejection::Rollback { .. }
    ));
    let _ = k2;
}

#[test]
fn a_store_with_one_floor_gives_it_to_every_trusted_key_on_upgrade() {
    // Trusts k1 and k2; list v5 signed by k1 only.
    let door = Door::with_policy(
        |site| policy_of(site, &[&site.keys[0], &site.keys[1]], 1),
        |site| site.keys[..1].to_vec(),
    )
    .holding_v5();
    let Door {
        site,
        policy,
        signers,
        store,
    } = door;
    drop(store);
    // Make it a store from before per-key floors: only `highest_version`, and no list file (so
    // the floor can only come from the store).
    // sled's background flusher lets go of the directory's lock a moment after the drop (the
    // daemon's own open retries the same way).
    let path = site.state_dir().join(pintu::door::store::STORE_DIR);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match sled::open(&path) {
            Ok(db) => break db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => panic!("sled: {e:?}"),
        }
    };
    let meta = db.open_tree("meta").expect("meta");
    let old: Vec<_> = meta
        .scan_prefix(b"key_floor")
        .map(|kv| kv.expect("scan").0)
        .collect();
    assert_eq!(old.len(), 2, "the marker and k1's floor");
    for k in old {
        meta.remove(k).expect("remove");
    }
    assert_eq!(
        meta.get(b"highest_version").expect("get").as_deref(),
        Some(&HELD.to_be_bytes()[..])
    );
    db.flush().expect("flush");
    drop((meta, db));
    // The list file and any copy of it.
    for entry in std::fs::read_dir(site.state_dir()).expect("state dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with(LIST_FILE)) {
            std::fs::remove_file(&path).expect("remove list file");
        }
    }

    let (store, _) = Store::open(&site.store_options(), &policy).expect("open");
    let door = Door {
        site,
        policy,
        signers,
        store,
    };
    let (k1, k2) = (door.site.keys[0].clone(), door.site.keys[1].clone());
    assert_eq!(door.store.highest_version(), HELD);
    assert_eq!((door.floor_of(&k1.1), door.floor_of(&k2.1)), (HELD, HELD));
    let r = door.reject(&door.list(HELD));
    assert!(matches!(r, Rejection::Rollback { .. }), "{r:?}");
    // No lowering without a rotation: k2 alone still holds the migrated floor...
    let (door, _) = door.restart_with(|site| policy_of(site, &[&site.keys[1]], 1));
    assert_eq!(door.store.highest_version(), HELD);
    assert!(matches!(
        door.reject(&door.signed_by(&door.payload(4), std::slice::from_ref(&k2))),
        Rejection::Rollback { .. }
    ));
    // ...and a key that never signed here does not lower it either (issue 15 item 6: the
    // old code started such a door at 0).
    let k3 = new_key(33, "k3");
    let (door, _) = door.restart_with(|site| policy_of(site, &[&k3], 1));
    assert_eq!(door.store.highest_version(), HELD);
}

/// Reasons of the `list.rejected` events a start reported.
fn reasons(report: &OpenReport) -> Vec<String> {
    report
        .events
        .iter()
        .filter(|e| e.kind == pintu::core::event::EventKind::ListRejected)
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect()
}
