//! Synthetic lists of any size for the benchmarks and the large-list tests: the `i`-th
//! cardholder's UID and entry, a payload of `n` entries, signed as `pintuctl sign` does.
//! Validity windows are fixed around [`now`], so a list built here decides the same on any day.

use jiff::Timestamp;
use pintu::core::card::Uid;
use pintu::core::list::{self, Entry, Payload, Role, TrustPolicy, TrustedKey};
use pintu::core::schedule::Window;

use crate::site::{Site, DOOR, SITE};

/// The fixed "now" of synthetic lists: Wednesday 2026-01-14 10:00 in Asia/Jakarta, inside the
/// office-hours schedule some entries carry (so scheduled entries are granted).
pub fn now() -> Timestamp {
    "2026-01-14T03:00:00Z".parse().expect("fixed timestamp")
}

/// The 7-byte UID of the `i`-th cardholder in a synthetic list (ISO 14443 double-size UIDs
/// start `04`).
pub fn known_uid(i: usize) -> Uid {
    let b = (i as u64).to_be_bytes();
    Uid::from_bytes(&[0x04, b[2], b[3], b[4], b[5], b[6], b[7]]).expect("7-byte uid")
}

/// A UID that is in no synthetic list.
pub fn unknown_uid(i: usize) -> Uid {
    let b = (i as u64).to_be_bytes();
    Uid::from_bytes(&[0x08, b[2], b[3], b[4], b[5], b[6], b[7]]).expect("7-byte uid")
}

fn office_hours() -> Vec<Window> {
    serde_json::from_str(
        r#"[{"days":["mon","tue","wed","thu","fri"],"from":"07:00","until":"19:00"}]"#,
    )
    .expect("office hours schedule")
}

impl Site {
    /// The trust policy of [`Site::config_text`] with its size cap set to `max_bytes` (lists of a
    /// million entries are far over the config's 1 MiB).
    pub fn policy_with_cap(&self, max_bytes: usize) -> TrustPolicy {
        TrustPolicy {
            keys: vec![TrustedKey {
                id: self.keys[0].0.clone(),
                key: self.keys[0].1.verifying_key(),
            }],
            threshold: 1,
            site: Some(SITE.into()),
            door: Some(DOOR.into()),
            max_bytes,
        }
    }

    /// The `i`-th synthetic entry. A realistic mix: every 3rd entry has an office-hours
    /// schedule, every 4th names doors explicitly, every 10th is an escort, every 50th a visitor
    /// with a short window.
    pub fn synthetic_entry(&self, i: usize) -> Entry {
        let role = if i % 50 == 49 {
            Role::Visitor
        } else if i % 10 == 9 {
            Role::Escort
        } else {
            Role::Staff
        };
        let (valid_from, valid_until) = if role == Role::Visitor {
            ("2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z")
        } else {
            ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
        };
        Entry {
            card: self.card_key.hash(&known_uid(i)),
            holder: format!("h{i:07}"),
            name: format!("Cardholder {i:07}"),
            role,
            valid_from: valid_from.parse().expect("valid_from"),
            valid_until: valid_until.parse().expect("valid_until"),
            doors: (i % 4 == 3).then(|| vec![DOOR.to_string(), "door-2".to_string()]),
            schedule: if i % 3 == 2 {
                office_hours()
            } else {
                Vec::new()
            },
            request_ref: format!("REQ-2026-{i:07}"),
            approver: "kabid".into(),
        }
    }

    /// A synthetic payload of `n` entries, valid through 2026.
    pub fn synthetic_payload(&self, version: u64, n: usize) -> Payload {
        Payload {
            format: list::PAYLOAD_FORMAT,
            site: SITE.into(),
            doors: vec![DOOR.into()],
            version,
            issued_at: "2026-01-01T00:00:00Z".parse().expect("issued_at"),
            expires_at: "2026-12-31T00:00:00Z".parse().expect("expires_at"),
            time_zone: "Asia/Jakarta".into(),
            entries: (0..n).map(|i| self.synthetic_entry(i)).collect(),
        }
    }

    /// The signed envelope of a synthetic `n`-entry list at `version`.
    pub fn signed_synthetic_list(&self, version: u64, n: usize) -> Vec<u8> {
        self.sign(&self.synthetic_payload(version, n))
    }
}
