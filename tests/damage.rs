//! Damaged storage (issue 10), with a real `pintud`.
//!
//! - **At start.** For each of {sled dir truncated, sled dir garbage, sled dir deleted, list file
//!   truncated, list file garbage, list file deleted, copy damaged, both list files damaged}, the
//!   state directory of a door that applied list v1 then v2 is damaged, and `pintud` must: start
//!   without a panic and send `READY=1`; keep the lock secured; decide known cards exactly as v2
//!   says (v1's revoked card stays shut), or deny `no_list` when both list files are gone; have
//!   the alarm event (kind, reason, a detail naming the file) in its outbox, durable: still there
//!   after a SIGKILL; and log the decision.
//! - **At run time.** A list file that cannot be written (a directory in its place; a full
//!   tmpfs, as root) rejects the apply with `list.rejected` / `write_failed` and keeps the old
//!   list whole; pintud carries on, and the same list applies once the disk has room. A sled
//!   store that fails during an apply (its tmpfs full, as root) stops pintud with exit 1 and the
//!   lock secured; the restart runs on the new list from the list file.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use pintu::core::event::{Event, EventKind};
use pintu::door::hw::LockState;
use pintu::door::store::{Store, LIST_COPY_FILE, LIST_FILE, STORE_DIR};

use crate::common::{decision, deny, grant, Pintud, Site, TinyDisk};
use crate::store::{damage, files_under, garbage};

/// In v1 and v2.
const ALICE: &str = "04A1A1A1A1";
/// Added by v2.
const BOB: &str = "04B2B2B2B2";
/// In v1 only: v2 revoked her.
const CAROL: &str = "04C3C3C3C3";

/// List v1 (alice, carol) or v2 (alice, bob); each call signs anew (the bytes differ).
fn list(site: &Site, version: u64) -> Vec<u8> {
    list_with_fillers(site, version, 0)
}

/// [`list`] with `fillers` more cards, to make it large.
fn list_with_fillers(site: &Site, version: u64, fillers: usize) -> Vec<u8> {
    let holders = match version {
        1 => [(ALICE, "alice"), (CAROL, "carol")],
        _ => [(ALICE, "alice"), (BOB, "bob")],
    };
    let until = ("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z");
    let mut entries: Vec<_> = holders
        .iter()
        .map(|(uid, h)| site.entry(uid, h, until.0, until.1))
        .collect();
    entries.extend((0..fillers).map(|i| {
        site.entry(
            &format!("{:010X}", 0x5000_0000 + i),
            &format!("f{i}"),
            until.0,
            until.1,
        )
    }));
    site.sign(&site.payload(version, entries))
}

/// Applies v1, then v2 if `upto` is 2, through the library (what pintud's apply does).
fn prepare(site: &Site, upto: u64) {
    prepare_in(site, &site.state_dir(), upto);
}

/// [`prepare`] with the state directory at `state`.
fn prepare_in(site: &Site, state: &Path, upto: u64) {
    let opts = pintu::door::store::StoreOptions {
        state_dir: state.to_path_buf(),
        ..site.store_options()
    };
    let (store, _) = Store::open(&opts, &site.policy()).expect("open store");
    for v in 1..=upto {
        store
            .verify_and_apply(&list(site, v), &site.policy(), Timestamp::now())
            .expect("store")
            .expect("list accepted");
    }
    store.flush_blocking().expect("flush");
}

/// Starts pintud with a fake systemd notify socket and waits for `READY=1`.
fn start_ready(site: &Site, config: &Path) -> Pintud {
    let notify_path = site.path("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let door = Pintud::start_with_env(
        config,
        &site.socket(),
        &[],
        &[("NOTIFY_SOCKET", notify_path.as_os_str())],
    );
    let mut buf = [0u8; 256];
    loop {
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no READY=1 from pintud ({e}); log:\n{}", door.log_text()));
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            return door;
        }
    }
}

/// What the damaged door must report at start: an event of `kind` with one of `reasons`, whose
/// detail contains `names`, and a log line containing `log`.
struct Alarm {
    kind: EventKind,
    reasons: &'static [&'static str],
    /// The detail contains one of these.
    names: &'static [&'static str],
    log: &'static str,
}

/// The case: prepare v1 then v2, damage, start, check the alarm, the lock and the decisions.
fn damaged_door_starts(what: &str, damage_state: impl FnOnce(&Site), has_list: bool, alarm: Alarm) {
    let site = Site::new();
    prepare(&site, 2);
    damage_state(&site);
    let config = site.write_config("");
    let mut door = start_ready(&site, &config);

    // The lock: secured at start and never released by the start itself.
    let status = door.status();
    assert_eq!(status.lock, LockState::Secured, "{what}");
    assert!(
        status
            .lock_changes
            .iter()
            .all(|c| c.state == LockState::Secured),
        "{what}: {:?}",
        status.lock_changes
    );

    // The alarm, among the start-up events (before daemon.started), in the outbox.
    let events = door.events();
    assert!(
        door.status().outbox_depth as usize >= events.len(),
        "{what}: nothing delivered, so every event is in the outbox"
    );
    let started = events
        .iter()
        .position(|e| e.kind == EventKind::DaemonStarted)
        .unwrap_or_else(|| panic!("{what}: no daemon.started in {events:?}"));
    let found: &Event = events[..started]
        .iter()
        .find(|e| {
            e.kind == alarm.kind && alarm.reasons.contains(&e.reason.as_deref().unwrap_or(""))
        })
        .unwrap_or_else(|| {
            panic!(
                "{what}: no {} {:?} before daemon.started: {events:#?}",
                alarm.kind.as_str(),
                alarm.reasons
            )
        });
    let detail = found.detail.clone().unwrap_or_default();
    assert!(
        alarm.names.iter().any(|n| detail.contains(n)),
        "{what}: the detail names one of {:?}: {detail}",
        alarm.names
    );
    let log = door.log_text();
    assert!(
        log.contains(alarm.log),
        "{what}: log says {:?}:\n{log}",
        alarm.log
    );
    assert!(!log.contains("panicked"), "{what}:\n{log}");

    // Decisions: v2 exactly, or nothing without a list.
    if has_list {
        assert_eq!(status.list.as_ref().map(|l| l.version), Some(2), "{what}");
        assert_eq!(decision(&door, ALICE), grant(), "{what}");
        assert_eq!(decision(&door, BOB), grant(), "{what}: v2 added bob");
        assert_eq!(
            decision(&door, CAROL),
            deny("unknown_card"),
            "{what}: v2 revoked carol"
        );
    } else {
        assert!(status.list.is_none(), "{what}");
        assert_eq!(status.highest_list_version, 2, "{what}: the floor stays");
        for uid in [ALICE, BOB, CAROL] {
            assert_eq!(decision(&door, uid), deny("no_list"), "{what}");
        }
    }

    // Durable: the alarm survives a SIGKILL (flushed before READY, not at shutdown).
    let _ = door.child.kill();
    let _ = door.child.wait();
    drop(door);
    let (store, _) = Store::open(&site.store_options(), &site.policy()).expect("reopen");
    let kept = store.recent_events(1000).expect("events");
    assert!(
        kept.iter().any(|e| e.id == found.id),
        "{what}: the alarm was not durable: {kept:?}"
    );
}

fn sled_files(site: &Site) -> Vec<PathBuf> {
    let files = files_under(&site.state_dir().join(STORE_DIR));
    assert!(!files.is_empty());
    files
}

#[test]
fn sled_dir_truncated() {
    damaged_door_starts(
        "sled dir truncated",
        |site| {
            for f in sled_files(site) {
                let len = std::fs::metadata(&f).expect("size").len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .and_then(|f| f.set_len(len / 2))
                    .expect("truncate");
            }
        },
        true,
        Alarm {
            kind: EventKind::StoreRebuilt,
            reasons: &["open_failed", "cache_rebuilt"],
            names: &["store.damaged-", LIST_FILE],
            log: "rebuilding",
        },
    );
}

#[test]
fn sled_dir_garbage() {
    damaged_door_starts(
        "sled dir garbage",
        |site| {
            for (n, f) in sled_files(site).iter().enumerate() {
                let len = std::fs::metadata(f).expect("size").len() as usize;
                std::fs::write(f, garbage(len.max(64), 0xBAD5EED + n as u64)).expect("write");
            }
        },
        true,
        Alarm {
            kind: EventKind::StoreRebuilt,
            reasons: &["open_failed"],
            names: &["store.damaged-"],
            log: "rebuilding from the list file",
        },
    );
}

#[test]
fn sled_dir_deleted() {
    damaged_door_starts(
        "sled dir deleted",
        |site| std::fs::remove_dir_all(site.state_dir().join(STORE_DIR)).expect("delete"),
        true,
        Alarm {
            kind: EventKind::StoreRebuilt,
            reasons: &["cache_rebuilt"],
            names: &[LIST_FILE],
            log: "rebuilding it from",
        },
    );
}

fn list_file_damaged(how: &'static str) {
    damaged_door_starts(
        &format!("list file {how}"),
        |site| damage(&site.state_dir().join(LIST_FILE), how),
        true,
        Alarm {
            kind: EventKind::ListFileDamaged,
            reasons: &["restored_from_copy"],
            names: &[LIST_COPY_FILE],
            log: "list file damaged",
        },
    );
}

#[test]
fn list_file_truncated() {
    list_file_damaged("truncated");
}

#[test]
fn list_file_garbage() {
    list_file_damaged("garbage");
}

#[test]
fn list_file_deleted() {
    list_file_damaged("deleted");
}

#[test]
fn copy_damaged() {
    damaged_door_starts(
        "copy damaged",
        |site| damage(&site.state_dir().join(LIST_COPY_FILE), "garbage"),
        true,
        Alarm {
            kind: EventKind::ListFileDamaged,
            reasons: &["copy_rewritten"],
            names: &[LIST_COPY_FILE],
            log: "copy of the last good list damaged",
        },
    );
}

#[test]
fn both_list_files_damaged() {
    damaged_door_starts(
        "both list files damaged",
        |site| {
            damage(&site.state_dir().join(LIST_FILE), "truncated");
            damage(&site.state_dir().join(LIST_COPY_FILE), "garbage");
        },
        false,
        Alarm {
            kind: EventKind::ListFileDamaged,
            reasons: &["no_good_copy"],
            names: &[LIST_COPY_FILE],
            log: "no good copy of the last good list",
        },
    );
}

// --- write errors at run time -----------------------------------------------------------------------

/// Drops a list into `inbox` the way a careful copy does (hidden temp file, rename).
fn drop_list(inbox: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(inbox).expect("inbox");
    let tmp = inbox.join(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).expect("write list");
    std::fs::rename(&tmp, inbox.join(name)).expect("rename list");
}

/// Polls the door's events until one matches, or panics with the log.
fn wait_event(door: &Pintud, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(e) = door.events().into_iter().find(&pred) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no {what}; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A door on v1 whose list file cannot be written (`break_it`): an offered v2 is rejected with
/// `write_failed` naming `cause`, v1 stays whole and pintud carries on; after `fix_it` the same
/// list applies. `state` is the state directory, `inbox` the list inbox.
fn list_write_fails_then_recovers(
    site: &Site,
    config: &Path,
    state: &Path,
    inbox: &Path,
    cause: &str,
    break_it: impl FnOnce() -> Option<PathBuf>,
    fix_it: impl FnOnce(Option<PathBuf>),
) {
    let mut door = start_ready(site, config);
    assert_eq!(door.status().list.map(|l| l.version), Some(1));
    let v1 = std::fs::read(state.join(LIST_FILE)).expect("list file");
    let v2 = list(site, 2);
    let broken = break_it();

    drop_list(inbox, "v2.signed", &v2);
    let rejected = wait_event(&door, "list.rejected write_failed", |e| {
        e.kind == EventKind::ListRejected
    });
    assert_eq!(rejected.reason.as_deref(), Some("write_failed"));
    let detail = rejected.detail.unwrap_or_default();
    assert!(
        detail.contains(LIST_FILE) && detail.contains(cause),
        "says which file and why: {detail}"
    );
    assert!(door.log_text().contains("list not applied"));
    // v1 whole: the active list, the floor, both files, the decisions.
    let status = door.status();
    assert_eq!(status.list.map(|l| l.version), Some(1));
    assert_eq!(status.highest_list_version, 1);
    assert_eq!(std::fs::read(state.join(LIST_COPY_FILE)).expect("copy"), v1);
    assert_eq!(decision(&door, CAROL), grant());
    assert_eq!(decision(&door, BOB), deny("unknown_card"));
    assert!(
        door.child.try_wait().expect("wait").is_none(),
        "a list that cannot be stored does not stop the door"
    );
    let leftovers: Vec<_> = std::fs::read_dir(state)
        .expect("state dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(pintu::util::files::TEMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    fix_it(broken);
    drop_list(inbox, "v2-again.signed", &v2);
    door.wait_for("list v2", |s| s.list.as_ref().map(|l| l.version) == Some(2));
    assert_eq!(decision(&door, BOB), grant());
    assert_eq!(decision(&door, CAROL), deny("unknown_card"));
    assert_eq!(std::fs::read(state.join(LIST_FILE)).expect("list"), v2);
    assert_eq!(std::fs::read(state.join(LIST_COPY_FILE)).expect("copy"), v2);
    assert_eq!(door.stop(), Some(0));
}

/// Without root: a directory where the list file goes makes its rename fail.
#[test]
fn a_list_file_that_cannot_be_written_keeps_the_old_list() {
    let site = Site::new();
    prepare(&site, 1);
    let config = site.write_config("");
    let state = site.state_dir();
    let list_path = state.join(LIST_FILE);
    list_write_fails_then_recovers(
        &site,
        &config,
        &state,
        &site.inbox(),
        "Is a directory",
        || {
            damage(&list_path, "directory");
            None
        },
        |_| std::fs::remove_dir(&list_path).expect("rmdir"),
    );
}

/// As root: the state directory's disk is full while the sled store (on its own tmpfs) has room,
/// so exactly the list file's write fails.
#[test]
fn a_full_disk_under_the_list_file_keeps_the_old_list() {
    let Some(disk) = TinyDisk::mount("1m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let site = Site::new();
    let state = disk.path().join("state");
    std::fs::create_dir_all(state.join(STORE_DIR)).expect("store dir");
    let _sled_disk = TinyDisk::mount_at(&state.join(STORE_DIR), "64m").expect("root");
    let inbox = site.path("inbox");
    let text = site
        .config_text("")
        .replace("state_dir = \"state\"", &format!("state_dir = {state:?}"))
        .replace("[list]\n", &format!("[list]\ninbox = {inbox:?}\n"));
    let config = site.path("pintu.toml");
    std::fs::write(&config, text).expect("config");
    prepare_in(&site, &state, 1);
    list_write_fails_then_recovers(
        &site,
        &config,
        &state,
        &inbox,
        "No space left on device",
        || Some(disk.fill()),
        |filler| std::fs::remove_file(filler.expect("filler")).expect("free space"),
    );
}

/// As root: the sled store's disk fills during an apply. The list file already holds the new
/// list, the cache cannot take it: pintud stops with exit 1 and the lock secured, and the restart
/// runs on the new list (the file is the source of truth), never on a mix.
#[test]
fn a_store_that_fails_during_an_apply_stops_the_door_and_the_restart_runs_the_new_list() {
    let site = Site::new();
    let sled_dir = site.state_dir().join(STORE_DIR);
    std::fs::create_dir_all(&sled_dir).expect("store dir");
    let Some(disk) = TinyDisk::mount_at(&sled_dir, "8m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    prepare(&site, 1);
    let text = site
        .config_text("")
        .replace("max_size = \"1MiB\"", "max_size = \"8MiB\"");
    let config = site.path("pintu.toml");
    std::fs::write(&config, text).expect("config");
    let mut door = start_ready(&site, &config);
    assert_eq!(decision(&door, CAROL), grant());
    // Large enough that its cache needs space sled has not yet allocated.
    let v2 = list_with_fillers(&site, 2, 8000);
    let filler = disk.fill();

    drop_list(&site.inbox(), "v2.signed", &v2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = door.child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "pintud did not stop; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = door.log_text();
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(
        log.contains("the store failed while applying a list"),
        "{log}"
    );
    assert!(log.contains("lock secured"), "{log}");
    drop(door);

    std::fs::remove_file(filler).expect("free space");
    let door = start_ready(&site, &config);
    let status = door.status();
    assert_eq!(
        status.list.map(|l| l.version),
        Some(2),
        "{}",
        door.log_text()
    );
    assert_eq!(status.lock, LockState::Secured);
    assert_eq!(decision(&door, BOB), grant());
    assert_eq!(decision(&door, CAROL), deny("unknown_card"));
    assert_eq!(door.stop(), Some(0));
}
