//! The signing API over HTTP on a real listener: approvers make keys and sign with their
//! passphrase, roles and CSRF are enforced, a complete list is published (no broker: for a
//! file) and its envelope downloaded is what the door verifies. SQLite and PostgreSQL.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use pintu_office::auth::Role;
use pintu_office::db_test;
use pintu_office::signing::ApproverKey;
use pintu_testkit::Site;
use serde_json::json;

use crate::signing_support::{door_policy, list_bytes, BUDI_PASS, SARI_PASS};
use crate::support::Office;

/// The service (its router serves the signing routes) and its base URL.
async fn start(t: pintu_office::testing::TestDb) -> (Office, String) {
    let office = Office::start(t).await;
    let base = office.base.clone();
    (office, base)
}

db_test!(
    async fn approvers_sign_over_http_and_the_envelope_is_what_the_door_verifies(t) {
        let (office, base) = start(t).await;
        office.account("budi", &[Role::Approver]).await;
        office.account("sari", &[Role::Approver]).await;
        office.account("tek", &[Role::Technical]).await;
        let budi = office.login("budi").await;
        let sari = office.login("sari").await;
        let tek = office.login("tek").await;

        // Only approvers hold keys.
        let (status, body) = tek
            .post("/api/v1/signing/keys", json!({"passphrase": "kunci teknisi panjang"}))
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")));
        let (status, body) = budi
            .post("/api/v1/signing/keys", json!({"passphrase": "short"}))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], "passphrase");
        let (status, kb) = budi
            .post("/api/v1/signing/keys", json!({"passphrase": BUDI_PASS}))
            .await;
        assert_eq!(status, 200, "{kb}");
        let (status, ks) = sari
            .post("/api/v1/signing/keys", json!({"passphrase": SARI_PASS}))
            .await;
        assert_eq!(status, 200, "{ks}");
        let kb: ApproverKey = serde_json::from_value(kb).unwrap();
        let ks: ApproverKey = serde_json::from_value(ks).unwrap();

        // The technical team puts the list up for signature.
        let site = Site::new();
        let (status, p) = tek
            .post(
                "/api/v1/payloads",
                json!({"kind": "list", "payload": B64.encode(list_bytes(&site, 1))}),
            )
            .await;
        assert_eq!(status, 200, "{p}");
        let id = p["id"].as_str().unwrap().to_string();
        let sign = format!("/api/v1/payloads/{id}/signatures");

        // A wrong passphrase (Sari's, by Budi) is refused; without CSRF nothing is tried.
        let (status, body) = budi.post(&sign, json!({"passphrase": SARI_PASS})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("wrong_passphrase")));
        budi.drop_csrf();
        let (status, body) = budi.post(&sign, json!({"passphrase": BUDI_PASS})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf")));
        let budi = office.login("budi").await;
        // The technical team cannot sign.
        let (status, _) = tek.post(&sign, json!({"passphrase": BUDI_PASS})).await;
        assert_eq!(status, 403);

        let (status, one) = budi.post(&sign, json!({"passphrase": BUDI_PASS})).await;
        assert_eq!((status, one["complete"].as_bool()), (200, Some(false)), "{one}");
        let (status, again) = budi.post(&sign, json!({"passphrase": BUDI_PASS})).await;
        assert_eq!((status, again["error"]["code"].as_str()), (409, Some("already_signed")));
        let publish = format!("/api/v1/payloads/{id}/publish");
        let (status, body) = tek.post(&publish, json!({})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("not_complete")));
        let (status, two) = sari.post(&sign, json!({"passphrase": SARI_PASS})).await;
        assert_eq!((status, two["complete"].as_bool()), (200, Some(true)), "{two}");

        // No broker in the test config: published for a file, downloaded as the envelope.
        let (status, published) = tek.post(&publish, json!({})).await;
        assert_eq!(status, 200, "{published}");
        assert_eq!(published["topic"], serde_json::Value::Null);
        let response = reqwest::Client::new()
            .get(format!("{base}/api/v1/payloads/{id}/envelope"))
            .header("cookie", format!("pintu_session={}", "none"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "a session is needed");
        let (status, envelope) = tek.get(&format!("/api/v1/payloads/{id}/envelope")).await;
        assert_eq!(status, 200);
        let bytes = serde_json::to_vec(&envelope).unwrap();
        pintu::core::list::verify(&bytes, &door_policy(&[&kb, &ks], 2), None, None)
            .expect("the downloaded envelope passes the door's check");

        let (status, keys) = tek.get("/api/v1/signing/keys").await;
        assert_eq!(status, 200);
        assert_eq!(keys.as_array().unwrap().len(), 2);
        let (status, pubfile) = tek
            .get(&format!("/api/v1/signing/keys/{}/pub", kb.key_id))
            .await;
        assert_eq!(status, 200);
        assert!(pubfile.as_str().unwrap().contains(&kb.public_key));
    }
);

db_test!(
    async fn a_large_list_is_taken_and_the_passphrase_limit_comes_from_the_config(t) {
        let mut settings = crate::support::settings(&t.url);
        settings.security.max_wrong_passphrases = 1;
        let office = Office::start_with(t, settings).await;
        office.account("budi", &[Role::Approver]).await;
        office.account("tek", &[Role::Technical]).await;
        let budi = office.login("budi").await;
        let tek = office.login("tek").await;
        let (status, body) = budi
            .post("/api/v1/signing/keys", json!({"passphrase": BUDI_PASS}))
            .await;
        assert_eq!(status, 200, "{body}");

        // 10,000 entries: well over axum's default 2 MB body once in base64.
        let site = Site::new();
        let entries = (0..10_000u32)
            .map(|i| {
                site.entry(
                    &format!("04{i:08X}"),
                    &format!("h-{i}"),
                    "2020-01-01T00:00:00Z",
                    "2099-01-01T00:00:00Z",
                )
            })
            .collect();
        let bytes = serde_json::to_vec(&site.payload(1, entries)).unwrap();
        let encoded = B64.encode(&bytes);
        assert!(encoded.len() > 2 << 20, "{} bytes", encoded.len());
        let (status, p) = tek
            .post("/api/v1/payloads", json!({"kind": "list", "payload": encoded}))
            .await;
        assert_eq!(status, 200, "{p}");
        let sign = format!("/api/v1/payloads/{}/signatures", p["id"].as_str().unwrap());

        // One wrong passphrase is the configured limit: the right one is refused next.
        let (status, body) = budi.post(&sign, json!({"passphrase": SARI_PASS})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("wrong_passphrase")));
        let (status, body) = budi.post(&sign, json!({"passphrase": BUDI_PASS})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_attempts")), "{body}");
    }
);
