//! Logging in and out, sessions, CSRF and origin checks, roles on the audit API.

use pintu_office::audit::AuditActor;
use pintu_office::auth::accounts;
use pintu_office::auth::Role;
use pintu_office::db_test;

use crate::support::{Client, Office, PASSWORD};

db_test!(async fn login_by_username_or_nip_opens_a_session(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let anonymous = Client::new(&office.base);
    assert_eq!(anonymous.get("/api/v1/me").await.0, 401);
    let (status, body) = anonymous
        .post("/api/v1/session", serde_json::json!({"login": "budi", "password": "wrong password!!"}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "login_refused");
    let (status, unknown) = anonymous
        .post("/api/v1/session", serde_json::json!({"login": "nobody", "password": PASSWORD}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(unknown["error"]["message"], body["error"]["message"], "one answer for both");
    let client = office.login("budi").await;
    let (status, me) = client.get("/api/v1/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "budi");
    assert_eq!(me["roles"], serde_json::json!(["requester"]));
    assert_eq!(client.delete("/api/v1/session").await.0, 204);
    assert_eq!(client.get("/api/v1/me").await.0, 401, "logged out");
});

db_test!(async fn a_state_change_without_the_csrf_token_is_refused(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let client = office.login("budi").await;
    client.drop_csrf();
    let (status, body) = client.delete("/api/v1/session").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "csrf");
    client.set_csrf("a-guessed-token");
    assert_eq!(client.delete("/api/v1/session").await.0, 403);
    assert_eq!(client.get("/api/v1/me").await.0, 200, "still logged in");
});

db_test!(async fn a_login_from_another_sites_page_is_refused(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let client = Client::new(&office.base);
    let (status, body) = client
        .post_with(
            "/api/v1/session",
            serde_json::json!({"login": "budi", "password": PASSWORD}),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "origin");
    let own = office.base.clone();
    let (status, _) = client
        .post_with(
            "/api/v1/session",
            serde_json::json!({"login": "budi", "password": PASSWORD}),
            &[("origin", own.as_str())],
        )
        .await;
    assert_eq!(status, 200, "the service's own origin passes");
});

db_test!(async fn a_disabled_accounts_session_dies_at_once(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Requester]).await;
    let client = office.login("budi").await;
    assert_eq!(client.get("/api/v1/me").await.0, 200);
    accounts::set_disabled(&office.t.db, &office.t.key, &AuditActor::cli("test"), &budi.id, true)
        .await
        .unwrap();
    assert_eq!(client.get("/api/v1/me").await.0, 401, "out at the next request");
    let again = Client::new(&office.base);
    let (status, body) = again
        .post("/api/v1/session", serde_json::json!({"login": "budi", "password": PASSWORD}))
        .await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("disabled"));
});

db_test!(async fn only_auditors_and_administrators_read_the_trail(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    office.account("siti", &[Role::Auditor]).await;
    let budi = office.login("budi").await;
    let (status, body) = budi.get("/api/v1/audit").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let siti = office.login("siti").await;
    let (status, body) = siti.get("/api/v1/audit").await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["account.create", "account.create", "login.ok", "login.ok"]);
    let (status, verdict) = siti.get("/api/v1/audit/verify").await;
    assert_eq!(status, 200);
    assert_eq!(verdict["verdict"]["problem"], serde_json::Value::Null);
});
