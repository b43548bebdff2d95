//! The directory's API on a real service, on both databases: who may read and write, who sees
//! raw card UIDs, paging and search on the server, the import report and the export round trip.

use pintu_office::auth::Role;
use pintu_office::db_test;
use pintu_office::testing::TestDb;
use serde_json::{json, Value};

use crate::support::{Client, Office};

/// A small register: one door, Alice (one card), Budi (escort, no card), one badge.
const REGISTER: &str = r#"site = "kominfo"
time_zone = "Asia/Jakarta"
doors = ["server-1"]
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
role = "escort"
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-2"
approver = "kabid"

[[badge]]
id = "VB-01"
card = "0A0B0C0D"
"#;

/// A service whose config names a fresh site card key, with the register imported, and one
/// account per role (username = role name).
struct Site {
    office: Office,
    _dir: tempfile::TempDir,
}

async fn site(t: TestDb) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let card_key = dir.path().join("card.key");
    pintu::office::keys::card_keygen(&card_key).unwrap();
    let settings = pintu_office::config::Settings::from_text(
        std::path::Path::new("office.toml"),
        &format!(
            "[database]\nurl = \"{}\"\n[security]\nsecret_key_file = \"/nonexistent/secret.key\"\n\
             [site]\nname = \"Diskominfo Test\"\ncard_key_file = \"{}\"\n",
            t.url,
            card_key.display()
        ),
    )
    .unwrap();
    let office = Office::start_with(t, settings).await;
    for role in pintu_office::auth::role::ALL {
        office.account(role.as_str(), &[role]).await;
    }
    Site { office, _dir: dir }
}

impl Site {
    async fn as_role(&self, role: Role) -> Client {
        self.office.login(role.as_str()).await
    }

    async fn imported(t: TestDb, register: &str) -> Site {
        let site = site(t).await;
        let admin = site.as_role(Role::Administrator).await;
        let (status, body) = admin
            .post("/api/v1/register/import", json!({ "toml": register }))
            .await;
        assert_eq!(status, 200, "{body}");
        site
    }
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("a page of items")
}

db_test!(async fn each_role_reads_and_writes_only_what_it_may(t) {
    let site = Site::imported(t, REGISTER).await;
    for role in [Role::Requester, Role::Technical] {
        let client = site.as_role(role).await;
        for path in ["/api/v1/holders", "/api/v1/cards", "/api/v1/badges", "/api/v1/doors", "/api/v1/rooms"] {
            let (status, body) = client.get(path).await;
            assert_eq!(status, 403, "{role:?} GET {path}: {body}");
            assert_eq!(body["error"]["code"], "forbidden");
        }
    }
    let new_holder = json!({
        "key": "dewi", "name": "Dewi", "kind": "staff", "valid_until": "2030-01-01",
        "request_ref": "R-9", "approver": "kabid"
    });
    for role in [Role::Coordinator, Role::Approver, Role::Head, Role::Auditor] {
        let client = site.as_role(role).await;
        let (status, body) = client.get("/api/v1/holders").await;
        assert_eq!(status, 200, "{role:?} reads: {body}");
        assert_eq!(body["total"], 2);
        assert_eq!(client.post("/api/v1/holders", new_holder.clone()).await.0, 403, "{role:?}");
        assert_eq!(client.post("/api/v1/rooms", json!({"name": "R"})).await.0, 403, "{role:?}");
        assert_eq!(
            client.post("/api/v1/holders/alice/revoke", json!({"reason": "x", "request_ref": "y"})).await.0,
            403
        );
        assert_eq!(client.get("/api/v1/register/export").await.0, 403, "{role:?}");
    }
    let helpdesk = site.as_role(Role::Helpdesk).await;
    let (status, body) = helpdesk.post("/api/v1/holders", new_holder.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["key"], "dewi");
    let (status, body) = helpdesk.post("/api/v1/holders", new_holder).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));
    let (status, body) = helpdesk
        .patch("/api/v1/holders/dewi", json!({"doors": ["server-1"]}))
        .await;
    assert_eq!(status, 422, "access changes need a request: {body}");
    assert_eq!(body["error"]["field"], "request_ref");
    let (status, body) = helpdesk
        .patch("/api/v1/holders/dewi", json!({"doors": ["server-1"], "request_ref": "R-10", "approver": "kabid"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["doors"], json!(["server-1"]));
    assert_eq!(helpdesk.get("/api/v1/register/export").await.0, 403, "the export is the administrator's");
    assert_eq!(
        helpdesk.post("/api/v1/register/import", json!({"toml": REGISTER})).await.0,
        403
    );
    let visit = json!({"visitor": "Rudi (PT Maju)", "host": "alice", "badge": "VB-01", "until": "2099-01-01", "request_ref": "V-1", "approver": "kabid"});
    let coordinator = site.as_role(Role::Coordinator).await;
    assert_eq!(coordinator.post("/api/v1/visits", visit.clone()).await.0, 403);
    let (status, issued) = helpdesk.post("/api/v1/visits", visit.clone()).await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(helpdesk.post("/api/v1/visits", visit).await.0, 409, "the badge is out");
    let (_, open) = coordinator.get("/api/v1/visits?open=true").await;
    assert_eq!(open["total"], 1);
    let end = format!("/api/v1/visits/{}/end", issued["id"].as_str().unwrap());
    assert_eq!(coordinator.post(&end, json!({})).await.0, 403);
    assert_eq!(helpdesk.post(&end, json!({})).await.0, 200);
    // No CSRF token, no change.
    helpdesk.drop_csrf();
    assert_eq!(helpdesk.post("/api/v1/rooms", json!({"name": "R"})).await.0, 403);
});

db_test!(async fn raw_uids_are_shown_to_helpdesk_and_administrators_only(t) {
    let site = Site::imported(t, REGISTER).await;
    let helpdesk = site.as_role(Role::Helpdesk).await;
    let (status, card) = helpdesk
        .post("/api/v1/holders/budi/cards", json!({"uid": "04:b1:b2:b3"}))
        .await;
    assert_eq!(status, 201, "{card}");
    assert_eq!(card["uid"], "04B1B2B3");
    let (status, body) = helpdesk
        .post("/api/v1/holders/alice/cards", json!({"uid": "04B1B2B3"}))
        .await;
    assert_eq!(status, 409, "one card, one holder: {body}");
    for role in [Role::Helpdesk, Role::Administrator] {
        let (_, cards) = site.as_role(role).await.get("/api/v1/cards?kind=holder").await;
        let uids: Vec<&str> = items(&cards).iter().map(|c| c["uid"].as_str().unwrap()).collect();
        assert_eq!(uids, ["04A1B2C3", "04B1B2B3"], "{role:?}");
    }
    for role in [Role::Coordinator, Role::Approver, Role::Head, Role::Auditor] {
        let client = site.as_role(role).await;
        for path in ["/api/v1/cards", "/api/v1/badges", "/api/v1/holders/alice"] {
            let (status, body) = client.get(path).await;
            assert_eq!(status, 200, "{body}");
            let text = body.to_string();
            assert!(!text.contains("04A1B2C3") && !text.contains("0A0B0C0D"), "{role:?} {path}: {text}");
            assert!(text.contains("\"label\":\"c:"), "{role:?} sees the hash: {text}");
        }
    }
    let (_, alice) = helpdesk.get("/api/v1/holders/alice").await;
    assert_eq!(alice["card_list"][0]["uid"], "04A1B2C3");
    let (status, revoked) = helpdesk
        .post(&format!("/api/v1/cards/{}/revoke", card["id"].as_str().unwrap()), json!({"reason": "lost", "request_ref": "RM-1"}))
        .await;
    assert_eq!(status, 200, "{revoked}");
    let (_, budi) = helpdesk.get("/api/v1/holders/budi").await;
    assert_eq!(budi["cards"], 0);
});

db_test!(async fn lists_are_paged_and_searched_on_the_server(t) {
    let mut register = REGISTER.to_string();
    for i in 0..30 {
        register.push_str(&format!(
            "\n[[holder]]\nid = \"staff-{i:02}\"\nname = \"Pegawai {i:02}\"\nunit = \"Bidang {}\"\nrole = \"staff\"\n\
             valid_from = 2025-01-01\nvalid_until = 2099-01-01\nrequest_ref = \"R\"\napprover = \"kabid\"\n",
            if i % 2 == 0 { "TIK" } else { "Umum" }
        ));
    }
    let site = Site::imported(t, &register).await;
    let auditor = site.as_role(Role::Auditor).await;
    let (status, page) = auditor.get("/api/v1/holders?per_page=10&page=3").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["total"].as_i64(), items(&page).len()), (Some(32), 10));
    assert_eq!(items(&page)[0]["key"], "staff-18", "register order");
    let (_, last) = auditor.get("/api/v1/holders?per_page=10&page=4").await;
    assert_eq!(items(&last).len(), 2);
    let (_, found) = auditor.get("/api/v1/holders?q=bidang%20tik&per_page=100").await;
    assert_eq!(found["total"], 15);
    let (_, none) = auditor.get("/api/v1/holders?q=_").await;
    assert_eq!(none["total"], 0, "a wildcard is searched as text");
    // Holders: each word is a word prefix of the name, id, unit or NIP (accents folded).
    let (_, prefix) = auditor.get("/api/v1/holders?q=PEG&per_page=100").await;
    assert_eq!(prefix["total"], 30);
    let (_, inside) = auditor.get("/api/v1/holders?q=egawai").await;
    assert_eq!(inside["total"], 0, "inside a word is not a word prefix");
    let (_, one) = auditor.get("/api/v1/holders?q=p%C3%A9gawai%2007").await;
    assert_eq!((one["total"].as_i64(), items(&one)[0]["key"].as_str()), (Some(1), Some("staff-07")));
    let (status, body) = auditor.get("/api/v1/holders?per_page=1000").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "per_page");
    assert_eq!(auditor.get("/api/v1/holders?page=0").await.0, 422);
    let (_, visits) = auditor.get("/api/v1/visits?open=true&q=vb-01").await;
    assert_eq!(visits["total"], 0);
    let (_, badges) = auditor.get("/api/v1/badges?q=vb").await;
    assert_eq!(items(&badges)[0]["badge"], "VB-01");
});

db_test!(async fn the_import_reports_what_came_in_and_a_second_import_changes_nothing(t) {
    let site = site(t).await;
    let admin = site.as_role(Role::Administrator).await;
    let helpdesk = site.as_role(Role::Helpdesk).await;
    let (status, body) = helpdesk
        .post("/api/v1/holders", json!({"key": "x", "name": "X", "kind": "staff", "valid_until": "2030-01-01", "request_ref": "R", "approver": "k"}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("no_site")), "{body}");
    let bad = REGISTER.replace("role = \"escort\"", "role = \"guest\"");
    let (status, body) = admin.post("/api/v1/register/import", json!({"toml": bad})).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("register.toml:") && message.contains("holder[1].role"), "{message}");
    assert_eq!(admin.get("/api/v1/register/export").await.0, 409, "nothing was written");

    let (status, report) = admin.post("/api/v1/register/import", json!({"toml": REGISTER})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["site"], "kominfo");
    assert_eq!(report["holders"], json!({"added": 2, "unchanged": 0, "skipped": 0}));
    assert_eq!(report["cards"]["added"], 1);
    assert_eq!(report["badges"]["added"], 1);
    assert_eq!(report["doors"]["added"], 1);
    let (_, again) = admin.post("/api/v1/register/import", json!({"toml": REGISTER})).await;
    assert_eq!(again["holders"], json!({"added": 0, "unchanged": 2, "skipped": 0}));
    assert_eq!(again["cards"], json!({"added": 0, "unchanged": 1, "skipped": 0}));
    let (_, trail) = site.as_role(Role::Auditor).await.get("/api/v1/audit?limit=1000").await;
    let imports = trail["rows"].as_array().unwrap().iter()
        .filter(|r| r["action"] == "register.import").count();
    assert_eq!(imports, 2);
});

db_test!(async fn export_then_import_into_an_empty_office_then_export_gives_the_same_text(t) {
    let second = match t.db.backend() {
        pintu_office::db::Backend::Sqlite => TestDb::sqlite().await,
        pintu_office::db::Backend::Postgres => TestDb::postgres().await,
    };
    let site_a = Site::imported(t, REGISTER).await;
    let helpdesk = site_a.as_role(Role::Helpdesk).await;
    let (status, _) = helpdesk.post("/api/v1/badges", json!({"label": "VB-02", "uid": "0A0B0C0E"})).await;
    assert_eq!(status, 201);
    let admin = site_a.as_role(Role::Administrator).await;
    let (status, first) = admin.get("/api/v1/register/export").await;
    assert_eq!(status, 200, "{first}");
    let first = first["toml"].as_str().unwrap().to_string();
    assert!(first.contains("id = \"VB-02\""), "{first}");

    // The other office must hash with the same card key: the export names the site's.
    let site_b = site(second).await;
    let key_a = std::fs::read(site_a._dir.path().join("card.key")).unwrap();
    std::fs::write(site_b._dir.path().join("card.key"), key_a).unwrap();
    let admin_b = site_b.as_role(Role::Administrator).await;
    let (status, report) = admin_b.post("/api/v1/register/import", json!({"toml": first})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["badges"]["added"], 2);
    let (_, second) = admin_b.get("/api/v1/register/export").await;
    assert_eq!(second["toml"].as_str().unwrap(), first);
});
