//! A site for tests: a temp dir with a card key, two signing keys (`k1`, `k2`), the door config
//! `pintud` runs with (simulated reader, fast inbox polling), lists built and signed as
//! `pintuctl sign` does.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use pintu::core::card::{CardKey, Uid};
use pintu::core::list::{self, Entry, Payload, Role, TrustPolicy, TrustedKey};

/// The site id of every fixture.
pub const SITE: &str = "site-a";
/// The door id of every fixture.
pub const DOOR: &str = "door-1";

/// A site: temp dir, two signing keys (`k1`, `k2`), a card key, and a state dir.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub keys: Vec<(String, SigningKey)>,
    pub card_key: CardKey,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = vec![
            ("k1".to_string(), SigningKey::from_bytes(&[11; 32])),
            ("k2".to_string(), SigningKey::from_bytes(&[22; 32])),
        ];
        let card_key = CardKey::from_bytes([7; 32]);
        std::fs::write(dir.path().join("card.key"), card_key.to_hex()).expect("write card key");
        Site {
            dir,
            keys,
            card_key,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn inbox(&self) -> PathBuf {
        self.state_dir().join("inbox")
    }

    pub fn socket(&self) -> PathBuf {
        self.path("control.sock")
    }

    /// A door config trusting `k1` (threshold 1), fast inbox polling. `extra` is appended.
    pub fn config_text(&self, extra: &str) -> String {
        let k1 = B64.encode(self.keys[0].1.verifying_key().to_bytes());
        self.config_text_trusting(&[("k1", &k1)], 1, extra)
    }

    /// A door config trusting `keys` (`(id, public key in base64)`) at `threshold`, fast inbox
    /// polling. `extra` is appended.
    pub fn config_text_trusting(
        &self,
        keys: &[(&str, &str)],
        threshold: usize,
        extra: &str,
    ) -> String {
        let trust: String = keys
            .iter()
            .map(|(id, public)| {
                format!("\n[[trust.keys]]\nid = \"{id}\"\npublic_key = \"{public}\"\n")
            })
            .collect();
        format!(
            r#"site = "{SITE}"
state_dir = "state"

[door]
id = "{DOOR}"
unlock_for = "1s"

[trust]
threshold = {threshold}
card_key_file = "card.key"
{trust}
[list]
poll_interval = "100ms"
max_size = "1MiB"

[[reader]]
name = "entry"
role = "entry"
backend = "sim"

[control]
socket = "control.sock"
mode = "0600"

[store]
cache_size = "4MiB"

[log]
level = "debug"
{extra}"#
        )
    }

    /// The `[mqtt]` section of a door config for a test broker on `port` (fast reconnects).
    pub fn mqtt_section(port: u16) -> String {
        format!(
            "\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nreconnect_min = \"200ms\"\n\
             reconnect_max = \"1s\"\nheartbeat = \"5s\"\ninsecure = true\n"
        )
    }

    pub fn write_config(&self, extra: &str) -> PathBuf {
        let path = self.path("pintu.toml");
        std::fs::write(&path, self.config_text(extra)).expect("write config");
        path
    }

    /// Store options for this site's state dir (a small cache: test lists are small).
    pub fn store_options(&self) -> pintu::door::store::StoreOptions {
        pintu::door::store::StoreOptions {
            state_dir: self.state_dir(),
            cache_size: 4 << 20,
            cache_size_max: 4 << 20,
            site: SITE.into(),
            door: DOOR.into(),
        }
    }

    /// The trust policy matching [`Site::config_text`].
    pub fn policy(&self) -> TrustPolicy {
        TrustPolicy {
            keys: vec![TrustedKey {
                id: "k1".into(),
                key: self.keys[0].1.verifying_key(),
            }],
            threshold: 1,
            site: Some(SITE.into()),
            door: Some(DOOR.into()),
            max_bytes: 1 << 20,
        }
    }

    /// An entry for `uid`, valid from `from` until `until`.
    pub fn entry(&self, uid: &str, holder: &str, from: &str, until: &str) -> Entry {
        let uid: Uid = uid.parse().expect("uid");
        Entry {
            card: self.card_key.hash(&uid),
            holder: holder.into(),
            name: format!("Holder {holder}"),
            role: Role::Staff,
            valid_from: from.parse().expect("from"),
            valid_until: until.parse().expect("until"),
            doors: None,
            schedule: vec![],
            request_ref: format!("REQ-{holder}"),
            approver: "kabid".into(),
        }
    }

    /// A list payload for this site and door, issued an hour ago, expiring in 30 days.
    pub fn payload(&self, version: u64, entries: Vec<Entry>) -> Payload {
        let now = Timestamp::now();
        Payload {
            format: list::PAYLOAD_FORMAT,
            site: SITE.into(),
            doors: vec![DOOR.into()],
            version,
            issued_at: now - jiff::SignedDuration::from_hours(1),
            expires_at: now + jiff::SignedDuration::from_hours(24 * 30),
            time_zone: "Asia/Jakarta".into(),
            entries,
        }
    }

    /// Signs a payload with `k1`.
    pub fn sign(&self, payload: &Payload) -> Vec<u8> {
        sign_with(payload, &self.keys[..1])
    }
}

pub fn sign_with(payload: &Payload, keys: &[(String, SigningKey)]) -> Vec<u8> {
    list::sign(&serde_json::to_vec(payload).expect("payload json"), keys)
}
