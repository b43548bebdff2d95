//! Passkeys without a browser: when they are offered, the ceremony state — kept on the server,
//! sealed, expiring, taken once — and a whole registration and login through webauthn-rs with a
//! software authenticator (P-256, "none" attestation), including a cloned credential and a
//! phishing origin refused. The browser's own ceremony (Chromium's virtual authenticator)
//! belongs to the console issue.

use pintu_office::auth::accounts::AccountError;
use pintu_office::auth::passkey::{self, Kind};
use pintu_office::auth::Role;
use pintu_office::db_test;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

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

/// A software authenticator, as a browser's platform authenticator answers (P-256 key, "none"
/// attestation, user present and verified), so that the whole ceremony runs through
/// webauthn-rs without a browser. The browser itself is the console issue's test.
struct SoftAuthenticator {
    key: p256::ecdsa::SigningKey,
    credential_id: Vec<u8>,
    origin: String,
    counter: u32,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).to_vec()
}

impl SoftAuthenticator {
    fn new(origin: &str) -> SoftAuthenticator {
        SoftAuthenticator {
            key: p256::ecdsa::SigningKey::from_slice(&[0x5a; 32]).expect("a P-256 key"),
            credential_id: b"pintu-soft-authenticator-1".to_vec(),
            origin: origin.into(),
            counter: 0,
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false
        }))
        .expect("client data")
    }

    /// rpIdHash, flags (user present 0x01, verified 0x04, and 0x40 when credential data
    /// follows), the signature counter.
    fn authenticator_data(&mut self, rp_id: &str, attested: bool) -> Vec<u8> {
        self.counter += 1;
        let mut data = sha256(rp_id.as_bytes());
        data.push(0x01 | 0x04 | if attested { 0x40 } else { 0 });
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }

    /// `navigator.credentials.create()` for `options` (the service's JSON).
    fn create(&mut self, options: &serde_json::Value) -> RegisterPublicKeyCredential {
        use ciborium::Value as Cbor;
        let public = &options["publicKey"];
        let rp_id = public["rp"]["id"].as_str().expect("rp id").to_string();
        let challenge = public["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.create", challenge);
        let point = self.key.verifying_key().to_sec1_point(false);
        let (x, y) = (
            point.x().expect("x").to_vec(),
            point.y().expect("y").to_vec(),
        );
        // COSE_Key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(x)),
            (Cbor::Integer((-3).into()), Cbor::Bytes(y)),
        ]);
        let mut auth_data = self.authenticator_data(&rp_id, true);
        auth_data.extend_from_slice(&[0; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        ciborium::into_writer(&cose, &mut auth_data).expect("COSE key");
        let attestation = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&attestation, &mut attestation_object).expect("attestation");
        serde_json::from_value(json!({
            "id": b64url(&self.credential_id), "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(&attestation_object),
                "clientDataJSON": b64url(&client_data)
            },
            "extensions": {}
        }))
        .expect("a registration credential")
    }

    /// `navigator.credentials.get()` for `options`, answered as `user_handle`'s credential.
    fn get(&mut self, options: &serde_json::Value, user_handle: &str) -> PublicKeyCredential {
        use p256::ecdsa::signature::Signer as _;
        let public = &options["publicKey"];
        let rp_id = public["rpId"].as_str().expect("rp id").to_string();
        let challenge = public["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        let auth_data = self.authenticator_data(&rp_id, false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(&client_data));
        let signature: p256::ecdsa::Signature = self.key.sign(&signed);
        serde_json::from_value(json!({
            "id": b64url(&self.credential_id), "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(&auth_data),
                "clientDataJSON": b64url(&client_data),
                "signature": b64url(signature.to_der().as_bytes()),
                "userHandle": user_handle
            },
            "extensions": {}
        }))
        .expect("an assertion credential")
    }
}

db_test!(async fn a_passkey_registers_and_logs_in_through_the_whole_ceremony(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Approver]).await;
    let (db, key) = (&office.t.db, &office.t.key);
    let rp = rp();
    let by = pintu_office::audit::AuditActor::cli("test");
    let (token, _) = pintu_office::auth::session::open(
        db,
        &budi.id,
        std::time::Duration::from_secs(3600),
        "127.0.0.1",
        "test",
        false,
    )
    .await
    .unwrap();
    let token_hash = pintu_office::auth::session::token_hash(&token);
    let mut authenticator = SoftAuthenticator::new("https://pintu.example.go.id");

    // Registration: the service's options, the authenticator's answer, a stored passkey.
    let (ceremony, options) = passkey::start_registration(db, key, &rp, &budi, "laptop")
        .await
        .unwrap();
    let options = serde_json::to_value(&options).unwrap();
    let user_handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_string();
    let credential = authenticator.create(&options);
    let info =
        passkey::finish_registration(db, key, &by, &rp, &budi.id, &token_hash, &ceremony, &credential)
            .await
            .expect("the passkey is accepted");
    assert_eq!(info.name, "laptop");
    assert_eq!(passkey::count(db, &budi.id).await.unwrap(), 1);
    let rows = pintu_office::audit::list(db, 0, 100).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "account.passkey.add"), "audited");
    // The same authenticator again is excluded (and a second registration of it refused).
    let (again, options2) = passkey::start_registration(db, key, &rp, &budi, "again")
        .await
        .unwrap();
    let options2 = serde_json::to_value(&options2).unwrap();
    assert_eq!(
        options2["publicKey"]["excludeCredentials"][0]["id"],
        b64url(&authenticator.credential_id)
    );
    let twice = authenticator.create(&options2);
    let refused =
        passkey::finish_registration(db, key, &by, &rp, &budi.id, &token_hash, &again, &twice).await;
    assert!(refused.is_err(), "one credential is registered once");

    // Login: a signed assertion over the challenge finishes it, once.
    let (ceremony, options) = passkey::start_login(db, key, &rp, &budi.id)
        .await
        .unwrap()
        .expect("budi has a passkey");
    let options = serde_json::to_value(&options).unwrap();
    let assertion = authenticator.get(&options, &user_handle);
    let who = passkey::finish_login(db, key, &rp, &ceremony, &assertion)
        .await
        .expect("the assertion is accepted");
    assert_eq!(who, budi.id);
    let replayed = passkey::finish_login(db, key, &rp, &ceremony, &assertion).await;
    assert_eq!(code_of(replayed), "ceremony_unknown", "a ceremony finishes once");
    let listed = passkey::list(db, &budi.id).await.unwrap();
    assert!(listed[0].last_used_ms.is_some(), "last use recorded");

    // An assertion from another key (a cloned credential id) is refused.
    let (ceremony, options) = passkey::start_login(db, key, &rp, &budi.id).await.unwrap().unwrap();
    let options = serde_json::to_value(&options).unwrap();
    let mut impostor = SoftAuthenticator::new("https://pintu.example.go.id");
    impostor.key = p256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
    let forged = impostor.get(&options, &user_handle);
    let refused = passkey::finish_login(db, key, &rp, &ceremony, &forged).await;
    assert_eq!(code_of(refused), "passkey_refused");
    // And one made for another origin (a phishing page) too.
    let (ceremony, options) = passkey::start_login(db, key, &rp, &budi.id).await.unwrap().unwrap();
    let options = serde_json::to_value(&options).unwrap();
    authenticator.origin = "https://pintu.example.go.id.evil.test".into();
    let phished = authenticator.get(&options, &user_handle);
    let refused = passkey::finish_login(db, key, &rp, &ceremony, &phished).await;
    assert_eq!(code_of(refused), "passkey_refused");
});
