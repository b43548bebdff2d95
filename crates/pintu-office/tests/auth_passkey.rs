//! Passkeys without a browser: when they are offered, and the ceremony state — kept on the
//! server, sealed, expiring, taken once. A real registration and login need an authenticator
//! (a browser's virtual authenticator over Chromium DevTools): that test belongs to the
//! console issue.

use pintu_office::auth::accounts::AccountError;
use pintu_office::auth::passkey::{self, Kind};
use pintu_office::auth::Role;
use pintu_office::db_test;
use serde_json::json;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use crate::support::Office;

fn rp() -> webauthn_rs::Webauthn {
    passkey::relying_party(true, &["https://pintu.example.go.id".into()], "Diskominfo")
        .expect("a relying party")
}

fn code_of<T: std::fmt::Debug>(r: Result<T, AccountError>) -> &'static str {
    match r {
        Err(AccountError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn passkeys_need_https_and_a_host_name() {
    let origins = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(
        passkey::relying_party(false, &origins(&["https://pintu.example.go.id"]), "x").is_none()
    );
    assert!(passkey::relying_party(true, &[], "x").is_none());
    assert!(passkey::relying_party(true, &origins(&["https://10.0.0.5"]), "x").is_none());
    assert!(
        passkey::relying_party(true, &origins(&["https://pintu.example.go.id"]), "x").is_some()
    );
}

db_test!(async fn the_passkey_endpoints_say_when_passkeys_are_not_offered(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let client = office.login("budi").await;
    let (status, body) = client.post("/api/v1/me/passkeys", json!({"name": "laptop"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("passkeys_unavailable")));
    let (status, body) = client.get("/api/v1/me/passkeys").await;
    assert_eq!(status, 200);
    assert_eq!(body["offered"], false);
    let (status, body) = client
        .post("/api/v1/session/passkey", json!({"login": "budi", "password": "x"}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("passkeys_unavailable")));
});

db_test!(async fn a_ceremony_is_taken_once_and_not_after_it_expired(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Requester]).await;
    let (db, key) = (&office.t.db, &office.t.key);
    let state = json!({"challenge": "c2VjcmV0LWNoYWxsZW5nZQ"});
    let id = passkey::store_ceremony(db, key, Kind::Login, &budi.id, None, &state).await.unwrap();
    let sealed: String = sqlx::query_scalar("SELECT state_sealed FROM webauthn_ceremonies WHERE id = $1")
        .bind(&id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(!sealed.contains("c2VjcmV0"), "the state is sealed at rest");
    let taken: passkey::Taken<serde_json::Value> =
        passkey::take_ceremony(db, key, Kind::Login, &id).await.unwrap();
    assert_eq!((taken.account_id.as_str(), &taken.state), (budi.id.as_str(), &state));
    let again = passkey::take_ceremony::<serde_json::Value>(db, key, Kind::Login, &id).await;
    assert_eq!(code_of(again), "ceremony_unknown", "single use");

    let id = passkey::store_ceremony(db, key, Kind::Login, &budi.id, None, &state).await.unwrap();
    sqlx::query("UPDATE webauthn_ceremonies SET expires_at_ms = $1 WHERE id = $2")
        .bind(pintu_office::db::now_ms() - 1)
        .bind(&id)
        .execute(db.pool())
        .await
        .unwrap();
    let expired = passkey::take_ceremony::<serde_json::Value>(db, key, Kind::Login, &id).await;
    assert_eq!(code_of(expired), "ceremony_unknown", "expired");

    let id = passkey::store_ceremony(db, key, Kind::Register, &budi.id, Some("x"), &state)
        .await
        .unwrap();
    let other = passkey::take_ceremony::<serde_json::Value>(db, key, Kind::Login, &id).await;
    assert_eq!(code_of(other), "ceremony_unknown", "a registration is no login");
    let used = passkey::take_ceremony::<serde_json::Value>(db, key, Kind::Register, &id).await;
    assert_eq!(code_of(used), "ceremony_unknown", "and the attempt used it up");
});

db_test!(async fn a_registration_ceremony_refuses_a_forged_answer_and_is_then_spent(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Requester]).await;
    let rina = office.account("rina", &[Role::Requester]).await;
    let (db, key) = (&office.t.db, &office.t.key);
    let rp = rp();
    let (ceremony, options) = passkey::start_registration(db, key, &rp, &budi, "laptop")
        .await
        .unwrap();
    let options = serde_json::to_value(&options).unwrap();
    assert_eq!(options["publicKey"]["rp"]["id"], "pintu.example.go.id");
    assert!(options["publicKey"]["challenge"].as_str().is_some_and(|c| c.len() >= 16));
    let forged: RegisterPublicKeyCredential = serde_json::from_value(json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"}
    }))
    .unwrap();
    let by = pintu_office::audit::AuditActor::cli("test");
    // Another account cannot finish it (and trying uses it up).
    let (other, _) = passkey::start_registration(db, key, &rp, &budi, "laptop").await.unwrap();
    let stolen =
        passkey::finish_registration(db, key, &by, &rp, &rina.id, "", &other, &forged).await;
    assert_eq!(code_of(stolen), "ceremony_unknown");
    let refused =
        passkey::finish_registration(db, key, &by, &rp, &budi.id, "", &ceremony, &forged).await;
    assert_eq!(code_of(refused), "passkey_refused");
    let replay =
        passkey::finish_registration(db, key, &by, &rp, &budi.id, "", &ceremony, &forged).await;
    assert_eq!(code_of(replay), "ceremony_unknown", "single use, even after a failure");
    assert!(passkey::list(db, &budi.id).await.unwrap().is_empty());
});
