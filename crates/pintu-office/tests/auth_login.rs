//! Logging in, the hard parts: throttling per address, lockout per account (and per unknown
//! name, alike), TOTP enrolment, login and replay, the restricted sessions, and session idle
//! and absolute expiry (the session row's times set in SQL: no sleeping).

use pintu_office::auth::{accounts, totp, Role};
use pintu_office::db::now_ms;
use pintu_office::db_test;
use serde_json::json;

use crate::support::{Client, Office, PASSWORD};

/// The TOTP code of `secret` for time step `step`.
fn code(secret: &[u8], step: i64) -> String {
    totp::code_at(secret, (step * 30) as u64)
}

fn step_now() -> i64 {
    now_ms() / 30_000
}

async fn post_login(client: &Client, login: &str, password: &str) -> (u16, serde_json::Value) {
    client
        .post(
            "/api/v1/session",
            json!({"login": login, "password": password}),
        )
        .await
}

/// `failures` wrong logins under as many unknown names (each refused), then budi's right
/// password: its status, body and `Retry-After` (0 when absent).
async fn fail_then_log_in(client: &Client, failures: u32) -> (u16, serde_json::Value, u64) {
    for i in 0..failures {
        let (status, _) = post_login(client, &format!("guess{i}"), "wrong password!!").await;
        assert_eq!(status, 401);
    }
    let (status, body, headers) = client
        .request(
            reqwest::Method::POST,
            "/api/v1/session",
            json!({"login": "budi", "password": PASSWORD}),
        )
        .await;
    let wait = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (status, body, wait)
}

async fn audit_actions(office: &Office) -> Vec<String> {
    pintu_office::audit::list(&office.t.db, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect()
}

db_test!(async fn failures_in_a_row_lock_the_account_whatever_the_password(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Requester]).await;
    office.account("admin", &[Role::Administrator]).await;
    let client = Client::new(&office.base);
    // security.max_failed_logins defaults to 5: the fifth failure locks.
    for _ in 0..4 {
        let (status, body) = post_login(&client, "budi", "wrong password!!").await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("login_refused")));
    }
    let (status, body) = post_login(&client, "budi", "wrong password!!").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "account_locked");
    assert!(body["error"]["message"].as_str().unwrap().contains("locked until"));
    let (status, body) = post_login(&client, "budi", PASSWORD).await;
    assert_eq!(body["error"]["code"], "account_locked", "the right password: still locked");
    assert_eq!(status, 403);
    assert!(audit_actions(&office).await.contains(&"account.lock".to_string()));
    let account = accounts::get(&office.t.db, &budi.id).await.unwrap();
    assert!(account.locked_until_ms.unwrap() > now_ms());
    // An administrator unlocks it.
    let admin = office.login("admin").await;
    let (status, _) = admin
        .post(&format!("/api/v1/accounts/{}/unlock", budi.id), json!({}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(post_login(&client, "budi", PASSWORD).await.0, 200);
    assert!(audit_actions(&office).await.contains(&"account.unlock".to_string()));
});

db_test!(async fn an_unknown_name_is_locked_like_an_account(t) {
    let office = Office::start(t).await;
    let client = Client::new(&office.base);
    for _ in 0..5 {
        assert_eq!(post_login(&client, "nobody", "wrong password!!").await.0, 401);
    }
    let (status, body) = post_login(&client, "nobody", "wrong password!!").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "account_locked", "no hint that the name is unknown");
});

db_test!(async fn too_many_failures_from_one_address_are_throttled(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let client = Client::new(&office.base);
    // Ten names, one failure each: no account locks, the address is throttled.
    let (status, body, wait) = fail_then_log_in(&client, 10).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    // The window passes (the attempts' times moved back in SQL): the right password works.
    sqlx::query("UPDATE login_attempts SET at_ms = at_ms - 900001")
        .execute(office.t.db.pool())
        .await
        .unwrap();
    assert_eq!(post_login(&client, "budi", PASSWORD).await.0, 200);
});

db_test!(async fn the_address_limit_and_window_come_from_the_config(t) {
    let mut settings = crate::support::settings(&t.url);
    settings.security.address_max_failures = 3;
    settings.security.address_window = std::time::Duration::from_secs(3600);
    let office = Office::start_with(t, settings).await;
    office.account("budi", &[Role::Requester]).await;
    let client = Client::new(&office.base);
    let (status, body, wait) = fail_then_log_in(&client, 3).await;
    assert_eq!(status, 429, "three failures are the configured limit: {body}");
    assert!((901..=3600).contains(&wait), "the configured hour: Retry-After {wait}");
    // 15 minutes later the default window would have passed; the configured hour has not.
    sqlx::query("UPDATE login_attempts SET at_ms = at_ms - 900001")
        .execute(office.t.db.pool())
        .await
        .unwrap();
    assert_eq!(post_login(&client, "budi", PASSWORD).await.0, 429);
});

db_test!(async fn an_approver_without_totp_may_only_enrol_then_logs_in_with_a_code_once(t) {
    let office = Office::start(t).await;
    let ani = office.account("ani", &[Role::Approver]).await;
    let client = Client::new(&office.base);
    let (status, body) = post_login(&client, "ani", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restriction"], "enrol_second_factor");
    client.set_csrf(body["csrf_token"].as_str().unwrap());
    // Everything else refuses the session.
    let (status, body) = client.get("/api/v1/audit").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("second_factor_required")));
    let (status, me) = client.get("/api/v1/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["restriction"], "enrol_second_factor");
    // Enrol: the secret comes back once, sealed at rest.
    let (status, enrolment) = client.post("/api/v1/me/totp", json!({})).await;
    assert_eq!(status, 200, "{enrolment}");
    assert!(enrolment["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let secret = totp::pending_secret(&office.t.db, &office.t.key, &ani.id)
        .await
        .unwrap()
        .unwrap();
    let base32 = enrolment["secret_base32"].as_str().unwrap();
    let stored: String = sqlx::query_scalar("SELECT totp_secret FROM accounts WHERE id = $1")
        .bind(&ani.id)
        .fetch_one(office.t.db.pool())
        .await
        .unwrap();
    assert!(!stored.contains(base32), "sealed, not the plain secret");
    let (status, body) = client.post("/api/v1/me/totp/confirm", json!({"code": "000000x"})).await;
    assert_eq!(status, 422, "{body}");
    let step = step_now();
    let (status, body) = client
        .post("/api/v1/me/totp/confirm", json!({"code": code(&secret, step)}))
        .await;
    assert_eq!(status, 204, "{body}");
    // This session proved the new factor: it is a full session now.
    assert_eq!(client.get("/api/v1/audit").await.0, 403, "an approver is no auditor");
    let (_, me) = client.get("/api/v1/me").await;
    assert_eq!(me["restriction"], serde_json::Value::Null);
    assert_eq!(me["totp_enabled"], true);
    assert_eq!(client.delete("/api/v1/session").await.0, 204);

    // From now on the login needs a code.
    let again = Client::new(&office.base);
    let (status, body) = post_login(&again, "ani", PASSWORD).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("second_factor_needed")));
    let with_code = |c: String| json!({"login": "ani", "password": PASSWORD, "totp": c});
    let (status, body) = again.post("/api/v1/session", with_code(code(&secret, step))).await;
    assert_eq!(status, 401, "the code used to confirm is spent: {body}");
    let (status, body) = again.post("/api/v1/session", with_code(code(&secret, step + 1))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restriction"], serde_json::Value::Null);
    let other = Client::new(&office.base);
    let (status, body) = other.post("/api/v1/session", with_code(code(&secret, step + 1))).await;
    assert_eq!(status, 401, "replay refused: {body}");
    assert_eq!(body["error"]["code"], "login_refused");
    let (status, _) = other.post("/api/v1/session", with_code(code(&secret, step))).await;
    assert_eq!(status, 401, "an older step refused");
    let (status, _) = other
        .post("/api/v1/session", json!({"login": "ani", "password": "wrong password!!", "totp": code(&secret, step + 2)}))
        .await;
    assert_eq!(status, 401, "a right code does not help a wrong password");
});

db_test!(async fn a_password_an_administrator_set_must_be_changed_first(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Requester]).await;
    office.account("admin", &[Role::Administrator]).await;
    let admin = office.login("admin").await;
    let old_session = office.login("budi").await;
    let (status, body) = admin
        .post(
            &format!("/api/v1/accounts/{}/password", budi.id),
            json!({"password": "teh manis sore hari"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(old_session.get("/api/v1/me").await.0, 401, "sessions end");
    let client = Client::new(&office.base);
    let (status, body) = post_login(&client, "budi", "teh manis sore hari").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restriction"], "change_password");
    client.set_csrf(body["csrf_token"].as_str().unwrap());
    let (status, body) = client.post("/api/v1/me/totp", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("password_change_required")));
    let change = |current: &str, new: &str| {
        json!({"current_password": current, "new_password": new})
    };
    let (status, body) = client
        .post("/api/v1/me/password", change("not the password", "nasi goreng malam"))
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("current_password")));
    let (status, body) = client
        .post("/api/v1/me/password", change("teh manis sore hari", "short"))
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("password")));
    let (status, _) = client
        .post("/api/v1/me/password", change("teh manis sore hari", "nasi goreng malam"))
        .await;
    assert_eq!(status, 204);
    let (status, me) = client.get("/api/v1/me").await;
    assert_eq!(status, 200, "this session stays");
    assert_eq!(me["restriction"], serde_json::Value::Null);
    assert_eq!(post_login(&Client::new(&office.base), "budi", "nasi goreng malam").await.0, 200);
    let actions = audit_actions(&office).await;
    assert!(actions.contains(&"account.password.reset".to_string()));
    assert!(actions.contains(&"account.password.change".to_string()));
});

db_test!(async fn sessions_end_when_idle_and_at_their_lifetime(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let idle = office.login("budi").await;
    let old = office.login("budi").await;
    assert_eq!(idle.get("/api/v1/me").await.0, 200);
    // The settings' defaults: 30 minutes idle, 12 hours in all.
    let (_, me) = idle.get("/api/v1/me").await;
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE csrf_token = $2")
        .bind(now_ms() - 31 * 60 * 1000)
        .bind(&csrf)
        .execute(office.t.db.pool())
        .await
        .unwrap();
    assert_eq!(idle.get("/api/v1/me").await.0, 401, "idle too long");
    let (_, me) = old.get("/api/v1/me").await;
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    sqlx::query("UPDATE sessions SET expires_at_ms = $1 WHERE csrf_token = $2")
        .bind(now_ms() - 1)
        .bind(&csrf)
        .execute(office.t.db.pool())
        .await
        .unwrap();
    assert_eq!(old.get("/api/v1/me").await.0, 401, "past its lifetime");
});

db_test!(async fn a_role_needing_a_second_factor_restricts_a_session_at_once(t) {
    let office = Office::start(t).await;
    let budi = office.account("budi", &[Role::Requester]).await;
    office.account("admin", &[Role::Administrator]).await;
    let client = office.login("budi").await;
    assert_eq!(client.get("/api/v1/me").await.0, 200);
    let admin = office.login("admin").await;
    let (status, _) = admin
        .put(
            &format!("/api/v1/accounts/{}/roles", budi.id),
            json!({"roles": ["requester", "approver"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, me) = client.get("/api/v1/me").await;
    assert_eq!(me["restriction"], "enrol_second_factor");
    let (status, body) = client.get("/api/v1/audit").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("second_factor_required")));
});

db_test!(async fn a_restricted_session_cannot_add_a_factor_beside_an_existing_one(t) {
    let office = Office::start(t).await;
    let ani = office.account("ani", &[Role::Approver]).await;
    let client = office.login("ani").await;
    assert_eq!(client.post("/api/v1/me/totp", json!({})).await.0, 200);
    let secret = totp::pending_secret(&office.t.db, &office.t.key, &ani.id)
        .await
        .unwrap()
        .unwrap();
    let (status, _) = client
        .post("/api/v1/me/totp/confirm", json!({"code": code(&secret, step_now())}))
        .await;
    assert_eq!(status, 204);
    // A session without the second factor (as one opened before the role was given).
    sqlx::query("UPDATE sessions SET second_factor = 0")
        .execute(office.t.db.pool())
        .await
        .unwrap();
    let (status, body) = client.post("/api/v1/me/totp", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("second_factor_required")));
});

db_test!(async fn a_passkey_account_is_not_let_in_by_password_where_passkeys_are_off(t) {
    let office = Office::start(t).await;
    let ani = office.account("ani", &[Role::Approver]).await;
    sqlx::query(
        "INSERT INTO passkeys (id, account_id, credential_id, name, passkey_json, created_at_ms) \
         VALUES ('p1', $1, 'cred', 'key', '{}', 0)",
    )
    .bind(&ani.id)
    .execute(office.t.db.pool())
    .await
    .unwrap();
    let (status, body) = post_login(&Client::new(&office.base), "ani", PASSWORD).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("passkeys_unavailable")));
});

db_test!(async fn the_login_endpoints_refuse_another_sites_origin(t) {
    let office = Office::start(t).await;
    office.account("budi", &[Role::Requester]).await;
    let client = Client::new(&office.base);
    let form = json!({"login": "budi", "password": PASSWORD});
    for path in ["/api/v1/session", "/api/v1/session/passkey"] {
        let (status, body) = client
            .post_with(path, form.clone(), &[("origin", "https://evil.example")])
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("origin")), "{path}");
    }
});
