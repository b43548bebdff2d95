//! Tap decision latency with 1k, 100k and 1M list entries: the whole decision as `pintud`'s door
//! task makes it — HMAC of the UID, the clock, `store.active()`, the sled lookup (with the entry's
//! deserialization) and `decide` — for known cards (at random among the entries) and unknown ones.
//!
//! `cargo bench --bench decision` builds one store per size (sign, `Store::open`,
//! `verify_and_apply`), runs criterion (means and medians, in `target/criterion/`), then a
//! percentile pass: every tap timed on its own with `Instant`, sorted, and reported as
//! median / p99 / p99.9 / max, since criterion does not give tail latencies.
//!
//! Environment (see `benches/common/mod.rs` for the shared ones):
//! - `PINTU_BENCH_SIZES`: comma-separated list sizes (default `1000,100000,1000000`, quick
//!   `1000,100000`);
//! - `PINTU_BENCH_TAPS`: timed taps per size and card kind in the percentile pass (default
//!   100000, quick 20000);
//! - `PINTU_BENCH_MODE`: `criterion` or `percentiles` to run only that part.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion};
use pintu::core::card::Uid;
use pintu::core::decision::{decide, Decision, DenyReason};

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;
use common::{
    fmt_count, fmt_dur, known_uid, now, quick, result_line, unknown_uid, verdict, Fixture, Rng,
    Site, Stats, DOOR,
};

/// The target: p99 of the tap decision at 1M entries.
const P99_TARGET: Duration = Duration::from_micros(20);
/// "Flat in n": the largest list's p99 (and median) within this factor of the 1k list's.
///
/// Why ×3 for ×1000 entries: the lookup walks a B-tree, whose depth grows as log n (×2 from 1k
/// to 1M), and a 1k list's pages sit in the CPU's caches while a 1M list (~175 MB) is in DRAM,
/// one cache miss per tree level. Anything that grows with n itself (a scan, a cache that no
/// longer holds the list) shows as ×10 or more. Until 2026-11-23 this was ×2, which the
/// memory hierarchy alone misses (×2.1–2.7 measured with the list fully cached).
const FLAT_FACTOR: f64 = 3.0;
/// Cards pre-picked for the criterion loops of the pure parts (HMAC, decide), cycled.
const PICKS: usize = 4096;

fn main() {
    common::init_logging();
    let site = Site::new();
    if !common::bench_mode() {
        smoke(&site);
        return;
    }
    let quick = quick();
    let sizes: Vec<usize> = match std::env::var("PINTU_BENCH_SIZES") {
        Ok(s) => s
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .expect("PINTU_BENCH_SIZES: comma-separated numbers")
            })
            .collect(),
        Err(_) if quick => vec![1_000, 100_000],
        Err(_) => vec![1_000, 100_000, 1_000_000],
    };
    let taps = common::env_usize("PINTU_BENCH_TAPS", if quick { 20_000 } else { 100_000 });
    let mode = common::mode();

    let mut fixtures = Vec::new();
    for &n in &sizes {
        eprintln!("building a {}-entry store ...", fmt_count(n));
        let f = Fixture::build(&site, n);
        eprintln!(
            "  built in {} (generate + sign + open + verify_and_apply + reopen); {} on disk (list file + sled)",
            fmt_dur(f.build_time),
            common::fmt_mb(f.on_disk)
        );
        check(&site, &f);
        fixtures.push(f);
    }

    // Let the stores settle: sled keeps writing in the background for a while after a big
    // apply, which would otherwise land on the first measurements.
    for f in &fixtures {
        f.store.flush_blocking().expect("flush the store");
    }
    std::thread::sleep(Duration::from_secs(if quick { 1 } else { 3 }));

    if mode.as_deref() != Some("percentiles") {
        let mut c = if quick {
            Criterion::default()
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1))
        } else {
            Criterion::default()
                .sample_size(50)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3))
        }
        .configure_from_args();
        criterion_benches(&mut c, &site, &fixtures);
        c.final_summary();
    }
    if mode.as_deref() != Some("criterion") {
        percentiles(&site, &fixtures, taps);
    }
}

/// Test mode (`cargo test --benches`): exercise the code path on a tiny list.
fn smoke(site: &Site) {
    let f = Fixture::build(site, 100);
    check(site, &f);
    let _ = Stats::of(time_taps(site, &f, &picks(100, 1000, Cards::Hot), 1000));
    println!("decision bench: smoke run passed (run `cargo bench` or benches/run to measure)");
}

/// The fixture decides as expected: known cards by their entry, unknown cards denied.
fn check(site: &Site, f: &Fixture) {
    for i in [0, 1, 2, 3, 9, 49, f.n / 2, f.n - 1] {
        assert_eq!(
            f.tap(site, &known_uid(i)),
            Decision::Grant,
            "entry {i} should be granted at the bench time"
        );
    }
    assert_eq!(
        f.tap(site, &unknown_uid(0)),
        Decision::Deny(DenyReason::UnknownCard)
    );
}

/// Which cards tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cards {
    /// Known cards, uniformly at random among all entries: the worst case for every cache, and
    /// the figure the target is about.
    Known,
    /// Known cards from a working set of [`HOT_SET`] cardholders (the people who actually come
    /// to this door), at random among them: closer to a real door's day.
    Hot,
    /// Cards in no list.
    Unknown,
}

impl Cards {
    const ALL: [Cards; 3] = [Cards::Known, Cards::Hot, Cards::Unknown];

    fn name(self) -> &'static str {
        match self {
            Cards::Known => "known",
            Cards::Hot => "hot-1k",
            Cards::Unknown => "unknown",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Cards::Known => "known card (uniform)",
            Cards::Hot => "known card (1k working set)",
            Cards::Unknown => "unknown card",
        }
    }
}

/// Size of the working set of [`Cards::Hot`].
const HOT_SET: usize = 1000;

/// Draws tapping cards of one kind, at random, for a list of `n` entries.
struct Picker {
    n: usize,
    cards: Cards,
    rng: Rng,
    hot: Vec<usize>,
}

impl Picker {
    fn new(n: usize, cards: Cards) -> Picker {
        let mut rng = Rng::new(0x5eed ^ (cards as u64) << 32 ^ n as u64);
        let hot = (0..HOT_SET.min(n)).map(|_| rng.below(n)).collect();
        Picker { n, cards, rng, hot }
    }

    fn next(&mut self) -> Uid {
        match self.cards {
            Cards::Known => known_uid(self.rng.below(self.n)),
            Cards::Hot => known_uid(self.hot[self.rng.below(self.hot.len())]),
            Cards::Unknown => unknown_uid(self.rng.below(usize::MAX >> 16)),
        }
    }
}

/// `count` UIDs at random, of the given kind, for a list of `n` entries.
fn picks(n: usize, count: usize, cards: Cards) -> Vec<Uid> {
    let mut picker = Picker::new(n, cards);
    (0..count).map(|_| picker.next()).collect()
}

fn criterion_benches(c: &mut Criterion, site: &Site, fixtures: &[Fixture]) {
    let mut group = c.benchmark_group("tap");
    for f in fixtures {
        for cards in Cards::ALL {
            // A fresh random card for every tap (drawn outside the timing), so uniform picks
            // really range over the whole list.
            let mut picker = Picker::new(f.n, cards);
            group.bench_with_input(BenchmarkId::new(cards.name(), fmt_count(f.n)), f, |b, f| {
                b.iter_batched_ref(
                    || picker.next(),
                    |uid| black_box(f.tap(site, uid)),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();

    // The parts of one tap, on the largest list: where the time goes.
    let Some(f) = fixtures.last() else { return };
    let uids = picks(f.n, PICKS, Cards::Known);
    let hashes: Vec<_> = uids.iter().map(|u| site.card_key.hash(u)).collect();
    let active = f.store.active().expect("fixture has a list");
    let entries: Vec<_> = hashes
        .iter()
        .map(|h| active.lookup(h).expect("lookup").expect("known card"))
        .collect();
    let mut group = c.benchmark_group(format!("tap_parts_{}", fmt_count(f.n)));
    group.bench_function("hmac_uid", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % uids.len();
            black_box(site.card_key.hash(black_box(&uids[i])))
        })
    });
    group.bench_function("active_load", |b| b.iter(|| black_box(f.store.active())));
    let mut picker = Picker::new(f.n, Cards::Known);
    group.bench_function("lookup_known", |b| {
        b.iter_batched_ref(
            || site.card_key.hash(&picker.next()),
            |hash| black_box(active.lookup(hash).expect("lookup")),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decide", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % entries.len();
            black_box(decide(
                Some(&active.meta),
                Some(black_box(&entries[i])),
                DOOR,
                now(),
            ))
        })
    });
    group.finish();
}

/// Times each tap on its own.
fn time_taps(site: &Site, f: &Fixture, uids: &[Uid], count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let uid = &uids[i % uids.len()];
        let t0 = Instant::now();
        let d = f.tap(site, black_box(uid));
        let elapsed = t0.elapsed();
        black_box(d);
        samples.push(elapsed);
    }
    samples
}

fn percentiles(site: &Site, fixtures: &[Fixture], taps: usize) {
    println!();
    println!("Tap decision latency, each tap timed on its own ({taps} taps per row, HMAC + active() + sled lookup + decide;\n known: uniform over all entries; hot-1k: a working set of {HOT_SET} cardholders; unknown: in no list):");
    println!(
        "{:>8}  {:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "entries", "card", "min", "median", "p90", "p99", "p99.9", "max", "mean"
    );
    let mut rows = Vec::new();
    for f in fixtures {
        for cards in Cards::ALL {
            let uids = picks(f.n, taps, cards);
            // Warm-up: caches and branch predictors as a running door has them.
            let _ = time_taps(site, f, &uids, (taps / 10).max(1000));
            let s = Stats::of(time_taps(site, f, &uids, taps));
            println!(
                "{:>8}  {:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                fmt_count(f.n),
                cards.name(),
                fmt_dur(s.min),
                fmt_dur(s.median),
                fmt_dur(s.p90),
                fmt_dur(s.p99),
                fmt_dur(s.p999),
                fmt_dur(s.max),
                fmt_dur(s.mean)
            );
            rows.push((f.n, cards, s));
        }
    }
    println!();

    for (n, cards, s) in &rows {
        let ok = s.p99 <= P99_TARGET;
        result_line(
            &format!("tap decision, {} entries, {}", fmt_count(*n), cards.label()),
            &format!(
                "median {}, p99 {} (max {})",
                fmt_dur(s.median),
                fmt_dur(s.p99),
                fmt_dur(s.max)
            ),
            &format!("p99 ≤ {}", fmt_dur(P99_TARGET)),
            match (cards, ok) {
                // The target is about any card: the working-set row is for context.
                (Cards::Hot, true) => "info: pass",
                (Cards::Hot, false) => "info: FAIL",
                _ => verdict(ok),
            },
        );
    }
    // Flatness: largest list against the smallest, per card kind.
    let (Some(small), Some(large)) = (fixtures.first(), fixtures.last()) else {
        return;
    };
    if small.n == large.n {
        return;
    }
    for cards in [Cards::Known, Cards::Unknown] {
        let get = |n: usize| {
            rows.iter()
                .find(|(m, k, _)| *m == n && *k == cards)
                .map(|(_, _, s)| *s)
                .expect("row")
        };
        let (a, b) = (get(small.n), get(large.n));
        let p99_ratio = b.p99.as_secs_f64() / a.p99.as_secs_f64();
        let median_ratio = b.median.as_secs_f64() / a.median.as_secs_f64();
        result_line(
            &format!(
                "flat in n, {} ({} vs {})",
                cards.label(),
                fmt_count(large.n),
                fmt_count(small.n)
            ),
            &format!("median ×{median_ratio:.2}, p99 ×{p99_ratio:.2}"),
            &format!("both ≤ ×{FLAT_FACTOR:.0}"),
            verdict(p99_ratio <= FLAT_FACTOR && median_ratio <= FLAT_FACTOR),
        );
    }
}
