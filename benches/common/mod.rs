//! Shared fixtures for the benchmarks: a synthetic site (signing key, card key, trust policy),
//! lists of any size built and signed like `pintuctl` does, stores opened like `pintud` does,
//! the tap decision exactly as the daemon's door task makes it, percentiles and the result lines
//! `benches/run` collects.
//!
//! Settings come from environment variables so `benches/run` can drive the binaries:
//! - `PINTU_BENCH_QUICK=1`: smaller sizes, fewer samples (the `--quick` run);
//! - `PINTU_BENCH_DIR`: where stores and list files go (default: cargo's target tmp dir, i.e. the
//!   same disk as `target/`, so fsyncs are real);
//! - `PINTU_BENCH_MODE`: a special mode of one binary (see each binary's doc);
//! - `PINTU_BENCH_CACHE_MB`: the sled page cache in MiB (default 32, the daemon's default);
//! - `PINTU_BENCH_LOG`: a tracing filter (e.g. `pintu=debug`) to see the library's logs.
//!
//! When a bench binary runs without `--bench` (as `cargo test --benches` runs it), it only smoke
//! tests its code path on a tiny list: see [`bench_mode`].
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pintu::core::card::Uid;
use pintu::core::decision::{decide, Decision, DenyReason};
use pintu::core::list::TrustPolicy;
use pintu::door::clock::{Clock, ManualClock};
use pintu::door::store::{CardLookup, Store, StoreOptions};
use pintu_testkit::broker::{Broker, BrokerOptions};
pub use pintu_testkit::synthetic::now;
pub use pintu_testkit::{
    known_uid, spawn_pintud_with_log_lines as spawn_pintud, unknown_uid, Site, DOOR, SITE,
};

/// sled page cache: the daemon's defaults, `store.cache_size` (32 MiB, the floor) and
/// `store.cache_size_max` (512 MiB, the ceiling when the store sizes it to the list at open).
pub const CACHE_SIZE: u64 = 32 << 20;
pub const CACHE_SIZE_MAX: u64 = 512 << 20;

/// The sled page cache the fixtures use, (floor, ceiling): the daemon's defaults unless
/// `PINTU_BENCH_CACHE_MB` fixes it (floor = ceiling) to see how lookups depend on it.
pub fn cache_size() -> (u64, u64) {
    match std::env::var("PINTU_BENCH_CACHE_MB") {
        Ok(_) => {
            let fixed = env_usize("PINTU_BENCH_CACHE_MB", 32) as u64 * (1 << 20);
            (fixed, fixed)
        }
        Err(_) => (CACHE_SIZE, CACHE_SIZE_MAX),
    }
}
/// Envelope cap for the benchmarks: far above any list built here.
pub const MAX_BYTES: usize = 1 << 30;

/// Whether the binary was started by `cargo bench` (with `--bench`) rather than by
/// `cargo test --benches` (test mode: a tiny smoke run only).
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Sends the library's logs to stderr when `PINTU_BENCH_LOG` is set (e.g. `pintu=debug`), to see
/// what the store does during a benchmark.
pub fn init_logging() {
    if let Ok(filter) = std::env::var("PINTU_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
}

/// Whether `PINTU_BENCH_QUICK` asks for the short run.
pub fn quick() -> bool {
    matches!(
        std::env::var("PINTU_BENCH_QUICK").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// The special mode asked for in `PINTU_BENCH_MODE`, if any.
pub fn mode() -> Option<String> {
    std::env::var("PINTU_BENCH_MODE")
        .ok()
        .filter(|m| !m.is_empty())
}

/// Reads a usize from the environment, falling back to `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, found {v:?}")),
        Err(_) => default,
    }
}

/// Base directory for temporary stores and list files.
pub fn work_dir() -> PathBuf {
    let dir = std::env::var_os("PINTU_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pintu-bench"));
    std::fs::create_dir_all(&dir).expect("create the benchmark work dir");
    dir
}

/// A fresh temporary directory under [`work_dir`], removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(work_dir())
        .expect("temp dir for a benchmark store")
}

/// splitmix64: a small deterministic generator, enough to pick cards at random.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Store options and stores of a [`Site`] as `pintud` opens them, with the benches' cache.
pub trait BenchSite {
    /// The policy a door of the site verifies with (cap raised to [`MAX_BYTES`]).
    fn bench_policy(&self) -> TrustPolicy;
    /// Store options as `pintud` uses them, state in `dir`.
    fn bench_store_options(&self, dir: &Path) -> StoreOptions;
    /// Opens an empty store in `dir`.
    fn open_bench_store(&self, dir: &Path) -> Store;
}

impl BenchSite for Site {
    fn bench_policy(&self) -> TrustPolicy {
        self.policy_with_cap(MAX_BYTES)
    }

    fn bench_store_options(&self, dir: &Path) -> StoreOptions {
        StoreOptions {
            state_dir: dir.join("state"),
            cache_size: cache_size().0,
            cache_size_max: cache_size().1,
            site: SITE.into(),
            door: DOOR.into(),
        }
    }

    fn open_bench_store(&self, dir: &Path) -> Store {
        let (store, _report) = Store::open(&self.bench_store_options(dir), &self.bench_policy())
            .expect("open the store");
        store
    }
}

/// A store holding an applied `n`-entry list, in its own temp dir.
pub struct Fixture {
    pub n: usize,
    pub store: Store,
    pub clock: ManualClock,
    pub build_time: Duration,
    /// Bytes on disk: the list file and the sled directory.
    pub on_disk: u64,
    // Dropped last: the store's files live here.
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// Builds, signs and applies an `n`-entry list to a fresh store, then reopens the store as
    /// `pintud` does at its next start (which sizes sled's cache to the list).
    pub fn build(site: &Site, n: usize) -> Fixture {
        let started = Instant::now();
        let bytes = site.signed_synthetic_list(1, n);
        let dir = temp_dir();
        let store = site.open_bench_store(dir.path());
        store
            .verify_and_apply(&bytes, &site.bench_policy(), now())
            .expect("store works")
            .expect("list accepted");
        store.flush_blocking().expect("flush the store");
        drop(store);
        let store = site.open_bench_store(dir.path());
        let on_disk = dir_size(dir.path());
        Fixture {
            n,
            on_disk,
            store,
            clock: ManualClock::new(now()),
            build_time: started.elapsed(),
            _dir: dir,
        }
    }

    /// One tap's decision: the door task's own lookup ([`CardLookup::of`]: HMAC of the UID,
    /// the active list, the sled get that deserializes the entry), then the core's decision for
    /// the list and the entry. The procedure's stateful rules around it (lockdown, escorts,
    /// presence, floods) are measured end to end by the daemon bench.
    pub fn tap(&self, site: &Site, uid: &Uid) -> Decision {
        let card = site.card_key.hash(uid);
        let now = self.clock.now();
        let active = self.store.active();
        match CardLookup::of(active.as_deref(), &card) {
            CardLookup::Failed => Decision::Deny(DenyReason::StoreError),
            found => decide(active.as_deref().map(|a| &a.meta), found.entry(), DOOR, now),
        }
    }
}

/// Total size of the files under `dir`, in bytes.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

/// Peak resident set size of this process so far (`VmHWM`), in bytes.
pub fn peak_rss() -> u64 {
    proc_status_kb("VmHWM:") * 1024
}

/// Current resident set size (`VmRSS`), in bytes.
pub fn current_rss() -> u64 {
    proc_status_kb("VmRSS:") * 1024
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

/// Order statistics of a sample of durations.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub min: Duration,
    pub median: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        // Nearest-rank percentile.
        let pct = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        let total: Duration = samples.iter().sum();
        Stats {
            n,
            min: samples[0],
            median: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            p999: pct(99.9),
            max: samples[n - 1],
            mean: total / n as u32,
        }
    }
}

/// Formats a duration with a unit that suits it.
pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// Formats a byte count in MB (10^6 bytes; MiB in parentheses).
pub fn fmt_mb(bytes: u64) -> String {
    format!(
        "{:.1} MB ({:.1} MiB)",
        bytes as f64 / 1e6,
        bytes as f64 / (1u64 << 20) as f64
    )
}

/// `1k`, `100k`, `1M`.
pub fn fmt_count(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// One line of the final table, picked up by `benches/run` (tab-separated, prefixed `RESULT`):
/// figure, value, target, verdict (`pass`, `FAIL` or `info`).
pub fn result_line(figure: &str, value: &str, target: &str, verdict: &str) {
    println!("RESULT\t{figure}\t{value}\t{target}\t{verdict}");
}

/// `pass` or `FAIL`.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "FAIL"
    }
}

/// Writes `dir/pintu.toml` for a door of the bench site that trusts `public_key`, with one
/// reader whose `[[reader]]` body is `reader` (name, backend and backend keys); returns its path.
pub fn write_door_config(
    dir: &Path,
    public_key: &ed25519_dalek::VerifyingKey,
    reader: &str,
) -> PathBuf {
    use base64::Engine as _;
    let public = base64::engine::general_purpose::STANDARD.encode(public_key.to_bytes());
    let config = format!(
        r#"site = "{SITE}"
state_dir = "state"

[door]
id = "{DOOR}"
unlock_for = "1s"

[trust]
card_key_file = "card.key"

[[trust.keys]]
id = "k1"
public_key = "{public}"

[[reader]]
{reader}

[control]
socket = "control.sock"
mode = "0600"

[log]
level = "info"
"#
    );
    let path = dir.join("pintu.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// The benches' broker: the tests' Mosquitto without persistence, with queues that never drop
/// (no byte bound) and a quiet log (logging every message would be most of its work).
pub fn bench_broker() -> Broker {
    Broker::start(BrokerOptions {
        quiet: true,
        extra_config: "max_queued_bytes 0\n".into(),
        ..BrokerOptions::default()
    })
}
