//! Requests through the SOP over HTTP: each step only by its role, segregation of duties, the
//! SLA clock, who sees what, every step in the audit trail.

use pintu_office::auth::Role;
use pintu_office::db_test;
use serde_json::{json, Value};

use crate::support::{Client, Office};

/// The people of the full chain.
struct People {
    pemohon: Client,
    kadis: Client,
    koordinator: Client,
    kabid: Client,
    helpdesk: Client,
    teknis: Client,
}

async fn people(office: &Office) -> People {
    office.account("pemohon", &[Role::Requester]).await;
    office.account("kadis", &[Role::Head]).await;
    office.account("koordinator", &[Role::Coordinator]).await;
    office.account("kabid", &[Role::Approver]).await;
    office.account("helpdesk", &[Role::Helpdesk]).await;
    office.account("teknis", &[Role::Technical]).await;
    People {
        pemohon: office.login("pemohon").await,
        kadis: office.login("kadis").await,
        koordinator: office.login("koordinator").await,
        kabid: office.login("kabid").await,
        helpdesk: office.login("helpdesk").await,
        teknis: office.login("teknis").await,
    }
}

fn staff_access() -> Value {
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

async fn step(client: &Client, id: &str, action: Value) -> (u16, Value) {
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
        (3, json!({"action": "approve"}), "approved"),
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
    let (status, body) =
        step(&p.kabid, id, json!({"action": "reject", "reason": "Tidak ada surat tugas"})).await;
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
