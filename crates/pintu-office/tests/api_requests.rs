//! Requests through the SOP over HTTP: each step only by its role, segregation of duties, the
//! SLA clock, who sees what, every step in the audit trail; an approval or rejection is the
//! approver's signature (their passphrase unlocks their key), verified in the request view and by
//! `pintu-office requests verify`, which catches a decision edited with plain SQL.

use pintu_office::auth::Role;
use pintu_office::db_test;
use serde_json::{json, Value};

use crate::support::{Client, Office};

/// The passphrase of kabid's signing key.
pub(crate) const KABID_PASS: &str = "pohon mangga di halaman";

/// The people of the full chain (kabid, the approver, with a signing key).
pub(crate) struct People {
    pub(crate) pemohon: Client,
    pub(crate) kadis: Client,
    pub(crate) koordinator: Client,
    pub(crate) kabid: Client,
    pub(crate) helpdesk: Client,
    pub(crate) teknis: Client,
}

pub(crate) async fn people(office: &Office) -> People {
    office.account("pemohon", &[Role::Requester]).await;
    office.account("kadis", &[Role::Head]).await;
    office.account("koordinator", &[Role::Coordinator]).await;
    office.account("kabid", &[Role::Approver]).await;
    office.account("helpdesk", &[Role::Helpdesk]).await;
    office.account("teknis", &[Role::Technical]).await;
    let kabid = office.login("kabid").await;
    make_key(&kabid, KABID_PASS).await;
    People {
        pemohon: office.login("pemohon").await,
        kadis: office.login("kadis").await,
        koordinator: office.login("koordinator").await,
        kabid,
        helpdesk: office.login("helpdesk").await,
        teknis: office.login("teknis").await,
    }
}

/// Makes `client`'s signing key in the service; returns its key id.
async fn make_key(client: &Client, passphrase: &str) -> String {
    let (status, key) = client
        .post("/api/v1/signing/keys", json!({ "passphrase": passphrase }))
        .await;
    assert_eq!(status, 200, "signing key: {key}");
    key["key_id"].as_str().unwrap().to_string()
}

pub(crate) fn staff_access() -> Value {
    json!({
        "kind": "staff_access",
        "unit": "Bidang Aplikasi",
        "subject_name": "Budi Santoso",
        "subject_nip": "198501012010011001",
        "reason": "Pemeliharaan server aplikasi",
        "doors": ["server-room-1"],
        "window_from": "2026-12-08T00:00:00Z",
        "window_until": "2027-06-30T00:00:00Z"
    })
}

pub(crate) async fn step(client: &Client, id: &str, action: Value) -> (u16, Value) {
    client
        .post(&format!("/api/v1/requests/{id}/steps"), action)
        .await
}

db_test!(async fn a_request_goes_through_the_whole_chain_each_step_by_its_role(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    let (status, filed) = p.pemohon.post("/api/v1/requests", staff_access()).await;
    assert_eq!(status, 200, "{filed}");
    let id = filed["id"].as_str().unwrap().to_string();
    assert!(filed["reference"].as_str().unwrap().starts_with("REQ-"));
    assert_eq!(filed["stage"], "submitted");
    assert_eq!(filed["awaiting"], json!({"step": "dispose", "role": "head"}));
    assert!(filed["due_at_ms"].as_i64().unwrap() > filed["created_at_ms"].as_i64().unwrap());

    // (who, action, expected stage): and before each, every other person is refused.
    let everyone = [&p.pemohon, &p.kadis, &p.koordinator, &p.kabid, &p.helpdesk, &p.teknis];
    let chain: [(usize, Value, &str); 5] = [
        (1, json!({"action": "dispose", "note": "Teruskan ke koordinator"}), "disposed"),
        (2, json!({"action": "verify", "note": "Belum ada di daftar akses"}), "verified"),
        (3, json!({"action": "approve", "passphrase": KABID_PASS}), "approved"),
        (4, json!({"action": "fulfil", "note": "Kartu 0042"}), "fulfilled"),
        (4, json!({"action": "inform"}), "informed"),
    ];
    for (who, action, stage) in chain {
        for (i, other) in everyone.iter().enumerate() {
            if i == who {
                continue;
            }
            let (status, body) = step(other, &id, action.clone()).await;
            // The technical team does not even see requests it did not file.
            let refused = if i == 5 { 404 } else { 403 };
            assert_eq!(status, refused, "{action} by person {i}: {body}");
        }
        let (status, body) = step(everyone[who], &id, action.clone()).await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["stage"], stage);
    }
    let (status, done) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(done["history"].as_array().unwrap().len(), 5);
    assert_eq!(done["history"][2]["actor_name"], "kabid");
    assert_eq!(done["due_at_ms"], Value::Null, "closed: no clock");
    assert_eq!(done["allowed_actions"], json!([]));
    let (status, body) = step(&p.helpdesk, &id, json!({"action": "inform"})).await;
    assert_eq!(status, 409, "closed requests accept nothing: {body}");

    // Every step is in the audit trail, by the person who took it.
    office.account("auditor", &[Role::Auditor]).await;
    let auditor = office.login("auditor").await;
    let (_, trail) = auditor.get("/api/v1/audit?limit=1000").await;
    let steps: Vec<(String, String)> = trail["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"].as_str().unwrap().starts_with("request."))
        .map(|r| (r["action"].as_str().unwrap().into(), r["actor_name"].as_str().unwrap().into()))
        .collect();
    let want = [
        ("request.submit", "pemohon"),
        ("request.dispose", "kadis"),
        ("request.verify", "koordinator"),
        ("request.approve", "kabid"),
        ("request.fulfil", "helpdesk"),
        ("request.inform", "helpdesk"),
    ];
    assert_eq!(
        steps,
        want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>()
    );
});

db_test!(async fn a_rejection_needs_a_reason_and_the_requester_may_not_decide(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    // Someone who is both requester and approver files a request: they may not approve it.
    office.account("ganda", &[Role::Requester, Role::Approver]).await;
    let ganda = office.login("ganda").await;
    let (_, filed) = ganda.post("/api/v1/requests", staff_access()).await;
    let id = filed["id"].as_str().unwrap();
    assert_eq!(step(&p.kadis, id, json!({"action": "dispose"})).await.0, 200);
    assert_eq!(step(&p.koordinator, id, json!({"action": "verify"})).await.0, 200);
    let (status, body) = step(&ganda, id, json!({"action": "approve"})).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "segregation_requester");
    let (status, body) = step(&p.kabid, id, json!({"action": "reject", "reason": "  "})).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid");
    let reject = json!({"action": "reject", "reason": "Tidak ada surat tugas", "passphrase": KABID_PASS});
    let (status, body) = step(&p.kabid, id, reject).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "rejected");
    assert_eq!(body["awaiting"], json!({"step": "inform", "role": "helpdesk"}));
});

db_test!(async fn requesters_see_only_their_own_requests(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    office.account("lain", &[Role::Requester]).await;
    let lain = office.login("lain").await;
    let (_, mine) = p.pemohon.post("/api/v1/requests", staff_access()).await;
    let (_, theirs) = lain.post("/api/v1/requests", staff_access()).await;
    let (_, page) = p.pemohon.get("/api/v1/requests").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["requests"][0]["id"], mine["id"]);
    let other = theirs["id"].as_str().unwrap();
    assert_eq!(p.pemohon.get(&format!("/api/v1/requests/{other}")).await.0, 404);
    let (_, all) = p.koordinator.get("/api/v1/requests").await;
    assert_eq!(all["total"], 2);
    let (status, _) = p.teknis.post("/api/v1/requests", staff_access()).await;
    assert_eq!(status, 403, "the technical team files no requests");
});

db_test!(async fn overdue_requests_are_visible_and_queues_show_what_is_mine(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    let (_, late) = p.pemohon.post("/api/v1/requests", staff_access()).await;
    let (_, fresh) = p.pemohon.post("/api/v1/requests", staff_access()).await;
    // Two days ago: past the one-day SLA of the dispose step.
    sqlx::query("UPDATE requests SET due_at_ms = due_at_ms - 172800000 WHERE id = $1")
        .bind(late["id"].as_str().unwrap())
        .execute(office.t.db.pool())
        .await
        .unwrap();
    let (_, overdue) = p.kadis.get("/api/v1/requests?overdue=true").await;
    assert_eq!(overdue["total"], 1);
    assert_eq!(overdue["requests"][0]["id"], late["id"]);
    assert_eq!(overdue["requests"][0]["overdue"], true);
    let (_, kadis_queue) = p.kadis.get("/api/v1/requests?mine_to_act=true").await;
    assert_eq!(kadis_queue["total"], 2);
    let (_, kabid_queue) = p.kabid.get("/api/v1/requests?mine_to_act=true").await;
    assert_eq!(kabid_queue["total"], 0);
    let (_, search) = p.kadis.get(&format!("/api/v1/requests?q={}", fresh["reference"].as_str().unwrap())).await;
    assert_eq!(search["total"], 1);
});

db_test!(async fn bad_requests_are_refused_with_the_field(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    let cases = [
        ("unit", json!("")),
        ("subject_name", json!("Budi\u{1b}[2J")),
        ("subject_nip", json!("12345")),
        ("doors", json!(["server room!"])),
        ("window_until", json!("2026-01-01T00:00:00Z")),
    ];
    for (field, value) in cases {
        let mut body = staff_access();
        body[field] = value;
        let (status, answer) = p.pemohon.post("/api/v1/requests", body).await;
        assert_eq!(status, 422, "{field}: {answer}");
        assert!(answer["error"]["field"].as_str().unwrap().starts_with(field), "{answer}");
    }
    let mut body = staff_access();
    body["extra"] = json!(1);
    assert_eq!(p.pemohon.post("/api/v1/requests", body).await.0, 422, "unknown fields refused");
    let (_, page) = p.pemohon.get("/api/v1/requests").await;
    assert_eq!(page["total"], 0, "nothing was stored");
});

/// Files a request as pemohon and takes it through dispose and verify; returns its id.
async fn verified_request(p: &People) -> String {
    let (status, filed) = p.pemohon.post("/api/v1/requests", staff_access()).await;
    assert_eq!(status, 200, "{filed}");
    let id = filed["id"].as_str().unwrap().to_string();
    assert_eq!(
        step(
            &p.kadis,
            &id,
            json!({"action": "dispose", "note": "Lanjut"})
        )
        .await
        .0,
        200
    );
    let verify = json!({"action": "verify", "note": "Belum ada di daftar"});
    assert_eq!(step(&p.koordinator, &id, verify).await.0, 200);
    id
}

/// The stored statement and signature of a request's step `n`.
async fn stored_signature(office: &Office, id: &str, n: i64) -> Option<(String, String, String)> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT statement, signature, key_id FROM request_signatures \
         WHERE request_id = $1 AND n = $2",
    )
    .bind(id)
    .bind(n)
    .fetch_optional(office.t.db.pool())
    .await
    .unwrap()
}

db_test!(async fn an_approval_is_signed_with_the_approvers_key_and_verifies(t) {
    use base64::Engine as _;
    let office = Office::start(t).await;
    let p = people(&office).await;
    let id = verified_request(&p).await;
    let approve = json!({"action": "approve", "note": "Sesuai SOP", "passphrase": KABID_PASS});
    let (status, body) = step(&p.kabid, &id, approve).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "approved");

    // The request view shows the decision's signature, verified now; other steps carry none.
    let (_, kabid_key) = p.kabid.get("/api/v1/signing/keys").await;
    let key = &kabid_key.as_array().unwrap()[0];
    let (status, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(status, 200);
    let signature = &view["history"][2]["signature"];
    assert_eq!(signature["key_id"], key["key_id"], "{view}");
    assert_eq!(signature["approver_id"], key["account_id"]);
    assert_eq!(signature["how"], "service");
    assert_eq!(signature["verified"], true, "{signature}");
    assert!(view["history"][0].get("signature").is_none(), "dispose is not signed");

    // Checked independently of the service: the statement says what was decided, and the
    // signature verifies over its bytes with the registered public key.
    let (statement, sig, key_id) = stored_signature(&office, &id, 3).await.expect("stored");
    assert_eq!(key_id, key["key_id"].as_str().unwrap());
    let reference = view["reference"].as_str().unwrap();
    for line in [
        "pintu-request-decision-v1".to_string(),
        "site \"Diskominfo Test\"".into(),
        format!("reference \"{reference}\""),
        "subject_nip \"198501012010011001\"".into(),
        "doors [\"server-room-1\"]".into(),
        "decision \"approve\"".into(),
        "text \"Sesuai SOP\"".into(),
        format!("key_id \"{key_id}\""),
    ] {
        assert!(statement.lines().any(|l| l == line), "{line} in\n{statement}");
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let public: [u8; 32] = b64
        .decode(key["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let sig: [u8; 64] = b64.decode(&sig).unwrap().try_into().unwrap();
    public
        .verify_strict(statement.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
        .expect("the signature verifies over the statement");

    // The audit row names the key and the digests; the passphrase is nowhere in the trail.
    let rows = pintu_office::audit::list(&office.t.db, 0, 1000).await.unwrap();
    let approve_row = rows.iter().find(|r| r.action == "request.approve").unwrap();
    let after: Value = serde_json::from_str(approve_row.after_json.as_deref().unwrap()).unwrap();
    assert_eq!(after["signature"]["key"], key["key_id"]);
    assert_eq!(after["signature"]["statement_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(after["signature"]["signature_sha256"].as_str().unwrap().len(), 64);
    for row in &rows {
        let text = format!("{:?}{:?}", row.before_json, row.after_json);
        assert!(!text.contains(KABID_PASS), "passphrase in audit row {}", row.action);
    }
    let verdict = pintu_office::requests::verify_all(&office.t.db, &office.state.settings.workflow)
        .await
        .unwrap();
    assert_eq!((verdict.decisions, verdict.verified), (1, 1), "{verdict:?}");
    assert!(verdict.failures.is_empty());
});

db_test!(async fn a_wrong_or_anothers_passphrase_is_refused_changes_nothing_and_is_throttled(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    office.account("sari", &[Role::Approver]).await;
    let sari = office.login("sari").await;
    let sari_pass = "kopi tubruk tanpa gula";
    make_key(&sari, sari_pass).await;
    let id = verified_request(&p).await;
    // Kabid with Sari's passphrase, then with made-up ones: refused, the request unchanged.
    let tries = [sari_pass, "bukan kata sandi saya", "salah lagi", "masih salah", "terakhir"];
    for (i, pass) in tries.iter().enumerate() {
        let approve = json!({"action": "approve", "passphrase": pass});
        let (status, body) = step(&p.kabid, &id, approve).await;
        assert_eq!(status, 403, "try {i}: {body}");
        assert_eq!(body["error"]["code"], "wrong_passphrase");
    }
    // The usual count (5 in 15 minutes) is used up: even the right passphrase waits now.
    let (status, body) =
        step(&p.kabid, &id, json!({"action": "approve", "passphrase": KABID_PASS})).await;
    assert_eq!(status, 429, "{body}");
    let (_, view) = p.kabid.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["stage"], "verified");
    assert_eq!(view["history"].as_array().unwrap().len(), 2, "no step was taken");
    assert!(stored_signature(&office, &id, 3).await.is_none());
    let rows = pintu_office::audit::list(&office.t.db, 0, 1000).await.unwrap();
    let fails: Vec<_> = rows.iter().filter(|r| r.action == "signing.fail").collect();
    assert_eq!(fails.len(), 6, "5 wrong, 1 throttled");
    assert!(fails.iter().all(|r| r.target.starts_with("request:REQ-")));
    assert!(!rows.iter().any(|r| r.action == "request.approve"));
    // Sari's own passphrase works for Sari: she decides instead.
    let reject = json!({"action": "reject", "reason": "Surat tugas kurang", "passphrase": sari_pass});
    let (status, body) = step(&sari, &id, reject).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["history"][2]["signature"]["verified"], true);
});

db_test!(async fn a_decision_needs_a_passphrase_and_a_key_and_a_rejection_is_signed_too(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    office.account("baru", &[Role::Approver]).await;
    let baru = office.login("baru").await;
    let id = verified_request(&p).await;
    // No passphrase: a decision is a signature.
    let (status, body) = step(&p.kabid, &id, json!({"action": "approve"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "passphrase");
    // Unknown fields and a passphrase that is no string are refused before anything is unlocked.
    for bad in [
        json!({"action": "approve", "passphrase": KABID_PASS, "extra": 1}),
        json!({"action": "approve", "passphrase": 42}),
    ] {
        let (status, body) = step(&p.kabid, &id, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    // A passphrase on a step that is no decision is refused, not ignored.
    let withdraw = json!({"action": "withdraw", "passphrase": "x"});
    let (status, body) = step(&p.pemohon, &id, withdraw).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "passphrase");
    // No key: told to create one, and where.
    let (status, body) =
        step(&baru, &id, json!({"action": "approve", "passphrase": "apa saja boleh"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "no_key");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("create your signing key first"), "{message}");
    assert!(message.contains("POST /api/v1/signing/keys"), "{message}");
    // The refusal took no step and cost no passphrase attempt.
    let (_, view) = baru.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["stage"], "verified");
    // With a key, baru rejects: the rejection is signed like an approval.
    let baru_pass = "sawah hijau di desa";
    make_key(&baru, baru_pass).await;
    let reject = json!({"action": "reject", "reason": "Tidak ada surat tugas", "passphrase": baru_pass});
    let (status, body) = step(&baru, &id, reject).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "rejected");
    let (statement, _, _) = stored_signature(&office, &id, 3).await.expect("signed");
    assert!(statement.contains("\ndecision \"reject\"\ntext \"Tidak ada surat tugas\"\n"));
    // The signature stays with the request through the steps after it.
    assert_eq!(step(&p.helpdesk, &id, json!({"action": "inform"})).await.0, 200);
    let (_, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["stage"], "informed");
    assert_eq!(view["history"][2]["signature"]["verified"], true, "{view}");
});

/// Runs `pintu-office requests verify` against the office's database.
fn verify_command(dir: &std::path::Path, url: &str) -> (bool, String) {
    let config = dir.join("office.toml");
    if !config.exists() {
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{url}\"\n[security]\nsecret_key_file = \"secret.key\"\n\
                 [site]\nname = \"Diskominfo Test\"\n"
            ),
        )
        .unwrap();
    }
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pintu-office"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .expect("run pintu-office")
    };
    if !dir.join("secret.key").exists() {
        assert!(run(&["init"]).status.success());
    }
    let out = run(&["requests", "verify"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

db_test!(async fn a_decision_edited_with_plain_sql_is_caught_by_requests_verify(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    let id = verified_request(&p).await;
    let approve = json!({"action": "approve", "note": "Sesuai SOP", "passphrase": KABID_PASS});
    assert_eq!(step(&p.kabid, &id, approve).await.0, 200);
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = verify_command(dir.path(), &office.t.url);
    assert!(ok, "{text}");
    assert!(text.contains("1 signed decisions verified"), "{text}");

    let pool = office.t.db.pool();
    // Each edit, made with plain SQL, then undone: the command and the view catch it.
    let edits: [(&str, &str, &str); 5] = [
        (
            "the approver's note",
            "UPDATE request_steps SET action_json = '{\"action\":\"approve\",\"note\":\"Tanpa syarat\"}' \
             WHERE request_id = $1 AND n = 3",
            "UPDATE request_steps SET action_json = '{\"action\":\"approve\",\"note\":\"Sesuai SOP\"}' \
             WHERE request_id = $1 AND n = 3",
        ),
        (
            "the doors asked for",
            "UPDATE requests SET doors_json = '[\"server-room-1\",\"data-center\"]' WHERE id = $1",
            "UPDATE requests SET doors_json = '[\"server-room-1\"]' WHERE id = $1",
        ),
        (
            "an earlier step's note",
            "UPDATE request_steps SET action_json = '{\"action\":\"verify\",\"note\":\"OK\"}' \
             WHERE request_id = $1 AND n = 2",
            "UPDATE request_steps SET action_json = '{\"action\":\"verify\",\"note\":\"Belum ada di daftar\"}' \
             WHERE request_id = $1 AND n = 2",
        ),
        (
            "the stored statement",
            "UPDATE request_signatures SET statement = REPLACE(statement, 'Sesuai SOP', 'Tanpa syarat') \
             WHERE request_id = $1",
            "UPDATE request_signatures SET statement = REPLACE(statement, 'Tanpa syarat', 'Sesuai SOP') \
             WHERE request_id = $1",
        ),
        (
            "the decision itself",
            "UPDATE request_steps SET action_json = '{\"action\":\"reject\",\"reason\":\"Sesuai SOP\"}', \
             action = 'reject', to_stage = 'rejected' WHERE request_id = $1 AND n = 3",
            "UPDATE request_steps SET action_json = '{\"action\":\"approve\",\"note\":\"Sesuai SOP\"}', \
             action = 'approve', to_stage = 'approved' WHERE request_id = $1 AND n = 3",
        ),
    ];
    for (what, edit, undo) in edits {
        sqlx::query(edit).bind(&id).execute(pool).await.unwrap();
        let (ok, text) = verify_command(dir.path(), &office.t.url);
        assert!(!ok, "{what}: {text}");
        assert!(text.contains("FAILED REQ-") && text.contains("step 3"), "{what}: {text}");
        let (_, view) = p.pemohon.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(view["history"][2]["signature"]["verified"], false, "{what}: {view}");
        assert!(view["history"][2]["signature"]["problem"].is_string(), "{what}");
        sqlx::query(undo).bind(&id).execute(pool).await.unwrap();
        let (ok, text) = verify_command(dir.path(), &office.t.url);
        assert!(ok, "{what} undone: {text}");
    }
    // A deleted signature leaves an unsigned decision.
    sqlx::query("DELETE FROM request_signatures WHERE request_id = $1")
        .bind(&id)
        .execute(pool)
        .await
        .unwrap();
    let (ok, text) = verify_command(dir.path(), &office.t.url);
    assert!(!ok && text.contains("the decision has no signature"), "{text}");
});

db_test!(async fn a_request_changed_between_the_signature_and_the_step_is_not_decided(t) {
    use pintu_core::workflow::Action;
    use pintu_office::requests::{self, RequestError};
    let office = Office::start(t).await;
    let p = people(&office).await;
    let id = verified_request(&p).await;
    let kabid: String = sqlx::query_scalar("SELECT id FROM accounts WHERE username = 'kabid'")
        .fetch_one(office.t.db.pool())
        .await
        .unwrap();
    let actor = pintu_office::auth::Actor {
        session: pintu_office::auth::session::Session {
            token_hash: "test".into(),
            account_id: kabid,
            username: "kabid".into(),
            display_name: "Test kabid".into(),
            roles: [Role::Approver].into_iter().collect(),
            csrf_token: String::new(),
            expires_at_ms: i64::MAX,
            second_factor: true,
            must_change_password: false,
        },
    };
    let state = &office.state;
    let signer = pintu_office::signing::api::signer(state);
    let approve = Action::Approve { note: "Sesuai SOP".into() };
    let sign = || {
        requests::sign_decision(
            &state.db,
            &state.settings.workflow,
            &signer,
            &state.settings.site.name,
            &actor,
            &id,
            &approve,
            KABID_PASS,
        )
    };
    // Signed, then the request's doors change before the step is stored: the signature is not
    // over this request any more, so nothing is decided.
    let signed = sign().await.unwrap();
    sqlx::query("UPDATE requests SET doors_json = '[\"data-center\"]' WHERE id = $1")
        .bind(&id)
        .execute(office.t.db.pool())
        .await
        .unwrap();
    let got = requests::act(
        &state.db,
        &state.key,
        &state.settings.workflow,
        &actor,
        &id,
        requests::Step { signed: Some(signed), ..requests::Step::plain(approve.clone()) },
    )
    .await;
    assert!(matches!(got, Err(RequestError::Changed)), "{got:?}");
    let (_, view) = p.kabid.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(view["stage"], "verified");
    assert!(stored_signature(&office, &id, 3).await.is_none());
    // Signed again over the request as it is now, the approval goes through.
    let signed = sign().await.unwrap();
    let view = requests::act(
        &state.db,
        &state.key,
        &state.settings.workflow,
        &actor,
        &id,
        requests::Step { signed: Some(signed), ..requests::Step::plain(approve.clone()) },
    )
    .await
    .unwrap();
    assert_eq!(view.history[2].signature.as_ref().map(|s| s.verified), Some(true));
    assert!(view.history[2].signature.as_ref().unwrap().problem.is_none());
});

db_test!(async fn an_approver_with_an_offline_key_decides_with_a_file_signed_by_pintuctl(t) {
    let office = Office::start(t).await;
    let p = people(&office).await;
    office.account("luring", &[Role::Approver]).await;
    let luring = office.login("luring").await;
    // Luring keeps a key file made with `pintuctl keygen` and registers its public half.
    let dir = tempfile::tempdir().unwrap();
    let (key_file, _pub_file, public) =
        pintu::office::keys::keygen(dir.path(), "luring-usb").unwrap();
    let (status, key) = luring
        .post("/api/v1/signing/keys/offline", json!({ "public_key": public.public_key }))
        .await;
    assert_eq!(status, 200, "{key}");
    let id = verified_request(&p).await;

    // No passphrase opens an offline key: the refusal says what to do instead.
    let (status, body) =
        step(&luring, &id, json!({"action": "approve", "passphrase": "apa saja boleh"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "key_held_offline");
    assert!(body["error"]["message"].as_str().unwrap().contains("decision-file"), "{body}");

    // The statement to sign, as an offline-signing file; pintuctl sign signs it.
    let approve = json!({"action": "approve", "note": "Disetujui luring"});
    let path = format!("/api/v1/requests/{id}/decision-file");
    let (status, file) = luring.post(&path, approve.clone()).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["kind"], "decision");
    let (status, _) = p.kadis.post(&path, approve.clone()).await;
    assert_eq!(status, 403, "only who may decide gets the statement");
    let file_path = dir.path().join("decision.json");
    std::fs::write(&file_path, file.to_string()).unwrap();
    let out = pintu_testkit::pintuctl(&[
        "sign",
        "--key",
        key_file.to_str().unwrap(),
        file_path.to_str().unwrap(),
    ]);
    let stdout = pintu_testkit::text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", pintu_testkit::text(&out.stderr));
    assert!(stdout.contains("decision \"approve\" on request \"REQ-"), "{stdout}");
    let signature: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("decision.json.sig")).unwrap())
            .unwrap();

    // A signature file for another note (other bytes) is refused, and so is a forged signature.
    let mut other = approve.clone();
    other["note"] = json!("Tanpa syarat");
    other["signature_file"] = signature.clone();
    let (status, body) = step(&luring, &id, other).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "other_bytes");
    let mut forged = approve.clone();
    let mut bad = signature.clone();
    let sig = bad["signature"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    bad["signature"] = json!(format!("{flipped}{}", &sig[1..]));
    forged["signature_file"] = bad;
    let (status, body) = step(&luring, &id, forged).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "bad_signature");
    // Another approver cannot take the step with luring's file.
    let mut theirs = approve.clone();
    theirs["signature_file"] = signature.clone();
    let (status, body) = step(&p.kabid, &id, theirs).await;
    assert_eq!(status, 403, "{body}");

    // The right file takes the step; the signature verifies like one made in the service.
    let mut signed = approve.clone();
    signed["signature_file"] = signature;
    let (status, body) = step(&luring, &id, signed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "approved");
    let shown = &body["history"][2]["signature"];
    assert_eq!(shown["how"], "offline");
    assert_eq!(shown["key_id"], key["key_id"]);
    assert_eq!(shown["verified"], true, "{shown}");
    let verdict = pintu_office::requests::verify_all(&office.t.db, &office.state.settings.workflow)
        .await
        .unwrap();
    assert_eq!((verdict.decisions, verdict.verified), (1, 1), "{verdict:?}");
});
