//! The whole procedure, end to end, over the office's HTTP API and a real door: a request is
//! filed, disposed, verified and approved; the helpdesk fulfils it with the card read at the
//! desk (the fulfil step creates the holder and enrols the card); the next list is built from
//! the database and signed by two approvers (the doors' threshold 2) with their passphrases;
//! the service publishes it through a real Mosquitto and a real `pintud` grants the card. Then
//! a removal request's fulfil step revokes the card, a new list goes out the same way, and the
//! door denies it. SQLite and PostgreSQL.
//!
//! Needs the `pintud` binary built (the workspace test run builds it).

use std::time::{Duration, Instant};

use pintu_office::auth::Role;
use pintu_office::config::Settings;
use pintu_office::db_test;
use pintu_office::signing::ApproverKey;
use pintu_testkit::broker::{Broker, BrokerOptions};
use pintu_testkit::{Pintud, Site, DOOR, SITE};
use serde_json::{json, Value};

use crate::signing_support::door_config;
use crate::support::{Client, Office};

const UID: &str = "04A1B2C3D4";
const BUDI_PASS: &str = "pohon mangga di halaman";
const SARI_PASS: &str = "kopi tubruk tanpa gula";

fn office_settings(url: &str, site: &Site, broker: &Broker) -> Settings {
    let text = format!(
        r#"
[database]
url = "{url}"
[security]
secret_key_file = "/nonexistent/secret.key"
[site]
name = "Diskominfo Test"
threshold = 2
card_key_file = "{card_key}"
[mqtt]
host = "127.0.0.1"
port = {port}
"#,
        card_key = site.path("card.key").display(),
        port = broker.port()
    );
    let mut settings =
        Settings::from_text(std::path::Path::new("office.toml"), &text).expect("settings");
    if let Some(m) = settings.mqtt.as_mut() {
        m.insecure = true;
    }
    settings
}

const REGISTER: &str = r#"
site = "site-a"
time_zone = "Asia/Jakarta"
doors = ["door-1"]
card_key_file = "card.key"
list_valid_for = "30days"

[list]
version = 0
"#;

async fn step(client: &Client, id: &str, action: Value) {
    let (status, body) = client
        .post(&format!("/api/v1/requests/{id}/steps"), action.clone())
        .await;
    assert_eq!(status, 200, "{action}: {body}");
}

async fn make_key(client: &Client, passphrase: &str) -> ApproverKey {
    let (status, body) = client
        .post("/api/v1/signing/keys", json!({ "passphrase": passphrase }))
        .await;
    assert_eq!(status, 200, "approver key: {body}");
    serde_json::from_value(body).expect("an approver key")
}

/// Builds the next list, has both approvers sign it, publishes it; returns its version.
async fn sign_and_publish(helpdesk: &Client, budi: &Client, sari: &Client) -> i64 {
    let (status, payload) = helpdesk.post("/api/v1/lists", json!({})).await;
    assert_eq!(status, 200, "prepare the list: {payload}");
    let id = payload["id"].as_str().unwrap().to_string();
    let sign = format!("/api/v1/payloads/{id}/signatures");
    let (status, body) = budi.post(&sign, json!({ "passphrase": BUDI_PASS })).await;
    assert_eq!(status, 200, "budi signs: {body}");
    let publish = format!("/api/v1/payloads/{id}/publish");
    let (status, body) = budi.post(&publish, json!({})).await;
    assert_eq!(status, 409, "1 of 2 signatures is not published: {body}");
    let (status, body) = sari.post(&sign, json!({ "passphrase": SARI_PASS })).await;
    assert_eq!(status, 200, "sari signs: {body}");
    let (status, body) = budi.post(&publish, json!({})).await;
    assert_eq!(status, 200, "publish: {body}");
    assert_eq!(body["topic"], format!("pintu/{SITE}/list"));
    payload["list_version"].as_i64().unwrap()
}

fn wait_list(door: &Pintud, version: i64) {
    door.wait_for(&format!("list v{version}"), |st| {
        st.list
            .as_ref()
            .is_some_and(|l| l.version as i64 == version)
    });
}

db_test!(async fn a_request_becomes_a_signed_list_a_real_door_grants_and_a_revocation_denies(t) {
    let site = Site::new();
    let broker = Broker::start(BrokerOptions::default());
    let settings = office_settings(&t.url, &site, &broker);
    let office = Office::start_with(t, settings).await;
    for (name, roles) in [
        ("pemohon", vec![Role::Requester]),
        ("kadis", vec![Role::Head]),
        ("koordinator", vec![Role::Coordinator]),
        ("budi", vec![Role::Approver]),
        ("sari", vec![Role::Approver]),
        ("helpdesk", vec![Role::Helpdesk]),
        ("admin", vec![Role::Administrator]),
    ] {
        office.account(name, &roles).await;
    }
    let admin = office.login("admin").await;
    let (status, body) = admin.post("/api/v1/register/import", json!({ "toml": REGISTER })).await;
    assert_eq!(status, 200, "import: {body}");
    let pemohon = office.login("pemohon").await;
    let kadis = office.login("kadis").await;
    let koordinator = office.login("koordinator").await;
    let budi = office.login("budi").await;
    let sari = office.login("sari").await;
    let helpdesk = office.login("helpdesk").await;

    // The approvers' keys are made in the service; the door trusts them, threshold 2.
    let kb = make_key(&budi, BUDI_PASS).await;
    let ks = make_key(&sari, SARI_PASS).await;
    let door = Pintud::start(&door_config(&site, &[&kb, &ks], Some(&broker)), &site.socket(), &[]);

    // The SOP: filed, disposed, verified, approved.
    let (status, filed) = pemohon
        .post("/api/v1/requests", json!({
            "kind": "staff_access", "unit": "Bidang Aplikasi", "subject_name": "Budi Santoso",
            "reason": "Pemeliharaan server", "doors": [DOOR],
            "window_until": "2099-01-01T00:00:00Z"
        }))
        .await;
    assert_eq!(status, 200, "{filed}");
    let id = filed["id"].as_str().unwrap().to_string();
    let reference = filed["reference"].as_str().unwrap().to_string();
    step(&kadis, &id, json!({"action": "dispose"})).await;
    step(&koordinator, &id, json!({"action": "verify", "note": "Tidak ada di daftar"})).await;
    // The approval is budi's signature: his passphrase unlocks his key (Argon2id) for it.
    let approving = Instant::now();
    step(&budi, &id, json!({"action": "approve", "passphrase": BUDI_PASS})).await;
    let approved_at = Instant::now();
    eprintln!("signed approve step: {:?}", approved_at - approving);

    // Fulfilment: the helpdesk fulfils with the card read at the desk; the step creates the
    // holder from the request and enrols the card in one transaction. Then the list.
    let fulfil_started = Instant::now();
    let (status, done) = helpdesk
        .post(&format!("/api/v1/requests/{id}/steps"), json!({
            "action": "fulfil", "note": "Kartu terdaftar",
            "fulfilment": {"uid": UID, "create_holder": true, "holder": "budi-santoso"}
        }))
        .await;
    assert_eq!(status, 200, "fulfil: {done}");
    eprintln!("fulfil step (holder created, card enrolled): {:?}", fulfil_started.elapsed());
    assert_eq!(done["fulfilment"]["changes"][1]["change"], "card.enrol");
    assert_eq!(done["fulfilment"]["list"]["published"], false, "awaiting the list");
    let (status, holder) = helpdesk.get("/api/v1/holders/budi-santoso").await;
    assert_eq!(status, 200, "{holder}");
    assert_eq!(holder["request_ref"], reference.as_str());
    assert_eq!(holder["doors"], json!([DOOR]));
    assert_eq!(door.tap(UID).decision, "deny", "not on any list yet");
    let version = sign_and_publish(&helpdesk, &budi, &sari).await;
    wait_list(&door, version);
    let granted = door.tap(UID);
    let took = approved_at.elapsed();
    assert_eq!(granted.decision, "grant", "{granted:?}");
    let (_, view) = pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["fulfilment"]["list"]["published"], true, "{view}");
    step(&helpdesk, &id, json!({"action": "inform"})).await;
    eprintln!("approve -> door grants: {took:?} (with enrolment and two signatures)");
    assert!(took < Duration::from_secs(30), "approve to grant took {took:?}");

    // Removal: a removal request goes through the chain; its fulfil step revokes the card,
    // the next list goes out, the door denies.
    let (status, filed) = pemohon
        .post("/api/v1/requests", json!({
            "kind": "removal", "unit": "Bidang Aplikasi", "subject_name": "Budi Santoso",
            "reason": "Pindah tugas", "doors": [DOOR]
        }))
        .await;
    assert_eq!(status, 200, "{filed}");
    let removal = filed["id"].as_str().unwrap().to_string();
    step(&kadis, &removal, json!({"action": "dispose"})).await;
    step(&koordinator, &removal, json!({"action": "verify", "note": "Ada di daftar v1"})).await;
    step(&budi, &removal, json!({"action": "approve", "passphrase": BUDI_PASS})).await;
    let (status, done) = helpdesk
        .post(&format!("/api/v1/requests/{removal}/steps"), json!({
            "action": "fulfil", "fulfilment": {"holder": "budi-santoso"}
        }))
        .await;
    assert_eq!(status, 200, "fulfil the removal: {done}");
    assert_eq!(done["fulfilment"]["changes"][0]["change"], "card.revoke");
    assert_eq!(door.tap(UID).decision, "grant", "the door still has the old list");
    let next = sign_and_publish(&helpdesk, &budi, &sari).await;
    assert_eq!(next, version + 1);
    wait_list(&door, next);
    assert_eq!(door.tap(UID).decision, "deny");
    let (_, view) = pemohon.get(&format!("/api/v1/requests/{removal}")).await;
    assert_eq!(view["fulfilment"]["list"]["published"], true, "{view}");

    // A door command goes the same way: ordered, signed by two approvers, sent to the door.
    let (status, order) = admin
        .post("/api/v1/commands", json!({
            "door": DOOR, "command": {"type": "unlock_once", "reason": "Vendor tanpa kartu"}
        }))
        .await;
    assert_eq!(status, 200, "order: {order}");
    assert_eq!(order["kind"], "command");
    let id = order["id"].as_str().unwrap();
    for (who, pass) in [(&budi, BUDI_PASS), (&sari, SARI_PASS)] {
        let (status, body) = who
            .post(&format!("/api/v1/payloads/{id}/signatures"), json!({ "passphrase": pass }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = budi.post(&format!("/api/v1/payloads/{id}/publish"), json!({})).await;
    assert_eq!(status, 200, "publish the command: {body}");
    assert_eq!(body["topic"], format!("pintu/{SITE}/{DOOR}/commands"));
    crate::signing_support::wait_event(&door, "command.accepted", None);
    let (status, body) = pemohon
        .post("/api/v1/commands", json!({"door": DOOR, "command": {"type": "lockdown", "allow_role": "staff"}}))
        .await;
    assert_eq!(status, 403, "a requester orders nothing: {body}");

    // Every step of it is in one intact audit trail.
    let verdict = pintu_office::audit::verify(&office.t.db, &office.t.key).await.unwrap();
    assert_eq!(verdict.problem, None);
    let rows = pintu_office::audit::list(&office.t.db, 0, 10_000).await.unwrap();
    for action in [
        "request.approve",
        "card.enrol",
        "card.revoke",
        "request.fulfil",
        "payload.sign",
        "payload.publish",
        "register.list_version",
    ] {
        assert!(rows.iter().any(|r| r.action == action), "no {action} in the trail");
    }
});
