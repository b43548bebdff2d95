//! Serial tap latency, end to end: an EM4100 frame written into a pseudo-terminal → pintud (a
//! real process, serial reader on the pty's other end) reads and parses it, decides the tap
//! against a signed list, and logs the decision. Measured from just before the frame is written
//! until the `tap` log line arrives on pintud's stderr, for `PINTU_BENCH_TAPS` (default 1000)
//! distinct cards, one at a time, after 50 warm-up taps. Also reported: the daemon's own `micros`
//! field (from the read that completed the frame to the decision).
//!
//! Every distinct card enters (one entry reader, no exits), so that pass runs with 0 to 1,050
//! people inside. The **people-inside dimension** (issue 24) follows: for each size in
//! `PINTU_BENCH_INSIDE` (default `0,250,1000`), a fresh pintud with an entry and an exit reader
//! lets that many in first (not measured), then runs `PINTU_BENCH_INSIDE_ROUNDS` (default 5,000)
//! rounds of one more person entering and leaving, so the count inside stays at the size:
//! p50/p99 of the entry and the exit tap, pintud's CPU and bytes written to storage per tap
//! (`/proc/PID/stat`, `/proc/PID/io` `write_bytes`), and the state directory after the taps.
//!
//! `cargo bench --bench tap_serial` runs it (release build of pintud); without `--bench` (as
//! `cargo test --benches` runs it) it only smoke tests 20 taps and sizes 0 and 5. Prints
//! `RESULT` lines in the format `benches/run` collects.

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

    let sizes: Vec<usize> = match std::env::var("PINTU_BENCH_INSIDE") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) if bench => vec![0, 250, 1000],
        Err(_) => vec![0, 5],
    };
    let rounds = if bench {
        common::env_usize("PINTU_BENCH_INSIDE_ROUNDS", 5_000)
    } else {
        10
    };
    for inside in sizes {
        inside_dimension(inside, rounds);
    }
}

/// Cards of the people let in first (the pool of those who come and go starts after them).
const PREFILL_BASE: usize = 1 << 24;

/// One size of the people-inside dimension: `inside` people enter first, then `rounds` rounds of
/// one more person entering (entry reader) and leaving (exit reader).
fn inside_dimension(inside: usize, rounds: usize) {
    let dir = tempfile::tempdir_in(common::work_dir()).expect("temp dir");
    let mut entry = open_pty();
    let mut exit = open_pty();
    let entry_port = dir.path().join("entry");
    let exit_port = dir.path().join("exit");
    std::os::unix::fs::symlink(&entry.1, &entry_port).expect("symlink");
    std::os::unix::fs::symlink(&exit.1, &exit_port).expect("symlink");
    // Those who come and go cycle through a pool (each has left before their card comes back).
    let pool = rounds.clamp(1, 1_000);
    let cards: Vec<usize> = (0..pool)
        .chain((0..inside).map(|i| PREFILL_BASE + i))
        .collect();
    let readers = format!(
        "{}\n\n[[reader]]\n{}",
        serial_reader("in", "entry", &entry_port),
        serial_reader("out", "exit", &exit_port)
    );
    let config = write_site_with(dir.path(), &cards, &readers);
    let (mut child, lines) = common::spawn_pintud(&config, &dir.path().join("list.signed"));
    let pid = child.id();
    let mut open = 0;
    while open < 2 {
        wait_line(&lines, "serial port open", Duration::from_secs(30));
        open += 1;
    }
    for i in 0..inside {
        entry
            .0
            .write_all(&em4100_frame(card(PREFILL_BASE + i)))
            .expect("write frame");
        wait_line(&lines, "decision=\"grant\"", Duration::from_secs(5));
    }
    let state = dir.path().join("state");
    let (cpu0, written0) = (cpu_ticks(pid), write_bytes(pid));
    let mut ins = Vec::with_capacity(rounds);
    let mut outs = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let c = card(r % pool);
        for (pty, taps) in [(&mut entry, &mut ins), (&mut exit, &mut outs)] {
            let written = Instant::now();
            pty.0.write_all(&em4100_frame(c)).expect("write frame");
            let (at, _) = wait_line(&lines, "decision=\"grant\"", Duration::from_secs(5));
            taps.push(at.duration_since(written));
        }
    }
    let taps = (2 * rounds) as u64;
    let cpu = Duration::from_millis((cpu_ticks(pid) - cpu0) * 10).as_micros() as u64 / taps.max(1);
    let written = (write_bytes(pid) - written0) / taps.max(1);
    let on_disk = common::dir_size(&state);
    stop(&mut child);
    let (i, o) = (Percentiles::of(ins), Percentiles::of(outs));
    println!(
        "{inside} inside, {rounds} rounds: entry p50 {:?} p99 {:?}; exit p50 {:?} p99 {:?}; pintud CPU {cpu} µs/tap; {written} B written/tap; state dir {}",
        i.p50, i.p99, o.p50, o.p99, common::fmt_mb(on_disk)
    );
    result(
        &format!("serial tap, {inside} inside: entry, exit (p50 / p99)"),
        &format!(
            "{} / {}, {} / {}",
            fmt(i.p50),
            fmt(i.p99),
            fmt(o.p50),
            fmt(o.p99)
        ),
        "flat in people inside",
        "info",
    );
    result(
        &format!("serial tap, {inside} inside: pintud CPU, bytes written to storage per tap"),
        &format!("{cpu} µs, {written} B"),
        "flat in people inside",
        "info",
    );
    result(
        &format!("serial tap, {inside} inside: state directory after {taps} taps"),
        &common::fmt_mb(on_disk),
        "—",
        "info",
    );
}

/// A serial EM4100 reader's `[[reader]]` body.
fn serial_reader(name: &str, role: &str, port: &Path) -> String {
    format!(
        "name = \"{name}\"\nrole = \"{role}\"\nbackend = \"serial\"\nport = \"{}\"\nprotocol = \"em4100\"\nhold = \"50ms\"",
        port.display()
    )
}

/// CPU time `pid` has used (user + system), in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let at = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    at(11) + at(12) // utime, stime (fields 14 and 15 of the whole line)
}

/// Bytes `pid` has caused to be written to storage (`/proc/PID/io` `write_bytes`).
fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
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
    let cards: Vec<usize> = (0..n).collect();
    write_site_with(dir, &cards, &serial_reader("rdm", "entry", port))
}

/// Keys, a signed list granting `cards`, and a config whose readers are `readers` (the body of
/// the first `[[reader]]`, more may follow); returns the config path.
fn write_site_with(dir: &Path, cards: &[usize], readers: &str) -> PathBuf {
    let signer = SigningKey::from_bytes(&[5; 32]);
    let card_key = CardKey::from_bytes([9; 32]);
    std::fs::write(dir.join("card.key"), card_key.to_hex()).expect("card key");
    let now = Timestamp::now();
    let entries = cards
        .iter()
        .map(|&i| {
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
    common::write_door_config(dir, &signer.verifying_key(), readers)
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
