//! Card readers through PC/SC for real: pcscd with the vsmartcard-vpcd driver, a virtual card
//! written in Rust (`crates/pintu-testkit/src/vcard.rs`) and pintud as a process with a `pcsc` reader. And
//! enrollment: capture at the door (a simulated reader through the control socket, and the PC/SC
//! reader with `pintuctl enroll --door`), and `pintuctl enroll` at a desk reader into a register.
//!
//! The PC/SC tests start `pcscd -f` themselves when none is running, and take the virtual reader
//! one at a time ([`vcard::exclusive`]). The restart test stops whichever pcscd runs.

pub(crate) use pintu_testkit::vcard;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pintu::core::event::{Event, EventKind};
use pintu::door::control::{self, Reply, Request};
use pintu::door::hw::LockState;

use crate::common::{text, Pintud, Site};
use vcard::VirtualCard;

pub(crate) const ALICE: &str = "04A1B2C3D4E5F6";
pub(crate) const UNKNOWN: &str = "0102030405";
/// The door's PC/SC reader, as named in its config.
pub(crate) const PCSC_READER: &str = "door-pcsc";

/// A site whose door decides from a list holding Alice's card.
pub(crate) fn site_with_list() -> (Site, PathBuf) {
    let site = Site::new();
    let list = site.path("v1.signed");
    let entry = site.entry(
        ALICE,
        "alice",
        "2025-01-01T00:00:00Z",
        "2035-01-01T00:00:00Z",
    );
    std::fs::write(&list, site.sign(&site.payload(1, vec![entry]))).expect("write list");
    (site, list)
}

/// pintud with the virtual PC/SC reader (besides the simulated one), the list offered at start.
/// Returns once the door watches the reader, so a card placed now is a tap.
fn pcsc_door(site: &Site, list: &Path) -> Pintud {
    pcsc_door_with(site, list, "")
}

/// [`pcsc_door`] with `extra` appended to the config.
pub(crate) fn pcsc_door_with(site: &Site, list: &Path, extra: &str) -> Pintud {
    let config = site.write_config(&format!(
        "\n[[reader]]\nname = \"{PCSC_READER}\"\nrole = \"entry\"\nbackend = \"pcsc\"\npcsc_reader = \"{}\"\n{extra}",
        vcard::READER
    ));
    let door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("path")],
    );
    // Generous: under load pcscd can take a while to show the virtual reader.
    wait_log(&door, "PC/SC reader present", Duration::from_secs(30));
    door
}

/// Waits until pintud's log contains `needle` `times` times or more.
fn wait_log_n(door: &Pintud, needle: &str, times: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while door.log_text().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "pintud never logged {needle:?} ({times}×) within {within:?}; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn wait_log(door: &Pintud, needle: &str, within: Duration) {
    wait_log_n(door, needle, 1, within)
}

/// Tap-like events (decided or captured) on the PC/SC reader.
pub(crate) fn pcsc_taps(door: &Pintud) -> Vec<Event> {
    door.events()
        .into_iter()
        .filter(|e| {
            e.reader.as_deref() == Some(PCSC_READER)
                && matches!(
                    e.kind,
                    EventKind::AccessGranted | EventKind::AccessDenied | EventKind::CardCaptured
                )
        })
        .collect()
}

/// Waits until there are `n` tap events on the PC/SC reader; `None` after `within`.
pub(crate) fn wait_taps(door: &Pintud, n: usize, within: Duration) -> Option<Vec<Event>> {
    let deadline = Instant::now() + within;
    loop {
        let taps = pcsc_taps(door);
        if taps.len() >= n {
            return Some(taps);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expect_taps(door: &Pintud, n: usize) -> Vec<Event> {
    wait_taps(door, n, Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "expected {n} taps on {PCSC_READER}, saw {:?}; log:\n{}",
            pcsc_taps(door),
            door.log_text()
        )
    })
}

/// Lifts a card and waits long enough for pcscd to see the reader empty.
pub(crate) fn lift(card: VirtualCard) {
    card.remove();
    std::thread::sleep(Duration::from_millis(800));
}

#[test]
fn pcsc_card_is_one_tap_per_presentation() {
    let _reader = vcard::exclusive();
    vcard::ensure_pcscd();
    let (site, list) = site_with_list();
    let door = pcsc_door(&site, &list);
    let alice = site.card_key.hash(&ALICE.parse().expect("uid")).masked();

    // Placed: one tap, Alice's card, granted.
    let card = VirtualCard::place(ALICE);
    let taps = expect_taps(&door, 1);
    assert_eq!(taps[0].kind, EventKind::AccessGranted, "{taps:?}");
    assert_eq!(taps[0].card.as_deref(), Some(alice.as_str()));
    assert_eq!(taps[0].holder.as_deref(), Some("alice"));

    // Held on the reader: still one tap.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pcsc_taps(&door).len(), 1, "a held card tapped again");

    // Lifted and presented again: a second tap.
    lift(card);
    let card = VirtualCard::place(ALICE);
    let taps = expect_taps(&door, 2);
    assert_eq!(taps[1].kind, EventKind::AccessGranted);
    lift(card);

    // An unknown card: denied.
    let card = VirtualCard::place(UNKNOWN);
    let taps = expect_taps(&door, 3);
    assert_eq!(taps[2].kind, EventKind::AccessDenied);
    assert_eq!(taps[2].reason.as_deref(), Some("unknown_card"));
    assert_eq!(taps[2].holder, None);
    lift(card);
    assert_eq!(pcsc_taps(&door).len(), 3);

    let status = door.status();
    assert!(status
        .lock_changes
        .iter()
        .any(|c| c.state == LockState::Released));
    assert!(status
        .readers
        .iter()
        .any(|r| r.name == PCSC_READER && r.backend == "pcsc"));
    // Raw UIDs never reach the log, even at debug level.
    let log = door.log_text();
    assert!(!log.contains(ALICE) && !log.contains(UNKNOWN), "{log}");
}

#[test]
fn pcsc_reader_recovers_after_pcscd_restart() {
    let _reader = vcard::exclusive();
    vcard::ensure_pcscd();
    let (site, list) = site_with_list();
    let door = pcsc_door(&site, &list);
    let card = VirtualCard::place(ALICE);
    expect_taps(&door, 1);
    lift(card);

    vcard::stop_pcscd();
    wait_log(&door, "PC/SC unavailable", Duration::from_secs(5));
    vcard::ensure_pcscd();
    let restarted = Instant::now();

    // Taps work again without restarting pintud. A card placed before the door has reconnected
    // is "already there", so present it again until it counts, as a person would.
    let deadline = restarted + Duration::from_secs(15);
    loop {
        let card = VirtualCard::place(ALICE);
        let tapped = wait_taps(&door, 2, Duration::from_millis(1500)).is_some();
        lift(card);
        if tapped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no tap within 15 s of pcscd's restart; log:\n{}",
            door.log_text()
        );
    }
    eprintln!(
        "tap works again {:?} after pcscd restarted",
        restarted.elapsed()
    );
    assert_eq!(pcsc_taps(&door)[1].kind, EventKind::AccessGranted);
    let log = door.log_text();
    assert!(log.contains("PC/SC is available again"), "{log}");
    assert_eq!(
        log.matches("PC/SC unavailable").count(),
        1,
        "logged once: {log}"
    );
}

/// Sends a capture request on its own thread (it blocks until a tap or the timeout).
fn capture_async(
    socket: &Path,
    timeout_ms: u64,
    reader: Option<&str>,
) -> std::thread::JoinHandle<Reply> {
    let socket = socket.to_path_buf();
    let req = Request::Capture {
        timeout_ms: Some(timeout_ms),
        reader: reader.map(str::to_string),
    };
    std::thread::spawn(move || {
        control::request(&socket, &req, Duration::from_secs(30)).expect("capture request")
    })
}

#[test]
fn door_capture_takes_the_next_tap_instead_of_deciding_it() {
    let (site, list) = site_with_list();
    let config = site.write_config("");
    let door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("path")],
    );

    let pending = capture_async(&site.socket(), 10_000, None);
    wait_log(&door, "capture armed", Duration::from_secs(5));
    // A second operator cannot capture at the same time.
    match door.request(&Request::Capture {
        timeout_ms: Some(1000),
        reader: None,
    }) {
        Reply::Error { message } => assert!(message.contains("already waiting"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let tap = door.tap(ALICE);
    assert_eq!(tap.decision, "captured");
    let Reply::Captured(c) = pending.join().expect("capture thread") else {
        panic!("expected a capture");
    };
    assert_eq!(c.uid, ALICE);
    assert_eq!(c.reader, "entry");
    assert_eq!(c.holder.as_deref(), Some("alice"));
    assert_eq!(c.card, site.card_key.hash(&ALICE.parse().unwrap()).masked());

    // The captured tap did not open the door, and it is on record.
    let status = door.status();
    assert_eq!(status.lock, LockState::Secured);
    assert!(status
        .lock_changes
        .iter()
        .all(|ch| ch.state == LockState::Secured));
    let events = door.events();
    let captured: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::CardCaptured)
        .collect();
    assert_eq!(captured.len(), 1, "{events:?}");
    assert_eq!(captured[0].seq, c.seq.expect("seq"));
    assert_eq!(captured[0].card.as_deref(), Some(c.card.as_str()));
    assert!(events.iter().all(|e| e.kind != EventKind::AccessGranted));
    assert!(!door.log_text().contains(ALICE), "raw UID in the log");

    // The capture is used up: the next tap is decided.
    assert_eq!(door.tap(ALICE).decision, "grant");
}

#[test]
fn door_capture_times_out_and_taps_are_decided_again() {
    let (site, list) = site_with_list();
    let config =
        site.write_config("\n[[reader]]\nname = \"exit\"\nrole = \"exit\"\nbackend = \"sim\"\n");
    let door = Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("path")],
    );
    let started = Instant::now();
    match door.request(&Request::Capture {
        timeout_ms: Some(300),
        reader: None,
    }) {
        Reply::Error { message } => assert!(
            message.contains("no card was tapped on any reader within 300ms"),
            "{message}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(door.tap(ALICE).decision, "grant");

    // A capture on another reader leaves this reader's taps alone.
    let pending = capture_async(&site.socket(), 1500, Some("exit"));
    wait_log_n(&door, "capture armed", 2, Duration::from_secs(5));
    assert_eq!(door.tap(ALICE).decision, "grant");
    match door.request(&Request::Capture {
        timeout_ms: Some(300),
        reader: Some("nope".into()),
    }) {
        Reply::Error { message } => assert!(message.contains("no reader named"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(
        pending.join().expect("thread"),
        Reply::Error { .. }
    ));

    // A client that hangs up cancels its capture: the next tap is decided.
    {
        use std::io::Write as _;
        let mut conn = std::os::unix::net::UnixStream::connect(site.socket()).expect("connect");
        conn.write_all(b"{\"cmd\":\"capture\",\"timeout_ms\":20000}\n")
            .expect("send");
        wait_log_n(&door, "capture armed", 3, Duration::from_secs(5));
    }
    // The daemon notices the hang-up at once; give it a moment, then the tap must be decided.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(door.tap(ALICE).decision, "grant");

    let out = Command::new(env!("CARGO_BIN_EXE_pintuctl"))
        .args(["--config", config.to_str().expect("path")])
        .args(["enroll", "--door", "--timeout", "200ms"])
        .output()
        .expect("run pintuctl");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no card was tapped"),
        "{}",
        text(&out.stderr)
    );
}

const REGISTER: &str = r#"# Office register.
site = "site-a"
time_zone = "Asia/Jakarta"
doors = ["door-1"]
card_key_file = "card.key"

[list]
version = 3  # last signed

[[holder]]
id = "alice"
name = "Alice"
role = "staff"
cards = ["04A1B2C3D4E5F6"]  # her first badge
valid_from = 2025-01-01
valid_until = 2035-01-01
request_ref = "REQ-1"
approver = "kabid"
"#;

fn pintuctl_child(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pintuctl"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pintuctl")
}

/// Waits for pintuctl; returns (success, stdout, stderr).
fn finish(child: Child) -> (bool, String, String) {
    let out = child.wait_with_output().expect("pintuctl output");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn pintuctl_enroll_reads_the_desk_reader_into_the_register() {
    let _reader = vcard::exclusive();
    vcard::ensure_pcscd();
    let site = Site::new();
    let register = site.path("register.toml");
    std::fs::write(&register, REGISTER).expect("register");
    let reg = register.to_str().expect("path");
    let pattern = "virtual pcd 00 00"; // matched case-insensitively

    // A card already lying on the desk reader counts: added to Alice.
    let card = VirtualCard::place("0A0B0C0D");
    let (ok, out, err) = finish(pintuctl_child(&[
        "enroll",
        "--register",
        reg,
        "--holder",
        "alice",
        "--pcsc-reader",
        pattern,
        "--timeout",
        "10s",
    ]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("card 0A0B0C0D"), "{out}");
    assert!(
        out.contains("added to holder alice (Alice, staff), who now has 2 card(s)"),
        "{out}"
    );
    lift(card);
    let text = std::fs::read_to_string(&register).expect("read register");
    assert!(
        text.contains(r#"cards = ["04A1B2C3D4E5F6", "0A0B0C0D"]  # her first badge"#),
        "{text}"
    );
    assert!(
        text.starts_with("# Office register.\n") && text.contains("version = 3  # last signed")
    );

    // A new holder; the card is presented after pintuctl started waiting.
    let child = pintuctl_child(&[
        "enroll",
        "--register",
        reg,
        "--holder",
        "vis-7",
        "--name",
        "Vera",
        "--role",
        "visitor",
        "--valid-from",
        "2026-01-05T08:00:00",
        "--valid-until",
        "2026-01-05T17:00:00",
        "--request-ref",
        "VIS-7",
        "--approver",
        "kasi",
        "--pcsc-reader",
        pattern,
        "--timeout",
        "10s",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let card = VirtualCard::place("DEADBEEF");
    let (ok, out, err) = finish(child);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("Present the card on Virtual PCD 00 00"),
        "{err}"
    );
    assert!(out.contains("new holder vis-7 (Vera, visitor)"), "{out}");
    lift(card);
    let text = std::fs::read_to_string(&register).expect("read register");
    assert!(
        text.contains("id = \"vis-7\"") && text.contains("cards = [\"DEADBEEF\"]"),
        "{text}"
    );

    // A card someone else holds is refused, and the register is left alone.
    let card = VirtualCard::place(ALICE);
    let (ok, out, err) = finish(pintuctl_child(&[
        "enroll",
        "--register",
        reg,
        "--holder",
        "vis-7",
        "--pcsc-reader",
        pattern,
        "--timeout",
        "10s",
    ]));
    lift(card);
    assert!(!ok, "{out}");
    assert!(err.contains("already held by \"alice\""), "{err}");
    assert_eq!(std::fs::read_to_string(&register).expect("read"), text);

    // No card: a clear timeout. No such reader: says which readers there are.
    let (ok, _, err) = finish(pintuctl_child(&[
        "enroll",
        "--pcsc-reader",
        pattern,
        "--timeout",
        "1500ms",
    ]));
    assert!(
        !ok && err.contains("no card was presented within 1s 500ms"),
        "{err}"
    );
    let (ok, _, err) = finish(pintuctl_child(&[
        "enroll",
        "--pcsc-reader",
        "ACR122",
        "--timeout",
        "1500ms",
    ]));
    assert!(
        !ok && err.contains("no PC/SC reader matches \"ACR122\""),
        "{err}"
    );
    assert!(err.contains("Virtual PCD 00 00"), "{err}");
}

#[test]
fn pintuctl_enroll_door_captures_a_pcsc_tap_into_the_register() {
    let _reader = vcard::exclusive();
    vcard::ensure_pcscd();
    let (site, list) = site_with_list();
    let door = pcsc_door(&site, &list);
    let register = site.path("register.toml");
    std::fs::write(&register, REGISTER).expect("register");

    let child = pintuctl_child(&[
        "--socket",
        site.socket().to_str().expect("path"),
        "enroll",
        "--door",
        "--reader",
        PCSC_READER,
        "--register",
        register.to_str().expect("path"),
        "--holder",
        "alice",
        "--timeout",
        "10s",
    ]);
    wait_log(&door, "capture armed", Duration::from_secs(5));
    let card = VirtualCard::place("0A0B0C0D");
    let (ok, out, err) = finish(child);
    lift(card);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("card captured on door reader door-pcsc"),
        "{err}"
    );
    assert!(out.contains("card 0A0B0C0D"), "{out}");
    let taps = pcsc_taps(&door);
    assert_eq!(taps.len(), 1, "{taps:?}");
    assert_eq!(taps[0].kind, EventKind::CardCaptured);
    assert_eq!(door.status().lock, LockState::Secured);
    assert!(std::fs::read_to_string(&register)
        .expect("read")
        .contains(r#"cards = ["04A1B2C3D4E5F6", "0A0B0C0D"]"#));
}
