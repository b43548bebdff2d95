//! Fixtures of the signing tests: accounts, a signer with cheap Argon2 parameters, payloads.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use pintu::core::command::{self, Action, CommandPayload};
use pintu::core::event::Event;
use pintu::core::list::{TrustPolicy, TrustedKey};
use pintu::mqtt::BrokerSettings;
use pintu_office::audit::AuditActor;
use pintu_office::db::now_ms;
use pintu_office::signing::{ApproverKey, KdfParams, Policy, Signer};
use pintu_office::testing::TestDb;
use pintu_testkit::broker::Broker;
use pintu_testkit::{Pintud, Site, DOOR, SITE};

/// Argon2id at its cheapest: tests unlock keys many times.
pub const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

pub const BUDI_PASS: &str = "pohon mangga di halaman";
pub const SARI_PASS: &str = "kopi tubruk tanpa gula";
pub const STAFF_UID: &str = "04A1B2C3D4";

/// A signer needing `threshold` approvers, cheap KDF, `max_wrong` tries per 15 minutes.
pub fn signer(t: &TestDb, threshold: usize, max_wrong: u32) -> Signer {
    Signer::new(
        t.db.clone(),
        t.key.clone(),
        Policy {
            threshold,
            max_wrong_passphrases: max_wrong,
            throttle_window: Duration::from_secs(15 * 60),
            kdf: FAST,
        },
    )
}

/// Inserts an account (the accounts area owns how they are really made); returns its id.
pub async fn account(t: &TestDb, username: &str) -> String {
    let id = format!("acc-{username}");
    sqlx::query(
        "INSERT INTO accounts (id, username, nip, display_name, password_hash, created_at_ms, \
         updated_at_ms) VALUES ($1, $2, NULL, $3, 'no login in these tests', $4, $4)",
    )
    .bind(&id)
    .bind(username)
    .bind(format!("{username} Approver"))
    .bind(now_ms())
    .execute(t.db.pool())
    .await
    .expect("insert account");
    sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, 'approver')")
        .bind(&id)
        .execute(t.db.pool())
        .await
        .expect("insert role");
    id
}

/// The account as an audit actor.
pub fn actor(account_id: &str) -> AuditActor {
    AuditActor {
        id: account_id.into(),
        name: account_id.trim_start_matches("acc-").into(),
    }
}

/// Two approvers, `budi` and `sari`, each with a key in the service.
pub async fn two_approvers(s: &Signer, t: &TestDb) -> (String, String, ApproverKey, ApproverKey) {
    let budi = account(t, "budi").await;
    let sari = account(t, "sari").await;
    let kb = s
        .create_key(&budi, BUDI_PASS, &actor(&budi))
        .await
        .expect("budi's key");
    let ks = s
        .create_key(&sari, SARI_PASS, &actor(&sari))
        .await
        .expect("sari's key");
    (budi, sari, kb, ks)
}

/// The payload bytes of list `version` for the fixture site and door, granting `STAFF_UID`.
pub fn list_bytes(site: &Site, version: u64) -> Vec<u8> {
    let entry = site.entry(
        STAFF_UID,
        "h-staff",
        "2020-01-01T00:00:00Z",
        "2099-01-01T00:00:00Z",
    );
    serde_json::to_vec(&site.payload(version, vec![entry])).expect("payload json")
}

/// The payload bytes of an `unlock_once` for the fixture door, valid 5 minutes.
pub fn unlock_bytes() -> Vec<u8> {
    let now = Timestamp::now();
    let payload = CommandPayload {
        format: command::COMMAND_PAYLOAD_FORMAT,
        site: SITE.into(),
        doors: vec![DOOR.into()],
        id: uuid::Uuid::new_v4(),
        issued_at: now,
        expires_at: now + jiff::SignedDuration::from_mins(5),
        operator: "budi".into(),
        command: Action::UnlockOnce {
            reason: "vendor visit".into(),
        },
    };
    serde_json::to_vec(&payload).expect("command json")
}

/// What a door trusting `keys` with `threshold` checks.
pub fn door_policy(keys: &[&ApproverKey], threshold: usize) -> TrustPolicy {
    TrustPolicy {
        keys: keys
            .iter()
            .map(|k| TrustedKey {
                id: k.key_id.clone(),
                key: pintu::core::list::decode_public_key(&k.public_key).expect("public key"),
            })
            .collect(),
        threshold,
        site: Some(SITE.into()),
        door: Some(DOOR.into()),
        max_bytes: 1 << 20,
    }
}

/// The actions of the audit trail, in order.
pub async fn audit_actions(t: &TestDb) -> Vec<String> {
    pintu_office::audit::list(&t.db, 0, 10_000)
        .await
        .expect("audit rows")
        .into_iter()
        .map(|r| r.action)
        .collect()
}

/// The door's config: it trusts `keys` with threshold 2, takes lists from the broker (when
/// given) and its inbox.
pub fn door_config(
    site: &Site,
    keys: &[&ApproverKey],
    broker: Option<&Broker>,
) -> std::path::PathBuf {
    let trusted: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.public_key.as_str()))
        .collect();
    let mqtt = broker.map_or(String::new(), |b| Site::mqtt_section(b.port()));
    let path = site.path("pintu.toml");
    std::fs::write(&path, site.config_text_trusting(&trusted, 2, &mqtt))
        .expect("write the door config");
    path
}

pub fn office_broker(broker: &Broker) -> BrokerSettings {
    BrokerSettings {
        host: broker.host().into(),
        port: broker.port(),
        client_id: format!("pintu-office-test-{}", uuid::Uuid::new_v4().simple()),
        topic_prefix: "pintu".into(),
        credentials: None,
        tls: None,
        keep_alive: Duration::from_secs(30),
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(1),
        insecure: true,
    }
}

pub fn kind_and_reason(e: &Event) -> (String, String) {
    let v = serde_json::to_value(e).expect("event json");
    (
        v["kind"].as_str().unwrap_or_default().to_string(),
        v["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// Waits until the door recorded an event of `kind` (and `reason`, when given).
pub fn wait_event(door: &Pintud, kind: &str, reason: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if door
            .events()
            .iter()
            .map(kind_and_reason)
            .any(|(k, r)| k == kind && reason.is_none_or(|want| r == want))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} {reason:?} event; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
