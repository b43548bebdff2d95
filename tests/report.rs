//! The access review and the access report, from a temp register and a temp archive with
//! scripted events: each review flag exactly where it belongs, the report's CSV row for row, its
//! HTML escaped, and the HTML printed to PDF by headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pintu::core::card::{CardKey, Uid};
use pintu::office::archive::Archive;
use serde_json::{json, Value};

use crate::common::{pintuctl, text, SITE};

const DOOR: &str = "server-room";

fn masked(uid: &str) -> String {
    let uid: Uid = uid.parse().expect("uid");
    CardKey::from_bytes([7; 32]).hash(&uid).masked()
}

/// A temp dir with `card.key` and `register.toml` (`holders`, badges and visits appended).
fn register(dir: &Path, body: &str) -> PathBuf {
    std::fs::write(dir.join("card.key"), CardKey::from_bytes([7; 32]).to_hex()).expect("card key");
    let path = dir.join("register.toml");
    std::fs::write(
        &path,
        format!(
            "site = \"{SITE}\"\ntime_zone = \"Asia/Jakarta\"\ndoors = [\"{DOOR}\"]\ncard_key_file = \"card.key\"\n\n[list]\nversion = 3\n{body}"
        ),
    )
    .expect("register");
    path
}

fn holder(id: &str, name: &str, role: &str, card: &str, from: &str, until: &str) -> String {
    format!(
        "\n[[holder]]\nid = \"{id}\"\nname = \"{name}\"\nrole = \"{role}\"\ncards = [\"{card}\"]\nvalid_from = {from}\nvalid_until = {until}\nrequest_ref = \"REQ-{id}\"\napprover = \"Kabid TIK\"\n"
    )
}

/// An archive in `dir/archive` holding `events` (completed with schema, id, site and door).
fn archive(dir: &Path, events: &[Value]) -> PathBuf {
    let db = dir.join("archive");
    let a = Archive::open(&db, SITE).expect("open archive");
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        e["schema"] = "pintu.event.v1".into();
        e["id"] = uuid::Uuid::from_u128(i as u128 + 1).to_string().into();
        e["site"] = SITE.into();
        if e.get("door").is_none() {
            e["door"] = DOOR.into();
        }
        if e.get("seq").is_none() {
            e["seq"] = (i as u64 + 1).into();
        }
        let topic = format!("pintu/{SITE}/{}/events", e["door"].as_str().unwrap_or(""));
        let stored = a.store(&topic, e.to_string().as_bytes()).expect("store");
        assert!(
            matches!(stored, pintu::office::archive::Stored::New { .. }),
            "{stored:?}: {e}"
        );
    }
    a.flush().expect("flush");
    db
}

fn granted(time: &str, reader: &str, holder: &str, uid: &str) -> Value {
    json!({"time": time, "kind": "access.granted", "reader": reader, "holder": holder,
           "card": masked(uid), "decision": "grant", "list_version": 3})
}

// ---------------------------------------------------------------------------------------------
// Review
// ---------------------------------------------------------------------------------------------

#[test]
fn review_flags_appear_exactly_where_they_belong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::new();
    let always = ("2025-01-01", "2030-01-01");
    for (id, card, from, until) in [
        ("active", "01000001", always.0, always.1),
        ("dormant", "01000002", always.0, always.1),
        ("never", "01000003", always.0, always.1),
        ("fresh", "01000004", "2026-06-15", always.1),
        ("expired", "01000005", always.0, "2026-06-01"),
        ("expiring", "01000006", always.0, "2026-07-15"),
        ("dup", "0D0D0D0D", always.0, always.1),
    ] {
        body.push_str(&holder(
            id,
            &format!("Holder {id}"),
            "staff",
            card,
            from,
            until,
        ));
    }
    body.push_str(
        "\n[[holder]]\nid = \"noref\"\nname = \"No Reference\"\nrole = \"escort\"\ncards = [\"01000007\"]\nvalid_from = 2025-01-01\nvalid_until = 2030-01-01\nrequest_ref = \"\"\napprover = \" \"\n",
    );
    body.push_str(
        r#"
[[badge]]
id = "badge-01"
card = "0B000001"

[[badge]]
id = "badge-02"
card = "0d:0d:0d:0d"

[[badge]]
id = "badge-03"
card = "0B000003"

[[visit]]
id = "VIS-1"
visitor = "Andi"
host = "active"
badge = "badge-01"
from = 2026-06-29T08:00:00
until = 2026-06-29T17:00:00
request_ref = "VIS-REQ-1"
approver = "Kasi"

[[visit]]
id = "VIS-2"
visitor = "Rina"
host = "active"
badge = "badge-03"
from = 2026-06-29T08:00:00
until = 2026-06-29T17:00:00
request_ref = "VIS-REQ-2"
approver = "Kasi"
ended_at = 2026-06-29T16:00:00

[[visit]]
id = "VIS-3"
visitor = "Sari"
host = "active"
badge = "badge-03"
from = 2026-06-30T08:00:00
until = 2026-07-01T17:00:00
request_ref = "VIS-REQ-3"
approver = "Kasi"
"#,
    );
    let reg = register(dir.path(), &body);
    // The archive starts on 1 January 2026 (a denied tap); the review is on 30 June 2026.
    let db = archive(
        dir.path(),
        &[
            json!({"time": "2026-01-01T01:00:00Z", "kind": "access.denied", "reader": "entry",
                   "card": "c:ffffffff", "decision": "deny", "reason": "unknown_card"}),
            granted("2026-03-01T02:00:00Z", "entry", "dormant", "01000002"),
            granted("2026-06-20T02:00:00Z", "entry", "active", "01000001"),
            granted("2026-06-25T02:00:00Z", "entry", "expiring", "01000006"),
            granted("2026-06-25T03:00:00Z", "entry", "noref", "01000007"),
            granted("2026-06-26T03:00:00Z", "entry", "dup", "0D0D0D0D"),
            // A denied tap is not a use.
            json!({"time": "2026-06-27T01:00:00Z", "kind": "access.denied", "reader": "entry",
                   "holder": "never", "card": masked("01000003"), "decision": "deny",
                   "reason": "outside_schedule"}),
        ],
    );
    let args = |extra: &[&str]| {
        let mut a = vec![
            "review".to_string(),
            "--register".into(),
            reg.display().to_string(),
            "--db".into(),
            db.display().to_string(),
            "--at".into(),
            "2026-06-30T12:00:00".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let out = pintuctl(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "review failed: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let review: Value = serde_json::from_str(&run(&["--json"])).expect("review JSON");
    let flags: Vec<(String, Vec<String>)> = review["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("").to_string(),
                r["flags"]
                    .as_array()
                    .expect("flags")
                    .iter()
                    .map(|f| f.as_str().unwrap_or("").to_string())
                    .collect(),
            )
        })
        .collect();
    let want: Vec<(String, Vec<String>)> = [
        ("active", vec![]),
        ("dormant", vec!["dormant"]),
        ("never", vec!["dormant"]),
        ("fresh", vec![]),
        ("expired", vec!["expired"]),
        ("expiring", vec!["expiring"]),
        ("dup", vec!["card_enrolled_twice"]),
        ("noref", vec!["no_request_ref", "no_approver"]),
        ("badge-01", vec!["badge_not_returned"]),
        ("badge-02", vec!["card_enrolled_twice"]),
        ("badge-03", vec![]),
    ]
    .into_iter()
    .map(|(id, f)| (id.to_string(), f.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(flags, want);

    let row = |id: &str| {
        review["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["id"] == id))
            .cloned()
            .expect("row")
    };
    assert_eq!(row("active")["last_used"], "2026-06-20T02:00:00Z");
    assert_eq!(row("active")["last_door"], DOOR);
    assert_eq!(row("active")["card"], masked("01000001"));
    assert!(
        row("never").get("last_used").is_none(),
        "a denied tap is not a use"
    );
    assert_eq!(
        row("never")["notes"],
        json!(["never used since 2026-01-01 08:00:00"])
    );
    assert_eq!(
        row("dormant")["notes"],
        json!(["last used 2026-03-01 09:00:00"])
    );
    assert_eq!(
        row("dup")["notes"],
        json!([format!(
            "card {} is also enrolled on badge badge-02",
            masked("0D0D0D0D")
        )])
    );
    assert_eq!(
        row("badge-01")["notes"],
        json!(["visit VIS-1 (Andi) ended 2026-06-29 17:00:00 and the badge was not returned"])
    );
    assert_eq!(
        row("dup")["last_used"],
        row("badge-02")["last_used"],
        "same card"
    );

    // Shorter periods move the flags.
    let short: Value = serde_json::from_str(&run(&[
        "--json",
        "--dormant-days",
        "5",
        "--expiring-days",
        "1400",
    ]))
    .expect("JSON");
    let has = |id: &str, flag: &str| {
        short["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["id"] == id))
            .is_some_and(|r| {
                r["flags"]
                    .as_array()
                    .is_some_and(|f| f.contains(&json!(flag)))
            })
    };
    assert!(has("active", "dormant") && has("fresh", "dormant") && !has("dup", "dormant"));
    assert!(has("active", "expiring") && !has("expired", "expiring"));

    // For people: a table, and the notes of flagged rows.
    let table = run(&[]);
    assert!(
        table.starts_with("Access review, site site-a, 2026-06-30 12:00:00; dormant: unused > 90 days, expiring: within 30 days\n"),
        "{table}"
    );
    assert!(table.contains("HOLDER"), "{table}");
    assert!(table.contains("badge badge-01"), "{table}");
    assert!(table.contains("\n8 of 11 rows flagged.\n"), "{table}");
    // CSV: a header and one row per holder card and badge.
    let csv = run(&["--csv"]);
    assert_eq!(csv.lines().count(), 12, "{csv}");
    assert!(csv.starts_with("kind,id,name,unit,role,card,doors,valid_from,valid_until,last_used,last_door,request_ref,approver,flags,notes\r\n"));
    assert!(
        csv.contains("\r\nholder,noref,No Reference,,escort,"),
        "{csv}"
    );
}

#[test]
fn review_without_an_archive_has_no_dormancy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = register(
        dir.path(),
        &holder("a", "A", "staff", "01020304", "2020-01-01", "2030-01-01"),
    );
    let out = pintuctl(&["review", "--register", &reg.display().to_string(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["rows"][0]["flags"], json!([]));
    assert_eq!(v["archive_events"], 0);
}

/// Issue 16: review.rs used to read the register with its own lenient schema, so a register
/// with `[[badge]] name = …` was reviewed by `pintuctl review` and refused by `pintuctl list
/// badges`. One parser now: both refuse it, with the same message naming file, line and key.
#[test]
fn review_and_list_read_the_register_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = register(
        dir.path(),
        &format!(
            "{}\n[[badge]]\nid = \"VB-01\"\ncard = \"0A0B0C0D\"\nname = \"Visitor one\"\n",
            holder("a", "A", "staff", "01020304", "2020-01-01", "2030-01-01")
        ),
    );
    let reg = reg.display().to_string();
    let review = pintuctl(&["review", "--register", &reg]);
    let list = pintuctl(&["list", "badges", "--register", &reg]);
    for (what, out) in [("review", &review), ("list badges", &list)] {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("register.toml:22: badge[0].name: unknown key"),
            "{what}: {}",
            text(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

const VISITOR: &str = "Andi, PT \"Nusantara\"";

/// A scripted day, 4 May 2026 in Asia/Jakarta (UTC+7): an escorted visit, staff in and out,
/// two denials (one of a holder named `<script>…`), a forced door, a second visit still open
/// at the end of the day (with an overstay alarm); one event before and one after the day.
fn scripted_day(dir: &Path) -> (PathBuf, PathBuf) {
    let mut body = String::new();
    body.push_str(&holder(
        "budi",
        "Budi Santoso",
        "escort",
        "04A1B2C3D4E5F6",
        "2025-01-01",
        "2030-01-01",
    ));
    body.push_str(&holder(
        "siti",
        "Siti Rahayu",
        "staff",
        "04B7C8D9E0F1A2",
        "2025-01-01",
        "2030-01-01",
    ));
    body.push_str(&holder(
        "vendor",
        "<script>alert(1)</script>",
        "staff",
        "DEADBEEF",
        "2025-01-01",
        "2025-06-30",
    ));
    body.push_str(&holder(
        "badge-07",
        "Visitor badge 07",
        "visitor",
        "0A0B0C07",
        "2025-01-01",
        "2030-01-01",
    ));
    body.push_str(&holder(
        "badge-08",
        "Visitor badge 08",
        "visitor",
        "0A0B0C08",
        "2025-01-01",
        "2030-01-01",
    ));
    let reg = register(dir, &body);
    let budi = "04A1B2C3D4E5F6";
    let siti = "04B7C8D9E0F1A2";
    let visitor_grant = |time: &str, badge: &str, uid: &str, visit: &str, visitor: &str| {
        let mut g = granted(time, "entry", badge, uid);
        g["visit"] = visit.into();
        g["visitor"] = visitor.into();
        g["escort"] = "budi".into();
        g
    };
    let db = archive(
        dir,
        &[
            json!({"time": "2026-05-03T16:59:59Z", "kind": "lock.secured"}),
            granted("2026-05-04T01:00:00Z", "entry", "budi", budi),
            visitor_grant(
                "2026-05-04T01:00:05Z",
                "badge-07",
                "0A0B0C07",
                "VIS-1",
                VISITOR,
            ),
            json!({"time": "2026-05-04T01:00:05.5Z", "kind": "lock.released"}),
            granted("2026-05-04T01:30:00Z", "entry", "siti", siti),
            json!({"time": "2026-05-04T02:00:00Z", "kind": "access.denied", "reader": "entry",
                   "card": "c:ffffffff", "decision": "deny", "reason": "unknown_card",
                   "list_version": 3}),
            json!({"time": "2026-05-04T02:10:00Z", "kind": "door.forced_open",
                   "detail": "the door opened while locked"}),
            granted("2026-05-04T03:00:00Z", "exit", "siti", siti),
            json!({"time": "2026-05-04T03:15:00Z", "kind": "visit.closed", "reader": "exit",
                   "holder": "badge-07", "card": masked("0A0B0C07"), "visit": "VIS-1",
                   "visitor": VISITOR, "escort": "budi", "entered_at": "2026-05-04T01:00:05Z",
                   "exited_at": "2026-05-04T03:15:00Z", "duration_s": 8095}),
            granted("2026-05-04T03:16:00Z", "exit", "budi", budi),
            json!({"time": "2026-05-04T04:00:00Z", "kind": "access.denied", "reader": "entry",
                   "holder": "vendor", "card": masked("DEADBEEF"), "decision": "deny",
                   "reason": "expired", "list_version": 3}),
            granted("2026-05-04T05:00:00Z", "entry", "budi", budi),
            visitor_grant(
                "2026-05-04T05:00:03Z",
                "badge-08",
                "0A0B0C08",
                "VIS-2",
                "Rina",
            ),
            json!({"time": "2026-05-04T06:00:00Z", "kind": "visit.overstay", "reason": "overstay",
                   "holder": "badge-08", "card": masked("0A0B0C08"), "visit": "VIS-2",
                   "visitor": "Rina", "escort": "budi", "entered_at": "2026-05-04T05:00:03Z",
                   "detail": "visit VIS-2 ended at 2026-05-04T06:00:00Z"}),
            json!({"time": "2026-05-04T17:00:00Z", "kind": "visit.closed", "reader": "exit",
                   "holder": "badge-08", "card": masked("0A0B0C08"), "visit": "VIS-2",
                   "visitor": "Rina", "escort": "budi", "entered_at": "2026-05-04T05:00:03Z",
                   "exited_at": "2026-05-04T17:00:00Z", "duration_s": 43197}),
        ],
    );
    (reg, db)
}

fn report(reg: &Path, db: &Path, format: &str, out: &Path) {
    let o = pintuctl(&[
        "report",
        "--register",
        &reg.display().to_string(),
        "--db",
        &db.display().to_string(),
        "--from",
        "2026-05-04",
        "--to",
        "2026-05-05",
        "--format",
        format,
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "report failed: {}", text(&o.stderr));
}

#[test]
fn report_csv_for_a_scripted_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reg, db) = scripted_day(dir.path());
    let out = dir.path().join("day.csv");
    report(&reg, &db, "csv", &out);
    let csv = std::fs::read_to_string(&out).expect("csv");
    let (c07, c08, dead) = (masked("0A0B0C07"), masked("0A0B0C08"), masked("DEADBEEF"));
    let (cb, cs) = (masked("04A1B2C3D4E5F6"), masked("04B7C8D9E0F1A2"));
    let want = [
        "record,time,door,reader,holder,name,card,visit,visitor,escort,escort_name,entered_at,exited_at,duration_s,kind,reason,detail,count".to_string(),
        format!("visit,2026-05-04T10:15:00+07:00,server-room,exit,badge-07,,{c07},VIS-1,\"Andi, PT \"\"Nusantara\"\"\",budi,Budi Santoso,2026-05-04T08:00:05+07:00,2026-05-04T10:15:00+07:00,8095,,,,"),
        format!("visit_open,2026-05-04T12:00:03+07:00,server-room,,badge-08,,{c08},VIS-2,Rina,budi,Budi Santoso,2026-05-04T12:00:03+07:00,,,,,,"),
        format!("entry,2026-05-04T08:00:00+07:00,server-room,entry,budi,Budi Santoso,{cb},,,,,,,,,,,"),
        format!("entry,2026-05-04T08:30:00+07:00,server-room,entry,siti,Siti Rahayu,{cs},,,,,,,,,,,"),
        format!("exit,2026-05-04T10:00:00+07:00,server-room,exit,siti,Siti Rahayu,{cs},,,,,,,,,,,"),
        format!("exit,2026-05-04T10:16:00+07:00,server-room,exit,budi,Budi Santoso,{cb},,,,,,,,,,,"),
        format!("entry,2026-05-04T12:00:00+07:00,server-room,entry,budi,Budi Santoso,{cb},,,,,,,,,,,"),
        "denial,2026-05-04T09:00:00+07:00,server-room,entry,,,c:ffffffff,,,,,,,,,unknown_card,,".to_string(),
        format!("denial,2026-05-04T11:00:00+07:00,server-room,entry,vendor,<script>alert(1)</script>,{dead},,,,,,,,,expired,,"),
        "alarm,2026-05-04T09:10:00+07:00,server-room,,,,,,,,,,,,door.forced_open,,the door opened while locked,".to_string(),
        "alarm,2026-05-04T13:00:00+07:00,server-room,,badge-08,Visitor badge 08,,,Rina,budi,,,,,visit.overstay,overstay,visit VIS-2 ended at 2026-05-04T06:00:00Z,".to_string(),
        "summary,,,,,,,,,,,,,,events,,,13".to_string(),
        "summary,,,,,,,,,,,,,,entries,,,3".to_string(),
        "summary,,,,,,,,,,,,,,exits,,,2".to_string(),
        "summary,,,,,,,,,,,,,,visits_closed,,,1".to_string(),
        "summary,,,,,,,,,,,,,,visits_open,,,1".to_string(),
        "summary,,,,,,,,,,,,,,denials,,,2".to_string(),
        "summary,,,,,,,,,,,,,,denials,expired,,1".to_string(),
        "summary,,,,,,,,,,,,,,denials,unknown_card,,1".to_string(),
        "summary,,,,,,,,,,,,,,alarms,,,2".to_string(),
        "summary,,,,,,,,,,,,,,alarms,door.forced_open,,1".to_string(),
        "summary,,,,,,,,,,,,,,alarms,visit.overstay,,1".to_string(),
        "summary,,,,,,,,,,,,,,missing_events,,,0".to_string(),
    ];
    let got: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(got.last(), Some(&""), "every record ends with CRLF");
    assert_eq!(
        got[..got.len() - 1],
        want.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );

    // One door that has no events: empty sections, zero counts.
    let o = pintuctl(&[
        "report",
        "--register",
        &reg.display().to_string(),
        "--db",
        &db.display().to_string(),
        "--from",
        "2026-05-04",
        "--to",
        "2026-05-05",
        "--door",
        "other",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let other = text(&o.stdout);
    assert!(
        other.contains("summary,,,,,,,,,,,,,,events,,,0\r\n"),
        "{other}"
    );
    assert!(!other.contains("\r\nentry,"), "{other}");
}

#[test]
fn report_html_is_escaped_and_self_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reg, db) = scripted_day(dir.path());
    let out = dir.path().join("day.html");
    report(&reg, &db, "html", &out);
    let html = std::fs::read_to_string(&out).expect("html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is escaped"
    );
    assert!(
        !html.to_lowercase().contains("<script"),
        "no script element at all"
    );
    assert!(html.contains("Andi, PT &quot;Nusantara&quot;"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );
    assert!(html.contains("@media print") && html.contains("size: A4"));
    assert!(html.contains("thead { display: table-header-group; }"));
    // Times in the site's time zone; the header names it.
    assert!(html.contains("2026-05-04 00:00:00 to 2026-05-05 00:00:00"));
    assert!(html.contains("Asia/Jakarta (UTC+07:00)"));
    assert!(
        html.contains("<td>2026-05-04 10:15:00</td>"),
        "visit exit, local time"
    );
    assert!(html.contains("<em>still inside</em>"), "the open visit");
    assert!(html.contains("2h 14m 55s"), "the visit's duration");
}

/// Headless Chromium prints the report to a PDF (A4, the page's print CSS).
#[test]
fn chromium_prints_the_report_to_pdf() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.is_file(),
        "/usr/bin/chromium is missing: this test needs Debian's chromium package \
         (scripts/test installs it through PINTU_TEST_PACKAGES; by hand: apt-get install chromium)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (reg, db) = scripted_day(dir.path());
    let html = dir.path().join("day.html");
    report(&reg, &db, "html", &html);
    let pdf = dir.path().join("day.pdf");
    let profile = dir.path().join("chromium-profile");
    let log = std::fs::File::create(dir.path().join("chromium.log")).expect("log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 90 s; log:\n{}",
                std::fs::read_to_string(dir.path().join("chromium.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = std::fs::read(&pdf).unwrap_or_default();
    assert!(
        status.success() && bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "no PDF ({status}, {} bytes); log:\n{}",
        bytes.len(),
        std::fs::read_to_string(dir.path().join("chromium.log")).unwrap_or_default()
    );
    // To look at the output: PINTU_TEST_KEEP_REPORT=/some/dir cargo test … chromium
    if let Some(keep) = std::env::var_os("PINTU_TEST_KEEP_REPORT") {
        let keep = PathBuf::from(keep);
        let _ = std::fs::copy(&html, keep.join("day.html"));
        let _ = std::fs::copy(&pdf, keep.join("day.pdf"));
    }
    // Sections break pages: the summary, then one page per section at least.
    let pages = bytes
        .windows(b"/Type /Page\n".len())
        .filter(|w| w.starts_with(b"/Type /Page") && !w.starts_with(b"/Type /Pages"))
        .count();
    assert!(pages >= 5, "expected a page per section, found {pages}");
}
