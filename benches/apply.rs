//! Signed list intake: `list::verify` alone, and `Store::verify_and_apply` (verify, write the list
//! file atomically with fsync, build the sled tree, commit the metadata with a flush, swap) for a
//! 100k-entry list, on a fresh store and replacing a 100k list already held; a 1M-entry list once
//! (informational); and the peak RSS of an apply.
//!
//! `cargo bench --bench apply` runs criterion (flat sampling, 10 samples) then a report pass
//! (each operation timed on its own, median and max) whose `RESULT` lines `benches/run` collects.
//!
//! Environment (see `benches/common/mod.rs` for the shared ones):
//! - `PINTU_BENCH_N` (default 100000): entries of the measured list;
//! - `PINTU_BENCH_RUNS` (default 5, quick 3): runs per figure in the report pass;
//! - `PINTU_BENCH_BIG` (default 1000000, quick 0 = skip): entries of the once-only large list;
//! - `PINTU_BENCH_MODE`:
//!   - `criterion` / `report`: only that part;
//!   - `breakdown`: where an apply's time and memory go: verify alone, the list file write
//!     alone, then `verify_and_apply` (the store's part is the difference), fresh and replacing;
//!   - `write-list`: sign a `PINTU_BENCH_N`-entry list into the file `PINTU_BENCH_LIST`;
//!   - `rss`: read the list file `PINTU_BENCH_LIST`, open a fresh store, `verify_and_apply` it,
//!     and report the process's peak RSS (`VmHWM`); `benches/run` also runs this mode under
//!     `/usr/bin/time -v` to cross-check.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use pintu::core::list::{self, ListMeta};
use pintu::door::store::Store;

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;
use common::{
    current_rss, fmt_count, fmt_dur, fmt_mb, now, peak_rss, quick, result_line, temp_dir, verdict,
    Site, Stats,
};

/// The foundation issue's target for a 100k-entry list.
const APPLY_TARGET: Duration = Duration::from_secs(1);
/// The performance issue's target for a 1M-entry list (informational here).
const APPLY_BIG_TARGET: Duration = Duration::from_secs(10);

fn main() {
    common::init_logging();
    let site = Site::new();
    if !common::bench_mode() {
        smoke(&site);
        return;
    }
    match common::mode().as_deref() {
        Some("write-list") => write_list(&site),
        Some("rss") => rss(&site),
        Some("criterion") => run_criterion(&site),
        Some("report") => report(&site),
        Some("breakdown") => breakdown(&site),
        None => {
            if !quick() {
                run_criterion(&site);
            }
            report(&site);
        }
        Some(other) => panic!(
            "unknown PINTU_BENCH_MODE {other:?} (expected criterion, report, breakdown, write-list or rss)"
        ),
    }
}

fn n() -> usize {
    common::env_usize("PINTU_BENCH_N", 100_000)
}

fn list_path() -> PathBuf {
    std::env::var_os("PINTU_BENCH_LIST")
        .map(PathBuf::from)
        .expect("PINTU_BENCH_LIST must name the list file")
}

/// Test mode (`cargo test --benches`): exercise every path on a tiny list.
fn smoke(site: &Site) {
    let bytes = site.signed_synthetic_list(1, 100);
    list::verify(&bytes, &site.bench_policy(), None, Some(now())).expect("list verifies");
    let dir = temp_dir();
    let store = site.open_bench_store(dir.path());
    let meta = apply(site, &store, &bytes);
    assert_eq!(meta.entry_count, 100);
    let meta = apply(site, &store, &site.signed_synthetic_list(2, 100));
    assert_eq!(meta.version, 2);
    // Current first: the peak read afterwards covers it (the other order races a growing heap).
    let rss = current_rss();
    assert!(peak_rss() >= rss);
    println!("apply bench: smoke run passed (run `cargo bench` or benches/run to measure)");
}

fn apply(site: &Site, store: &Store, bytes: &[u8]) -> ListMeta {
    store
        .verify_and_apply(bytes, &site.bench_policy(), now())
        .expect("store works")
        .expect("list accepted")
}

/// Times `verify_and_apply` of `bytes` on a fresh store (opening the store is not timed).
fn time_fresh_apply(site: &Site, bytes: &[u8]) -> Duration {
    let dir = temp_dir();
    let store = site.open_bench_store(dir.path());
    let t0 = Instant::now();
    let meta = apply(site, &store, bytes);
    let elapsed = t0.elapsed();
    black_box(meta);
    drop(store);
    drop(dir);
    elapsed
}

/// A store holding an `n`-entry list, and the next version to offer it.
struct Replacing {
    store: Store,
    next_version: u64,
    n: usize,
    _dir: tempfile::TempDir,
}

impl Replacing {
    fn new(site: &Site, n: usize) -> Replacing {
        let dir = temp_dir();
        let store = site.open_bench_store(dir.path());
        apply(site, &store, &site.signed_synthetic_list(1, n));
        Replacing {
            store,
            next_version: 2,
            n,
            _dir: dir,
        }
    }

    /// Signs the next version (not timed) and times replacing the held list with it.
    fn time_replace(&mut self, site: &Site) -> Duration {
        let bytes = site.signed_synthetic_list(self.next_version, self.n);
        self.next_version += 1;
        let t0 = Instant::now();
        let meta = apply(site, &self.store, &bytes);
        let elapsed = t0.elapsed();
        black_box(meta);
        elapsed
    }
}

fn run_criterion(site: &Site) {
    let n = n();
    eprintln!("signing a {}-entry list ...", fmt_count(n));
    let bytes = site.signed_synthetic_list(1, n);
    let policy = site.bench_policy();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group(format!("list_{}", fmt_count(n)));
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("verify", |b| {
        b.iter(|| black_box(list::verify(&bytes, &policy, None, Some(now())).expect("verifies")))
    });
    group.bench_function("verify_and_apply_fresh_store", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| time_fresh_apply(site, &bytes)).sum())
    });
    let mut replacing = Replacing::new(site, n);
    group.bench_function("verify_and_apply_replacing", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| replacing.time_replace(site)).sum())
    });
    group.finish();
    c.final_summary();
}

fn report(site: &Site) {
    let n = n();
    let runs = common::env_usize("PINTU_BENCH_RUNS", if quick() { 3 } else { 5 });
    let big = common::env_usize("PINTU_BENCH_BIG", if quick() { 0 } else { 1_000_000 });
    let policy = site.bench_policy();

    eprintln!("report: signing a {}-entry list ...", fmt_count(n));
    let t0 = Instant::now();
    let bytes = site.signed_synthetic_list(1, n);
    let sign_time = t0.elapsed();
    let verify = Stats::of(
        (0..runs)
            .map(|_| {
                let t0 = Instant::now();
                black_box(list::verify(&bytes, &policy, None, Some(now())).expect("verifies"));
                t0.elapsed()
            })
            .collect(),
    );
    let fresh = Stats::of((0..runs).map(|_| time_fresh_apply(site, &bytes)).collect());
    let mut replacing = Replacing::new(site, n);
    let replace = Stats::of((0..runs).map(|_| replacing.time_replace(site)).collect());
    drop(replacing);

    let label = fmt_count(n);
    println!();
    println!(
        "Signed list intake, {label} entries, envelope {} ({runs} runs each; signing took {}, not included):",
        fmt_mb(bytes.len() as u64),
        fmt_dur(sign_time)
    );
    println!("{:<44} {:>9} {:>9} {:>9}", "", "min", "median", "max");
    for (what, s) in [
        ("list::verify", &verify),
        ("verify_and_apply, fresh store", &fresh),
        ("verify_and_apply, replacing a list", &replace),
    ] {
        println!(
            "{what:<44} {:>9} {:>9} {:>9}",
            fmt_dur(s.min),
            fmt_dur(s.median),
            fmt_dur(s.max)
        );
    }
    let apply_part = fresh.median.saturating_sub(verify.median);
    println!(
        "{:<44} {:>9} {:>9}",
        "apply part (fresh median − verify median)",
        "",
        fmt_dur(apply_part)
    );
    println!();

    result_line(
        &format!("list::verify, {label} entries"),
        &format!(
            "median {} (max {})",
            fmt_dur(verify.median),
            fmt_dur(verify.max)
        ),
        "— (part of apply)",
        "info",
    );
    result_line(
        &format!("verify + apply, {label} entries, fresh store"),
        &format!(
            "median {} (max {})",
            fmt_dur(fresh.median),
            fmt_dur(fresh.max)
        ),
        &format!("≤ {}", fmt_dur(APPLY_TARGET)),
        verdict(fresh.median <= APPLY_TARGET),
    );
    result_line(
        &format!("verify + apply, {label} entries, replacing a {label} list"),
        &format!(
            "median {} (max {})",
            fmt_dur(replace.median),
            fmt_dur(replace.max)
        ),
        &format!("≤ {}", fmt_dur(APPLY_TARGET)),
        verdict(replace.median <= APPLY_TARGET),
    );
    result_line(
        &format!("  of which apply (after verify), {label}, fresh"),
        &fmt_dur(apply_part),
        "— (part of apply)",
        "info",
    );

    if big > 0 {
        let label = fmt_count(big);
        eprintln!("report: signing a {label}-entry list ...");
        let bytes = site.signed_synthetic_list(1, big);
        let t0 = Instant::now();
        black_box(list::verify(&bytes, &policy, None, Some(now())).expect("verifies"));
        let verify = t0.elapsed();
        let fresh = time_fresh_apply(site, &bytes);
        println!(
            "Signed list intake, {label} entries, envelope {} (once): list::verify {}, verify_and_apply on a fresh store {}",
            fmt_mb(bytes.len() as u64),
            fmt_dur(verify),
            fmt_dur(fresh)
        );
        result_line(
            &format!("list::verify, {label} entries (once)"),
            &fmt_dur(verify),
            "— (part of apply)",
            "info",
        );
        result_line(
            &format!("verify + apply, {label} entries, fresh store (once)"),
            &fmt_dur(fresh),
            &format!("≤ {} (issue 9)", fmt_dur(APPLY_BIG_TARGET)),
            if fresh <= APPLY_BIG_TARGET {
                "info: pass"
            } else {
                "info: FAIL"
            },
        );
    }
}

/// `write-list` mode: the list file the `rss` mode applies.
fn write_list(site: &Site) {
    let n = n();
    let path = list_path();
    let bytes = site.signed_synthetic_list(1, n);
    std::fs::write(&path, &bytes).expect("write the list file");
    eprintln!(
        "wrote a {}-entry list ({}) to {}",
        fmt_count(n),
        fmt_mb(bytes.len() as u64),
        path.display()
    );
}

/// `rss` mode: peak RSS of one apply, as a door process would see it (it too reads the whole
/// file into memory first).
fn rss(site: &Site) {
    let path = list_path();
    let bytes = std::fs::read(&path).expect("read the list file");
    let dir = temp_dir();
    let store = site.open_bench_store(dir.path());
    let before = current_rss();
    let t0 = Instant::now();
    let meta = apply(site, &store, &bytes);
    let elapsed = t0.elapsed();
    let peak = peak_rss();
    let after = current_rss();
    let label = fmt_count(meta.entry_count);
    println!(
        "Peak RSS applying a {label}-entry list ({} envelope): peak {}, before apply {} (store open, list bytes read), after apply {}; apply took {}",
        fmt_mb(bytes.len() as u64),
        fmt_mb(peak),
        fmt_mb(before),
        fmt_mb(after),
        fmt_dur(elapsed)
    );
    result_line(
        &format!("peak RSS, apply of a {label} list"),
        &format!(
            "{:.0} MB (+{:.0} MB over the {:.0} MB before apply)",
            peak as f64 / 1e6,
            peak.saturating_sub(before) as f64 / 1e6,
            before as f64 / 1e6
        ),
        "— (no target; reported)",
        "info",
    );
}

/// `breakdown` mode: where an apply's time and memory go, through the public API only (so it
/// stays true whatever the store's layout): `list::verify` alone, the list file write alone
/// (`fsutil::write_atomic` of the same bytes, as `verify_and_apply` does it), then
/// `verify_and_apply`; the store's own part (build the list cache, commit, swap, retire the old
/// one) is the difference. Done for a fresh store and for replacing a list, with RSS after each
/// step and the store's size on disk.
fn breakdown(site: &Site) {
    let n = n();
    let label = fmt_count(n);
    let policy = site.bench_policy();
    let dir = temp_dir();
    let store = site.open_bench_store(dir.path());
    let scratch = dir.path().join("scratch.signed");
    println!();
    println!("Breakdown of verify_and_apply, {label} entries (RSS after each step):");
    println!(
        "{:<40} {:>10} {:>10} {:>12}",
        "step", "time", "RSS", "peak RSS"
    );
    let step = |what: &str, t: Duration| -> Duration {
        println!(
            "{what:<40} {:>10} {:>7.0} MB {:>9.0} MB",
            fmt_dur(t),
            current_rss() as f64 / 1e6,
            peak_rss() as f64 / 1e6
        );
        t
    };
    for version in [1u64, 2] {
        let bytes = site.signed_synthetic_list(version, n);
        let case = if version == 1 { "fresh" } else { "replacing" };
        println!(
            "-- version {version}, {} envelope, {case}",
            fmt_mb(bytes.len() as u64)
        );
        step("(list bytes in memory)", Duration::ZERO);
        let t0 = Instant::now();
        let verified = list::verify(&bytes, &policy, Some(store.accepted()), Some(now()));
        let verify = step("list::verify alone", t0.elapsed());
        drop(verified.expect("verifies"));
        let t0 = Instant::now();
        pintu::util::files::write_atomic(&scratch, &bytes, 0o640).expect("write the list file");
        let write = step("list file write alone (fsync)", t0.elapsed());
        let t0 = Instant::now();
        apply(site, &store, &bytes);
        let total = step("verify_and_apply", t0.elapsed());
        let rest = total.saturating_sub(verify + write);
        step("  store's part (total − verify − write)", rest);
        let on_disk = common::dir_size(&dir.path().join("state"));
        println!("(state dir on disk: {})", fmt_mb(on_disk));
        result_line(
            &format!("  breakdown, {label}, {case}"),
            &format!(
                "total {}: verify {}, list file {}, store build+commit+swap {}",
                fmt_dur(total),
                fmt_dur(verify),
                fmt_dur(write),
                fmt_dur(rest)
            ),
            "— (attribution)",
            "info",
        );
    }
    result_line(
        &format!("  peak RSS, {label} breakdown (fresh + replace)"),
        &format!("{:.0} MB", peak_rss() as f64 / 1e6),
        "— (reported)",
        "info",
    );
    println!();
}
