//! The store: atomic list swap under concurrent lookups, rebuild from the list file when the sled
//! directory is gone or damaged, the event outbox, and a list file that no longer verifies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ScopedJoinHandle;

use jiff::Timestamp;
use pintu::core::card::{CardHash, Uid};
use pintu::core::event::{EventDraft, EventKind};
use pintu::core::list::{Entry, TrustPolicy, TrustedKey};
use pintu::door::store::{OpenReport, Store, StoreError, LIST_COPY_FILE, LIST_FILE, STORE_DIR};

use crate::common::{Site, DOOR, SITE};

fn open(site: &Site, policy: &TrustPolicy) -> (Store, OpenReport) {
    Store::open(&site.store_options(), policy).expect("open store")
}

fn uid(i: usize) -> String {
    format!("{:08X}", 0x0A00_0000 + i)
}

fn card(site: &Site, i: usize) -> CardHash {
    site.card_key.hash(&uid(i).parse::<Uid>().expect("uid"))
}

/// `n` entries whose holders are `h{i}-v{version}`.
fn entries(site: &Site, n: usize, version: u64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            site.entry(
                &uid(i),
                &format!("h{i}-v{version}"),
                "2020-01-01T00:00:00Z",
                "2099-01-01T00:00:00Z",
            )
        })
        .collect()
}

fn signed_list(site: &Site, version: u64, n: usize) -> Vec<u8> {
    site.sign(&site.payload(version, entries(site, n, version)))
}

fn apply(store: &Store, site: &Site, bytes: &[u8]) -> u64 {
    store
        .verify_and_apply(bytes, &site.policy(), Timestamp::now())
        .expect("store")
        .expect("list accepted")
        .version
}

fn holder(store: &Store, site: &Site, i: usize) -> Option<String> {
    store
        .active()?
        .lookup(&card(site, i))
        .expect("lookup")
        .map(|e| e.holder)
}

/// Reasons of the report's events of `kind`.
fn reasons(report: &OpenReport, kind: EventKind) -> Vec<String> {
    report
        .events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect()
}

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Names in the state dir starting with `store.damaged-`.
fn damaged_dirs(site: &Site) -> Vec<PathBuf> {
    std::fs::read_dir(site.state_dir())
        .expect("state dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{STORE_DIR}.damaged-")))
        })
        .collect()
}

/// Deterministic noise (xorshift), so a failure can be reproduced.
pub(crate) fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

// --- (a) atomic swap ------------------------------------------------------------------------------

#[test]
fn lookups_during_list_swaps_see_one_whole_version_and_only_move_forward() {
    const CARDS: usize = 2000;
    const READERS: usize = 3;
    let site = Site::new();
    let (store, _) = open(&site, &site.policy());
    // Sign everything up front: the main thread only applies while readers run.
    let lists: Vec<Vec<u8>> = (1..=3).map(|v| signed_list(&site, v, CARDS)).collect();
    assert_eq!(apply(&store, &site, &lists[0]), 1);
    let cards: Vec<CardHash> = (0..CARDS).map(|i| card(&site, i)).collect();

    let done = AtomicBool::new(false);
    // Whole passes done by each reader.
    let passes: Vec<AtomicUsize> = (0..READERS).map(|_| AtomicUsize::new(0)).collect();
    // Passes during which the active list changed under the reader's snapshot.
    let straddled = AtomicUsize::new(0);

    let seen: Vec<BTreeSet<u64>> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (done, passes, straddled, store, cards) =
                    (&done, &passes, &straddled, &store, &cards);
                s.spawn(move || {
                    let mut seen = BTreeSet::new();
                    let mut last = 0;
                    loop {
                        // Read `done` before the snapshot: the pass after it is set sees v3.
                        let finished = done.load(Ordering::SeqCst);
                        let snapshot: Arc<_> = store.active().expect("a list is always active");
                        let v = snapshot.meta.version;
                        assert!(v >= last, "version went backwards: v{last} then v{v}");
                        last = v;
                        assert_eq!(snapshot.meta.entry_count, CARDS);
                        for (i, card) in cards.iter().enumerate() {
                            let entry = snapshot
                                .lookup(card)
                                .expect("lookup")
                                .unwrap_or_else(|| panic!("card {i} missing from list v{v}"));
                            assert_eq!(
                                entry.holder,
                                format!("h{i}-v{v}"),
                                "card {i}: snapshot of v{v} answered from another list"
                            );
                        }
                        if store.active().map(|a| a.meta.version) != Some(v) {
                            straddled.fetch_add(1, Ordering::SeqCst);
                        }
                        drop(snapshot);
                        seen.insert(v);
                        passes[r].fetch_add(1, Ordering::SeqCst);
                        if finished {
                            return seen;
                        }
                    }
                })
            })
            .collect();

        // Readers are looping (a reader that failed ends the wait, and join reports why).
        let fewest = || {
            passes
                .iter()
                .map(|p| p.load(Ordering::SeqCst))
                .min()
                .unwrap()
        };
        let wait_until_every_reader_passed = |target: usize, readers: &[ScopedJoinHandle<_>]| {
            while fewest() < target && !readers.iter().any(|r| r.is_finished()) {
                std::thread::yield_now();
            }
        };
        wait_until_every_reader_passed(1, &readers);
        assert_eq!(apply(&store, &site, &lists[1]), 2);
        // Let every reader get through another pass before the next swap.
        wait_until_every_reader_passed(fewest() + 1, &readers);
        assert_eq!(apply(&store, &site, &lists[2]), 3);
        done.store(true, Ordering::SeqCst);
        readers
            .into_iter()
            .map(|r| r.join().expect("reader thread"))
            .collect()
    });

    for (r, versions) in seen.iter().enumerate() {
        assert!(versions.contains(&1), "reader {r} saw {versions:?}");
        assert_eq!(
            versions.last(),
            Some(&3),
            "reader {r} ended on the newest list"
        );
    }
    // The swaps really happened under running lookups (a reader held a snapshot across one).
    assert!(
        straddled.load(Ordering::SeqCst) >= 1,
        "no reader held a snapshot across a swap"
    );
    for i in [0, CARDS / 2, CARDS - 1] {
        assert_eq!(holder(&store, &site, i), Some(format!("h{i}-v3")));
    }
}

#[test]
fn snapshot_held_across_a_swap_keeps_answering_from_its_own_list() {
    let site = Site::new();
    let (store, _) = open(&site, &site.policy());
    apply(&store, &site, &signed_list(&site, 1, 3));
    let old = store.active().expect("v1 active");
    // The apply must not pull the old list out from under this snapshot.
    apply(&store, &site, &signed_list(&site, 2, 3));
    for i in 0..3 {
        let from_old = old
            .lookup(&card(&site, i))
            .expect("lookup")
            .map(|e| e.holder);
        assert_eq!(from_old, Some(format!("h{i}-v1")));
        assert_eq!(holder(&store, &site, i), Some(format!("h{i}-v2")));
    }
    assert_eq!(old.meta.version, 1);
}

// --- (b), (c) rebuild -----------------------------------------------------------------------------

/// A store holding list v1 with three cards, closed again. Returns the list bytes.
fn store_with_v1(site: &Site) -> Vec<u8> {
    let (store, _) = open(site, &site.policy());
    let bytes = signed_list(site, 1, 3);
    apply(&store, site, &bytes);
    store.flush_blocking().expect("flush");
    bytes
}

/// Checks the reopened store serves list v1 and still refuses to go back.
fn assert_serves_v1(store: &Store, site: &Site, v1: &[u8]) {
    let active = store.active().expect("list v1 active after rebuild");
    assert_eq!(active.meta.version, 1);
    assert_eq!(active.meta.entry_count, 3);
    for i in 0..3 {
        assert_eq!(holder(store, site, i), Some(format!("h{i}-v1")));
    }
    assert_eq!(holder(store, site, 99), None);
    assert_eq!(store.highest_version(), 1);
    let replay = store
        .verify_and_apply(v1, &site.policy(), Timestamp::now())
        .expect("store");
    assert_eq!(replay.unwrap_err().code(), "replay");
    assert_eq!(
        std::fs::read(site.state_dir().join(LIST_FILE)).unwrap(),
        v1,
        "the list file is the source of truth and is not rewritten"
    );
}

#[test]
fn deleted_sled_dir_is_rebuilt_from_the_list_file() {
    let site = Site::new();
    let v1 = store_with_v1(&site);
    std::fs::remove_dir_all(site.state_dir().join(STORE_DIR)).expect("delete sled dir");

    let (store, report) = open(&site, &site.policy());
    let rebuilt = report
        .events
        .iter()
        .find(|e| e.kind == EventKind::StoreRebuilt && e.reason.as_deref() == Some("cache_rebuilt"))
        .unwrap_or_else(|| panic!("no store.rebuilt/cache_rebuilt in {:?}", report.events));
    assert_eq!(rebuilt.list_version, Some(1));
    assert!(
        damaged_dirs(&site).is_empty(),
        "nothing to move aside when the dir is just gone"
    );
    assert_serves_v1(&store, &site, &v1);
}

#[test]
fn corrupted_sled_dir_is_moved_aside_and_rebuilt_without_panicking() {
    let site = Site::new();
    let v1 = store_with_v1(&site);
    let sled_dir = site.state_dir().join(STORE_DIR);
    let files = files_under(&sled_dir);
    assert!(!files.is_empty());
    for (n, f) in files.iter().enumerate() {
        let len = std::fs::metadata(f).unwrap().len() as usize;
        std::fs::write(f, garbage(len.max(64), 0x9E37_79B9_7F4A_7C15 + n as u64)).unwrap();
    }

    let opened = std::panic::catch_unwind(|| Store::open(&site.store_options(), &site.policy()));
    let (store, report) = opened
        .expect("Store::open must not panic on a damaged store")
        .expect("Store::open rebuilds instead of failing");
    let rebuilt = reasons(&report, EventKind::StoreRebuilt);
    assert!(
        rebuilt.contains(&"open_failed".to_string()) && rebuilt.contains(&"cache_rebuilt".into()),
        "{:?}",
        report.events
    );
    let aside = damaged_dirs(&site);
    assert_eq!(aside.len(), 1, "damaged dir moved aside: {aside:?}");
    let moved: Vec<_> = files_under(&aside[0]);
    assert_eq!(moved.len(), files.len(), "kept for inspection, not deleted");
    let detail = report
        .events
        .iter()
        .find(|e| e.reason.as_deref() == Some("open_failed"))
        .and_then(|e| e.detail.as_deref())
        .unwrap_or_default();
    assert!(
        detail.contains(&aside[0].display().to_string()),
        "the event says where the damaged store went: {detail}"
    );
    assert_serves_v1(&store, &site, &v1);
}

#[test]
fn truncated_sled_files_are_rebuilt_from_the_list_file() {
    let site = Site::new();
    let v1 = store_with_v1(&site);
    for f in files_under(&site.state_dir().join(STORE_DIR)) {
        std::fs::write(&f, b"").unwrap();
    }
    let opened = std::panic::catch_unwind(|| Store::open(&site.store_options(), &site.policy()));
    let (store, report) = opened.expect("no panic").expect("rebuilds");
    assert!(
        reasons(&report, EventKind::StoreRebuilt).contains(&"cache_rebuilt".to_string()),
        "{:?}",
        report.events
    );
    assert_serves_v1(&store, &site, &v1);
}

// --- (d) outbox -----------------------------------------------------------------------------------

fn draft(n: u64) -> EventDraft {
    EventDraft::new(EventKind::ListApplied)
        .reason(format!("r{n}"))
        .detail(format!("event {n}"))
        .list_version(Some(n))
}

#[test]
fn outbox_numbers_events_consecutively_and_survives_reopen_without_reusing_numbers() {
    let site = Site::new();
    let policy = site.policy();
    let (store, _) = open(&site, &policy);
    let now = Timestamp::now();
    let appended: Vec<_> = (1..=5)
        .map(|n| store.append(draft(n), now).expect("append"))
        .collect();
    assert_eq!(
        appended.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let ids: BTreeSet<_> = appended.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 5, "every event has its own id");
    for e in &appended {
        assert_eq!((e.site.as_str(), e.door.as_str()), (SITE, DOOR));
        assert_eq!(e.kind, EventKind::ListApplied);
        assert_eq!(e.detail, Some(format!("event {}", e.seq)));
    }
    assert_eq!(store.outbox_depth(), 5);

    // The newest n, oldest first.
    let recent = store.recent_events(3).expect("recent");
    assert_eq!(recent, appended[2..].to_vec());
    assert_eq!(store.recent_events(100).expect("recent"), appended);
    assert!(store.recent_events(0).expect("recent").is_empty());

    store.flush_blocking().expect("flush");
    drop(store);
    let (store, _) = open(&site, &policy);
    assert_eq!(
        store.recent_events(100).expect("recent"),
        appended,
        "flushed events survive a restart unchanged"
    );
    assert_eq!(store.outbox_depth(), 5);
    let next = store.append(draft(6), now).expect("append");
    assert_eq!(next.seq, 6, "numbering continues after a restart");
    let recent = store.recent_events(2).expect("recent");
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 6]);
}

#[test]
fn event_numbers_are_not_reused_after_the_sled_dir_is_lost() {
    let site = Site::new();
    let policy = site.policy();
    let (store, _) = open(&site, &policy);
    let now = Timestamp::now();
    let before: Vec<u64> = (1..=3)
        .map(|n| store.append(draft(n), now).expect("append").seq)
        .collect();
    store.flush_blocking().expect("flush");
    drop(store);
    // The office system may already have seen 1..=3; the outbox holding them is lost.
    std::fs::remove_dir_all(site.state_dir().join(STORE_DIR)).expect("delete sled dir");

    let (store, report) = open(&site, &policy);
    assert!(store.recent_events(10).expect("recent").is_empty());
    let after = store.append(draft(4), now).expect("append").seq;
    assert!(
        after > *before.last().unwrap(),
        "seq {after} reuses a number already issued ({before:?})"
    );
    assert!(
        !report.events.is_empty(),
        "the loss is reported: {:?}",
        report.events
    );
}

// --- (e) a list file that no longer verifies --------------------------------------------------------

#[test]
fn list_file_signed_by_a_key_no_longer_trusted_is_not_used_at_start() {
    let site = Site::new();
    let v1 = store_with_v1(&site);
    // The config now trusts only k2 (k1 was removed, e.g. after a compromise).
    let k2_only = TrustPolicy {
        keys: vec![TrustedKey {
            id: "k2".into(),
            key: site.keys[1].1.verifying_key(),
        }],
        ..site.policy()
    };
    let (store, report) = open(&site, &k2_only);
    assert!(store.active().is_none(), "door starts without a list");
    assert_eq!(
        reasons(&report, EventKind::ListRejected),
        vec!["unknown_key"],
        "{:?}",
        report.events
    );
    // The file is kept (for inspection). Removing a key does not lower the door's rollback floor
    // (issue 15 item 6; only a signed reset does: lists.rs), and k1's own floor is kept.
    assert_eq!(std::fs::read(site.state_dir().join(LIST_FILE)).unwrap(), v1);
    assert_eq!(store.highest_version(), 1);
    assert_eq!(store.key_floor(&site.keys[0].1.verifying_key()).unwrap(), 1);
    // A list from the new key is accepted...
    let v2 = crate::common::sign_with(&site.payload(2, entries(&site, 3, 2)), &site.keys[1..2]);
    let meta = store
        .verify_and_apply(&v2, &k2_only, Timestamp::now())
        .expect("store")
        .expect("v2 from the trusted key");
    assert_eq!(meta.version, 2);
    assert_eq!(holder(&store, &site, 0).as_deref(), Some("h0-v2"));
    // ...and from then on the new key's own floor holds.
    let v1_again =
        crate::common::sign_with(&site.payload(1, entries(&site, 3, 1)), &site.keys[1..2]);
    let refused = store
        .verify_and_apply(&v1_again, &k2_only, Timestamp::now())
        .expect("store")
        .expect_err("version 1 is not above the floor");
    assert_eq!(refused.code(), "rollback", "{refused}");
    assert_eq!(store.active().map(|a| a.meta.version), Some(2));
}

#[test]
fn tampered_list_file_is_not_used_at_start() {
    let site = Site::new();
    let v1 = store_with_v1(&site);
    // Flip one byte of the payload's base64 (keeps it base64, breaks the signature).
    let text = String::from_utf8(v1).unwrap();
    let at = text.find("\"payload\": \"").expect("payload field") + 20;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    // Both files the same tampered list: the copy cannot do better (a tampered list file
    // alone falls back to the copy: see the damaged-list-file tests below).
    std::fs::write(site.state_dir().join(LIST_FILE), &bytes).unwrap();
    std::fs::write(site.state_dir().join(LIST_COPY_FILE), &bytes).unwrap();

    let (store, report) = open(&site, &site.policy());
    assert!(store.active().is_none(), "door starts without a list");
    assert_eq!(
        reasons(&report, EventKind::ListRejected),
        vec!["bad_signature"],
        "{:?}",
        report.events
    );
    assert_eq!(holder(&store, &site, 0), None);
}

/// Regression: an older signed list copied over `list.signed` (SD card edit, stale backup) was
/// loaded at start, re-opening cards revoked since. It is now refused as a rollback.
#[test]
fn older_list_file_swapped_in_is_refused_at_start() {
    let site = Site::new();
    let v3 = signed_list(&site, 3, 4);
    {
        let (store, _) = open(&site, &site.policy());
        apply(&store, &site, &v3);
        apply(&store, &site, &signed_list(&site, 5, 2));
    }
    std::fs::write(site.state_dir().join(LIST_FILE), &v3).expect("swap in the old list");
    let (store, report) = open(&site, &site.policy());
    assert!(store.active().is_none(), "the old list must not be used");
    assert_eq!(store.highest_version(), 5);
    assert_eq!(reasons(&report, EventKind::ListRejected), vec!["rollback"]);
    // A refused list is not a damaged file: the copy (v5) is not tried.
    assert!(reasons(&report, EventKind::ListFileDamaged).is_empty());
    // Card 3 was only in v3: it stays shut.
    assert_eq!(holder(&store, &site, 3), None);
    // Delivering a list above the floor brings the door back.
    assert_eq!(apply(&store, &site, &signed_list(&site, 6, 4)), 6);
}

/// A restart whose cache holds the list file's payload takes the list's metadata from the store
/// (no payload parse): it must be exactly what a full verification gives, visits included, and
/// a list file whose signature no longer verifies must still be refused.
#[test]
fn restart_from_the_cache_gives_the_same_list_metadata() {
    use pintu::core::list::{self, Role};
    use pintu::core::visit::Visit;
    let site = Site::new();
    let mut badge = site.entry(
        "0B0B0B0B",
        "badge-1",
        "2020-01-01T00:00:00Z",
        "2099-01-01T00:00:00Z",
    );
    badge.role = Role::Visitor;
    let visit = Visit {
        id: "V-1".into(),
        badge: badge.card,
        visitor: "Tamu".into(),
        host: "h0-v1".into(),
        valid_from: badge.valid_from,
        valid_until: badge.valid_until,
    };
    let mut all = entries(&site, 40, 1);
    all.push(badge);
    let payload = site.payload(1, all);
    let bytes = list::sign(
        &list::payload_bytes(&payload, &[visit]).expect("payload"),
        &site.keys[..1],
    );
    let full = list::verify(&bytes, &site.policy(), None, None).expect("valid");
    {
        let (store, _) = open(&site, &site.policy());
        apply(&store, &site, &bytes);
        store.flush_blocking().expect("flush");
    }
    let (store, report) = open(&site, &site.policy());
    assert!(report.events.is_empty(), "{:?}", report.events);
    let active = store.active().expect("list from the cache");
    assert_eq!(active.meta, full.meta);
    assert_eq!(active.meta.visits.len(), 1);
    assert_eq!(holder(&store, &site, 7), Some("h7-v1".into()));
    drop((active, store));

    // The door no longer trusts the signing key: the cached copy must not be used.
    let mut other = site.policy();
    other.keys[0].key = ed25519_dalek::SigningKey::from_bytes(&[99; 32]).verifying_key();
    let (store, report) = open(&site, &other);
    assert!(store.active().is_none());
    assert_eq!(
        reasons(&report, EventKind::ListRejected),
        vec!["bad_signature"]
    );
    drop(store);

    // Another door's config (same keys): the cached list is not for it.
    let mut elsewhere = site.policy();
    elsewhere.door = Some("door-9".into());
    let (store, report) = open(&site, &elsewhere);
    assert!(store.active().is_none());
    assert_eq!(
        reasons(&report, EventKind::ListRejected),
        vec!["wrong_door"]
    );
}

// --- (f) damaged list files: the copy ---------------------------------------------------------------

/// A store that applied v1 (3 cards) then v2 (2 cards), closed again. Returns v2's bytes, which
/// both list files hold.
fn store_with_v2(site: &Site) -> Vec<u8> {
    let (store, _) = open(site, &site.policy());
    apply(&store, site, &signed_list(site, 1, 3));
    let v2 = signed_list(site, 2, 2);
    apply(&store, site, &v2);
    store.flush_blocking().expect("flush");
    v2
}

fn list_file(site: &Site) -> PathBuf {
    site.state_dir().join(LIST_FILE)
}

fn copy_file(site: &Site) -> PathBuf {
    site.state_dir().join(LIST_COPY_FILE)
}

/// Damages a file: `deleted`, `truncated` (to half), `garbage` (same length), `bad_signature`
/// (one base64 digit of the signature changed) or `directory` (replaced by an empty directory).
pub(crate) fn damage(path: &Path, how: &str) {
    match how {
        "deleted" => std::fs::remove_file(path).expect("delete"),
        "truncated" => {
            let bytes = std::fs::read(path).expect("read");
            std::fs::write(path, &bytes[..bytes.len() / 2]).expect("truncate");
        }
        "garbage" => {
            let len = std::fs::metadata(path).expect("size").len() as usize;
            std::fs::write(path, garbage(len, 0xD00D)).expect("overwrite");
        }
        "bad_signature" => {
            let mut text = std::fs::read_to_string(path).expect("read");
            let at = text.find("\"signature\": \"").expect("signature field") + 14;
            let flipped = if &text[at..at + 1] == "A" { "B" } else { "A" };
            text.replace_range(at..at + 1, flipped);
            std::fs::write(path, text).expect("write");
        }
        "directory" => {
            std::fs::remove_file(path).expect("delete");
            std::fs::create_dir(path).expect("mkdir");
        }
        other => panic!("unknown damage {other}"),
    }
}

/// The one `list.file_damaged` event of a report: its reason and detail.
fn file_damaged(report: &OpenReport) -> (String, String, Option<u64>) {
    let found: Vec<_> = report
        .events
        .iter()
        .filter(|e| e.kind == EventKind::ListFileDamaged)
        .collect();
    assert_eq!(found.len(), 1, "one list.file_damaged: {:?}", report.events);
    (
        found[0].reason.clone().unwrap_or_default(),
        found[0].detail.clone().unwrap_or_default(),
        found[0].list_version,
    )
}

fn assert_serves_v2(store: &Store, site: &Site) {
    let active = store.active().expect("list v2 active");
    assert_eq!((active.meta.version, active.meta.entry_count), (2, 2));
    for i in 0..2 {
        assert_eq!(holder(store, site, i), Some(format!("h{i}-v2")));
    }
    assert_eq!(holder(store, site, 2), None, "card 2 was only in v1");
}

#[test]
fn a_damaged_list_file_falls_back_to_the_copy_and_is_restored_from_it() {
    for how in [
        "deleted",
        "truncated",
        "garbage",
        "bad_signature",
        "directory",
    ] {
        let site = Site::new();
        let v2 = store_with_v2(&site);
        damage(&list_file(&site), how);

        let (store, report) = Store::open(&site.store_options(), &site.policy())
            .unwrap_or_else(|e| panic!("{how}: open failed: {e}"));
        assert_serves_v2(&store, &site);
        let (reason, detail, version) = file_damaged(&report);
        assert_eq!(reason, "restored_from_copy", "{how}: {detail}");
        assert_eq!(version, Some(2), "{how}");
        assert!(
            detail.contains(LIST_FILE) && detail.contains(LIST_COPY_FILE),
            "{how}: the detail names both files: {detail}"
        );
        let what = match how {
            "deleted" => "is missing",
            "directory" => "cannot be read",
            "bad_signature" => "is damaged (bad_signature)",
            _ => "is damaged (malformed)",
        };
        assert!(
            detail.contains(what),
            "{how}: says what was wrong: {detail}"
        );
        // A damaged file is not a refused list, and the copy carries the same payload: the
        // cache is reused, not rebuilt.
        assert!(
            reasons(&report, EventKind::ListRejected).is_empty()
                && reasons(&report, EventKind::StoreRebuilt).is_empty(),
            "{how}: {:?}",
            report.events
        );
        assert_eq!(store.highest_version(), 2);
        if how == "directory" {
            // Cannot be written over; the copy keeps serving, and the event says so.
            assert!(detail.contains("could not be restored"), "{detail}");
            continue;
        }
        assert_eq!(
            std::fs::read(list_file(&site)).unwrap(),
            v2,
            "{how}: restored"
        );
        drop(store);
        let (store, report) = open(&site, &site.policy());
        assert!(report.events.is_empty(), "{how}: {:?}", report.events);
        assert_serves_v2(&store, &site);
    }
}

#[test]
fn a_damaged_list_file_and_a_lost_sled_dir_rebuild_from_the_copy() {
    let site = Site::new();
    let v2 = store_with_v2(&site);
    damage(&list_file(&site), "garbage");
    std::fs::remove_dir_all(site.state_dir().join(STORE_DIR)).expect("delete sled dir");

    let (store, report) = open(&site, &site.policy());
    assert_serves_v2(&store, &site);
    assert_eq!(file_damaged(&report).0, "restored_from_copy");
    let rebuilt = report
        .events
        .iter()
        .find(|e| e.reason.as_deref() == Some("cache_rebuilt"))
        .unwrap_or_else(|| panic!("{:?}", report.events));
    assert!(
        rebuilt
            .detail
            .as_deref()
            .unwrap_or("")
            .contains(LIST_COPY_FILE),
        "the rebuild names the file it used: {rebuilt:?}"
    );
    assert_eq!(std::fs::read(list_file(&site)).unwrap(), v2);
    assert_eq!(
        store.highest_version(),
        2,
        "the floor comes back with the copy"
    );
}

#[test]
fn a_damaged_copy_is_rewritten_from_the_list_file() {
    for how in ["truncated", "garbage", "bad_signature", "deleted"] {
        let site = Site::new();
        let v2 = store_with_v2(&site);
        damage(&copy_file(&site), how);

        let (store, report) = open(&site, &site.policy());
        assert_serves_v2(&store, &site);
        if how == "deleted" {
            // What a door upgraded from a version without the copy looks like: written, logged,
            // no alarm.
            assert!(report.events.is_empty(), "{:?}", report.events);
        } else {
            let (reason, detail, version) = file_damaged(&report);
            assert_eq!(reason, "copy_rewritten", "{how}: {detail}");
            assert_eq!(version, Some(2));
            assert!(detail.contains(LIST_COPY_FILE), "{detail}");
        }
        assert_eq!(std::fs::read(copy_file(&site)).unwrap(), v2, "{how}");
        assert_eq!(std::fs::read(list_file(&site)).unwrap(), v2, "{how}");
    }
}

#[test]
fn both_list_files_damaged_start_without_a_list_and_say_so() {
    for (primary, copy) in [
        ("garbage", "truncated"),
        ("deleted", "deleted"),
        ("truncated", "deleted"),
        ("bad_signature", "garbage"),
    ] {
        let site = Site::new();
        store_with_v2(&site);
        damage(&list_file(&site), primary);
        damage(&copy_file(&site), copy);

        let (store, report) = open(&site, &site.policy());
        assert!(store.active().is_none(), "{primary}/{copy}: no list");
        let (reason, detail, version) = file_damaged(&report);
        assert_eq!(reason, "no_good_copy", "{primary}/{copy}: {detail}");
        assert_eq!(version, Some(2), "the version the store last held");
        assert!(
            detail.contains(LIST_FILE) && detail.contains(LIST_COPY_FILE),
            "{detail}"
        );
        assert!(detail.contains("starting without a list"), "{detail}");
        // The floor stays: the lost list cannot be replaced by an older one.
        assert_eq!(store.highest_version(), 2);
        let refused = store
            .verify_and_apply(&signed_list(&site, 1, 3), &site.policy(), Timestamp::now())
            .expect("store")
            .expect_err("below the floor");
        assert_eq!(refused.code(), "rollback");
    }
}

#[test]
fn both_list_files_and_the_sled_dir_lost_is_an_alarm() {
    let site = Site::new();
    store_with_v2(&site);
    damage(&list_file(&site), "deleted");
    damage(&copy_file(&site), "deleted");
    std::fs::remove_dir_all(site.state_dir().join(STORE_DIR)).expect("delete sled dir");

    let (store, report) = open(&site, &site.policy());
    assert!(store.active().is_none());
    let (reason, detail, version) = file_damaged(&report);
    assert_eq!(reason, "no_good_copy");
    assert_eq!(version, None, "nothing left says which");
    assert!(detail.contains("the store was lost too"), "{detail}");
}

#[test]
fn a_fresh_door_has_no_list_and_no_alarm() {
    let site = Site::new();
    let (store, report) = open(&site, &site.policy());
    assert!(store.active().is_none());
    assert!(report.events.is_empty(), "{:?}", report.events);
}

/// A list file refused by the config (its key removed) is not damage: a different copy that
/// the config would accept is not used in its place (it could be an older list, and the floor
/// may be gone with the key).
#[test]
fn a_refused_list_file_does_not_fall_back_to_the_copy() {
    let site = Site::new();
    store_with_v2(&site);
    let k2_only = TrustPolicy {
        keys: vec![TrustedKey {
            id: "k2".into(),
            key: site.keys[1].1.verifying_key(),
        }],
        ..site.policy()
    };
    let by_k2 = crate::common::sign_with(&site.payload(2, entries(&site, 2, 2)), &site.keys[1..2]);
    std::fs::write(copy_file(&site), &by_k2).expect("copy signed by k2");
    let (store, report) = open(&site, &k2_only);
    assert!(store.active().is_none());
    assert_eq!(
        reasons(&report, EventKind::ListRejected),
        vec!["unknown_key"]
    );
    assert!(reasons(&report, EventKind::ListFileDamaged).is_empty());
    assert_eq!(
        std::fs::read(copy_file(&site)).unwrap(),
        by_k2,
        "left alone"
    );
}

#[test]
fn stale_temp_files_of_an_interrupted_write_are_removed_at_open() {
    let site = Site::new();
    store_with_v2(&site);
    let stale = site
        .state_dir()
        .join(format!("{}abc123", pintu::util::files::TEMP_PREFIX));
    std::fs::write(&stale, vec![0u8; 4096]).expect("stale temp file");
    let (store, _) = open(&site, &site.policy());
    assert!(!stale.exists());
    assert_serves_v2(&store, &site);
}

// --- (g) write errors during an apply -------------------------------------------------------------

/// The list file cannot be written (here: a directory sits where it goes, so the rename fails):
/// the apply fails with `ListNotStored` and nothing changes — active list, floor and both files
/// are the old ones — and the same list applies once the path is writable again.
#[test]
fn a_list_file_that_cannot_be_written_changes_nothing() {
    let site = Site::new();
    let (store, _) = open(&site, &site.policy());
    let v1 = signed_list(&site, 1, 3);
    apply(&store, &site, &v1);
    damage(&list_file(&site), "directory");

    let v2 = signed_list(&site, 2, 2);
    let err = store
        .verify_and_apply(&v2, &site.policy(), Timestamp::now())
        .expect_err("the list file cannot be written");
    assert!(
        matches!(err, StoreError::ListNotStored { .. }),
        "not written, nothing changed: {err:?}"
    );
    assert_eq!(store.active().map(|a| a.meta.version), Some(1));
    assert_eq!(holder(&store, &site, 2), Some("h2-v1".into()));
    assert_eq!(store.highest_version(), 1);
    assert_eq!(std::fs::read(copy_file(&site)).unwrap(), v1);
    assert!(store.take_notices().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(site.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(pintu::util::files::TEMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    std::fs::remove_dir(list_file(&site)).expect("rmdir");
    assert_eq!(apply(&store, &site, &v2), 2, "retried with the same list");
    assert_eq!(std::fs::read(list_file(&site)).unwrap(), v2);
    assert_eq!(std::fs::read(copy_file(&site)).unwrap(), v2);
}

/// The copy cannot be written: the list file (the source of truth) already holds the new list,
/// so the apply completes, with a `copy_write_failed` notice; the next start writes the copy.
#[test]
fn a_copy_that_cannot_be_written_is_reported_and_the_apply_completes() {
    let site = Site::new();
    let (store, _) = open(&site, &site.policy());
    apply(&store, &site, &signed_list(&site, 1, 3));
    damage(&copy_file(&site), "directory");

    let v2 = signed_list(&site, 2, 2);
    assert_eq!(apply(&store, &site, &v2), 2);
    assert_serves_v2(&store, &site);
    let notices = store.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].kind, EventKind::ListFileDamaged);
    assert_eq!(notices[0].reason.as_deref(), Some("copy_write_failed"));
    assert_eq!(notices[0].list_version, Some(2));
    assert!(store.take_notices().is_empty(), "taken once");
    store.flush_blocking().expect("flush");
    drop(store);

    std::fs::remove_dir(copy_file(&site)).expect("rmdir");
    let (store, _) = open(&site, &site.policy());
    assert_serves_v2(&store, &site);
    assert_eq!(std::fs::read(copy_file(&site)).unwrap(), v2);
}

/// Issue 15 item 1: an event set aside leaves the outbox (delivery goes on) but stays in the
/// store, counted, across a reopen; numbering never goes back below it.
#[test]
fn set_aside_events_leave_the_outbox_and_stay_in_the_store() {
    let site = Site::new();
    let (store, _) = open(&site, &site.policy());
    let now = Timestamp::now();
    let a = store
        .append(EventDraft::new(EventKind::HardwareFault).detail("big"), now)
        .expect("append");
    let b = store
        .append(EventDraft::new(EventKind::DoorForcedOpen), now)
        .expect("append");
    store.flush_blocking().expect("flush");
    let bytes = store
        .set_aside(a.seq)
        .expect("set aside")
        .expect("was there");
    assert!(String::from_utf8_lossy(&bytes).contains("hardware.fault"));
    assert_eq!(store.set_aside(a.seq).expect("again"), None);
    assert_eq!(store.outbox_first().expect("first"), Some(b.seq));
    assert_eq!((store.outbox_depth(), store.set_aside_count()), (1, 1));
    store.acknowledge(b.seq).expect("ack");
    drop(store);
    let (store, _) = open(&site, &site.policy());
    assert_eq!(store.set_aside_count(), 1);
    assert_eq!(store.set_aside_seqs(10).expect("seqs"), [a.seq]);
    let c = store
        .append(EventDraft::new(EventKind::DoorClosed), Timestamp::now())
        .expect("append");
    assert!(c.seq > b.seq);
}

/// Issue 15 item 5: a command id is kept until its window is below the trusted-time floor, not
/// until a newer command arrives (the old rule forgot ids a day before the newest command's
/// expiry, so a newer command plus a clock set back let an old one fire again); the floor
/// resets' ids are kept for good; the memory survives a restart.
#[test]
fn command_ids_are_kept_until_below_the_floor_not_until_a_newer_command() {
    let site = Site::new();
    let policy = site.policy();
    let (store, _) = open(&site, &policy);
    let t0: Timestamp = "2026-12-01T10:00:00Z".parse().expect("ts");
    let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
    let old = uuid::Uuid::from_u128(1);
    let reset = uuid::Uuid::from_u128(2);
    assert!(store
        .remember_command(old, at(300), Some(t0), false)
        .unwrap());
    assert!(store
        .remember_command(reset, at(300), Some(t0), true)
        .unwrap());
    // A command two days later, the floor not yet past the old one's window.
    let newer = uuid::Uuid::from_u128(3);
    assert!(store
        .remember_command(newer, at(2 * 86_400 + 300), Some(at(200)), false)
        .unwrap());
    assert!(
        !store
            .remember_command(old, at(300), Some(at(200)), false)
            .unwrap(),
        "the old id is still known"
    );
    drop(store);
    let (store, _) = open(&site, &policy);
    assert!(!store.remember_command(old, at(300), None, false).unwrap());
    // Once the floor is past its window the old id may go (it is refused as expired anyway);
    // the reset's id stays.
    let later = uuid::Uuid::from_u128(4);
    assert!(store
        .remember_command(later, at(2 * 86_400 + 600), Some(at(86_400)), false)
        .unwrap());
    assert!(store
        .remember_command(old, at(300), Some(at(86_400)), false)
        .unwrap());
    assert!(!store
        .remember_command(reset, at(300), Some(at(86_400)), true)
        .unwrap());
}
