//! A door's state directory for the store's unit tests: a temp dir, a signing key, a card key
//! and signed lists of any version and size.

use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use tempfile::TempDir;

use super::{OpenReport, Store, StoreOptions};
use crate::core::card::{CardHash, CardKey, Uid};
use crate::core::event::EventKind;
use crate::core::list::{self, Entry, ListMeta, Payload, Role, TrustPolicy, TrustedKey};

pub(super) const SITE: &str = "site-a";
pub(super) const DOOR: &str = "door-1";

/// A temp state directory with the keys that sign its lists.
pub(super) struct Door {
    dir: TempDir,
    /// Trusted signing keys: `k1` always, `k2` for the tests that rotate.
    pub(super) keys: Vec<(String, SigningKey)>,
    card_key: CardKey,
}

impl Door {
    pub(super) fn new() -> Door {
        Door {
            dir: tempfile::tempdir().expect("temp dir"),
            keys: vec![
                ("k1".into(), SigningKey::from_bytes(&[1; 32])),
                ("k2".into(), SigningKey::from_bytes(&[2; 32])),
            ],
            card_key: CardKey::from_bytes([9; 32]),
        }
    }

    pub(super) fn state_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub(super) fn options(&self) -> StoreOptions {
        StoreOptions {
            state_dir: self.dir.path().to_path_buf(),
            cache_size: 4 << 20,
            cache_size_max: 4 << 20,
            site: SITE.into(),
            door: DOOR.into(),
        }
    }

    /// Trusts the first `n` keys, one signature needed.
    pub(super) fn policy_of(&self, n: usize) -> TrustPolicy {
        TrustPolicy {
            keys: self.keys[..n]
                .iter()
                .map(|(id, k)| TrustedKey {
                    id: id.clone(),
                    key: k.verifying_key(),
                })
                .collect(),
            threshold: 1,
            site: Some(SITE.into()),
            door: Some(DOOR.into()),
            max_bytes: 1 << 20,
        }
    }

    /// Trusts `k1`.
    pub(super) fn policy(&self) -> TrustPolicy {
        self.policy_of(1)
    }

    pub(super) fn open(&self) -> (Store, OpenReport) {
        Store::open(&self.options(), &self.policy()).expect("open store")
    }

    pub(super) fn card(&self, i: usize) -> CardHash {
        let uid = Uid::from_bytes(&(0x0A00_0000u32 + i as u32).to_be_bytes()).expect("uid");
        self.card_key.hash(&uid)
    }

    /// A list of `version` with `n` cards whose holders are `h{i}-v{version}`, signed by `k1`.
    pub(super) fn list(&self, version: u64, n: usize) -> Vec<u8> {
        self.list_signed_by(version, n, 0)
    }

    /// As [`Door::list`], signed by key number `key`.
    pub(super) fn list_signed_by(&self, version: u64, n: usize, key: usize) -> Vec<u8> {
        let now = Timestamp::now();
        let entries = (0..n)
            .map(|i| Entry {
                card: self.card(i),
                holder: format!("h{i}-v{version}"),
                name: format!("Holder {i}"),
                role: Role::Staff,
                valid_from: now - SignedDuration::from_hours(1),
                valid_until: now + SignedDuration::from_hours(24),
                doors: None,
                schedule: vec![],
                request_ref: format!("REQ-{i}"),
                approver: "kabid".into(),
            })
            .collect();
        let payload = Payload {
            format: list::PAYLOAD_FORMAT,
            site: SITE.into(),
            doors: vec![DOOR.into()],
            version,
            issued_at: now - SignedDuration::from_hours(1),
            expires_at: now + SignedDuration::from_hours(24),
            time_zone: "Asia/Jakarta".into(),
            entries,
        };
        let bytes = serde_json::to_vec(&payload).expect("payload json");
        list::sign(&bytes, &self.keys[key..=key])
    }

    /// Applies a list under [`Door::policy_of`]`(2)`, which also trusts the signer of a `k2` list.
    pub(super) fn apply(&self, store: &Store, bytes: &[u8]) -> ListMeta {
        store
            .verify_and_apply(bytes, &self.policy_of(2), Timestamp::now())
            .expect("store")
            .expect("list accepted")
    }
}

/// The holder the active list gives card `i`.
pub(super) fn holder(store: &Store, door: &Door, i: usize) -> Option<String> {
    store
        .active()?
        .lookup(&door.card(i))
        .expect("lookup")
        .map(|e| e.holder)
}

/// Reasons of the report's events of `kind`.
pub(super) fn reasons(report: &OpenReport, kind: EventKind) -> Vec<String> {
    report
        .events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect()
}
