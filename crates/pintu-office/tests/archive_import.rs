//! Import of the sled archive (`pintuctl archive --db DIR`) into the office database, on both
//! engines: a sled archive made by today's code comes in fully, byte for byte, with its gaps;
//! what the database already had counts as duplicates or conflicts; a second import changes
//! nothing; an archive of another site is refused; the import is in the audit trail.

use std::path::Path;
use std::time::{Duration, Instant};

use pintu_office::archive::{self, ArchiveError, ImportReport, Message};
use pintu_office::audit::{self, AuditActor};
use pintu_office::db_test;
use pintu_testkit::SITE;

use crate::archive::{event, topic};

/// A sled archive written by today's code: door-1 1..=50 without 20..=22, door-2 1..=10, one
/// duplicate delivery, one conflicting door-1 #7 and one message that is not an event (the last
/// two kept in sled's `rejected` tree).
fn make_sled(dir: &Path) -> Vec<(String, u64, String)> {
    let sled = pintu::office::archive::Archive::open(dir, SITE).expect("open sled archive");
    let mut sent = Vec::new();
    let door1 = (1..=50).filter(|s| !(20..=22).contains(s));
    for (door, seq) in door1
        .map(|s| ("door-1", s))
        .chain((1..=10).map(|s| ("door-2", s)))
    {
        let body = event(door, seq);
        sled.store(&topic(door), body.as_bytes()).expect("store");
        sent.push((door.to_string(), seq, body));
    }
    sled.store(&topic("door-1"), event("door-1", 5).as_bytes())
        .expect("store");
    let mut conflicting: serde_json::Value =
        serde_json::from_str(&event("door-1", 7)).expect("json");
    conflicting["kind"] = "access.granted".into();
    sled.store(&topic("door-1"), conflicting.to_string().as_bytes())
        .expect("store");
    sled.store(&topic("door-1"), b"not json").expect("store");
    sled.flush().expect("flush");
    sent
}

/// Imports, waiting for sled's lock when the writer of the archive has only just let go of it.
async fn import(
    t: &pintu_office::testing::TestDb,
    site: &str,
    dir: &Path,
) -> Result<ImportReport, ArchiveError> {
    let actor = AuditActor::cli("root");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match archive::import_sled(&t.db, &t.key, &actor, site, dir).await {
            Err(ArchiveError::Sled(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            r => return r,
        }
    }
}

db_test!(async fn a_sled_archive_imports_fully(t) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled_dir = dir.path().join("archive");
    let sent = make_sled(&sled_dir);
    // The ingest already has door-2 1..=5 (the same bytes) and a different door-2 #6.
    let mut had: Vec<Message> = (1..=5)
        .map(|s| Message { topic: topic("door-2"), payload: event("door-2", s).into_bytes() })
        .collect();
    let mut other: serde_json::Value = serde_json::from_str(&event("door-2", 6)).expect("json");
    other["kind"] = "access.granted".into();
    had.push(Message { topic: topic("door-2"), payload: other.to_string().into_bytes() });
    archive::store_batch(&t.db, SITE, "a", &had).await.expect("store");

    let report = import(&t, SITE, &sled_dir).await.expect("import");
    assert_eq!(
        report,
        ImportReport {
            site: SITE.into(), read: 57, imported: 51, duplicates: 5, conflicts: 1, rejected: 0,
            rejected_read: 2, rejected_imported: 2, doors: 2,
        }
    );
    // The sled archive's kept messages are in `ingest_rejected`, as it kept them.
    let kept = sqlx::query_as::<_, (String, String, String)>(
        "SELECT topic, reason, payload FROM ingest_rejected WHERE instance = 'import' \
         ORDER BY at_ms, reason",
    )
    .fetch_all(t.db.pool())
    .await
    .expect("rejected rows");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|(t, _, _)| t == &topic("door-1")), "{kept:?}");
    assert!(kept[0].1.contains("conflict") && kept[0].2.contains("access.granted"), "{kept:?}");
    assert_eq!(kept[1].2, "not json");
    let s = archive::stats(&t.db).await.expect("stats");
    assert_eq!(
        s.doors.iter().map(|d| (d.door.as_str(), d.events, d.first, d.last)).collect::<Vec<_>>(),
        vec![("door-1", 47, 1, 50), ("door-2", 10, 1, 10)]
    );
    let gaps = archive::gaps(&t.db).await.expect("gaps");
    assert_eq!(
        gaps.iter().map(|g| (g.door.as_str(), g.from, g.to)).collect::<Vec<_>>(),
        vec![("door-1", 20, 22)]
    );
    // Byte for byte, except the conflict: the database's first event is kept.
    for (door, seq, body) in &sent {
        let got = archive::event(&t.db, door, i64::try_from(*seq).expect("seq"))
            .await
            .expect("event")
            .expect("archived");
        if (door.as_str(), *seq) == ("door-2", 6) {
            assert_eq!(got.body, other.to_string());
        } else {
            assert_eq!(&got.body, body);
        }
    }
    let trail = audit::list(&t.db, 0, 100).await.expect("audit");
    let imported = trail.iter().find(|r| r.action == "archive.import").expect("audited");
    assert!(imported.after_json.as_deref().unwrap_or("").contains("\"imported\":51"));

    // Again: nothing new.
    let again = import(&t, SITE, &sled_dir).await.expect("import again");
    assert_eq!((again.imported, again.duplicates, again.conflicts), (0, 56, 1));
    assert_eq!((again.rejected_read, again.rejected_imported), (2, 0));
    assert_eq!(archive::stats(&t.db).await.expect("stats").doors[0].events, 47);

    // Another site's archive is refused.
    let refused = import(&t, "other-site", &sled_dir).await.unwrap_err();
    assert!(matches!(refused, ArchiveError::WrongSite { .. }), "{refused}");
});

db_test!(async fn a_missing_sled_archive_is_an_error(t) {
    let dir = tempfile::tempdir().expect("tempdir");
    let actor = AuditActor::cli("root");
    let err = archive::import_sled(&t.db, &t.key, &actor, SITE, &dir.path().join("none"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no archive here"), "{err}");
});
