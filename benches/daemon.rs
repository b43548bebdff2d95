//! Whole-daemon figures with a 100k-entry list (issue 9):
//!
//! 1. **Cold start to ready**: a release `pintud` process started on a state directory that
//!    already holds an applied 100k-entry list, timed from `spawn` until its `READY=1` arrives on
//!    a `NOTIFY_SOCKET` this bench listens on (as systemd would). Several runs.
//! 2. **Steady RSS**: that `pintud`'s resident set (`VmRSS` from `/proc/PID/status`) two seconds
//!    after READY, idle, the list loaded.
//! 3. **Decision latency while a new 100k list is being applied** (in process, the store as the
//!    daemon uses it): taps timed one by one on the main thread while another thread verifies and
//!    applies a second 100k list; compared with the same taps without an apply.
//!
//! `cargo bench --bench daemon` runs it (`PINTU_BENCH_N` sets the list size, default 100,000;
//! 20,000 with `PINTU_BENCH_QUICK=1`); without `--bench` it smoke tests with 1,000 entries.
//! Prints `RESULT` lines for `benches/run`.

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const TARGET_READY: Duration = Duration::from_millis(250);
const TARGET_RSS: u64 = 20 << 20;

fn main() {
    common::init_logging();
    let bench = common::bench_mode();
    let n = if bench {
        common::env_usize(
            "PINTU_BENCH_N",
            if common::quick() { 20_000 } else { 100_000 },
        )
    } else {
        1_000
    };
    let label = if n >= 1000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    let site = common::Site::new();

    // A door state directory with the list already applied (as after a first start).
    let dir = common::temp_dir();
    let list = dir.path().join("list.signed");
    std::fs::write(&list, site.signed_synthetic_list(1, n)).expect("list");
    std::fs::write(dir.path().join("card.key"), site.card_key.to_hex()).expect("card key");
    {
        let store = site.open_bench_store(dir.path());
        let bytes = std::fs::read(&list).expect("list");
        store
            .verify_and_apply(&bytes, &site.bench_policy(), common::now())
            .expect("store works")
            .expect("list accepted");
        store.flush_blocking().expect("flush");
    }
    let config = common::write_door_config(
        dir.path(),
        &site.keys[0].1.verifying_key(),
        "name = \"entry\"\nbackend = \"sim\"",
    );
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[list]\nmax_size = \"256MiB\"\n");
    std::fs::write(&config, text).expect("config");

    let runs = if bench { 7 } else { 2 };
    let mut ready_times = Vec::with_capacity(runs);
    let mut rss = 0;
    for run in 0..runs {
        let (elapsed, mut child) = start_until_ready(&config, dir.path());
        let pid = Pid::from_raw(child.id() as i32);
        ready_times.push(elapsed);
        if run == runs - 1 {
            std::thread::sleep(Duration::from_secs(2));
            rss = proc_rss(pid);
        }
        let _ = kill(pid, Signal::SIGTERM);
        let _ = child.wait();
    }
    let ready = common::Stats::of(ready_times);
    println!(
        "cold start to READY, {label} list: median {}, max {}",
        common::fmt_dur(ready.median),
        common::fmt_dur(ready.max)
    );
    common::result_line(
        &format!("cold start to READY, {label} list ({runs} runs)"),
        &format!(
            "median {}, max {}",
            common::fmt_dur(ready.median),
            common::fmt_dur(ready.max)
        ),
        "≤ 250 ms",
        common::verdict(ready.median <= TARGET_READY),
    );
    println!(
        "steady RSS of pintud, {label} list: {}",
        common::fmt_mb(rss)
    );
    common::result_line(
        &format!("steady RSS of pintud, {label} list (idle, 2 s after READY)"),
        &common::fmt_mb(rss),
        "≤ 20 MB",
        common::verdict(rss <= TARGET_RSS),
    );

    // Decisions while another list is applied.
    let fixture = common::Fixture::build(&site, n);
    let second = Arc::new(site.signed_synthetic_list(2, n));
    let taps = if bench { 20_000 } else { 500 };
    let mut rng = common::Rng::new(7);
    let uids: Vec<_> = (0..taps).map(|_| common::known_uid(rng.below(n))).collect();
    let quiet = time_taps(&fixture, &site, &uids);
    let applying = Arc::new(AtomicBool::new(true));
    let during = std::thread::scope(|s| {
        let store = &fixture.store;
        let policy = site.bench_policy();
        let flag = applying.clone();
        let second = second.clone();
        s.spawn(move || {
            let _ = store.verify_and_apply(&second, &policy, common::now());
            flag.store(false, Ordering::SeqCst);
        });
        // Tap until the apply is done (at least one pass over the sample).
        let mut samples = Vec::new();
        let mut i = 0;
        while applying.load(Ordering::SeqCst) || samples.len() < uids.len() {
            let started = Instant::now();
            std::hint::black_box(fixture.tap(&site, &uids[i % uids.len()]));
            samples.push(started.elapsed());
            i += 1;
        }
        samples
    });
    let during = common::Stats::of(during);
    println!(
        "decision p99 without an apply {}, during a {label} apply {} ({} taps)",
        common::fmt_dur(quiet.p99),
        common::fmt_dur(during.p99),
        during.n
    );
    common::result_line(
        &format!("tap decision during a {label} list apply (median, p99)"),
        &format!(
            "{}, {} (without: {}, {})",
            common::fmt_dur(during.median),
            common::fmt_dur(during.p99),
            common::fmt_dur(quiet.median),
            common::fmt_dur(quiet.p99)
        ),
        "p99 unchanged (≤ 2× without)",
        common::verdict(during.p99 <= quiet.p99 * 2),
    );
}

fn time_taps(
    fixture: &common::Fixture,
    site: &common::Site,
    uids: &[pintu::core::card::Uid],
) -> common::Stats {
    let mut samples = Vec::with_capacity(uids.len());
    for uid in uids {
        let started = Instant::now();
        std::hint::black_box(fixture.tap(site, uid));
        samples.push(started.elapsed());
    }
    common::Stats::of(samples)
}

/// Starts pintud with a notify socket and waits for `READY=1`; returns the time and the child.
fn start_until_ready(config: &std::path::Path, dir: &std::path::Path) -> (Duration, Child) {
    let socket_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pintud"))
        .arg("--config")
        .arg(config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pintud");
    let mut buf = [0u8; 4096];
    loop {
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no READY=1 within 60 s: {e}");
            }
        };
        if String::from_utf8_lossy(&buf[..len])
            .lines()
            .any(|l| l == "READY=1")
        {
            return (started.elapsed(), child);
        }
    }
}

fn proc_rss(pid: Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}
