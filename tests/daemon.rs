//! pintud as a process: lists through the inbox and at start, taps through the control socket,
//! the relay's recorded changes, the outbox events, restarts and store rebuilds.

use std::time::Duration;

use pintu::core::event::{Event, EventKind};
use pintu::door::control::{Reply, Request};
use pintu::door::hw::LockState;

use crate::common::{Pintud, Site, DOOR, SITE};

const ALICE: &str = "04A1B2C3D4E5F6";
const BOB_EXPIRED: &str = "04B0B0B0B0B0B0";
const UNKNOWN: &str = "0102030405";

/// Drops a list into the inbox the way a careful copy does: write a hidden temp file, rename.
fn drop_into_inbox(site: &Site, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(site.inbox()).expect("inbox");
    let tmp = site.inbox().join(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).expect("write list");
    std::fs::rename(&tmp, site.inbox().join(name)).expect("rename list");
}

/// Polls `cond` for up to 15 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

fn standard_list(site: &Site, version: u64) -> Vec<u8> {
    site.sign(&site.payload(
        version,
        vec![
            site.entry(
                ALICE,
                "alice",
                "2025-01-01T00:00:00Z",
                "2035-01-01T00:00:00Z",
            ),
            site.entry(
                BOB_EXPIRED,
                "bob",
                "2024-01-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
            ),
        ],
    ))
}

#[test]
fn door_decides_taps_from_a_list_dropped_into_the_inbox() {
    let site = Site::new();
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &[]);

    // No list yet: everything is denied, and the door says why.
    let before = door.tap(ALICE);
    assert_eq!(
        (before.decision.as_str(), before.reason.as_deref()),
        ("deny", Some("no_list"))
    );

    drop_into_inbox(&site, "list-v1.signed", &standard_list(&site, 1));
    door.wait_for("list v1", |s| s.list.as_ref().map(|l| l.version) == Some(1));
    eventually("the list file moves to processed/", || {
        std::fs::read_dir(site.inbox().join("processed"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 1
    });

    let granted = door.tap(ALICE);
    assert_eq!(granted.decision, "grant");
    assert_eq!(granted.reason, None);
    assert_eq!(granted.holder.as_deref(), Some("alice"));
    let alice_card = site.card_key.hash(&ALICE.parse().expect("uid")).masked();
    assert_eq!(granted.card, alice_card);
    assert_eq!(door.status().lock, LockState::Released);

    let unknown = door.tap(UNKNOWN);
    assert_eq!(
        (
            unknown.decision.as_str(),
            unknown.reason.as_deref(),
            unknown.holder
        ),
        ("deny", Some("unknown_card"), None)
    );

    let expired = door.tap(BOB_EXPIRED);
    assert_eq!(
        (expired.decision.as_str(), expired.reason.as_deref()),
        ("deny", Some("expired"))
    );
    assert_eq!(expired.holder.as_deref(), Some("bob"));

    // The relay: secured at start, released by the grant, secured again after unlock_for (1 s).
    let status = door.wait_for("relock", |s| {
        s.lock == LockState::Secured && s.lock_changes.len() >= 3
    });
    let changes: Vec<LockState> = status.lock_changes.iter().map(|c| c.state).collect();
    assert_eq!(
        changes,
        vec![LockState::Secured, LockState::Released, LockState::Secured]
    );
    let held = status.lock_changes[2]
        .at
        .duration_since(status.lock_changes[1].at);
    assert!(
        held >= jiff::SignedDuration::from_millis(950),
        "lock released for only {held:?}"
    );

    // The outbox holds every decision and state change, numbered without gaps.
    let events = door.events();
    assert_eq!(
        kinds(&events),
        vec![
            "daemon.started",
            "access.denied",
            "list.applied",
            "access.granted",
            "lock.released",
            "access.denied",
            "access.denied",
            "lock.secured"
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, events[0].seq + i as u64, "seq gap at {e:?}");
        assert_eq!((e.site.as_str(), e.door.as_str()), (SITE, DOOR));
    }
    let grant = &events[3];
    assert_eq!(grant.holder.as_deref(), Some("alice"));
    assert_eq!(grant.card.as_deref(), Some(alice_card.as_str()));
    assert_eq!(grant.decision.as_deref(), Some("grant"));
    assert_eq!(grant.list_version, Some(1));
    assert_eq!(Some(grant.seq), granted.seq);
    assert_eq!(events[5].reason.as_deref(), Some("unknown_card"));
    assert_eq!(events[6].reason.as_deref(), Some("expired"));
    assert_eq!(events[1].reason.as_deref(), Some("no_list"));
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");

    // Raw UIDs never leave the reader layer: not in events, not in the log.
    let all_events = serde_json::to_string(&events).expect("json");
    let log = door.log_text();
    for uid in [ALICE, BOB_EXPIRED, UNKNOWN] {
        assert!(
            !all_events.to_uppercase().contains(uid),
            "raw UID {uid} in events"
        );
        assert!(
            !log.to_uppercase().contains(uid),
            "raw UID {uid} in the log"
        );
    }
    // One log line per tap with reader, masked card, decision, reason and microseconds.
    let tap_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" tap ") && l.contains("micros="))
        .collect();
    assert_eq!(tap_lines.len(), 4, "log:\n{log}");
    assert!(
        tap_lines[1].contains(&alice_card)
            && tap_lines[1].contains("grant")
            && tap_lines[1].contains("reader=entry")
    );
}

#[test]
fn rejected_lists_change_nothing_and_are_reported() {
    let site = Site::new();
    let config = site.write_config("");
    std::fs::write(site.path("v2.signed"), standard_list(&site, 2)).expect("write");
    let door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", site.path("v2.signed").to_str().expect("path")],
    );
    door.wait_for("list v2", |s| s.list.as_ref().map(|l| l.version) == Some(2));

    // A rollback, a tampered list and garbage: all rejected, the door keeps version 2.
    drop_into_inbox(&site, "a-rollback.signed", &standard_list(&site, 1));
    let mut envelope: pintu::core::list::Envelope =
        serde_json::from_slice(&standard_list(&site, 3)).expect("envelope");
    envelope.payload = envelope.payload.replacen("e", "f", 1);
    drop_into_inbox(
        &site,
        "b-tampered.signed",
        &serde_json::to_vec(&envelope).expect("json"),
    );
    drop_into_inbox(&site, "c-garbage.signed", b"this is not a list");

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let rejected = loop {
        let rejected: Vec<Event> = door
            .events()
            .into_iter()
            .filter(|e| e.kind == EventKind::ListRejected)
            .collect();
        if rejected.len() == 3 || std::time::Instant::now() > deadline {
            break rejected;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let reasons: Vec<_> = rejected
        .iter()
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        vec!["rollback", "bad_signature", "malformed"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
        "log:\n{}",
        door.log_text()
    );
    assert!(rejected[0]
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("a-rollback.signed"));
    let status = door.status();
    assert_eq!(status.list.as_ref().map(|l| l.version), Some(2));
    assert_eq!(status.highest_list_version, 2);
    assert_eq!(door.tap(ALICE).decision, "grant");
    eventually("the three files move to rejected/", || {
        std::fs::read_dir(site.inbox().join("rejected"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 3
    });
}

#[test]
fn restart_keeps_the_list_the_rollback_floor_and_the_event_numbering() {
    let site = Site::new();
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &[]);
    drop_into_inbox(&site, "v3.signed", &standard_list(&site, 3));
    door.wait_for("list v3", |s| s.list.as_ref().map(|l| l.version) == Some(3));
    assert_eq!(door.tap(ALICE).decision, "grant");
    let last_seq = door.events().last().expect("events").seq;
    assert_eq!(door.stop(), Some(0), "SIGTERM is a clean stop");

    let door = Pintud::start(&config, &site.socket(), &[]);
    let status = door.status();
    assert_eq!(
        status.list.as_ref().map(|l| l.version),
        Some(3),
        "list survives the restart"
    );
    assert_eq!(status.lock, LockState::Secured);
    let events = door.events();
    // Stopping secured the lock and said so; numbering continues after the restart.
    let stop_pos = events
        .iter()
        .position(|e| e.kind == EventKind::DaemonStopping)
        .expect("daemon.stopping");
    assert_eq!(events[stop_pos - 1].kind, EventKind::LockSecured);
    let started = events
        .iter()
        .rfind(|e| e.kind == EventKind::DaemonStarted)
        .expect("daemon.started");
    assert!(started.seq > last_seq);
    assert!(
        !events.iter().any(|e| e.kind == EventKind::ListRejected),
        "the active list offered again is not an alarm"
    );
    assert_eq!(door.tap(ALICE).decision, "grant");

    // The rollback floor survived too.
    drop_into_inbox(&site, "v2.signed", &standard_list(&site, 2));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !door
        .events()
        .iter()
        .any(|e| e.kind == EventKind::ListRejected)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no list.rejected; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rejected = door
        .events()
        .into_iter()
        .find(|e| e.kind == EventKind::ListRejected)
        .expect("rejected");
    assert_eq!(rejected.reason.as_deref(), Some("rollback"));
}

#[test]
fn a_deleted_store_is_rebuilt_from_the_list_file() {
    let site = Site::new();
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &[]);
    drop_into_inbox(&site, "v1.signed", &standard_list(&site, 1));
    door.wait_for("list v1", |s| s.list.as_ref().map(|l| l.version) == Some(1));
    let last_seq = door.events().last().expect("events").seq;
    assert_eq!(door.stop(), Some(0));

    std::fs::remove_dir_all(site.state_dir().join("store")).expect("delete sled dir");
    let door = Pintud::start(&config, &site.socket(), &[]);
    assert_eq!(door.status().list.as_ref().map(|l| l.version), Some(1));
    let events = door.events();
    let rebuilt = events
        .iter()
        .find(|e| e.kind == EventKind::StoreRebuilt && e.reason.as_deref() == Some("cache_rebuilt"))
        .expect("store.rebuilt event for the list cache");
    assert!(
        events.iter().all(|e| e.seq > last_seq),
        "numbering never goes back after the store is lost: {last_seq} then {:?}",
        events.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    assert!(events
        .iter()
        .any(|e| e.reason.as_deref() == Some("seq_resumed")));
    assert_eq!(rebuilt.list_version, Some(1));
    assert_eq!(door.tap(ALICE).decision, "grant");
    assert_eq!(door.tap(BOB_EXPIRED).reason.as_deref(), Some("expired"));
    assert!(
        door.log_text().contains("rebuilding it from"),
        "the rebuild is logged"
    );
}

#[test]
fn control_socket_is_owner_only_and_rejects_bad_requests() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &[]);
    let mode = std::fs::metadata(site.socket())
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    match door.request(&Request::Tap {
        uid: "xyz".into(),
        reader: None,
    }) {
        Reply::Error { message } => assert!(message.contains("invalid character"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    match door.request(&Request::Tap {
        uid: ALICE.into(),
        reader: Some("back-door".into()),
    }) {
        Reply::Error { message } => assert!(
            message.contains("no reader named \"back-door\""),
            "{message}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    // A raw malformed line gets an error reply, and the connection stays usable.
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(site.socket()).expect("connect");
    stream
        .write_all(b"{\"cmd\":\"launch\"}\n{\"cmd\":\"status\"}\n")
        .expect("write");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply 1");
    assert!(
        line.contains("\"reply\":\"error\"") && line.contains("bad request"),
        "{line}"
    );
    line.clear();
    reader.read_line(&mut line).expect("reply 2");
    assert!(line.contains("\"reply\":\"status\""), "{line}");

    // A second daemon on the same state dir refuses to start, and leaves the store alone.
    let out = crate::common::pintud(&["--config", config.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::common::text(&out.stderr).contains("another pintud"),
        "{}",
        crate::common::text(&out.stderr)
    );
    let aside = std::fs::read_dir(site.state_dir())
        .expect("state dir")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("store.damaged"));
    assert!(!aside, "a second daemon must not move the live store aside");
    assert_eq!(door.status().site, SITE, "the first daemon still answers");
}

#[test]
fn exit_button_and_door_contact_are_recorded() {
    let site = Site::new();
    let config = site.write_config("");
    let door = Pintud::start(&config, &site.socket(), &[]);
    use pintu::door::hw::DoorInput;
    for input in [
        DoorInput::ExitButton,
        DoorInput::DoorOpened,
        DoorInput::DoorClosed,
    ] {
        assert!(matches!(
            door.request(&Request::Input { input }),
            Reply::Input { .. }
        ));
    }
    let events = door.events();
    // The exit request released the lock, the opening was authorised, and closing the door
    // relocked it at once (relock_on_close defaults to true).
    assert_eq!(
        &kinds(&events)[1..],
        &[
            "exit.requested",
            "lock.released",
            "door.opened",
            "door.closed",
            "lock.secured"
        ]
    );
    assert_eq!(events[3].reason.as_deref(), Some("authorised"));
    let status = door.status();
    assert_eq!(status.lock, LockState::Secured);
    assert_eq!(status.lock_changes.len(), 3);
}

fn input(door: &Pintud, input: pintu::door::hw::DoorInput) {
    assert!(matches!(
        door.request(&Request::Input { input }),
        Reply::Input { .. }
    ));
}

#[test]
fn door_forced_open_raises_an_alarm_and_clears_it_on_close() {
    use pintu::door::hw::DoorInput;
    let site = Site::new();
    let door = Pintud::start(&site.write_config(""), &site.socket(), &[]);
    input(&door, DoorInput::DoorOpened);
    input(&door, DoorInput::DoorClosed);
    let events = door.events();
    assert_eq!(
        &kinds(&events)[1..],
        &[
            "door.opened",
            "door.forced_open",
            "door.closed",
            "door.forced_open.cleared"
        ]
    );
    assert_eq!(events[1].reason.as_deref(), Some("forced"));
    assert_eq!(
        door.status().lock,
        LockState::Secured,
        "an alarm never opens the door"
    );
}

#[test]
fn door_held_open_raises_prealarm_then_alarm_and_clears_on_close() {
    use pintu::door::hw::DoorInput;
    let site = Site::new();
    let config = site.write_config("");
    let text = std::fs::read_to_string(&config).expect("config").replace(
        "unlock_for = \"1s\"",
        "unlock_for = \"1s\"\nheld_open_prealarm = \"1s\"\nheld_open_alarm = \"2s\"",
    );
    std::fs::write(&config, text).expect("config");
    let door = Pintud::start(&config, &site.socket(), &[]);
    input(&door, DoorInput::ExitButton);
    input(&door, DoorInput::DoorOpened);
    eventually("the held-open alarm", || {
        door.events()
            .iter()
            .any(|e| e.kind == EventKind::DoorHeldOpen && e.reason.as_deref() == Some("alarm"))
    });
    input(&door, DoorInput::DoorClosed);
    let events = door.events();
    let held: Vec<(&str, Option<&str>)> = events
        .iter()
        .filter(|e| e.kind.as_str().starts_with("door."))
        .map(|e| (e.kind.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        held,
        vec![
            ("door.opened", Some("authorised")),
            ("door.held_open", Some("prealarm")),
            ("door.held_open", Some("alarm")),
            ("door.closed", None),
            ("door.held_open.cleared", None),
        ]
    );
    // The lock relocked after unlock_for while the door stood open, and stays locked.
    assert_eq!(door.status().lock, LockState::Secured);
}

/// Readers and inputs behind the `CardSource` / `DoorInputs` traits feed the same door task as
/// the control socket: run in-process with scripted sources.
#[test]
fn card_sources_and_door_inputs_drive_the_door() {
    use pintu::core::procedure::Direction;
    use pintu::door::config::Config;
    use pintu::door::hw::sim::{ScriptedCards, ScriptedInputs};
    use pintu::door::hw::DoorInput;
    use std::sync::Arc;

    let site = Site::new();
    let config = Config::load(&site.write_config("")).expect("config");
    std::fs::write(site.path("v1.signed"), standard_list(&site, 1)).expect("list");
    let cards = ScriptedCards {
        name: "exit-reader".into(),
        role: Direction::Exit,
        uids: vec![ALICE.parse().expect("uid"), UNKNOWN.parse().expect("uid")],
        gap: Duration::from_millis(20),
    };
    let inputs = ScriptedInputs {
        changes: vec![DoorInput::DoorOpened, DoorInput::DoorClosed],
        gap: Duration::from_millis(200),
    };
    let socket = site.socket();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    let daemon = runtime.spawn(pintu::door::daemon::run(
        config,
        pintu::door::daemon::RunOptions {
            list: Some(site.path("v1.signed")),
            card_sources: vec![Box::new(cards)],
            door_inputs: vec![Box::new(inputs)],
            ..Default::default()
        },
        Arc::new(pintu::door::clock::SystemClock),
        shutdown,
        || {},
    ));
    eventually("both taps and both inputs are recorded", || {
        let Ok(Reply::Events { events }) = pintu::door::control::request(
            &socket,
            &Request::Events { limit: Some(100) },
            Duration::from_secs(5),
        ) else {
            return false;
        };
        let k = kinds(&events);
        k.iter().filter(|k| k.starts_with("access.")).count() == 2 && k.contains(&"door.closed")
    });
    let Reply::Events { events } = pintu::door::control::request(
        &socket,
        &Request::Events { limit: Some(100) },
        Duration::from_secs(5),
    )
    .expect("events") else {
        panic!("no events reply");
    };
    let taps: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind.as_str().starts_with("access."))
        .collect();
    assert_eq!(taps[0].reader.as_deref(), Some("exit-reader"));
    assert_eq!(
        (taps[0].decision.as_deref(), taps[0].holder.as_deref()),
        (Some("grant"), Some("alice"))
    );
    assert_eq!(taps[1].reason.as_deref(), Some("unknown_card"));
    let k = kinds(&events);
    let opened = k
        .iter()
        .position(|k| *k == "door.opened")
        .expect("door.opened");
    assert_eq!(k[opened + 1], "door.closed");

    stop.cancel();
    runtime
        .block_on(daemon)
        .expect("join")
        .expect("daemon ran cleanly");
    assert!(!socket.exists(), "socket removed at stop");
}

/// On a machine without GPIO, a GPIO lock fails at start with a clear error and nothing is driven.
#[test]
fn gpio_lock_without_gpio_hardware_fails_at_start_clearly() {
    for (backend, device, expected) in [
        (
            "gpiocdev",
            "/dev/gpiochip0",
            "cannot request GPIO 17 on /dev/gpiochip0",
        ),
        (
            "rpi-pal",
            "/dev/gpiomem",
            "cannot open the Raspberry Pi GPIO (rpi-pal)",
        ),
    ] {
        if std::path::Path::new(device).exists() {
            continue; // a machine with GPIO: nothing to prove here
        }
        let site = Site::new();
        let config = site.path("pintu.toml");
        let text = site
            .config_text("")
            .replace(
                "[[reader]]",
                &format!("[lock]\nbackend = \"{backend}\"\npin = 17\n\n[[reader]]"),
            )
            .replace("unlock_for = \"1s\"", "unlock_for = \"1s\"\nbench = true");
        std::fs::write(&config, text).expect("config");
        let out = crate::common::pintud(&["--config", config.to_str().expect("path")]);
        let stderr = crate::common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{backend}: {stderr}");
        assert!(!site.socket().exists(), "the door never started serving");
    }
}

/// The shipped unit passes `systemd-analyze verify` (with this build's pintud at its ExecStart
/// path), where the tool exists.
#[test]
fn systemd_unit_verifies() {
    let Ok(analyze) = which_systemd_analyze() else {
        eprintln!("systemd-analyze not installed: skipping");
        return;
    };
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/pintud.service"
    ))
    .expect("unit");
    assert!(
        unit.contains("ExecStopPost=/usr/bin/pintud --safe-state"),
        "the relay is driven safe after every stop"
    );
    assert!(unit.contains("Type=notify"));
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pintud.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/pintud", env!("CARGO_BIN_EXE_pintud")),
    )
    .expect("write unit");
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let text = format!(
        "{}{}",
        crate::common::text(&out.stdout),
        crate::common::text(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify: {text}"
    );
}

fn which_systemd_analyze() -> Result<std::path::PathBuf, ()> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .ok_or(())
}

/// systemd's protocol for real: a fake `NOTIFY_SOCKET` receives READY=1, then WATCHDOG=1 pings.
#[test]
fn notify_socket_receives_ready_and_watchdog_pings() {
    let site = Site::new();
    let config = site.write_config("");
    let notify_path = site.path("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // systemd sets WATCHDOG_PID to the service's pid: `exec` keeps the shell's pid for pintud.
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_pintud"))
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn pintud");
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2)
    {
        let Ok(n) = notify.recv(&mut buf) else { break };
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let ready = seen
        .iter()
        .position(|m| m.contains("READY=1"))
        .expect("READY=1 received");
    assert!(
        seen[ready + 1..]
            .iter()
            .filter(|m| m.contains("WATCHDOG=1"))
            .count()
            >= 2,
        "pings after READY: {seen:?}"
    );
}

/// A lock for in-process tests: records every call; can stall or panic on release.
#[derive(Clone, Default)]
struct TestLock {
    calls: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
    stall_on_release: Option<Duration>,
    panic_on_release: bool,
    fail_on_release: bool,
    /// How many of the next `secure` calls fail.
    fail_next_secures: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl pintu::door::hw::Lock for TestLock {
    fn release(&mut self) -> Result<(), pintu::door::hw::HwError> {
        self.calls.lock().expect("calls").push("release");
        if let Some(stall) = self.stall_on_release {
            std::thread::sleep(stall); // the tap loop is stuck here
        }
        if self.panic_on_release {
            panic!("test lock: relay driver crashed");
        }
        if self.fail_on_release {
            return Err(pintu::door::hw::HwError {
                device: "lock".into(),
                kind: pintu::door::hw::HwErrorKind::Other,
                message: "relay driver error".into(),
            });
        }
        Ok(())
    }

    fn secure(&mut self) -> Result<(), pintu::door::hw::HwError> {
        self.calls.lock().expect("calls").push("secure");
        use std::sync::atomic::Ordering;
        let failing = self
            .fail_next_secures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(pintu::door::hw::HwError {
                device: "lock".into(),
                kind: pintu::door::hw::HwErrorKind::Other,
                message: "relay driver error".into(),
            });
        }
        Ok(())
    }
}

/// Runs the daemon in-process with `lock` and `watchdog`, returns the runtime, the join handle
/// and the shutdown token.
fn run_in_process(
    site: &Site,
    lock: TestLock,
    watchdog: Option<pintu::door::daemon::Watchdog>,
) -> (
    tokio::runtime::Runtime,
    tokio::task::JoinHandle<Result<(), pintu::door::daemon::DaemonError>>,
    tokio_util::sync::CancellationToken,
) {
    run_in_process_with(site, &site.write_config(""), lock, watchdog)
}

/// [`run_in_process`] with a config file of the caller's.
fn run_in_process_with(
    site: &Site,
    config: &std::path::Path,
    lock: TestLock,
    watchdog: Option<pintu::door::daemon::Watchdog>,
) -> (
    tokio::runtime::Runtime,
    tokio::task::JoinHandle<Result<(), pintu::door::daemon::DaemonError>>,
    tokio_util::sync::CancellationToken,
) {
    let config = pintu::door::config::Config::load(config).expect("config");
    std::fs::write(site.path("v1.signed"), standard_list(site, 1)).expect("list");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let daemon = runtime.spawn(pintu::door::daemon::run(
        config,
        pintu::door::daemon::RunOptions {
            list: Some(site.path("v1.signed")),
            lock: Some(Box::new(lock)),
            watchdog,
            ..Default::default()
        },
        std::sync::Arc::new(pintu::door::clock::SystemClock),
        shutdown.clone(),
        || {},
    ));
    let socket = site.socket();
    eventually("the door serves", || {
        socket.exists()
            && pintu::door::control::request(&socket, &Request::Status, Duration::from_secs(2))
                .is_ok()
    });
    (runtime, daemon, shutdown)
}

#[test]
fn watchdog_pings_stop_while_the_tap_loop_is_stalled() {
    let site = Site::new();
    let pings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<std::time::Instant>::new()));
    let recorded = pings.clone();
    let watchdog = pintu::door::daemon::Watchdog {
        period: Duration::from_millis(200),
        ping: Box::new(move || {
            recorded
                .lock()
                .expect("pings")
                .push(std::time::Instant::now())
        }),
    };
    let lock = TestLock {
        stall_on_release: Some(Duration::from_millis(1500)),
        ..Default::default()
    };
    let (runtime, daemon, shutdown) = run_in_process(&site, lock, Some(watchdog));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pings.lock().expect("pings").len() >= 2,
        "pings while healthy"
    );

    // A grant drives the stalling relay: the tap loop is stuck for 1.5 s.
    let socket = site.socket();
    let tap = std::thread::spawn(move || {
        pintu::door::control::request(
            &socket,
            &Request::Tap {
                uid: ALICE.into(),
                reader: None,
            },
            Duration::from_secs(10),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let stalled_from = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let during = pings
        .lock()
        .expect("pings")
        .iter()
        .filter(|t| **t > stalled_from)
        .count();
    assert_eq!(during, 0, "no watchdog ping while the tap loop is stalled");
    tap.join().expect("tap thread").expect("tap reply");
    std::thread::sleep(Duration::from_millis(600));
    let after = pings
        .lock()
        .expect("pings")
        .iter()
        .filter(|t| **t > stalled_from)
        .count();
    assert!(after >= 1, "pings resume once the loop turns again");

    shutdown.cancel();
    runtime.block_on(daemon).expect("join").expect("clean stop");
}

#[test]
fn a_panic_in_the_door_task_leaves_the_lock_secured_and_stops_the_daemon() {
    let site = Site::new();
    let lock = TestLock {
        panic_on_release: true,
        ..Default::default()
    };
    let calls = lock.calls.clone();
    let (runtime, daemon, _shutdown) = run_in_process(&site, lock, None);
    let _ = pintu::door::control::request(
        &site.socket(),
        &Request::Tap {
            uid: ALICE.into(),
            reader: None,
        },
        Duration::from_secs(5),
    );
    let result = runtime.block_on(daemon).expect("join");
    let error = result.expect_err("the daemon stops with an error after the door task panicked");
    assert!(error.to_string().contains("door task"), "{error}");
    let calls = calls.lock().expect("calls").clone();
    assert_eq!(
        calls.first(),
        Some(&"secure"),
        "secured first thing at start"
    );
    assert_eq!(
        calls.last(),
        Some(&"secure"),
        "secured while unwinding: {calls:?}"
    );
}

#[test]
fn a_clean_stop_ends_with_the_lock_secured() {
    let site = Site::new();
    let lock = TestLock::default();
    let calls = lock.calls.clone();
    let (runtime, daemon, shutdown) = run_in_process(&site, lock, None);
    let tap = pintu::door::control::request(
        &site.socket(),
        &Request::Tap {
            uid: ALICE.into(),
            reader: None,
        },
        Duration::from_secs(5),
    );
    assert!(matches!(tap, Ok(Reply::Tap(t)) if t.decision == "grant"));
    shutdown.cancel(); // as SIGTERM does, while the lock is released
    runtime.block_on(daemon).expect("join").expect("clean stop");
    assert_eq!(
        *calls.lock().expect("calls"),
        vec!["secure", "release", "secure"]
    );
}

#[test]
fn a_relay_error_is_a_hardware_fault_and_the_door_counts_as_secured() {
    let site = Site::new();
    let lock = TestLock {
        fail_on_release: true,
        ..Default::default()
    };
    let calls = lock.calls.clone();
    let (runtime, daemon, shutdown) = run_in_process(&site, lock, None);
    let socket = site.socket();
    let tap = pintu::door::control::request(
        &socket,
        &Request::Tap {
            uid: ALICE.into(),
            reader: None,
        },
        Duration::from_secs(5),
    );
    assert!(matches!(tap, Ok(Reply::Tap(t)) if t.decision == "grant"));
    let Ok(Reply::Events { events }) = pintu::door::control::request(
        &socket,
        &Request::Events { limit: Some(50) },
        Duration::from_secs(5),
    ) else {
        panic!("events");
    };
    let fault = events
        .iter()
        .find(|e| e.kind == EventKind::HardwareFault)
        .expect("hardware.fault recorded");
    assert_eq!(fault.reason.as_deref(), Some("lock"));
    assert!(fault
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("relay driver error"));
    let Ok(Reply::Status(status)) =
        pintu::door::control::request(&socket, &Request::Status, Duration::from_secs(5))
    else {
        panic!("status");
    };
    assert_eq!(
        status.lock,
        LockState::Secured,
        "a failed release never counts as open"
    );
    shutdown.cancel();
    runtime.block_on(daemon).expect("join").expect("clean stop");
    assert_eq!(calls.lock().expect("calls").last(), Some(&"secure"));
}

/// The door state machine on tokio's paused clock, as the door task feeds it (its time is
/// `tokio::time::Instant::now()`): relock on close, REX, each alarm and its clear.
#[tokio::test(start_paused = true)]
async fn door_machine_under_tokios_paused_clock() {
    use pintu::core::doorstate::LockCommand::{Release, Secure};
    use pintu::core::doorstate::{DoorEvent::*, DoorMachine, DoorSettings, Output::*};
    let now = || tokio::time::Instant::now().into_std();
    let settings = DoorSettings {
        unlock_for: Duration::from_secs(5),
        relock_on_close: true,
        held_open_prealarm: Duration::from_secs(20),
        held_open_alarm: Duration::from_secs(40),
        relock_grace: Duration::from_secs(1),
    };
    let mut door = DoorMachine::new(settings);
    // REX releases; nobody opens; the release runs out on the paused clock.
    assert_eq!(door.release(now()), vec![Lock(Release)]);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(door.tick(now()), vec![]);
    tokio::time::sleep_until(tokio::time::Instant::from_std(
        door.next_deadline().expect("deadline"),
    ))
    .await;
    assert_eq!(door.tick(now()), vec![Lock(Secure)]);
    // A grant, the door opens and closes: relocked at once.
    door.release(now());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        door.contact_opened(now()),
        vec![Event(Opened { authorised: true })]
    );
    assert_eq!(
        door.contact_closed(now()),
        vec![Event(Closed), Lock(Secure)]
    );
    // Forced open, held open through both levels, cleared on close.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        door.contact_opened(now()),
        vec![Event(Opened { authorised: false }), Event(ForcedOpen)]
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(door.tick(now()), vec![Event(HeldOpenPrealarm)]);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(door.tick(now()), vec![Event(HeldOpenAlarm)]);
    assert_eq!(
        door.contact_closed(now()),
        vec![
            Event(Closed),
            Event(ForcedOpenCleared),
            Event(HeldOpenCleared)
        ]
    );
    assert!(!door.alarm_active());
}

/// Issue 15 item 7: a relay that fails to secure once is retried and the door carries on.
#[test]
fn a_secure_that_fails_once_is_retried_and_the_door_carries_on() {
    let site = Site::new();
    let lock = TestLock::default();
    let calls = lock.calls.clone();
    let failures = lock.fail_next_secures.clone();
    let (runtime, daemon, shutdown) = run_in_process(&site, lock, None);
    failures.store(1, std::sync::atomic::Ordering::SeqCst);
    let tap = ask(&site, &tap_alice());
    assert!(matches!(tap, Reply::Tap(t) if t.decision == "grant"));
    // unlock_for is 1 s: the relock's first secure fails, the second succeeds.
    eventually("the relock is retried", || {
        calls.lock().expect("calls").len() >= 4
    });
    assert_eq!(
        *calls.lock().expect("calls"),
        vec!["secure", "release", "secure", "secure"]
    );
    assert!(
        !daemon.is_finished(),
        "one failed attempt does not stop the door"
    );
    shutdown.cancel();
    runtime.block_on(daemon).expect("join").expect("clean stop");
}

/// Issue 15 item 7: a lock that cannot be secured is tried three times, recorded as a
/// hardware fault, and pintud stops by itself (non-zero) so systemd restarts it.
#[test]
fn a_lock_that_cannot_be_secured_stops_pintud_for_a_restart() {
    let site = Site::new();
    let lock = TestLock::default();
    let calls = lock.calls.clone();
    let failures = lock.fail_next_secures.clone();
    let (runtime, daemon, _shutdown) = run_in_process(&site, lock, None);
    failures.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let tap = ask(&site, &tap_alice());
    assert!(matches!(tap, Reply::Tap(t) if t.decision == "grant"));
    // Nobody cancels: the failed relock alone ends the daemon.
    let result =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(20), daemon).await });
    let error = result
        .expect("pintud stops by itself")
        .expect("join")
        .expect_err("a lock that cannot be secured is an error exit");
    assert!(
        error.to_string().contains("could not be secured"),
        "{error}"
    );
    let calls = calls.lock().expect("calls").clone();
    let after_release: Vec<_> = calls
        .iter()
        .skip_while(|c| **c != "release")
        .skip(1)
        .collect();
    assert!(
        after_release.len() >= 3 && after_release.iter().all(|c| **c == "secure"),
        "retried: {calls:?}"
    );
    let events = pintu::door::store::Store::open(&site.store_options(), &site.policy())
        .expect("store")
        .0
        .recent_events(50)
        .expect("events");
    let fault = events
        .iter()
        .find(|e| e.kind == EventKind::HardwareFault)
        .expect("hardware.fault");
    assert!(
        fault
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("after 3 attempts"),
        "{fault:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last.kind, EventKind::DaemonStopping);
    assert_eq!(last.reason.as_deref(), Some("lock_fault"));
}

/// Issue 15 item 7: a fail-safe lock (maglock) is released when pintud stops, and the last
/// events say so; before, they claimed "lock secured for shutdown" over an open door.
#[test]
fn a_fail_safe_door_that_stops_says_it_is_released() {
    let site = Site::new();
    let config = site.write_config("\n[lock]\ntype = \"fail-safe\"\n");
    std::fs::write(site.path("v1.signed"), standard_list(&site, 1)).expect("list");
    let list = site.path("v1.signed");
    let door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    );
    assert_eq!(door.stop(), Some(0), "SIGTERM is a clean stop");
    let events = pintu::door::store::Store::open(&site.store_options(), &site.policy())
        .expect("store")
        .0
        .recent_events(50)
        .expect("events");
    let n = events.len();
    assert!(n >= 2);
    let (released, stopping) = (&events[n - 2], &events[n - 1]);
    assert_eq!(stopping.kind, EventKind::DaemonStopping, "{events:#?}");
    assert_eq!(stopping.reason.as_deref(), Some("released"));
    assert_eq!(released.kind, EventKind::LockReleased, "{events:#?}");
    assert_eq!(released.reason.as_deref(), Some("shutdown"));
    assert!(
        !events[n.saturating_sub(3)..]
            .iter()
            .any(|e| e.kind == EventKind::LockSecured),
        "no lock.secured claim at the end: {events:#?}"
    );
}

/// The site's config with a GPIO lock (pin 17 on gpiocdev), edited by `edit`, written to a file.
fn gpio_lock_config(site: &Site, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let config = site.config_text("").replace(
        "[[reader]]",
        "[lock]\nbackend = \"gpiocdev\"\npin = 17\n\n[[reader]]",
    );
    let path = site.path("gpio-lock.toml");
    std::fs::write(&path, edit(config)).expect("config");
    path
}

/// Alice's card on the default (simulated) reader.
fn tap_alice() -> Request {
    Request::Tap {
        uid: ALICE.into(),
        reader: None,
    }
}

/// One request to the site's control socket; its reply.
fn ask(site: &Site, req: &Request) -> Reply {
    pintu::door::control::request(&site.socket(), req, Duration::from_secs(5)).expect("reply")
}

/// Issue 15 item 2: with a GPIO lock and no `[inputs]` (which used to mean simulated inputs),
/// `pintuctl input exit-button` released the real relay. Now the socket's simulated inputs and
/// taps never reach a real lock. (In-process: the GPIO relay is replaced by a recording lock,
/// since this machine has no GPIO.)
#[test]
fn the_control_socket_cannot_open_a_real_lock() {
    let site = Site::new();
    let path = gpio_lock_config(&site, |c| {
        c.replace("backend = \"sim\"", "backend = \"pcsc\"")
    });
    let lock = TestLock::default();
    let calls = lock.calls.clone();
    let (runtime, daemon, shutdown) = run_in_process_with(&site, &path, lock, None);
    let reply = ask(
        &site,
        &Request::Input {
            input: pintu::door::hw::DoorInput::ExitButton,
        },
    );
    assert!(
        matches!(&reply, Reply::Error { message } if message.contains("real lock")),
        "{reply:?}"
    );
    let reply = ask(&site, &tap_alice());
    assert!(matches!(&reply, Reply::Error { .. }), "{reply:?}");
    let Reply::Status(status) = ask(&site, &Request::Status) else {
        panic!("status")
    };
    assert!(!status.bench);
    shutdown.cancel();
    runtime.block_on(daemon).expect("join").expect("clean stop");
    assert_eq!(
        *calls.lock().expect("calls"),
        vec!["secure", "secure"],
        "never released"
    );
}

/// Issue 15 item 2: a declared bench (`[door] bench = true`) takes simulated taps next to a
/// real lock, and says so: a `door.bench_mode` alarm at start and `bench` in status.
#[test]
fn a_declared_bench_takes_simulated_taps_and_raises_an_alarm() {
    let site = Site::new();
    let path = gpio_lock_config(&site, |c| {
        c.replace("unlock_for = \"1s\"", "unlock_for = \"1s\"\nbench = true")
    });
    let lock = TestLock::default();
    let (runtime, daemon, shutdown) = run_in_process_with(&site, &path, lock, None);
    let reply = ask(&site, &tap_alice());
    assert!(
        matches!(&reply, Reply::Tap(t) if t.decision == "grant"),
        "{reply:?}"
    );
    let Reply::Status(status) = ask(&site, &Request::Status) else {
        panic!("status")
    };
    assert!(status.bench);
    let Reply::Events { events } = ask(&site, &Request::Events { limit: Some(50) }) else {
        panic!("events")
    };
    assert!(
        events.iter().any(|e| e.kind == EventKind::DoorBenchMode),
        "{events:#?}"
    );
    shutdown.cancel();
    runtime.block_on(daemon).expect("join").expect("clean stop");
}

/// Runs a copy of pintuctl (inside the site, so any user can reach it) as `nobody`.
fn pintuctl_as_nobody(site: &Site, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let copy = site.path("pintuctl");
    if !copy.exists() {
        std::fs::copy(env!("CARGO_BIN_EXE_pintuctl"), &copy).expect("copy pintuctl");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::process::Command::new(&copy)
        .args(args)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run pintuctl as nobody")
}

/// Issue 15 item 2: `capture` returns raw UIDs, so it needs its own permission: root, the
/// pintud user, or `[control] capture_group`; a refused capture is a `control.refused` event.
/// Before, anyone who could use the socket (status, events) could capture.
#[test]
fn capture_needs_its_own_permission() {
    use std::os::unix::fs::PermissionsExt as _;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    let site = Site::new();
    std::fs::set_permissions(site.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod site");
    let open_socket = site
        .config_text("")
        .replace("mode = \"0600\"", "mode = \"0666\"");
    let config = site.path("pintu.toml");
    std::fs::write(&config, &open_socket).expect("config");
    let socket = site.socket();
    let sock = socket.to_str().expect("path");
    let door = Pintud::start(&config, &socket, &[]);
    let enroll_at_door = || {
        pintuctl_as_nobody(
            &site,
            &[
                "--socket",
                sock,
                "card",
                "enroll",
                "--door",
                "--timeout",
                "1s",
            ],
        )
    };
    let status = pintuctl_as_nobody(&site, &["--socket", sock, "status"]);
    assert!(status.status.success(), "{status:?}");
    let out = enroll_at_door();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("capture returns raw card UIDs"), "{stderr}");
    let refused = door
        .events()
        .into_iter()
        .find(|e| e.kind == EventKind::ControlRefused)
        .expect("control.refused");
    assert_eq!(refused.reason.as_deref(), Some("capture_not_permitted"));
    assert!(refused
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("uid 65534"));
    drop(door);

    // Members of the capture group may: the capture is armed and times out with no tap.
    let with_group = open_socket.replace(
        "mode = \"0666\"",
        "mode = \"0666\"\ncapture_group = \"nogroup\"",
    );
    std::fs::write(&config, &with_group).expect("config");
    let _door = Pintud::start(&config, &socket, &[]);
    let out = enroll_at_door();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no card was tapped"), "{stderr}");
}

/// Issue 15 item 8: the inbox pintud owns is sticky and not writable by others (one operator
/// cannot swap another's file), and `processed/` and `rejected/` keep a bounded number of files,
/// the oldest removed first (they used to grow without end).
#[test]
fn inbox_is_sticky_and_its_archives_are_pruned_oldest_first() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    std::fs::create_dir_all(site.inbox()).expect("inbox");
    std::fs::set_permissions(site.inbox(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let config = site.path("pintu.toml");
    std::fs::write(
        &config,
        site.config_text("")
            .replace("[list]\n", "[list]\ninbox_keep = 3\n"),
    )
    .expect("config");
    let door = Pintud::start(&config, &site.socket(), &[]);
    let mode = || {
        std::fs::metadata(site.inbox())
            .expect("inbox")
            .permissions()
            .mode()
            & 0o7777
    };
    eventually("the inbox is made sticky", || mode() & 0o1000 != 0);
    assert_eq!(mode(), 0o1775, "sticky, not writable by others");

    for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        drop_into_inbox(&site, &format!("{name}.signed"), b"not a list");
        eventually(&format!("{name} is refused"), || {
            door.events()
                .iter()
                .filter(|e| e.kind == EventKind::ListRejected)
                .count()
                == i + 1
        });
        eventually(&format!("{name} leaves the inbox"), || {
            !site.inbox().join(format!("{name}.signed")).exists()
        });
    }
    let mut kept: Vec<String> = std::fs::read_dir(site.inbox().join("rejected"))
        .expect("rejected/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    let kept: Vec<&str> = kept
        .iter()
        .map(|n| n.rsplit('-').next().unwrap_or(n))
        .collect();
    assert_eq!(
        kept,
        ["c.signed", "d.signed", "e.signed"],
        "the newest three"
    );
}
