//! Serial readers for real: pintud opens one end of a pseudo-terminal pair with tokio-serial (via
//! a symlink named in its config, like `/dev/serial/by-id/...`), the test writes reader frames
//! into the other end and reads the door's events. Covers EM4100 frames (valid, garbage, bad
//! checksum, split, repeats within and after the hold), ASCII-line hex and decimal readers, a
//! port missing at start, and unplugging and replugging the reader.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios;
use pintu::core::event::{Event, EventKind};
use pintu::core::frames::em4100_frame;

use crate::common::{Pintud, Site};

/// Granted EM4100 cards (5 bytes: version byte + 4 card bytes).
const ALICE: &str = "1A007430FA";
const BOB: &str = "62E3086CED";
const DAVE: &str = "3C00D2E1A7";
/// Not in the list: denied. Also used as a barrier: once its tap is seen, every frame written
/// before it has been decided.
const CAROL: &str = "0102030405";
/// A 7-byte ISO 14443 UID, read by an ASCII-line hex reader.
const ERNI: &str = "04A1B2C3D4E5F6";
/// 12345678 in decimal, as an ASCII-line decimal reader writes it (minimal bytes, at least 4).
const FITRI: &str = "00BC614E";

/// One side of a pseudo-terminal pair: the test writes into the master; pintud opens the slave
/// by path.
pub(crate) struct Pty {
    master: File,
    pub(crate) slave: PathBuf,
}

impl Pty {
    pub(crate) fn open() -> Pty {
        // Close-on-exec from the start: a pintud spawned meanwhile (by this test or one running
        // in parallel) must not inherit the master, or closing it here would not hang up.
        let master =
            posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let slave = PathBuf::from(ptsname_r(&master).expect("ptsname"));
        let mut t = termios::tcgetattr(&master).expect("tcgetattr");
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&master, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
        // Only pintud opens the slave (and sets it raw, 8N1): closing the master then hangs up
        // pintud's end like an unplugged adapter.
        Pty {
            master: File::from(OwnedFd::from(master)),
            slave,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.master
            .write_all(bytes)
            .expect("write to the pty master");
        self.master.flush().expect("flush");
    }

    pub(crate) fn frame(&mut self, uid: &str) {
        self.write(&frame(uid));
    }
}

fn frame(uid: &str) -> Vec<u8> {
    let bytes: [u8; 5] = hex::decode(uid).expect("hex").try_into().expect("5 bytes");
    em4100_frame(bytes)
}

/// Points `link` at `target`, replacing it atomically (as udev does for `/dev/serial/by-id`).
pub(crate) fn point(link: &Path, target: &Path) {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).expect("symlink");
    std::fs::rename(&tmp, link).expect("rename symlink");
}

pub(crate) fn serial_reader(name: &str, port: &Path, settings: &str) -> String {
    format!(
        "\n[[reader]]\nname = \"{name}\"\nrole = \"entry\"\nbackend = \"serial\"\nport = \"{}\"\n{settings}\n",
        port.display()
    )
}

/// Starts pintud with `extra` config and a list granting every card but CAROL.
fn start(site: &Site, extra: &str) -> Pintud {
    let config = site.write_config(extra);
    let entries = [
        (ALICE, "alice"),
        (BOB, "bob"),
        (DAVE, "dave"),
        (ERNI, "erni"),
        (FITRI, "fitri"),
    ]
    .iter()
    .map(|(uid, holder)| site.entry(uid, holder, "2025-01-01T00:00:00Z", "2035-01-01T00:00:00Z"))
    .collect();
    let list = site.path("list.signed");
    std::fs::write(&list, site.sign(&site.payload(1, entries))).expect("list");
    Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    )
}

/// Waits until the log holds `n` lines containing both `text` and the reader's name.
pub(crate) fn wait_log(door: &Pintud, reader: &str, text: &str, n: usize) {
    let tag = format!("reader={reader}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = door.log_text();
        let count = log
            .lines()
            .filter(|l| l.contains(text) && l.contains(&tag))
            .count();
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} × {text:?} from {reader}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The reader's tap events, oldest first.
pub(crate) fn taps(door: &Pintud, reader: &str) -> Vec<Event> {
    door.events()
        .into_iter()
        .filter(|e| {
            matches!(e.kind, EventKind::AccessGranted | EventKind::AccessDenied)
                && e.reader.as_deref() == Some(reader)
        })
        .collect()
}

/// Waits until the reader has `n` taps and returns them.
pub(crate) fn wait_taps(door: &Pintud, reader: &str, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = taps(door, reader);
        if t.len() >= n {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} taps on {reader} (have {}); log:\n{}",
            t.len(),
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (masked card, decision) of each tap, for comparison with the expected cards.
fn summary(taps: &[Event]) -> Vec<(String, String)> {
    taps.iter()
        .map(|e| {
            (
                e.card.clone().unwrap_or_default(),
                e.decision.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn expect(site: &Site, cards: &[(&str, &str)]) -> Vec<(String, String)> {
    cards
        .iter()
        .map(|(uid, decision)| {
            (
                site.card_key.hash(&uid.parse().expect("uid")).masked(),
                decision.to_string(),
            )
        })
        .collect()
}

#[test]
fn em4100_frames_through_a_pty_become_taps() {
    let site = Site::new();
    let link = site.path("rdm6300");
    let mut pty = Pty::open();
    point(&link, &pty.slave);
    let door = start(
        &site,
        &serial_reader("rdm", &link, "protocol = \"em4100\"\nhold = \"500ms\""),
    );
    wait_log(&door, "rdm", "serial port open", 1);

    // A valid frame: one grant, carrying the reader's name and the masked card.
    pty.frame(ALICE);
    let t = wait_taps(&door, "rdm", 1);
    assert_eq!(t[0].kind, EventKind::AccessGranted);
    assert_eq!(t[0].holder.as_deref(), Some("alice"));

    // Garbage between frames (bytes, a truncated frame, a stray STX), and a bad checksum for a
    // granted card, which must not become a tap: the barrier CAROL follows it.
    pty.write(b"\xff\x00noise\x02123\r\n");
    pty.frame(BOB);
    pty.write(b"\x02\x02\x03zz");
    let mut bad = frame(DAVE);
    bad[12] = if bad[12] == b'0' { b'1' } else { b'0' };
    pty.write(&bad);
    pty.write(b"\x03\x03");
    pty.frame(CAROL);
    wait_taps(&door, "rdm", 3);

    // A frame written in pieces with pauses: one tap.
    let dave = frame(DAVE);
    for piece in [&dave[..3], &dave[3..9], &dave[9..]] {
        pty.write(piece);
        std::thread::sleep(Duration::from_millis(30));
    }
    wait_taps(&door, "rdm", 4);

    // A card held in the field: frames every 50 ms for 0.5 s (longer than the 500 ms hold, but
    // the hold restarts with each repeat): one tap. Taken away for more than the hold and
    // presented again: a second tap.
    for _ in 0..10 {
        pty.frame(BOB);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1200));
    pty.frame(BOB);
    pty.frame(CAROL);
    let t = wait_taps(&door, "rdm", 7);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        summary(&taps(&door, "rdm")),
        expect(
            &site,
            &[
                (ALICE, "grant"),
                (BOB, "grant"),
                (CAROL, "deny"),
                (DAVE, "grant"),
                (BOB, "grant"),
                (BOB, "grant"),
                (CAROL, "deny"),
            ]
        ),
        "log:\n{}",
        door.log_text()
    );
    assert_eq!(t.len(), 7);
    let log = door.log_text();
    assert!(
        log.contains("serial frame discarded") && log.contains("bad_checksum"),
        "the bad checksum is logged: {log}"
    );
    // Only masked cards leave the reader layer: no UID in the log.
    for uid in [ALICE, BOB, CAROL, DAVE] {
        assert!(
            !log.to_uppercase().contains(uid),
            "UID {uid} in the log:\n{log}"
        );
    }
}

#[test]
fn ascii_line_readers_hex_and_decimal_and_a_port_missing_at_start() {
    let site = Site::new();
    let hex_link = site.path("usb-hex");
    let dec_link = site.path("usb-dec");
    let mut dec = Pty::open();
    point(&dec_link, &dec.slave);
    // The hex reader's port does not exist yet: pintud starts anyway and waits for it.
    let door = start(
        &site,
        &format!(
            "{}{}",
            serial_reader(
                "usb-hex",
                &hex_link,
                "protocol = \"ascii-line\"\nuid_format = \"hex\""
            ),
            serial_reader(
                "usb-dec",
                &dec_link,
                "protocol = \"ascii-line\"\nuid_format = \"decimal\"\nbaud = 115200"
            ),
        ),
    );
    wait_log(&door, "usb-hex", "cannot open the serial port", 1);
    wait_log(&door, "usb-dec", "serial port open", 1);

    dec.write(b"0012345678\r\n\r\nnot a number\r\n99999999999999999999999\r\n");
    dec.write(b"16909060\n"); // 0x01020304: not in the list
    let t = wait_taps(&door, "usb-dec", 2);
    assert_eq!(
        summary(&t),
        expect(&site, &[(FITRI, "grant"), ("01020304", "deny")])
    );

    let mut hex = Pty::open();
    point(&hex_link, &hex.slave);
    wait_log(&door, "usb-hex", "serial port open", 1);
    hex.write(b"  04:a1:b2:c3:d4:e5:f6  \r\n");
    hex.write(format!("{}\n", "A".repeat(500)).as_bytes());
    hex.write(b"\x02 01 02 03 04 05\x03\r\n");
    let t = wait_taps(&door, "usb-hex", 2);
    assert_eq!(
        summary(&t),
        expect(&site, &[(ERNI, "grant"), (CAROL, "deny")])
    );
    let log = door.log_text();
    assert_eq!(
        log.matches("cannot open the serial port").count(),
        1,
        "a missing port is reported once, not every retry:\n{log}"
    );
    assert!(log.contains("line_too_long") && log.contains("bad_line"));
}

#[test]
fn unplugged_reader_is_reopened_without_restarting_pintud() {
    let site = Site::new();
    let link = site.path("by-id-rdm6300");
    let mut pty = Pty::open();
    point(&link, &pty.slave);
    let door = start(
        &site,
        &serial_reader("rdm", &link, "protocol = \"em4100\"\nhold = \"200ms\""),
    );
    wait_log(&door, "rdm", "serial port open", 1);
    pty.frame(ALICE);
    wait_taps(&door, "rdm", 1);
    let state = |door: &Pintud| {
        door.status()
            .readers
            .into_iter()
            .find(|r| r.name == "rdm")
            .map(|r| r.state)
    };
    assert_eq!(state(&door).as_deref(), Some("up"));

    // Unplug: the device node goes (the symlink first, as udev removes by-id links, so pintud
    // cannot reopen a pty number the system hands to someone else), then the far end hangs up.
    std::fs::remove_file(&link).expect("remove symlink");
    drop(pty);
    wait_log(&door, "rdm", "serial port lost", 1);
    wait_log(&door, "rdm", "cannot open the serial port", 1);
    // Status says the reader is down, and why.
    let rdm = door
        .status()
        .readers
        .into_iter()
        .find(|r| r.name == "rdm")
        .expect("reader in status");
    assert_eq!(rdm.state, "down");
    assert!(rdm.detail.is_some_and(|d| d.contains("by-id-rdm6300")));

    // Replug: a new device behind the same name; taps work again without restarting pintud.
    let mut pty = Pty::open();
    point(&link, &pty.slave);
    wait_log(&door, "rdm", "serial port open", 2);
    assert_eq!(state(&door).as_deref(), Some("up"));
    pty.frame(BOB);
    pty.frame(ALICE);
    let t = wait_taps(&door, "rdm", 3);
    assert_eq!(
        summary(&t),
        expect(&site, &[(ALICE, "grant"), (BOB, "grant"), (ALICE, "grant")])
    );
    // SIGTERM is honoured while a serial reader is open (the reader's waits all end on shutdown),
    // and it is a clean stop.
    let log = door.log.clone();
    assert_eq!(
        door.stop(),
        Some(0),
        "pintud exits cleanly on SIGTERM; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
