//! From "approve" to the door granting the card: the office service on SQLite, a real
//! Mosquitto and a real `pintud` (simulated reader), the whole procedure over the HTTP API.
//! Each round files a new staff-access request for a new card, has it disposed and verified,
//! then times, from the approver's click:
//!
//! - the approval itself (the approver's signature: an Argon2id unlock of their key);
//! - the fulfilment (the holder created from the request and the card enrolled, in the step);
//! - the next list built from the database;
//! - two approvers' signatures (threshold 2; each unlocks an Argon2id-sealed key);
//! - the publication on the broker;
//! - until the door runs that list and a tap of the card is granted.
//!
//! Reported: p50 and p95 of the total and the median of each part, over `PINTU_BENCH_ROUNDS`
//! rounds (default 10). Goal (issue 17): ≤ 2 s from approve to grant.
//!
//! `cargo build --release --bin pintud && cargo bench -p pintu-office --bench approve_grant`
//! runs it (the door binary is the one of the same profile); without `--bench` (as
//! `cargo test --benches` runs it) it smoke tests one round. Prints `RESULT` lines.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pintu_office::api::AppState;
use pintu_office::auth::{self, session, Role};
use pintu_office::config::Settings;
use pintu_office::db::Db;
use pintu_office::secret::ServiceKey;
use pintu_testkit::broker::{Broker, BrokerOptions};
use pintu_testkit::{Pintud, Site, DOOR};
use serde_json::{json, Value};

const BUDI_PASS: &str = "pohon mangga di halaman";
const SARI_PASS: &str = "kopi tubruk tanpa gula";
const TARGET: Duration = Duration::from_secs(2);
const REGISTER: &str = r#"
site = "site-a"
time_zone = "Asia/Jakarta"
doors = ["door-1"]
card_key_file = "card.key"
list_valid_for = "30days"

[list]
version = 0
"#;

fn settings(url: &str, site: &Site, broker: &Broker) -> Settings {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[security]\nsecret_key_file = \"/nonexistent\"\n\
         [site]\nname = \"Bench\"\nthreshold = 2\ncard_key_file = \"{}\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\n",
        site.path("card.key").display(),
        broker.port()
    );
    let mut settings =
        Settings::from_text(std::path::Path::new("office.toml"), &text).expect("settings");
    if let Some(m) = settings.mqtt.as_mut() {
        m.insecure = true;
    }
    settings
}

/// A logged-in browser: its session cookie and CSRF token.
struct Client {
    base: String,
    http: reqwest::Client,
    csrf: String,
}

impl Client {
    /// A session of `account_id` opened in the database as after a password and (for roles
    /// that need one) a TOTP code: logging in is not what this bench measures.
    async fn session(base: &str, db: &Db, account_id: &str) -> Client {
        let (token, csrf) = session::open(
            db,
            account_id,
            Duration::from_secs(3600),
            "127.0.0.1",
            "bench",
            true,
        )
        .await
        .expect("session");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            format!("{}={token}", auth::cookie_name(false))
                .parse()
                .expect("cookie header"),
        );
        Client {
            base: base.into(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client"),
            csrf,
        }
    }

    /// POSTs `body` and returns the answer, which must be a success.
    async fn post(&self, path: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = answer.status();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {value}");
        value
    }
}

/// The people of the procedure, logged in.
struct People {
    pemohon: Client,
    kadis: Client,
    koordinator: Client,
    budi: Client,
    sari: Client,
    helpdesk: Client,
}

/// How long each part of one round took.
#[derive(Default, Clone, Copy)]
struct Round {
    approve: Duration,
    fulfil: Duration,
    list: Duration,
    signatures: Duration,
    publish: Duration,
    door: Duration,
    total: Duration,
}

async fn one_round(p: &People, door: &Pintud, n: u32) -> Round {
    let filed = p
        .pemohon
        .post(
            "/api/v1/requests",
            json!({
                "kind": "staff_access", "unit": "Bidang Aplikasi",
                "subject_name": format!("Pegawai {n}"), "reason": "Pemeliharaan server",
                "doors": [DOOR], "window_until": "2099-01-01T00:00:00Z"
            }),
        )
        .await;
    let id = filed["id"].as_str().expect("request id").to_string();
    let steps = format!("/api/v1/requests/{id}/steps");
    p.kadis.post(&steps, json!({"action": "dispose"})).await;
    p.koordinator
        .post(
            &steps,
            json!({"action": "verify", "note": "Tidak ada di daftar"}),
        )
        .await;
    let uid = format!("04B0{n:06X}");
    let holder = format!("pegawai-{n}");

    let started = Instant::now();
    let mut at = started;
    let mut lap = || {
        let now = Instant::now();
        let took = now - at;
        at = now;
        took
    };
    let mut r = Round::default();
    p.budi
        .post(
            &steps,
            json!({"action": "approve", "passphrase": BUDI_PASS}),
        )
        .await;
    r.approve = lap();
    p.helpdesk
        .post(
            &steps,
            json!({
                "action": "fulfil", "note": "Kartu terdaftar",
                "fulfilment": {"uid": uid, "holder": holder, "create_holder": true}
            }),
        )
        .await;
    r.fulfil = lap();
    let payload = p.helpdesk.post("/api/v1/lists", json!({})).await;
    let payload_id = payload["id"].as_str().expect("payload id").to_string();
    let version = payload["list_version"].as_u64().expect("list version");
    r.list = lap();
    let sign = format!("/api/v1/payloads/{payload_id}/signatures");
    p.budi.post(&sign, json!({ "passphrase": BUDI_PASS })).await;
    p.sari.post(&sign, json!({ "passphrase": SARI_PASS })).await;
    r.signatures = lap();
    p.budi
        .post(&format!("/api/v1/payloads/{payload_id}/publish"), json!({}))
        .await;
    r.publish = lap();
    let decision = tokio::task::block_in_place(|| {
        door.wait_for_within(&format!("list v{version}"), Duration::from_secs(30), |st| {
            st.list.as_ref().is_some_and(|l| l.version == version)
        });
        door.tap(&uid).decision
    });
    assert_eq!(
        decision, "grant",
        "round {n}: the door must grant the new card"
    );
    r.door = lap();
    r.total = started.elapsed();
    p.helpdesk.post(&steps, json!({"action": "inform"})).await;
    r
}

fn quantile(mut values: Vec<Duration>, q: f64) -> Duration {
    values.sort();
    values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

async fn run(rounds: u32) {
    let site = Site::new();
    let broker = Broker::start(BrokerOptions::default());
    let url = format!("sqlite://{}", site.path("office.db").display());
    let db = Db::connect(&url, 8).await.expect("connect");
    db.migrate().await.expect("migrate");
    let key = ServiceKey::from_bytes(&[9; 32]);
    let people = [
        ("pemohon", Role::Requester),
        ("kadis", Role::Head),
        ("koordinator", Role::Coordinator),
        ("budi", Role::Approver),
        ("sari", Role::Approver),
        ("helpdesk", Role::Helpdesk),
        ("admin", Role::Administrator),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, role) in people {
        ids.insert(name, support::account(&db, &key, name, role).await.id);
    }
    let state = AppState {
        db: db.clone(),
        key: Arc::new(key),
        settings: Arc::new(settings(&url, &site, &broker)),
        https: false,
    };
    let base = support::serve(state).await;
    let login = |name: &str| Client::session(&base, &db, &ids[name]);
    let admin = login("admin").await;
    admin
        .post("/api/v1/register/import", json!({ "toml": REGISTER }))
        .await;
    let p = People {
        pemohon: login("pemohon").await,
        kadis: login("kadis").await,
        koordinator: login("koordinator").await,
        budi: login("budi").await,
        sari: login("sari").await,
        helpdesk: login("helpdesk").await,
    };
    let mut keys = Vec::new();
    for (who, pass) in [(&p.budi, BUDI_PASS), (&p.sari, SARI_PASS)] {
        let k = who
            .post("/api/v1/signing/keys", json!({ "passphrase": pass }))
            .await;
        keys.push((
            k["key_id"].as_str().expect("key id").to_string(),
            k["public_key"].as_str().expect("public key").to_string(),
        ));
    }
    let trusted: Vec<(&str, &str)> = keys.iter().map(|(i, k)| (i.as_str(), k.as_str())).collect();
    let config = site.path("pintu.toml");
    std::fs::write(
        &config,
        site.config_text_trusting(&trusted, 2, &Site::mqtt_section(broker.port())),
    )
    .expect("door config");
    let door = Pintud::start(&config, &site.socket(), &[]);
    let mut results = Vec::new();
    for n in 0..rounds {
        results.push(one_round(&p, &door, n).await);
    }
    let median = |f: fn(&Round) -> Duration| ms(quantile(results.iter().map(f).collect(), 0.5));
    println!(
        "approve -> grant, medians: approve {}, fulfil {}, list {}, two signatures {}, publish {}, door {}",
        median(|r| r.approve),
        median(|r| r.fulfil),
        median(|r| r.list),
        median(|r| r.signatures),
        median(|r| r.publish),
        median(|r| r.door),
    );
    let totals: Vec<Duration> = results.iter().map(|r| r.total).collect();
    let p95 = quantile(totals.clone(), 0.95);
    support::result_line(
        &format!("approve -> door grants (SQLite, {rounds} rounds) p50/p95"),
        &format!("{}/{}", ms(quantile(totals, 0.5)), ms(p95)),
        "<= 2 s",
        if p95 <= TARGET { "met" } else { "MISSED" },
    );
    db.close().await;
}

fn main() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let rounds = if support::bench_mode() {
        std::env::var("PINTU_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10)
    } else {
        1
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(rounds));
}
