//! The fulfil step over HTTP: it carries the request out in its own transaction (a card
//! enrolled, cards revoked, a badge reserved), all or nothing, and the request shows what
//! changed and whether a published list carries it. SQLite and PostgreSQL.

use pintu_office::auth::Role;
use pintu_office::db_test;
use serde_json::{json, Value};

use crate::api_requests::{people, staff_access, step, People, KABID_PASS};
use crate::support::{Client, Office};

/// The site of the fulfilment tests: two doors, Alice (staff, every door, one card), Budi
/// (staff, host of visits), Citra (staff, the lobby only), one pool badge.
const FULFIL_REGISTER: &str = r#"site = "kominfo"
time_zone = "Asia/Jakarta"
doors = ["server-room-1", "lobby"]
card_key_file = "card.key"

[list]
version = 2

[[holder]]
id = "alice"
name = "Alice"
role = "staff"
cards = ["04A1B2C3"]
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-1"
approver = "kabid"

[[holder]]
id = "budi"
name = "Budi"
role = "staff"
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-2"
approver = "kabid"

[[holder]]
id = "citra"
name = "Citra"
role = "staff"
doors = ["lobby"]
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-3"
approver = "kabid"

[[badge]]
id = "VB-01"
card = "0A0B0C0D"
"#;

/// An office whose config names a fresh site card key, with [`FULFIL_REGISTER`] imported.
async fn fulfil_office(t: pintu_office::testing::TestDb) -> (Office, People, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let card_key = dir.path().join("card.key");
    pintu::office::keys::card_keygen(&card_key).unwrap();
    let mut settings = crate::support::settings(&t.url);
    settings.site.card_key_file = Some(card_key);
    let office = Office::start_with(t, settings).await;
    let p = people(&office).await;
    office.account("admin", &[Role::Administrator]).await;
    let admin = office.login("admin").await;
    let (status, body) = admin
        .post(
            "/api/v1/register/import",
            json!({ "toml": FULFIL_REGISTER }),
        )
        .await;
    assert_eq!(status, 200, "import: {body}");
    (office, p, dir)
}

/// Files `request` and takes it to `approved`; returns its id.
async fn approved(p: &People, request: Value) -> String {
    let (status, filed) = p.pemohon.post("/api/v1/requests", request).await;
    assert_eq!(status, 200, "{filed}");
    let id = filed["id"].as_str().unwrap().to_string();
    for (who, action) in [
        (&p.kadis, json!({"action": "dispose"})),
        (&p.koordinator, json!({"action": "verify"})),
        (
            &p.kabid,
            json!({"action": "approve", "passphrase": KABID_PASS}),
        ),
    ] {
        let (status, body) = step(who, &id, action).await;
        assert_eq!(status, 200, "{body}");
    }
    id
}

fn fulfil(details: Value) -> Value {
    json!({"action": "fulfil", "note": "Di meja layanan", "fulfilment": details})
}

/// The cards in service of holder `key`, as the helpdesk sees them.
async fn holder_cards(helpdesk: &Client, key: &str) -> Vec<Value> {
    let (status, page) = helpdesk
        .get(&format!("/api/v1/cards?kind=holder&q={key}"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["holder"] == key)
        .cloned()
        .collect()
}

/// The audit rows' actions, in order.
async fn audit_actions(office: &Office) -> Vec<String> {
    pintu_office::audit::list(&office.t.db, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect()
}

db_test!(async fn a_staff_access_fulfil_enrols_the_card_and_records_the_step_in_one_go(t) {
    let (office, p, _dir) = fulfil_office(t).await;
    let id = approved(&p, staff_access()).await;
    let details = json!({"uid": "04DEADBEEF", "create_holder": true});

    // Only the helpdesk fulfils, details or not; a refused step changes nothing.
    for other in [&p.pemohon, &p.kabid, &p.koordinator] {
        let (status, body) = step(other, &id, fulfil(details.clone())).await;
        assert_eq!(status, 403, "{body}");
    }
    assert_eq!(p.helpdesk.get("/api/v1/holders/198501012010011001").await.0, 404);

    let (status, done) = step(&p.helpdesk, &id, fulfil(details)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["stage"], "fulfilled");
    let changes = done["fulfilment"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{done}");
    assert_eq!(changes[0]["change"], "holder.create");
    assert_eq!(changes[0]["holder"], "198501012010011001");
    assert_eq!(changes[1]["change"], "card.enrol");
    let label = changes[1]["card"].as_str().unwrap().to_string();
    assert!(label.starts_with("c:") && label.len() == 10, "{label}");
    assert_eq!(
        done["fulfilment"]["list"],
        json!({"after_version": 2, "published_version": 2, "published": false,
               "published_in": null, "prepared_version": null}),
        "awaiting list publication"
    );

    // The holder is the request's subject with its doors and window; the card is theirs.
    let (status, holder) = p.helpdesk.get("/api/v1/holders/198501012010011001").await;
    assert_eq!(status, 200, "{holder}");
    assert_eq!(holder["name"], "Budi Santoso");
    assert_eq!(holder["nip"], "198501012010011001");
    assert_eq!(holder["doors"], json!(["server-room-1"]));
    assert_eq!(holder["kind"], "staff");
    assert_eq!(holder["approver"], "kabid");
    assert_eq!(holder["request_ref"], done["reference"]);
    assert_eq!(
        holder["valid_until_ms"].as_i64(),
        done["window_until_ms"].as_i64(),
        "{holder}"
    );
    let cards = holder_cards(&p.helpdesk, "198501012010011001").await;
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0]["label"], label.as_str());
    assert_eq!(cards[0]["uid"], "04DEADBEEF");
    let linked: String = sqlx::query_scalar("SELECT request_id FROM cards WHERE card_hash = $1")
        .bind(cards[0]["card_hash"].as_str().unwrap())
        .fetch_one(office.t.db.pool())
        .await
        .unwrap();
    assert_eq!(linked, id, "the card records the request it came from");

    // The directory rows and the step are in the trail, in the step's transaction.
    let actions = audit_actions(&office).await;
    let tail: Vec<&str> = actions.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        ["holder.create", "card.enrol", "request.fulfilment", "request.fulfil"],
        "{actions:?}"
    );
    assert_eq!(
        pintu_office::audit::verify(&office.t.db, &office.t.key).await.unwrap().problem,
        None
    );

    // The next list carries the change: prepared, then signed by two approvers and published.
    let (status, payload) = p.helpdesk.post("/api/v1/lists", json!({})).await;
    assert_eq!(status, 200, "prepare: {payload}");
    assert_eq!(payload["list_version"], 3);
    let (_, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["fulfilment"]["list"]["prepared_version"], 3);
    assert_eq!(view["fulfilment"]["list"]["published"], false);
    let approvers = two_approvers(&office).await;
    publish(&approvers, payload["id"].as_str().unwrap()).await;
    let (_, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["fulfilment"]["list"]["published"], true, "{view}");
    assert_eq!(view["fulfilment"]["list"]["published_in"], 3);
    assert_eq!(view["fulfilment"]["list"]["published_version"], 3);

    // A list prepared from a snapshot read just before a fulfilment committed has a higher
    // version but not the change: it does not count. (The race is made here by moving the
    // fulfilment's recorded version down, as if that list had been prepared at that moment.)
    let id = approved(&p, staff_access()).await;
    let (status, done) =
        step(&p.helpdesk, &id, fulfil(json!({"uid": "04BEEF01", "holder": "alice"}))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["fulfilment"]["list"]["after_version"], 3);
    sqlx::query("UPDATE request_fulfilments SET list_version_before = 2 WHERE request_id = $1")
        .bind(&id)
        .execute(office.t.db.pool())
        .await
        .unwrap();
    let (_, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["fulfilment"]["list"]["published"], false, "v3 lacks the card: {view}");
    let (_, payload) = p.helpdesk.post("/api/v1/lists", json!({})).await;
    publish(&approvers, payload["id"].as_str().unwrap()).await;
    let (_, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["fulfilment"]["list"]["published_in"], 4, "{view}");
});

/// Two approvers with keys made in the service (the test site's threshold is 2).
async fn two_approvers(office: &Office) -> [(Client, &'static str); 2] {
    office.account("kabid2", &[Role::Approver]).await;
    let kabid2 = office.login("kabid2").await;
    let kabid = office.login("kabid").await;
    let pairs = [
        (kabid, "pohon mangga di halaman"),
        (kabid2, "kopi tubruk tanpa gula"),
    ];
    for (who, pass) in &pairs {
        let (status, body) = who
            .post("/api/v1/signing/keys", json!({ "passphrase": pass }))
            .await;
        assert_eq!(status, 200, "approver key: {body}");
    }
    pairs
}

/// Both approvers sign payload `id`; it is published (no broker here: for a file).
async fn publish(approvers: &[(Client, &'static str); 2], id: &str) {
    for (who, pass) in approvers {
        let (status, body) = who
            .post(
                &format!("/api/v1/payloads/{id}/signatures"),
                json!({ "passphrase": pass }),
            )
            .await;
        assert_eq!(status, 200, "sign: {body}");
    }
    let (status, body) = approvers[0]
        .0
        .post(&format!("/api/v1/payloads/{id}/publish"), json!({}))
        .await;
    assert_eq!(status, 200, "publish: {body}");
}

db_test!(async fn a_fulfil_with_a_card_held_elsewhere_is_refused_and_changes_nothing(t) {
    let (office, p, _dir) = fulfil_office(t).await;
    let id = approved(&p, staff_access()).await;
    let before = audit_actions(&office).await;
    // Alice's card: the holder would be created, then the enrolment fails: all of it is undone.
    let (status, body) = step(
        &p.helpdesk,
        &id,
        fulfil(json!({"uid": "04A1B2C3", "create_holder": true})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "fulfilment_conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("enrolling card c:"), "{message}");
    assert!(message.contains("already held by holder alice"), "{message}");
    assert!(message.contains("REQ-"), "names the request: {message}");

    let (_, view) = p.helpdesk.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["stage"], "approved", "not fulfilled");
    assert_eq!(view["history"].as_array().unwrap().len(), 3);
    assert_eq!(view["fulfilment"], Value::Null);
    assert_eq!(p.helpdesk.get("/api/v1/holders/198501012010011001").await.0, 404);
    assert_eq!(holder_cards(&p.helpdesk, "alice").await.len(), 1, "alice keeps her card");
    assert_eq!(audit_actions(&office).await, before, "no audit row either");

    // A holder whose access is narrower than the request is refused with the field.
    let (status, body) =
        step(&p.helpdesk, &id, fulfil(json!({"uid": "04CAFE01", "holder": "citra"}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "fulfilment.holder");
    assert!(body["error"]["message"].as_str().unwrap().contains("server-room-1"), "{body}");

    // An existing holder whose access covers the request gets the card.
    let (status, body) =
        step(&p.helpdesk, &id, fulfil(json!({"uid": "04CAFE01", "holder": "alice"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fulfilment"]["changes"][0]["change"], "card.enrol");
    assert_eq!(body["fulfilment"]["changes"][0]["holder"], "alice");
    assert_eq!(holder_cards(&p.helpdesk, "alice").await.len(), 2);
});

db_test!(async fn a_removal_fulfil_revokes_the_subjects_cards_under_the_request(t) {
    let (office, p, _dir) = fulfil_office(t).await;
    // Staff access creates the holder with the subject's NIP ...
    let id = approved(&p, staff_access()).await;
    let (status, body) =
        step(&p.helpdesk, &id, fulfil(json!({"uid": "04DEADBEEF", "create_holder": true}))).await;
    assert_eq!(status, 200, "{body}");
    let label = body["fulfilment"]["changes"][1]["card"].clone();
    // ... and a removal for the same subject finds them by it.
    let mut removal = staff_access();
    removal["kind"] = json!("removal");
    removal["reason"] = json!("Pindah tugas");
    let id = approved(&p, removal).await;
    let (status, done) = step(&p.helpdesk, &id, fulfil(json!({}))).await;
    assert_eq!(status, 200, "{done}");
    let reference = done["reference"].as_str().unwrap().to_string();
    assert_eq!(
        done["fulfilment"]["changes"],
        json!([{"change": "card.revoke", "holder": "198501012010011001", "card": label,
                "badge": null, "visit": null}])
    );
    assert_eq!(done["fulfilment"]["list"]["published"], false);
    assert_eq!(holder_cards(&p.helpdesk, "198501012010011001").await, Vec::<Value>::new());
    let row: (String, String, String) = sqlx::query_as(
        "SELECT request_ref, reason, request_id FROM card_revocations WHERE holder = $1",
    )
    .bind("198501012010011001")
    .fetch_one(office.t.db.pool())
    .await
    .unwrap();
    assert_eq!(row, (reference.clone(), format!("removal request {reference}"), id));
    let actions = audit_actions(&office).await;
    let tail: Vec<&str> = actions.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(tail, ["card.revoke", "request.fulfilment", "request.fulfil"]);

    // Without a NIP the holder must be named, at fulfilment or by the request itself.
    let mut alice = staff_access();
    alice["kind"] = json!("removal");
    alice["subject_name"] = json!("Alice");
    alice.as_object_mut().unwrap().remove("subject_nip");
    let id = approved(&p, alice).await;
    let (status, body) = step(&p.helpdesk, &id, fulfil(json!({}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "fulfilment.holder");
    sqlx::query(
        "UPDATE requests SET subject_holder_id = (SELECT id FROM holders WHERE holder_key = $1) \
         WHERE id = $2",
    )
    .bind("alice")
    .bind(&id)
    .execute(office.t.db.pool())
    .await
    .unwrap();
    let (status, body) = step(&p.helpdesk, &id, fulfil(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fulfilment"]["changes"][0]["holder"], "alice");
    assert!(holder_cards(&p.helpdesk, "alice").await.is_empty());

    // A removal of a holder with no card left is refused, naming what and where.
    let mut again = staff_access();
    again["kind"] = json!("removal");
    let id = approved(&p, again).await;
    let (status, body) =
        step(&p.helpdesk, &id, fulfil(json!({"holder": "198501012010011001"}))).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("has no card to revoke"));
});

db_test!(async fn a_visit_fulfil_reserves_a_badge_for_the_window(t) {
    let (office, p, _dir) = fulfil_office(t).await;
    let mut visit = staff_access();
    visit["kind"] = json!("visit");
    visit["subject_name"] = json!("Dewi (PT Andal)");
    visit.as_object_mut().unwrap().remove("subject_nip");
    let id = approved(&p, visit).await;
    let (status, body) = step(&p.helpdesk, &id, fulfil(json!({"badge": "VB-01"}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "fulfilment.host");
    let (status, done) =
        step(&p.helpdesk, &id, fulfil(json!({"badge": "VB-01", "host": "budi"}))).await;
    assert_eq!(status, 200, "{done}");
    let change = &done["fulfilment"]["changes"][0];
    assert_eq!(change["change"], "visit.reserve");
    assert_eq!(change["badge"], "VB-01");
    let (_, visits) = p.helpdesk.get("/api/v1/visits?open=true").await;
    let visits = visits["items"].as_array().unwrap();
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0]["id"], change["visit"]);
    assert_eq!(visits[0]["visitor"], "Dewi (PT Andal)");
    assert_eq!(visits[0]["host"], "budi");
    assert_eq!(visits[0]["request_ref"], done["reference"]);
    assert_eq!(visits[0]["approver"], "kabid");
    assert_eq!(visits[0]["until"], "2027-06-30T00:00:00Z");
    let linked: String = sqlx::query_scalar("SELECT request_id FROM visits WHERE badge = 'VB-01'")
        .fetch_one(office.t.db.pool())
        .await
        .unwrap();
    assert_eq!(linked, id);
    assert!(audit_actions(&office).await.ends_with(&[
        "visit.issue".to_string(),
        "request.fulfilment".to_string(),
        "request.fulfil".to_string()
    ]));
});

db_test!(async fn fulfilment_details_are_checked_field_by_field(t) {
    let (office, p, _dir) = fulfil_office(t).await;
    let id = approved(&p, staff_access()).await;
    let cases = [
        (json!({"create_holder": true}), "fulfilment.uid"),
        (json!({"uid": "not hex", "create_holder": true}), "fulfilment.uid"),
        (json!({"uid": "04DEADBEEF"}), "fulfilment.holder"),
        (json!({"uid": "04DEADBEEF", "badge": "VB-01", "holder": "alice"}), "fulfilment.badge"),
        (json!({"uid": "04DEADBEEF", "holder": "nobody"}), "fulfilment"),
        (json!({"uid": "04DEADBEEF", "holder": "alice", "colour": "red"}), ""),
    ];
    for (details, field) in cases {
        let (status, body) = step(&p.helpdesk, &id, fulfil(details.clone())).await;
        assert_eq!(status, 422, "{details}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{details}: {body}");
        }
    }
    // A misspelt field next to the action is refused, not ignored.
    let (status, body) =
        step(&p.helpdesk, &id, json!({"action": "fulfil", "fulfilments": {"uid": "04DEADBEEF"}})).await;
    assert_eq!(status, 422, "{body}");
    // Details belong to the fulfil step only.
    let filed = approved(&p, staff_access()).await;
    let (_, other) = p.pemohon.post("/api/v1/requests", staff_access()).await;
    let other = other["id"].as_str().unwrap();
    let (status, body) = step(
        &p.kadis,
        other,
        json!({"action": "dispose", "fulfilment": {"uid": "04DEADBEEF"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "fulfilment");
    let (_, view) = p.helpdesk.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["stage"], "approved", "nothing of the refused steps was recorded");
    assert_eq!(p.helpdesk.get(&format!("/api/v1/requests/{filed}")).await.1["stage"], "approved");

    // Server custody: nothing to carry out; details are refused, the note alone is the record.
    let mut custody = staff_access();
    custody["kind"] = json!("server_custody");
    let id = approved(&p, custody).await;
    let (status, body) =
        step(&p.helpdesk, &id, fulfil(json!({"uid": "04DEADBEEF", "holder": "alice"}))).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no custody model"));
    let (status, body) =
        step(&p.helpdesk, &id, json!({"action": "fulfil", "note": "Server R-12 masuk rak 3"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fulfilment"], Value::Null);
    drop(office);
});
