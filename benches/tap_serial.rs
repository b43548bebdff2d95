//! Serial tap latency, end to end: an EM4100 frame written into a pseudo-terminal → pintud (a
//! real process, serial reader on the pty's other end) reads and parses it, decides the tap
//! against a signed list, and logs the decision. Measured from just before the frame is written
//! until the `tap` log line arrives on pintud's stderr, for `PINTU_BENCH_TAPS` (default 1000)
//! distinct cards, one at a time, after 50 warm-up taps. Also reported: the daemon's own `micros`
//! field (from the read that completed the frame to the decision).
//!
//! `cargo bench --bench tap_serial` runs it (release build of pintud); without `--bench` (as
//! `cargo test --benches` runs it) it only smoke tests 20 taps. Prints `RESULT` lines in the
//! format `benches/run` collects.

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios;
use pintu::core::card::{CardKey, Uid};
use pintu::core::frames::em4100_frame;
use pintu::core::list::{self, Entry, Payload, Role};

/// The target for frame written → decision logged.
const TARGET_P99: Duration = Duration::from_millis(2);
const WARMUP: usize = 50;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let taps = if bench {
        std::env::var("PINTU_BENCH_TAPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    } else {
        20
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut pty = open_pty();
    let port = dir.path().join("rdm6300");
    std::os::unix::fs::symlink(&pty.1, &port).expect("symlink");
    let config = write_site(dir.path(), &port, WARMUP + taps);
    let (mut child, lines) = common::spawn_pintud(&config, &dir.path().join("list.signed"));

    wait_line(&lines, "serial port open", Duration::from_secs(30));
    let mut end_to_end = Vec::with_capacity(taps);
    let mut in_daemon = Vec::with_capacity(taps);
    for i in 0..WARMUP + taps {
        let frame = em4100_frame(card(i));
        let written = Instant::now();
        pty.0.write_all(&frame).expect("write frame");
        let (at, line) = wait_line(&lines, "decision=\"grant\"", Duration::from_secs(5));
        if i >= WARMUP {
            end_to_end.push(at.duration_since(written));
            in_daemon.push(micros(&line));
        }
    }
    stop(&mut child);

    let e2e = Percentiles::of(end_to_end);
    let own = Percentiles::of(in_daemon);
    println!(
        "serial tap, frame written → decision logged, {taps} taps: p50 {:?}, p99 {:?}, max {:?}",
        e2e.p50, e2e.p99, e2e.max
    );
    println!(
        "  of which in pintud (frame read → decided): p50 {:?}, p99 {:?}, max {:?}",
        own.p50, own.p99, own.max
    );
    result(
        "serial tap: frame written → decision logged (p50, p99)",
        &format!("{}, {}", fmt(e2e.p50), fmt(e2e.p99)),
        "p99 ≤ 2 ms",
        if e2e.p99 <= TARGET_P99 {
            "pass"
        } else {
            "FAIL"
        },
    );
    result(
        "serial tap: in pintud, frame read → decided (p50, p99)",
        &format!("{}, {}", fmt(own.p50), fmt(own.p99)),
        "—",
        "info",
    );
}

/// Distinct 5-byte EM4100 cards.
fn card(i: usize) -> [u8; 5] {
    let b = (i as u32).to_be_bytes();
    [0x1A, b[0], b[1], b[2], b[3]]
}

/// A pty master (close-on-exec) and its slave's path.
fn open_pty() -> (std::fs::File, PathBuf) {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("pty");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let slave = PathBuf::from(ptsname_r(&master).expect("ptsname"));
    let mut t = termios::tcgetattr(&master).expect("tcgetattr");
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(&master, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
    (std::fs::File::from(OwnedFd::from(master)), slave)
}

/// Keys, a signed list granting cards 0..n, and a config with one serial reader; returns the
/// config path.
fn write_site(dir: &Path, port: &Path, n: usize) -> PathBuf {
    let signer = SigningKey::from_bytes(&[5; 32]);
    let card_key = CardKey::from_bytes([9; 32]);
    std::fs::write(dir.join("card.key"), card_key.to_hex()).expect("card key");
    let now = Timestamp::now();
    let entries = (0..n)
        .map(|i| {
            let uid = Uid::from_bytes(&card(i)).expect("uid");
            Entry {
                card: card_key.hash(&uid),
                holder: format!("h{i}"),
                name: format!("Holder {i}"),
                role: Role::Staff,
                valid_from: now - SignedDuration::from_hours(24),
                valid_until: now + SignedDuration::from_hours(24),
                doors: None,
                schedule: vec![],
                request_ref: format!("REQ-{i}"),
                approver: "bench".into(),
            }
        })
        .collect();
    let payload = Payload {
        format: list::PAYLOAD_FORMAT,
        site: common::SITE.into(),
        doors: vec![common::DOOR.into()],
        version: 1,
        issued_at: now - SignedDuration::from_hours(1),
        expires_at: now + SignedDuration::from_hours(24),
        time_zone: "Asia/Jakarta".into(),
        entries,
    };
    let signed = list::sign(
        &serde_json::to_vec(&payload).expect("payload"),
        &[("k1".into(), signer.clone())],
    );
    std::fs::write(dir.join("list.signed"), signed).expect("list");
    common::write_door_config(
        dir,
        &signer.verifying_key(),
        &format!(
            "name = \"rdm\"\nbackend = \"serial\"\nport = \"{}\"\nprotocol = \"em4100\"\nhold = \"50ms\"",
            port.display()
        ),
    )
}

/// The next line containing `text` (other lines are skipped).
fn wait_line(
    lines: &mpsc::Receiver<(Instant, String)>,
    text: &str,
    limit: Duration,
) -> (Instant, String) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((at, line)) if line.contains(text) => return (at, line),
            Ok((_, line)) if line.contains("ERROR") => panic!("pintud: {line}"),
            Ok(_) => {}
            Err(e) => panic!("no log line with {text:?} from pintud: {e}"),
        }
    }
}

/// The tap line's `micros=` field.
fn micros(line: &str) -> Duration {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("micros="))
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros)
        .unwrap_or_else(|| panic!("no micros= in {line:?}"))
}

fn stop(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles.
    fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort_unstable();
        let n = samples.len();
        let pct = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Percentiles {
            p50: pct(50.0),
            p99: pct(99.0),
            max: samples[n - 1],
        }
    }
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.0} µs", d.as_nanos() as f64 / 1e3)
    } else {
        format!("{:.2} ms", d.as_nanos() as f64 / 1e6)
    }
}

fn result(figure: &str, value: &str, target: &str, verdict: &str) {
    println!("RESULT\t{figure}\t{value}\t{target}\t{verdict}");
}
