//! Account administration over HTTP: search and paging, create, roles, disable/enable,
//! password reset, sessions; the last administrator kept; and the two table-driven security
//! tests — every admin endpoint refuses other roles, every state-changing endpoint refuses a
//! request without the CSRF token. Add new endpoints to the tables.

use pintu_office::auth::Role;
use pintu_office::db_test;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{Client, Office, PASSWORD};

/// Every administrator endpoint (`{id}`: an account, `{sid}`: one of its sessions).
const ADMIN_ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts"),
    ("GET", "/api/v1/accounts/{id}"),
    ("PUT", "/api/v1/accounts/{id}/roles"),
    ("POST", "/api/v1/accounts/{id}/disable"),
    ("POST", "/api/v1/accounts/{id}/enable"),
    ("POST", "/api/v1/accounts/{id}/unlock"),
    ("POST", "/api/v1/accounts/{id}/password"),
    ("DELETE", "/api/v1/accounts/{id}/second-factor"),
    ("GET", "/api/v1/accounts/{id}/sessions"),
    ("DELETE", "/api/v1/accounts/{id}/sessions"),
    ("DELETE", "/api/v1/accounts/{id}/sessions/{sid}"),
];

/// Every state-changing endpoint that needs a session (login itself has none: it checks the
/// Origin instead, see api_session.rs).
const STATE_CHANGES: &[(&str, &str)] = &[
    ("DELETE", "/api/v1/session"),
    ("POST", "/api/v1/me/password"),
    ("POST", "/api/v1/me/totp"),
    ("POST", "/api/v1/me/totp/confirm"),
    ("POST", "/api/v1/me/passkeys"),
    ("POST", "/api/v1/me/passkeys/finish"),
    ("DELETE", "/api/v1/me/passkeys/{id}"),
    ("POST", "/api/v1/accounts"),
    ("PUT", "/api/v1/accounts/{id}/roles"),
    ("POST", "/api/v1/accounts/{id}/disable"),
    ("POST", "/api/v1/accounts/{id}/enable"),
    ("POST", "/api/v1/accounts/{id}/unlock"),
    ("POST", "/api/v1/accounts/{id}/password"),
    ("DELETE", "/api/v1/accounts/{id}/second-factor"),
    ("DELETE", "/api/v1/accounts/{id}/sessions"),
    ("DELETE", "/api/v1/accounts/{id}/sessions/{sid}"),
];

/// A body every endpoint above accepts the shape of (fields it does not know are refused
/// only after the session checks).
fn body_for(path: &str) -> Value {
    if path.ends_with("/roles") {
        json!({"roles": ["requester"]})
    } else if path.ends_with("/password") && path.contains("/accounts/") {
        json!({"password": "teh manis sore hari"})
    } else if path == "/api/v1/accounts" {
        json!({"username": "new.one", "display_name": "New", "password": "teh manis sore hari"})
    } else {
        json!({})
    }
}

fn method(name: &str) -> Method {
    name.parse().unwrap()
}

db_test!(async fn every_admin_endpoint_refuses_other_roles(t) {
    let office = Office::start(t).await;
    let target = office.account("target", &[Role::Requester]).await;
    let others = [Role::Requester, Role::Helpdesk, Role::Coordinator, Role::Approver, Role::Head,
                  Role::Technical, Role::Auditor];
    for role in others {
        let name = format!("user.{}", role.as_str());
        office.account(&name, &[role]).await;
        let client = office.login(&name).await;
        for (m, path) in ADMIN_ENDPOINTS {
            let path = path.replace("{id}", &target.id).replace("{sid}", "nope");
            let (status, body, _) = client.request(method(m), &path, body_for(&path)).await;
            assert_eq!(status, 403, "{m} {path} as {role:?}: {body}");
            assert_eq!(body["error"]["code"], "forbidden", "{m} {path} as {role:?}");
        }
    }
    let anonymous = Client::new(&office.base);
    for (m, path) in ADMIN_ENDPOINTS {
        let path = path.replace("{id}", &target.id).replace("{sid}", "nope");
        let (status, _, _) = anonymous.request(method(m), &path, body_for(&path)).await;
        assert_eq!(status, 401, "{m} {path} without a session");
    }
});

db_test!(async fn every_state_change_without_the_csrf_token_is_refused(t) {
    let office = Office::start(t).await;
    let target = office.account("target", &[Role::Requester]).await;
    office.account("admin", &[Role::Administrator]).await;
    let admin = office.login("admin").await;
    for token in [None, Some("a-guessed-token")] {
        match token {
            None => admin.drop_csrf(),
            Some(t) => admin.set_csrf(t),
        }
        for (m, path) in STATE_CHANGES {
            let path = path.replace("{id}", &target.id).replace("{sid}", "nope");
            let (status, body, _) = admin.request(method(m), &path, body_for(&path)).await;
            assert_eq!(status, 403, "{m} {path} with {token:?}: {body}");
            assert_eq!(body["error"]["code"], "csrf", "{m} {path}");
        }
    }
    // Nothing happened: the session lives, the target is unchanged.
    let (status, me) = admin.get("/api/v1/me").await;
    assert_eq!((status, me["username"].as_str()), (200, Some("admin")));
    let (_, now) = admin.get(&format!("/api/v1/accounts/{}", target.id)).await;
    assert_eq!(now["account"]["disabled"], false);
    assert_eq!(now["account"]["roles"], json!(["requester"]));
    assert_eq!(now["account"]["must_change_password"], false);
});

db_test!(async fn administrators_search_and_page_accounts_on_the_server(t) {
    let office = Office::start(t).await;
    office.account("admin", &[Role::Administrator]).await;
    for i in 0..7 {
        office.account(&format!("staff{i}"), &[Role::Requester]).await;
    }
    office.account("siti", &[Role::Auditor]).await;
    let admin = office.login("admin").await;
    let (status, page) = admin.get("/api/v1/accounts?limit=3").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 9);
    let names = |p: &Value| -> Vec<String> {
        p["accounts"].as_array().unwrap().iter()
            .map(|a| a["username"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&page), ["admin", "siti", "staff0"]);
    let mut seen = names(&page);
    let mut after = page["next_after"].as_str().unwrap().to_string();
    loop {
        let (_, next) = admin.get(&format!("/api/v1/accounts?limit=3&after={after}")).await;
        seen.extend(names(&next));
        match next["next_after"].as_str() {
            Some(a) => after = a.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9, "every account once: {seen:?}");
    let (_, found) = admin.get("/api/v1/accounts?q=STAFF&limit=50").await;
    assert_eq!(found["total"], 7);
    let (_, found) = admin.get("/api/v1/accounts?q=test%20siti").await;
    assert_eq!(names(&found), ["siti"], "the shown name is searched too");
    let (_, found) = admin.get("/api/v1/accounts?q=%25").await;
    assert_eq!(found["total"], 0, "% is taken literally");
    let (_, found) = admin.get("/api/v1/accounts?role=auditor").await;
    assert_eq!(names(&found), ["siti"]);
    let (status, body) = admin.get("/api/v1/accounts?role=king").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("role")));
});

db_test!(async fn administrators_create_change_and_disable_accounts_audited(t) {
    let office = Office::start(t).await;
    office.account("admin", &[Role::Administrator]).await;
    let admin = office.login("admin").await;
    let (status, created) = admin
        .post("/api/v1/accounts", json!({
            "username": "rina", "nip": "198001012006042001", "display_name": "Rina",
            "password": "teh manis sore hari", "roles": ["helpdesk"]
        }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["must_change_password"], true, "an administrator chose the password");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, body) = admin
        .post("/api/v1/accounts", json!({
            "username": "rina", "display_name": "Rina 2", "password": "teh manis sore hari"
        }))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("taken")));
    let (status, changed) = admin
        .put(&format!("/api/v1/accounts/{id}/roles"), json!({"roles": ["helpdesk", "coordinator"]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(changed["roles"], json!(["helpdesk", "coordinator"]));
    // Rina logs in (by NIP), changes her password, works; disabling her ends her session.
    let rina = Client::new(&office.base);
    let (status, body) = rina
        .post("/api/v1/session", json!({"login": "198001012006042001", "password": "teh manis sore hari"}))
        .await;
    assert_eq!(status, 200, "{body}");
    rina.set_csrf(body["csrf_token"].as_str().unwrap());
    let (status, _) = rina
        .post("/api/v1/me/password", json!({"current_password": "teh manis sore hari", "new_password": PASSWORD}))
        .await;
    assert_eq!(status, 204);
    let (status, sessions) = admin.get(&format!("/api/v1/accounts/{id}/sessions")).await;
    assert_eq!(status, 200);
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(admin.post(&format!("/api/v1/accounts/{id}/disable"), json!({})).await.0, 204);
    assert_eq!(rina.get("/api/v1/me").await.0, 401, "a disabled account's session dies");
    assert_eq!(admin.post(&format!("/api/v1/accounts/{id}/enable"), json!({})).await.0, 204);
    let rina = office.login("rina").await;
    let second = office.login("rina").await;
    let (_, sessions) = admin.get(&format!("/api/v1/accounts/{id}/sessions")).await;
    let list = sessions["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let sid = list[0]["id"].as_str().unwrap();
    let (status, body) = admin.delete(&format!("/api/v1/accounts/{id}/sessions/{sid}")).await;
    assert_eq!(status, 200, "{body}");
    let alive = [rina.get("/api/v1/me").await.0, second.get("/api/v1/me").await.0];
    assert_eq!(alive.iter().filter(|s| **s == 401).count(), 1, "one ended: {alive:?}");
    let (status, body) = admin.delete(&format!("/api/v1/accounts/{id}/sessions")).await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(1)));
    let (status, _) = admin.delete(&format!("/api/v1/accounts/{id}/sessions/{sid}")).await;
    assert_eq!(status, 404);
    // Every change is in the trail, with before and after.
    let rows = pintu_office::audit::list(&office.t.db, 0, 1000).await.unwrap();
    let roles = rows.iter().find(|r| r.action == "account.roles").unwrap();
    assert!(roles.before_json.as_deref().unwrap().contains("helpdesk"));
    assert!(roles.after_json.as_deref().unwrap().contains("coordinator"));
    for action in ["account.create", "account.disable", "account.enable", "session.revoke",
                   "account.password.change"] {
        assert!(rows.iter().any(|r| r.action == action), "{action} audited");
    }
});

db_test!(async fn the_last_administrator_stays(t) {
    let office = Office::start(t).await;
    let admin_account = office.account("admin", &[Role::Administrator]).await;
    let admin = office.login("admin").await;
    let id = admin_account.id.clone();
    let (status, body) = admin.post(&format!("/api/v1/accounts/{id}/disable"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("own_account")));
    let (status, body) = admin
        .put(&format!("/api/v1/accounts/{id}/roles"), json!({"roles": ["auditor"]}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("last_administrator")));
    assert_eq!(admin.get("/api/v1/accounts").await.0, 200, "still an administrator");
    // With a second administrator, the first may step down.
    let second = office.account("admin2", &[Role::Administrator]).await;
    let (status, _) = admin
        .put(&format!("/api/v1/accounts/{id}/roles"), json!({"roles": ["auditor"]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(admin.get("/api/v1/accounts").await.0, 403);
    // And the second cannot then disable themselves, nor be demoted by nobody.
    let admin2 = office.login("admin2").await;
    let (status, _) = admin2
        .post(&format!("/api/v1/accounts/{}/disable", second.id), json!({}))
        .await;
    assert_eq!(status, 403);
});

db_test!(async fn an_administrator_resets_a_lost_second_factor(t) {
    let office = Office::start(t).await;
    let ani = office.account("ani", &[Role::Approver]).await;
    office.account("admin", &[Role::Administrator]).await;
    let ani_client = office.login("ani").await;
    let (status, _) = ani_client.post("/api/v1/me/totp", json!({})).await;
    assert_eq!(status, 200);
    let admin = office.login("admin").await;
    let (status, _) = admin
        .delete(&format!("/api/v1/accounts/{}/second-factor", ani.id))
        .await;
    assert_eq!(status, 204);
    assert_eq!(ani_client.get("/api/v1/me").await.0, 401, "sessions end");
    let client = Client::new(&office.base);
    let (status, body) = client
        .post("/api/v1/session", json!({"login": "ani", "password": PASSWORD}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["restriction"], "enrol_second_factor");
});
