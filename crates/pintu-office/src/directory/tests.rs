//! The directory on both engines: import, export, the snapshot's list, and the CRUD rules.

use std::path::Path;

use jiff::Timestamp;
use pintu::core::card::CardKey;
use pintu::core::list::payload_bytes;
use pintu::office::register::LoadedRegister;
use sqlx::Row;

use super::cards;
use super::holders::{self, HolderInput};
use super::places::{self, DoorInput};
use super::register::{self, SNAPSHOT_NAME};
use super::{DirectoryError, Page, PageQuery, RevokeInput};
use crate::audit::AuditActor;
use crate::db_test;
use crate::testing::TestDb;

/// A register with everything the format has: two doors, a holder on every door, one on one
/// door with a schedule, a holder with no card, a badge pool with an open and an ended visit,
/// and a revocation.
pub(crate) const REGISTER: &str = r#"# Test register.
site = "kominfo"
time_zone = "Asia/Jakarta"
doors = ["server-1", "lobby"]
card_key_file = "card.key"
list_valid_for = "30days"

[list]
version = 7

[[holder]]
id = "198501012010011001"
name = "Budi Santoso"
unit = "Bidang TIK"
role = "escort"
cards = ["04:a1:b2:c3", "04A1B2C4"]
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-2025-001"
approver = "kabid"

[[holder]]
id = "siti"
name = "Siti"
role = "staff"
cards = ["04A1B2C5"]
valid_from = "2025-01-01T08:00:00"
valid_until = 2099-01-01T00:00:00+07:00
doors = ["server-1"]
schedule = [{ days = ["mon", "tue"], from = "08:00", until = "16:00" }]
request_ref = "R-2025-002"
approver = "kabid"

[[holder]]
id = "gone"
name = "Left The Unit"
role = "staff"
valid_from = 2025-01-01
valid_until = 2099-01-01
request_ref = "R-2025-003"
approver = "kabid"

[[badge]]
id = "VB-01"
card = "0A0B0C0D"

[[badge]]
id = "VB-02"
card = "0A0B0C0E"

[[visit]]
id = "V-2026-0001"
visitor = "Andi (PT Contoh)"
host = "198501012010011001"
escort = "198501012010011001"
badge = "VB-01"
from = 2026-01-01T09:00:00
until = 2099-01-01T17:00:00
request_ref = "V-REQ-1"
approver = "kabid"

[[visit]]
id = "V-2025-0009"
visitor = "Old Visitor"
host = "siti"
badge = "VB-02"
from = 2025-03-01
until = 2025-03-02
request_ref = "V-REQ-0"
approver = "kabid"
ended_at = "2025-03-01 15:00"

[[revoked]]
holder = "gone"
card = "04A1B2C9"
at = "2025-06-01 10:00"
reason = "left the unit"
request_ref = "RM-1"
by = "helpdesk"
"#;

fn card_key() -> CardKey {
    CardKey::from_bytes([7; 32])
}

fn actor() -> AuditActor {
    AuditActor::cli("test")
}

fn loaded(text: &str) -> LoadedRegister {
    LoadedRegister::parse(Path::new("register.toml"), text).expect("test register parses")
}

/// Another empty database on the same engine as `t`.
async fn another(t: &TestDb) -> TestDb {
    match t.db.backend() {
        crate::db::Backend::Sqlite => TestDb::sqlite().await,
        crate::db::Backend::Postgres => TestDb::postgres().await,
    }
}

async fn count(t: &TestDb, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(t.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

db_test!(async fn a_list_built_from_the_database_is_byte_identical_to_one_from_the_file(t) {
    let file = loaded(REGISTER);
    let report = register::import(&t.db, &t.key, &card_key(), &actor(), &file).await.unwrap();
    assert_eq!(report.holders.added, 3);
    assert_eq!(report.cards.added, 3);
    assert_eq!(report.badges.added, 2);
    assert_eq!(report.visits.added, 2);
    assert_eq!(report.revocations.added, 1);
    assert_eq!(report.doors.added, 2);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let snapshot = register::snapshot(&t.db, &t.key).await.unwrap();
    assert_eq!(snapshot.path, Path::new(SNAPSHOT_NAME));
    let now = Timestamp::now();
    let (p1, v1) = file.build_list(&card_key(), 8, now).unwrap();
    let (p2, v2) = snapshot.build_list(&card_key(), 8, now).unwrap();
    assert_eq!(v1.len(), 1, "the open visit is in the list");
    assert_eq!(payload_bytes(&p1, &v1).unwrap(), payload_bytes(&p2, &v2).unwrap());
    assert_eq!(snapshot.register.list.version, 7);
});

db_test!(async fn importing_the_same_file_twice_changes_nothing(t) {
    let file = loaded(REGISTER);
    register::import(&t.db, &t.key, &card_key(), &actor(), &file).await.unwrap();
    let before = register::export_text(&t.db, &t.key).await.unwrap();
    let again = register::import(&t.db, &t.key, &card_key(), &actor(), &file).await.unwrap();
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.holders.unchanged, 3);
    assert_eq!(again.cards.unchanged, 3);
    assert_eq!(again.badges.unchanged, 2);
    assert_eq!(again.visits.unchanged, 2);
    assert_eq!(again.revocations.unchanged, 1);
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);
    assert_eq!(register::export_text(&t.db, &t.key).await.unwrap(), before);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM audit_log WHERE action = 'register.import'").await, 2);
});

db_test!(async fn export_then_import_into_an_empty_database_then_export_gives_the_same_text(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let first = register::export(&t.db, &t.key, &actor()).await.unwrap();
    assert!(first.contains("imported_into = \"pintu-office (site kominfo)\""), "{first}");
    assert!(first.contains("04A1B2C3"), "the backup carries the UIDs");
    let empty = another(&t).await;
    let report = register::import(&empty.db, &empty.key, &card_key(), &actor(), &loaded(&first))
        .await
        .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let second = register::export_text(&empty.db, &empty.key).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM audit_log WHERE action = 'register.export'").await, 1);
});

db_test!(async fn a_malformed_register_is_refused_with_its_line_and_nothing_is_written(t) {
    let bad = REGISTER.replace("valid_until = 2099-01-01T00:00:00+07:00", "valid_until = \"soon\"");
    let error = register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(&bad))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, DirectoryError::Register(_)), "{text}");
    assert!(text.contains("register.toml:") && text.contains("holder[1].valid_until"), "{text}");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM holders").await, 0);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM site_register").await, 0);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM audit_log").await, 0);
});

db_test!(async fn another_sites_register_is_refused_and_differences_are_reported(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let other = REGISTER.replace("site = \"kominfo\"", "site = \"other\"");
    let error = register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(&other))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("site \"other\""), "{error}");
    let renamed = REGISTER.replace("name = \"Siti\"", "name = \"Siti Aminah\"");
    let report = register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(&renamed))
        .await
        .unwrap();
    assert_eq!(report.holders.skipped, 1);
    assert!(report.skipped[0].contains("holder siti"), "{:?}", report.skipped);
    assert_eq!(holders::get_holder(&t.db, "siti").await.unwrap().name, "Siti", "the database wins");
});

db_test!(async fn raw_uids_are_sealed_at_rest_and_shown_only_when_asked(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let rows = sqlx::query("SELECT uid_enc, card_hash FROM cards").fetch_all(t.db.pool()).await.unwrap();
    for row in rows {
        let sealed: String = row.try_get(0).unwrap();
        assert!(!sealed.to_uppercase().contains("04A1B2"), "{sealed}");
    }
    let audit: String = sqlx::query("SELECT after_json FROM audit_log")
        .fetch_one(t.db.pool()).await.unwrap().try_get(0).unwrap();
    assert!(!audit.contains("04A1B2C3"), "no UID in the trail");
    let hidden = cards::list_cards(&t.db, &t.key, &Page::first(), Some("holder"), false).await.unwrap();
    assert_eq!(hidden.total, 3);
    assert!(hidden.items.iter().all(|c| c.uid.is_none()));
    let shown = cards::list_cards(&t.db, &t.key, &Page::first(), Some("holder"), true).await.unwrap();
    assert_eq!(shown.items[0].uid.as_deref(), Some("04A1B2C3"));
    assert_eq!(shown.items[0].holder.as_deref(), Some("198501012010011001"));
    let badges = cards::list_cards(&t.db, &t.key, &Page::first(), Some("badge"), false).await.unwrap();
    assert_eq!(badges.items[0].visit.as_deref(), Some("V-2026-0001"));
    assert_eq!(badges.items[1].visit, None);
});

db_test!(async fn holders_are_created_enrolled_changed_and_revoked_with_an_audit_record_each(t) {
    let err = holders::create_holder(&t.db, &t.key, &actor(), &HolderInput::default()).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Invalid(_)), "{err}");
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let input: HolderInput = serde_json::from_value(serde_json::json!({
        "key": "dewi", "name": "Dewi", "kind": "staff", "doors": ["lobby"],
        "valid_until": "2030-01-01", "request_ref": "R-9", "approver": "kabid",
        "ktp": {"type": "KTP", "last4": "1234"}
    })).unwrap();
    let dewi = holders::create_holder(&t.db, &t.key, &actor(), &input).await.unwrap();
    assert_eq!(dewi.ktp.as_ref().unwrap().last4, "1234");
    let mut whole = input.clone();
    whole.key = Some("dewi2".into());
    whole.ktp = Some(holders::Ktp { kind: "KTP".into(), last4: "3201012345678901".into() });
    assert!(holders::create_holder(&t.db, &t.key, &actor(), &whole).await.is_err(), "never the whole NIK");
    assert!(matches!(
        holders::create_holder(&t.db, &t.key, &actor(), &input).await.unwrap_err(),
        DirectoryError::Conflict(_)
    ));
    let mut unknown_door = input.clone();
    unknown_door.key = Some("dewi3".into());
    unknown_door.doors = Some(vec!["vault".into()]);
    assert!(holders::create_holder(&t.db, &t.key, &actor(), &unknown_door).await.is_err());

    let card = cards::enrol_card(&t.db, &t.key, &card_key(), &actor(), "dewi", "04 DE 01 02").await.unwrap();
    assert_eq!(card.uid.as_deref(), Some("04DE0102"));
    let taken = cards::enrol_card(&t.db, &t.key, &card_key(), &actor(), "dewi", "04A1B2C3").await.unwrap_err();
    assert!(taken.to_string().contains("holder 198501012010011001"), "{taken}");

    // A change of access needs a request and an approver; a name change does not.
    let doors: HolderInput = serde_json::from_value(serde_json::json!({"all_doors": true})).unwrap();
    let err = holders::update_holder(&t.db, &t.key, &actor(), "dewi", &doors).await.unwrap_err();
    assert!(err.to_string().contains("request_ref"), "{err}");
    let name: HolderInput = serde_json::from_value(serde_json::json!({"name": "Dewi Lestari"})).unwrap();
    assert_eq!(holders::update_holder(&t.db, &t.key, &actor(), "dewi", &name).await.unwrap().name, "Dewi Lestari");

    let why = RevokeInput { reason: "lost".into(), request_ref: "RM-2".into() };
    let revoked = cards::revoke_holder(&t.db, &t.key, &actor(), "dewi", &why).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(holders::get_holder(&t.db, "dewi").await.unwrap().cards, 0);
    // The badge out on an open visit cannot be revoked; the free one can.
    assert!(cards::revoke_badge(&t.db, &t.key, &actor(), "VB-01", &why).await.is_err());
    cards::revoke_badge(&t.db, &t.key, &actor(), "VB-02", &why).await.unwrap();
    // The host of an open visit keeps their cards.
    assert!(cards::revoke_holder(&t.db, &t.key, &actor(), "198501012010011001", &why).await.is_err());

    let actions: Vec<String> = sqlx::query("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(t.db.pool()).await.unwrap()
        .iter().map(|r| r.try_get(0).unwrap()).collect();
    assert_eq!(actions, [
        "register.import", "holder.create", "card.enrol", "holder.update", "card.revoke", "card.revoke"
    ]);
    assert_eq!(crate::audit::verify(&t.db, &t.key).await.unwrap().problem, None);

    // The revocations are in the export, the revoked card is gone from the holder.
    let text = register::export_text(&t.db, &t.key).await.unwrap();
    let back = loaded(&text);
    assert_eq!(back.register.revoked.len(), 3);
    assert!(back.register.holders.iter().any(|h| h.id == "dewi" && h.cards.is_empty()));
    back.check().unwrap();
});

db_test!(async fn lists_are_paged_and_searched_on_the_server(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let page = PageQuery { q: None, page: Some(2), per_page: Some(2) }.check().unwrap();
    let second = holders::list_holders(&t.db, &page).await.unwrap();
    assert_eq!((second.total, second.items.len()), (3, 1));
    assert_eq!(second.items[0].key, "gone");
    let search = PageQuery { q: Some("SANTOSO".into()), ..Default::default() }.check().unwrap();
    let found = holders::list_holders(&t.db, &search).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].cards, 2);
    // Wildcards are text.
    let percent = PageQuery { q: Some("%".into()), ..Default::default() }.check().unwrap();
    assert_eq!(holders::list_holders(&t.db, &percent).await.unwrap().total, 0);
    assert!(PageQuery { per_page: Some(1000), ..Default::default() }.check().is_err());
    assert!(PageQuery { page: Some(0), ..Default::default() }.check().is_err());

    let room = places::create_room(&t.db, &t.key, &actor(), "Ruang Server").await.unwrap();
    let door = places::update_door(&t.db, &t.key, &actor(), "server-1", &DoorInput {
        name: Some("Pintu Ruang Server".into()), room_id: Some(room.id.clone()), ..Default::default()
    }).await.unwrap();
    assert_eq!(door.room_id.as_deref(), Some(room.id.as_str()));
    let doors = places::list_doors(&t.db, &Page::first()).await.unwrap();
    assert_eq!(doors.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["server-1", "lobby"]);
    places::create_door(&t.db, &t.key, &actor(), &DoorInput { id: Some("gudang".into()), ..Default::default() })
        .await.unwrap();
    assert_eq!(places::door_ids(&t.db).await.unwrap(), ["server-1", "lobby", "gudang"]);
    assert!(register::snapshot(&t.db, &t.key).await.unwrap().register.doors.contains(&"gudang".to_string()));
});

db_test!(async fn visits_lend_a_pool_badge_and_reach_the_list(t) {
    use crate::directory::visits::{self, VisitInput};
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let input = |badge: &str, visitor: &str| VisitInput {
        id: None,
        visitor: visitor.into(),
        host: "siti".into(),
        escort: Some("198501012010011001".into()),
        badge: badge.into(),
        from: None,
        until: "2099-01-01 12:00".into(),
        request_ref: "V-REQ-2".into(),
        approver: "kabid".into(),
    };
    let busy = visits::issue_visit(&t.db, &t.key, &actor(), &input("VB-01", "Rudi")).await.unwrap_err();
    assert!(busy.to_string().contains("open visit V-2026-0001"), "{busy}");
    let nik = visits::issue_visit(&t.db, &t.key, &actor(), &input("VB-02", "Rudi 3201012345678901")).await;
    assert!(nik.is_err(), "never a national ID number");
    let mut visitor_host = input("VB-02", "Rudi");
    visitor_host.host = "nobody".into();
    assert!(visits::issue_visit(&t.db, &t.key, &actor(), &visitor_host).await.is_err());
    let visit = visits::issue_visit(&t.db, &t.key, &actor(), &input("VB-02", "Rudi (PT Maju)")).await.unwrap();
    assert!(visit.id.starts_with("V-"), "{}", visit.id);
    let open = visits::list_visits(&t.db, &Page::first(), true).await.unwrap();
    assert_eq!(open.total, 2);
    assert_eq!(open.items[0].id, visit.id, "newest first");
    let (payload, list_visits) = register::snapshot(&t.db, &t.key).await.unwrap()
        .build_list(&card_key(), 8, Timestamp::now()).unwrap();
    assert_eq!(list_visits.len(), 2);
    assert!(payload.entries.iter().any(|e| e.holder == "VB-02"));
    let ended = visits::end_visit(&t.db, &t.key, &actor(), &visit.id).await.unwrap();
    assert!(ended.ended_at.is_some());
    assert!(visits::end_visit(&t.db, &t.key, &actor(), &visit.id).await.is_err(), "once");
    let (payload, _) = register::snapshot(&t.db, &t.key).await.unwrap()
        .build_list(&card_key(), 9, Timestamp::now()).unwrap();
    assert!(!payload.entries.iter().any(|e| e.holder == "VB-02"), "the badge opens nothing now");
    let why = RevokeInput { reason: "broken".into(), request_ref: "RM-3".into() };
    cards::revoke_badge(&t.db, &t.key, &actor(), "VB-02", &why).await.unwrap();
});

/// Keys of the holders matching `q` (one page of 100).
async fn found(t: &TestDb, q: &str) -> Vec<String> {
    let page = PageQuery {
        q: Some(q.into()),
        per_page: Some(100),
        ..Default::default()
    }
    .check()
    .unwrap();
    let found = holders::list_holders(&t.db, &page).await.unwrap();
    assert_eq!(
        found.total,
        found.items.len() as i64,
        "{q}: total and items agree"
    );
    found.items.into_iter().map(|h| h.key).collect()
}

fn holder_input(key: &str, name: &str, unit: &str, nip: Option<&str>) -> HolderInput {
    HolderInput {
        key: Some(key.into()),
        name: Some(name.into()),
        unit: Some(unit.into()),
        nip: nip.map(String::from),
        kind: Some(pintu::core::list::Role::Staff),
        valid_until: Some("2099-01-01".into()),
        request_ref: Some("R-S".into()),
        approver: Some("kabid".into()),
        ..Default::default()
    }
}

db_test!(async fn holders_are_searched_by_word_prefixes_case_and_accent_insensitive(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    let nip = "199001012015022002";
    holders::create_holder(&t.db, &t.key, &actor(), &holder_input("desi", "Désirée Nuraini", "Bagian Umum", Some(nip)))
        .await.unwrap();
    let budi = "198501012010011001";
    // Imported and created holders alike.
    assert_eq!(found(&t, "bud").await, [budi], "a name prefix");
    assert_eq!(found(&t, "Santoso").await, [budi], "the second word");
    assert_eq!(found(&t, "SANTO budi").await, [budi], "every word, any order, any case");
    assert_eq!(found(&t, "desiree").await, ["desi"], "accents folded in the name");
    assert_eq!(found(&t, "DÉSI nur").await, ["desi"], "and in the search");
    assert_eq!(found(&t, "19900101").await, ["desi"], "a NIP prefix");
    assert_eq!(found(&t, nip).await, ["desi"], "the whole NIP");
    assert_eq!(found(&t, "1985").await, [budi], "an id prefix");
    assert_eq!(found(&t, "umum").await, ["desi"], "the unit");
    assert_eq!(found(&t, "tik").await, [budi], "the unit");
    assert_eq!(found(&t, "bidang tik budi").await, [budi]);
    assert!(found(&t, "antoso").await.is_empty(), "inside a word is not a prefix");
    assert!(found(&t, "budi siti").await.is_empty(), "every word must match");
    assert!(found(&t, "sitix").await.is_empty());
    assert!(found(&t, "%").await.is_empty(), "no word: nothing matches");
    assert_eq!(found(&t, "b").await, [budi, "desi"], "register order (budi, bidang; bagian)");
    assert!(PageQuery { q: Some("a b c d e f g h i".into()), ..Default::default() }.check().is_err());
});

db_test!(async fn a_changed_holder_is_found_by_the_new_words_only_and_a_revoked_one_stays(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    holders::create_holder(&t.db, &t.key, &actor(), &holder_input("dewi", "Dewi Lestari", "Bidang TIK", Some("199201012015022003")))
        .await.unwrap();
    let change: HolderInput = serde_json::from_value(serde_json::json!({
        "name": "Dewi Anggraini", "unit": "Sekretariat", "nip": ""
    })).unwrap();
    holders::update_holder(&t.db, &t.key, &actor(), "dewi", &change).await.unwrap();
    assert_eq!(found(&t, "anggr").await, ["dewi"]);
    assert_eq!(found(&t, "sekretariat dewi").await, ["dewi"]);
    assert!(found(&t, "lestari").await.is_empty(), "the old name is gone");
    assert!(found(&t, "199201").await.is_empty(), "the removed NIP is gone");
    assert!(!found(&t, "tik").await.contains(&"dewi".to_string()), "the old unit is gone");
    assert_eq!(count(&t, "SELECT COUNT(*) FROM holder_terms WHERE term = 'lestari'").await, 0);

    // Revoking takes the cards out of service; the holder stays, and stays found.
    let why = RevokeInput { reason: "moved".into(), request_ref: "RM-9".into() };
    cards::revoke_holder(&t.db, &t.key, &actor(), "siti", &why).await.unwrap();
    let siti = PageQuery { q: Some("siti".into()), ..Default::default() }.check().unwrap();
    let siti = holders::list_holders(&t.db, &siti).await.unwrap();
    assert_eq!((siti.items.len(), siti.items[0].cards), (1, 0));
});

/// Every holder key over all pages of `q`, in order, with the total each page reported.
async fn all_pages(t: &TestDb, q: Option<&str>, selective: Option<i64>) -> (Vec<String>, Vec<i64>) {
    let (mut keys, mut totals) = (Vec::new(), Vec::new());
    for n in 1.. {
        let page = PageQuery {
            q: q.map(String::from),
            page: Some(n),
            per_page: Some(7),
        }
        .check()
        .unwrap();
        let got = match (selective, page.search.as_deref()) {
            (Some(s), Some(words)) => super::holder_search::search_planned(&t.db, &page, words, s)
                .await
                .unwrap(),
            _ => holders::list_holders(&t.db, &page).await.unwrap(),
        };
        totals.push(got.total);
        if got.items.is_empty() {
            break;
        }
        keys.extend(got.items.into_iter().map(|h| h.key));
    }
    (keys, totals)
}

db_test!(async fn paging_visits_every_holder_once_and_the_count_follows_every_write(t) {
    let listed = |t: &TestDb| {
        let db = t.db.clone();
        async move { holders::list_holders(&db, &Page::first()).await.unwrap().total }
    };
    assert_eq!(listed(&t).await, 0);
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    assert_eq!(listed(&t).await, 3, "import");
    for i in 0..20 {
        let unit = if i % 2 == 0 { "Bidang TIK" } else { "Bidang Umum" };
        holders::create_holder(&t.db, &t.key, &actor(), &holder_input(&format!("p-{i:02}"), &format!("Pegawai {i}"), unit, None))
            .await.unwrap();
    }
    assert_eq!(listed(&t).await, 23, "create");
    let mut more = REGISTER.to_string();
    more.push_str(
        "\n[[holder]]\nid = \"baru\"\nname = \"Pegawai Baru\"\nrole = \"staff\"\nvalid_from = 2025-01-01\n\
         valid_until = 2099-01-01\nrequest_ref = \"R\"\napprover = \"kabid\"\n",
    );
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(&more)).await.unwrap();
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(&more)).await.unwrap();
    assert_eq!(listed(&t).await, 24, "a second import adds only the new holder, once");
    // Holders are never deleted: revoking keeps them (and their count).
    let why = RevokeInput { reason: "left".into(), request_ref: "RM-8".into() };
    cards::revoke_holder(&t.db, &t.key, &actor(), "siti", &why).await.unwrap();
    assert_eq!(listed(&t).await, 24, "revoke");

    let (keys, totals) = all_pages(&t, None, None).await;
    assert_eq!(keys.len(), 24);
    assert_eq!(keys.iter().collect::<std::collections::BTreeSet<_>>().len(), 24, "each once");
    assert_eq!(keys[..3], ["198501012010011001", "siti", "gone"], "register order");
    assert_eq!(keys.last().map(String::as_str), Some("baru"));
    assert!(totals.iter().all(|&n| n == 24));
    // A search pages the same way, with either plan.
    let pegawai: Vec<String> = keys.iter().filter(|k| k.starts_with("p-") || *k == "baru").cloned().collect();
    let tik: Vec<String> = (0..20).step_by(2).map(|i| format!("p-{i:02}")).collect();
    for selective in [None, Some(0), Some(1_000_000)] {
        let (got, totals) = all_pages(&t, Some("pegawai"), selective).await;
        assert_eq!(got, pegawai, "{selective:?}");
        assert!(totals.iter().all(|&n| n == 21), "{selective:?} {totals:?}");
        assert_eq!(all_pages(&t, Some("tik peg"), selective).await.0, tik, "{selective:?}");
    }
});

db_test!(async fn holders_without_terms_are_indexed_when_the_migrations_run(t) {
    register::import(&t.db, &t.key, &card_key(), &actor(), &loaded(REGISTER)).await.unwrap();
    // As a database migrated before 0007 holds them: rows, no terms.
    sqlx::query("DELETE FROM holder_terms").execute(t.db.pool()).await.unwrap();
    assert!(found(&t, "santoso").await.is_empty());
    t.db.migrate().await.unwrap();
    assert_eq!(found(&t, "santoso").await, ["198501012010011001"]);
    assert_eq!(found(&t, "left unit").await, ["gone"]);
    let terms = count(&t, "SELECT COUNT(*) FROM holder_terms").await;
    t.db.migrate().await.unwrap();
    assert_eq!(count(&t, "SELECT COUNT(*) FROM holder_terms").await, terms, "once");
});
