//! Several `pintu-office` instances on one database (behind a proxy): sessions, request state
//! and the audit chain live in the database, so any instance serves any request.

use pintu_office::auth::Role;
use pintu_office::db_test;
use serde_json::json;

use crate::support::Office;

db_test!(async fn two_instances_share_sessions_requests_and_one_audit_chain(t) {
    let office = Office::start(t).await;
    let (second, _stop) = office.second_instance().await;
    office.account("pemohon", &[Role::Requester]).await;
    office.account("admin", &[Role::Administrator, Role::Auditor]).await;
    let on_first = office.login("pemohon").await;
    let on_second = on_first.at(&second);
    let (status, me) = on_second.get("/api/v1/me").await;
    assert_eq!(status, 200, "a session opened on one instance works on the other: {me}");

    // Requests filed on both at once get distinct references and one unbroken chain.
    let body = json!({
        "kind": "visit", "unit": "Vendor", "subject_name": "Andi",
        "reason": "Ganti disk", "doors": ["server-room-1"]
    });
    let mut tasks = Vec::new();
    for n in 0..12 {
        let client = if n % 2 == 0 { on_first.at(&office.base) } else { on_first.at(&second) };
        let body = body.clone();
        tasks.push(tokio::spawn(async move { client.post("/api/v1/requests", body).await }));
    }
    let mut references = Vec::new();
    for task in tasks {
        let (status, filed) = task.await.unwrap();
        assert_eq!(status, 200, "{filed}");
        references.push(filed["reference"].as_str().unwrap().to_string());
    }
    references.sort();
    references.dedup();
    assert_eq!(references.len(), 12, "distinct references: {references:?}");
    let admin = office.login("admin").await.at(&second);
    let (_, verdict) = admin.get("/api/v1/audit/verify").await;
    assert_eq!(verdict["verdict"]["problem"], serde_json::Value::Null, "{verdict}");

    // Logging out on one instance ends the session on both.
    assert_eq!(on_second.delete("/api/v1/session").await.0, 204);
    assert_eq!(on_first.get("/api/v1/me").await.0, 401);
});
