//! The office's event archive (`pintuctl archive`) against a real Mosquitto: duplicates stored
//! once, gaps reported exactly, no loss across archive kills (persistent session, ack after
//! flush) and broker restarts, and a real pintud's events archived as published.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{pintuctl, text, Pintud, Site, DOOR, SITE};
use pintu_testkit::broker::{Broker, BrokerOptions, Client, ClientOptions};

const WAIT: Duration = Duration::from_secs(30);

/// A running `pintuctl archive`, SIGTERMed (then killed) when dropped.
struct ArchiveProc {
    child: Child,
    log: PathBuf,
}

impl ArchiveProc {
    fn start(broker: &Broker, db: &Path) -> ArchiveProc {
        let log = unique_log(&db.with_extension("archive"));
        let file = std::fs::File::create(&log).expect("archive log");
        let child = Command::new(env!("CARGO_BIN_EXE_pintuctl"))
            .args(["archive", "--db"])
            .arg(db)
            .args(["--broker", &format!("127.0.0.1:{}", broker.port())])
            .args([
                "--site",
                SITE,
                "--reconnect-min",
                "100ms",
                "--reconnect-max",
                "500ms",
            ])
            .args(["--keep-alive", "5s", "--insecure"])
            .env("RUST_LOG", "pintu=debug,info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn pintuctl archive");
        let a = ArchiveProc { child, log };
        a.wait_log("archive subscribed", 1);
        a
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` at least `n` times.
    fn wait_log(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.log_text().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "archive log never showed {needle:?} {n} times:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, sig);
    }

    /// SIGTERM; waits for a clean exit.
    fn stop(mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "archive exited {status}:\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "archive did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ArchiveProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            for _ in 0..200 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unique_log(base: &Path) -> PathBuf {
    let mut n = 0;
    loop {
        let p = base.with_extension(format!("{n}.log"));
        if !p.exists() {
            return p;
        }
        n += 1;
    }
}

fn topic(door: &str) -> String {
    format!("pintu/{SITE}/{door}/events")
}

/// A hand-made schema v1 event; the id is derived from (door, seq), so a re-publish is a
/// duplicate.
fn event(door: &str, seq: u64) -> String {
    let id = uuid::Uuid::from_u128(
        (u128::from(seq) << 32) | u128::from(door.bytes().map(u32::from).sum::<u32>()),
    );
    serde_json::json!({
        "schema": "pintu.event.v1", "id": id, "seq": seq,
        "time": format!("2026-05-04T01:{:02}:{:02}Z", seq / 60 % 60, seq % 60),
        "site": SITE, "door": door, "kind": "access.denied", "reader": "entry",
        "card": "c:0a1b2c3d", "decision": "deny", "reason": "unknown_card",
    })
    .to_string()
}

fn stats(db: &Path) -> Value {
    let out = pintuctl(&[
        "archive",
        "--db",
        &db.display().to_string(),
        "--stats",
        "--json",
    ]);
    assert!(out.status.success(), "stats failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stats JSON")
}

/// Waits until the archive has received `n` messages (through its query socket).
fn wait_received(db: &Path, n: u64, archive: &ArchiveProc) -> Value {
    wait_stat(db, "received", n, archive)
}

fn wait_stat(db: &Path, key: &str, n: u64, archive: &ArchiveProc) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = stats(db);
        if s[key].as_u64() >= Some(n) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "archive {key} stayed at {} (want {n}); log:\n{}",
            s[key],
            archive.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gaps(db: &Path) -> (Option<i32>, String, Vec<Value>) {
    let db = db.display().to_string();
    let out = pintuctl(&["archive", "--db", &db, "--gaps"]);
    let json = pintuctl(&["archive", "--db", &db, "--gaps", "--json"]);
    let lines = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("gap JSON"))
        .collect();
    (out.status.code(), text(&out.stdout), lines)
}

#[test]
fn duplicates_are_stored_once_and_a_gap_is_reported_exactly() {
    let broker = Broker::start(BrokerOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive");
    let archive = ArchiveProc::start(&broker, &db);
    let publisher = Client::connect(&broker, &ClientOptions::new());
    // door-1: 1 2 2 3 3 6 7 (4 and 5 missing); door-2: 1 2 1.
    let sent = [
        ("door-1", 1),
        ("door-1", 2),
        ("door-1", 2),
        ("door-1", 3),
        ("door-2", 1),
        ("door-1", 3),
        ("door-1", 6),
        ("door-2", 2),
        ("door-1", 7),
        ("door-2", 1),
    ];
    for (door, seq) in sent {
        publisher.publish(&topic(door), event(door, seq), false);
    }
    // Not events: kept aside, acknowledged, never stored.
    publisher.publish(&topic("door-1"), "not json", false);
    publisher.publish(&topic("door-3"), event("door-1", 8), false);
    let s = wait_received(&db, 12, &archive);
    assert_eq!(s["stored"], 7, "{s}");
    assert_eq!(s["duplicates"], 3, "{s}");
    assert_eq!(s["rejected"], 2, "{s}");
    assert_eq!(s["conflicts"], 0, "{s}");
    assert_eq!(
        s["doors"],
        serde_json::json!([
            {"door": "door-1", "events": 5, "first": 1, "last": 7},
            {"door": "door-2", "events": 2, "first": 1, "last": 2},
        ])
    );
    // The gap, exactly: in the log as it happened, and on request.
    archive.wait_log("events 4..=5 of door door-1 are missing (received 6)", 1);
    let (code, out, json) = gaps(&db);
    assert_eq!(code, Some(3), "gaps exit with status 3");
    assert_eq!(out, "door door-1: seq 4..=5 missing (2 events)\n");
    assert_eq!(
        json,
        vec![serde_json::json!({"door": "door-1", "from": 4, "to": 5})]
    );

    // The late events fill the gap; the archive keeps each message byte for byte.
    publisher.publish(&topic("door-1"), event("door-1", 4), false);
    publisher.publish(&topic("door-1"), event("door-1", 5), false);
    wait_stat(&db, "stored", 9, &archive);
    let (code, out, _) = gaps(&db);
    assert_eq!((code, out.as_str()), (Some(0), "no gaps\n"));
    archive.stop();
    // Stopped: read from the store directly.
    let reader = pintu::office::archive::ArchiveReader::open(&db).expect("open archive");
    let events = reader.events(Some("door-1")).expect("events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6, 7]);
    let stored: Value = serde_json::to_value(&events[1]).expect("json");
    let sent: Value = serde_json::from_str(&event("door-1", 2)).expect("json");
    assert_eq!(stored, sent);
}

/// Issue 15 item 9: a different event under an archived `(door, seq)` — another id, or the same
/// id with other content — is an alarm (logged as ALARM, counted, shown by `--stats`); a
/// byte-for-byte republish stays a quiet duplicate. (The old archive took the same id with
/// other content for a duplicate and logged conflicts as a plain warning.)
/// Issue 15 item 9: plain TCP only when asked for.
#[test]
fn the_archive_refuses_plain_tcp_without_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive").display().to_string();
    let out = pintuctl(&[
        "archive",
        "--db",
        &db,
        "--broker",
        "127.0.0.1:1",
        "--site",
        SITE,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--insecure to allow plain TCP"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_conflicting_door_seq_raises_an_alarm() {
    let broker = Broker::start(BrokerOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive");
    let archive = ArchiveProc::start(&broker, &db);
    let publisher = Client::connect(&broker, &ClientOptions::new());
    let original = event("door-1", 1);
    let mut other_id: Value = serde_json::from_str(&original).expect("json");
    other_id["id"] = uuid::Uuid::from_u128(99).to_string().into();
    let mut other_content: Value = serde_json::from_str(&original).expect("json");
    other_content["kind"] = "access.granted".into();
    for payload in [
        original.clone(),
        original,
        other_id.to_string(),
        other_content.to_string(),
    ] {
        publisher.publish(&topic("door-1"), payload, false);
    }
    let s = wait_received(&db, 4, &archive);
    assert_eq!(
        (&s["stored"], &s["duplicates"], &s["conflicts"]),
        (&1.into(), &1.into(), &2.into()),
        "{s}"
    );
    archive.wait_log("ALARM: conflicting event", 2);
    let out = pintuctl(&["archive", "--db", &db.display().to_string(), "--stats"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("ALARM: 2 conflicting event(s)"),
        "{}",
        text(&out.stderr)
    );
    archive.stop();
}

/// Publishes `seqs` of `door` with a small pause, from a thread; returns when all were
/// acknowledged by the broker.
fn publish_slowly(
    broker: &Broker,
    door: &'static str,
    seqs: std::ops::RangeInclusive<u64>,
) -> std::thread::JoinHandle<()> {
    let publisher = Client::connect(broker, &ClientOptions::new());
    std::thread::spawn(move || {
        for seq in seqs {
            publisher.publish(&topic(door), event(door, seq), false);
            std::thread::sleep(Duration::from_millis(3));
        }
    })
}

#[test]
fn an_archive_killed_while_events_flow_misses_nothing_after_restart() {
    let broker = Broker::start(BrokerOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive");
    let archive = ArchiveProc::start(&broker, &db);
    let flow = publish_slowly(&broker, "door-1", 1..=400);
    wait_stat(&db, "stored", 60, &archive);
    // A crash mid-flow: whatever the broker did not get a PUBACK for, it keeps for the session.
    archive.kill();
    std::thread::sleep(Duration::from_millis(400));
    let archive = ArchiveProc::start(&broker, &db);
    wait_stat(&db, "stored", 200, &archive);
    // And a clean stop mid-flow.
    archive.stop();
    std::thread::sleep(Duration::from_millis(300));
    let archive = ArchiveProc::start(&broker, &db);
    flow.join().expect("publisher");
    let s = wait_stat(&db, "stored", 400, &archive);
    assert_eq!(
        s["doors"],
        serde_json::json!([{"door": "door-1", "events": 400, "first": 1, "last": 400}])
    );
    let (code, out, _) = gaps(&db);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "no gaps\n"),
        "{}",
        archive.log_text()
    );
    assert_eq!(s["conflicts"], 0);
}

#[test]
fn broker_restarts_lose_nothing() {
    let mut broker = Broker::start(BrokerOptions {
        persistence: true,
        ..BrokerOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive");
    let archive = ArchiveProc::start(&broker, &db);
    let publisher = Client::connect(&broker, &ClientOptions::new());
    for seq in 1..=20 {
        publisher.publish(&topic("door-1"), event("door-1", seq), false);
    }
    wait_stat(&db, "stored", 20, &archive);

    // The archive is down; events queue on the broker for its session; the broker restarts
    // (saving its database on the way down).
    archive.stop();
    for seq in 21..=60 {
        publisher.publish(&topic("door-1"), event("door-1", seq), false);
    }
    broker.restart();
    let archive = ArchiveProc::start(&broker, &db);
    wait_stat(&db, "stored", 60, &archive);

    // The broker restarts under a running archive: it reconnects and carries on.
    broker.restart();
    archive.wait_log("archive subscribed", 2);
    assert!(publisher.wait_connections(2, WAIT), "publisher reconnects");
    for seq in 61..=100 {
        publisher.publish(&topic("door-1"), event("door-1", seq), false);
    }
    let s = wait_stat(&db, "stored", 100, &archive);
    assert_eq!(
        s["doors"],
        serde_json::json!([{"door": "door-1", "events": 100, "first": 1, "last": 100}])
    );
    let (code, _, _) = gaps(&db);
    assert_eq!(code, Some(0), "{}", archive.log_text());
}

#[test]
fn a_real_doors_events_are_archived_as_published() {
    let broker = Broker::start(BrokerOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive");
    let archive = ArchiveProc::start(&broker, &db);
    let site = Site::new();
    let config = site.write_config(&format!(
        "\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\ninsecure = true\n",
        broker.port()
    ));
    let door = Pintud::start(&config, &site.socket(), &[]);
    let mut last = 0;
    for _ in 0..5 {
        last = door.tap("04FFFFFFFF").seq.expect("tap stored");
    }
    wait_stat(&db, "stored", last, &archive);
    door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    let mut from_door = door.events();
    from_door.sort_by_key(|e| e.seq);
    let reader = pintu::office::archive::ArchiveReader::open(&db).expect("archive via its socket");
    assert!(matches!(
        reader,
        pintu::office::archive::ArchiveReader::Socket(_)
    ));
    let archived: Vec<_> = reader
        .events(Some(DOOR))
        .expect("events")
        .into_iter()
        .filter(|e| e.seq <= last)
        .collect();
    let upto: Vec<_> = from_door.into_iter().filter(|e| e.seq <= last).collect();
    assert_eq!(upto.len() as u64, last, "the door shows every event");
    assert_eq!(archived, upto, "the archive holds the door's events");
    let (code, _, _) = gaps(&db);
    assert_eq!(code, Some(0));
}

/// Catch-up rate after an outage: events queued on the broker for the archive's session, then
/// the archive starts and drains them (PUBACK after each flush; Mosquitto's default 20 in
/// flight). Prints the rate; run with `cargo test archive_catch_up_rate -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn archive_catch_up_rate() {
    const N: u64 = 5000;
    let broker = Broker::start(BrokerOptions {
        extra_config: "max_queued_messages 100000\n".into(),
        ..BrokerOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("archive");
    ArchiveProc::start(&broker, &db).stop();
    let publisher = Client::connect(&broker, &ClientOptions::new());
    for seq in 1..=N {
        publisher.publish(&topic("door-1"), event("door-1", seq), false);
    }
    let started = Instant::now();
    let archive = ArchiveProc::start(&broker, &db);
    wait_stat(&db, "stored", N, &archive);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "archived {N} queued events in {secs:.2} s: {:.0} events/s",
        N as f64 / secs
    );
}
