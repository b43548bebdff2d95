//! A fleet of doors on one broker (issue 9): `PINTU_BENCH_DOORS` release `pintud` processes
//! (default 100; 20 with `PINTU_BENCH_QUICK=1`; 10 without `--bench`), each with its own state
//! directory and door id (`door-001` …), a simulated reader, 4 MiB of sled cache and `[mqtt]` to
//! one local Mosquitto started here on a free loopback port. All doors share the site-wide
//! signed list (`PINTU_BENCH_LIST_N` entries, default 300), retained on `pintu/{site}/list`.
//!
//! 1. **Fleet start**: doors start in batches of `PINTU_BENCH_BATCH` (default 10); a batch is up
//!    when every door's retained status says `online` with list version 1. Reported: total time.
//! 2. **Revocation across the fleet**, `PINTU_BENCH_ROUNDS` rounds (default 3): the office
//!    publishes a new list version without one more card (retained, QoS 1, through
//!    `pintu::office::client`, as `pintuctl publish` does); per door, the time from just before the
//!    publish until that door's `list.applied` event for the new version arrives at a subscriber
//!    on `pintu/{site}/+/events`. The door denies the card from the moment it applied the list,
//!    a little before its event arrives, so this is an upper bound. Then one tap per door of the
//!    revoked card through the control socket confirms `deny` / `unknown_card`. p50, p99, max.
//!    With `PINTU_BENCH_POLL=1` every door is also tapped with the card every 5 ms from the
//!    publish on, and the first denied tap is reported too (the denial itself; each tap is an
//!    fsync, so with many doors this loads the disk and the CPU).
//! 3. **Events from all doors at once**: every door taps `PINTU_BENCH_TAPS` known cards (default
//!    50) through its control socket, one thread per door, all at once (each tap's event is
//!    flushed with an fsync before the reply: 100 doors load the disk). The QoS 1 subscriber
//!    collects; each door's seqs must arrive complete from 1 to the door's newest seq
//!    (de-duplicated by (door, seq)). Reported: events, events/s, lost (must be 0), duplicates.
//! 4. Broker CPU time and RSS (from `/proc` of the mosquitto pid) per phase; pintud RSS average
//!    and max.
//!
//! `cargo bench --bench fleet` runs it (needs `mosquitto`); prints `RESULT` lines for
//! `benches/run`. Every wait is bounded; every child process is stopped on every path.

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pintu::core::list::{Payload, ALL_DOORS};
use pintu::door::control::{self, Reply, Request};

/// Issue 9's target: every door denies a revoked card within 2 s (p99 across doors).
const TARGET_P99: Duration = Duration::from_secs(2);
/// How long one batch of doors may take to come up.
const BATCH_LIMIT: Duration = Duration::from_secs(90);
/// How long a revocation may take to reach every door before the bench gives up.
const REVOCATION_LIMIT: Duration = Duration::from_secs(60);
/// How long the events of the tap burst may take to arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(180);
/// Control-socket request bound.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    common::init_logging();
    let bench = common::bench_mode();
    let quick = common::quick();
    let doors_n = if bench {
        common::env_usize("PINTU_BENCH_DOORS", if quick { 20 } else { 100 })
    } else {
        10
    };
    let taps = if bench {
        common::env_usize("PINTU_BENCH_TAPS", 50)
    } else {
        5
    };
    let rounds = if bench {
        common::env_usize("PINTU_BENCH_ROUNDS", 3)
    } else {
        1
    }
    .max(1);
    let list_n = common::env_usize("PINTU_BENCH_LIST_N", 300).max(100);
    let batch = common::env_usize("PINTU_BENCH_BATCH", 10).max(1);
    let poll = std::env::var("PINTU_BENCH_POLL").is_ok_and(|v| v == "1");
    assert!(
        (1..=999).contains(&doors_n),
        "PINTU_BENCH_DOORS must be 1..=999"
    );

    let site = common::Site::new();
    let work = common::temp_dir();
    let broker = common::bench_broker();
    let office = pintu::office::client::OfficeMqtt::resolve(pintu::mqtt::settings::BrokerDraft {
        host: Some("127.0.0.1".into()),
        port: Some(broker.port()),
        client_id: Some("bench-office-publisher".into()),
        ..Default::default()
    })
    .expect("office settings")
    .expect("a broker host");
    let list_topic = office.site_list_topic(common::SITE);

    // Cards: the ones revoked, one per round, and the ones tapped in the burst. Only entries
    // every door grants at any hour: staff or escort, no door restriction, no schedule.
    let grantable: Vec<usize> = (0..list_n)
        .filter(|i| i % 3 != 2 && i % 4 != 3 && i % 50 != 49)
        .collect();
    assert!(
        grantable.len() > rounds + 10,
        "list too small for {rounds} rounds"
    );
    let revoked: Vec<usize> = grantable[..rounds].to_vec();
    let burst_cards: Vec<usize> = grantable[rounds..].to_vec();

    // The subscriber is up before any door, so it sees every event from seq 1.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let subscriber = Subscriber::start(broker.port(), seen.clone());

    // Version 1, retained before the doors start: each door gets it when it subscribes.
    publish(&office, &list_topic, signed_list(&site, list_n, 1, &[]))
        .expect("publish list version 1");

    // --- 1. the fleet comes up, in batches ---------------------------------------------------
    let mut fleet = Fleet {
        doors: Vec::with_capacity(doors_n),
    };
    let card_key = work.path().join("card.key");
    std::fs::write(&card_key, site.card_key.to_hex()).expect("card key");
    let public = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(site.keys[0].1.verifying_key().to_bytes())
    };
    let cpu_start = broker.cpu();
    let started = Instant::now();
    for first in (0..doors_n).step_by(batch) {
        let ids: Vec<String> = (first..(first + batch).min(doors_n))
            .map(|i| format!("door-{:03}", i + 1))
            .collect();
        for id in &ids {
            let dir = work.path().join(id);
            std::fs::create_dir_all(&dir).expect("door dir");
            let config = write_config(&dir, id, &public, &card_key, broker.port());
            fleet.doors.push(Door::start(id, &dir, &config));
        }
        let batch_started = Instant::now();
        loop {
            let missing: Vec<&String> = {
                let s = seen.lock().expect("lock");
                ids.iter()
                    .filter(|id| s.doors.get(*id).is_none_or(|d| d.online_with != Some(1)))
                    .collect()
            };
            if missing.is_empty() {
                break;
            }
            fleet.check_alive();
            if batch_started.elapsed() > BATCH_LIMIT {
                fail(
                    &fleet,
                    &format!(
                        "{} door(s) not online with list version 1 after {:?}: {:?}",
                        missing.len(),
                        BATCH_LIMIT,
                        missing
                    ),
                    missing.first().map(|s| s.as_str()),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let start_time = started.elapsed();
    let cpu_after_start = broker.cpu();
    println!(
        "fleet start: {doors_n} doors online with list version 1 in {} (batches of {batch})",
        common::fmt_dur(start_time)
    );
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = fleet.rss();
    let broker_rss_idle = broker.rss();

    // --- 2. revocation across the fleet --------------------------------------------------------
    let mut latencies = Vec::with_capacity(doors_n * rounds);
    let mut confirmed = 0;
    let mut publish_acks = Vec::new();
    let mut list_bytes = 0;
    let mut polled = Vec::new();
    let cpu_before_revocation = broker.cpu();
    let revocation_started = Instant::now();
    for round in 0..rounds {
        let version = round as u64 + 2;
        let bytes = signed_list(&site, list_n, version, &revoked[..=round]);
        list_bytes = bytes.len();
        let published = Instant::now();
        // With PINTU_BENCH_POLL=1, every door is also tapped with the card every 5 ms until it
        // is denied: the denial itself, not its event (the pollers start before the publish).
        let pollers: Vec<_> = if poll {
            fleet
                .doors
                .iter()
                .map(|d| {
                    let socket = d.socket.clone();
                    let uid = common::known_uid(revoked[round]).to_hex();
                    std::thread::spawn(move || poll_until_denied(&socket, &uid, published))
                })
                .collect()
        } else {
            Vec::new()
        };
        let ack = publish(&office, &list_topic, bytes)
            .unwrap_or_else(|e| fail(&fleet, &format!("publish version {version}: {e}"), None));
        publish_acks.push(ack);
        loop {
            let (arrived, missing): (Vec<Duration>, Vec<String>) = {
                let s = seen.lock().expect("lock");
                let mut arrived = Vec::new();
                let mut missing = Vec::new();
                for door in &fleet.doors {
                    match s.doors.get(&door.id).and_then(|d| d.applied.get(&version)) {
                        Some(at) => arrived.push(at.saturating_duration_since(published)),
                        None => missing.push(door.id.clone()),
                    }
                }
                (arrived, missing)
            };
            if missing.is_empty() {
                latencies.extend(arrived);
                break;
            }
            // (The pollers give up on their own after REVOCATION_LIMIT.)
            fleet.check_alive();
            if published.elapsed() > REVOCATION_LIMIT {
                fail(
                    &fleet,
                    &format!(
                        "round {}: {} door(s) did not report list version {version} within {:?}: {:?}",
                        round + 1,
                        missing.len(),
                        REVOCATION_LIMIT,
                        missing
                    ),
                    missing.first().map(|s| s.as_str()),
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for p in pollers {
            match p.join() {
                Ok(Ok(after)) => polled.push(after),
                Ok(Err(e)) => fail(&fleet, &format!("polling taps: {e}"), None),
                Err(_) => fail(&fleet, "a polling thread panicked", None),
            }
        }
        // Confirm at every door: the revoked card is denied as unknown.
        let uid = common::known_uid(revoked[round]).to_hex();
        for door in &fleet.doors {
            match control::request(
                &door.socket,
                &Request::Tap {
                    uid: uid.clone(),
                    reader: None,
                },
                CONTROL_TIMEOUT,
            ) {
                Ok(Reply::Tap(t))
                    if t.decision == "deny" && t.reason.as_deref() == Some("unknown_card") =>
                {
                    confirmed += 1
                }
                other => fail(
                    &fleet,
                    &format!(
                        "{}: revoked card tapped after list version {version}: {other:?}",
                        door.id
                    ),
                    Some(&door.id),
                ),
            }
        }
    }
    let revocation_time = revocation_started.elapsed();
    // Each door's own verify + apply time for the revocation lists, from its log.
    let apply_ms: Vec<Duration> = fleet
        .doors
        .iter()
        .flat_map(|d| d.apply_times(2))
        .map(Duration::from_millis)
        .collect();
    let apply = (!apply_ms.is_empty()).then(|| common::Stats::of(apply_ms));
    let cpu_after_revocation = broker.cpu();
    let rev = common::Stats::of(latencies.clone());
    let ack = common::Stats::of(publish_acks);
    println!(
        "revocation: {} samples ({doors_n} doors × {rounds} rounds): p50 {}, p99 {}, max {} (min {}); publish acknowledged in {} (median); {confirmed} denied taps confirmed",
        rev.n,
        common::fmt_dur(rev.median),
        common::fmt_dur(rev.p99),
        common::fmt_dur(rev.max),
        common::fmt_dur(rev.min),
        common::fmt_dur(ack.median),
    );
    let polled = (!polled.is_empty()).then(|| common::Stats::of(polled));
    if let Some(p) = &polled {
        println!(
            "  first denied tap, polling every 5 ms: p50 {}, p99 {}, max {}",
            common::fmt_dur(p.median),
            common::fmt_dur(p.p99),
            common::fmt_dur(p.max)
        );
    }
    if let Some(a) = &apply {
        println!(
            "  of which verify + apply in each door (its log, {} lists of {}): p50 {}, p99 {}, max {}",
            a.n,
            common::fmt_mb(list_bytes as u64),
            common::fmt_dur(a.median),
            common::fmt_dur(a.p99),
            common::fmt_dur(a.max)
        );
    }

    // --- 3. events from every door at once ----------------------------------------------------
    let (events_before, statuses_before) = {
        let mut s = seen.lock().expect("lock");
        s.burst_started = Some(Instant::now());
        (s.events_total, s.statuses_total)
    };
    let cpu_before_burst = broker.cpu();
    let burst_started = Instant::now();
    let tap_results: Vec<Result<(usize, u64), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = fleet
            .doors
            .iter()
            .enumerate()
            .map(|(d, door)| {
                let cards = &burst_cards;
                s.spawn(move || -> Result<(usize, u64), String> {
                    let mut granted = 0;
                    let mut last_seq = 0;
                    for k in 0..taps {
                        let card = cards[(d * 7 + k) % cards.len()];
                        let uid = common::known_uid(card).to_hex();
                        match control::request(
                            &door.socket,
                            &Request::Tap { uid, reader: None },
                            CONTROL_TIMEOUT,
                        ) {
                            Ok(Reply::Tap(t)) if t.decision == "grant" => {
                                granted += 1;
                                last_seq = last_seq.max(t.seq.unwrap_or(0));
                            }
                            other => return Err(format!("{}: tap {k}: {other:?}", door.id)),
                        }
                    }
                    Ok((granted, last_seq))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("tap thread panicked".into()))
            })
            .collect()
    });
    let taps_done = burst_started.elapsed();
    let mut granted = 0;
    let mut last_tap_seq: HashMap<String, u64> = HashMap::new();
    for (door, r) in fleet.doors.iter().zip(tap_results) {
        match r {
            Ok((n, seq)) => {
                granted += n;
                last_tap_seq.insert(door.id.clone(), seq);
            }
            Err(e) => fail(&fleet, &format!("burst: {e}"), None),
        }
    }
    // Every door's newest seq, once its outbox is empty (lock.secured comes `unlock_for` after
    // the last grant).
    std::thread::sleep(Duration::from_millis(1500));
    let mut newest: HashMap<String, u64> = HashMap::new();
    for door in &fleet.doors {
        loop {
            let depth = match control::request(&door.socket, &Request::Status, CONTROL_TIMEOUT) {
                Ok(Reply::Status(st)) => st.outbox_depth,
                other => fail(
                    &fleet,
                    &format!("{}: status: {other:?}", door.id),
                    Some(&door.id),
                ),
            };
            if depth == 0 {
                break;
            }
            if burst_started.elapsed() > DRAIN_LIMIT {
                fail(
                    &fleet,
                    &format!(
                        "{}: {depth} event(s) still in the outbox after {DRAIN_LIMIT:?}",
                        door.id
                    ),
                    Some(&door.id),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let seq = match control::request(
            &door.socket,
            &Request::Events { limit: Some(5) },
            CONTROL_TIMEOUT,
        ) {
            Ok(Reply::Events { events }) => events.iter().map(|e| e.seq).max().unwrap_or(0),
            other => fail(
                &fleet,
                &format!("{}: events: {other:?}", door.id),
                Some(&door.id),
            ),
        };
        newest.insert(door.id.clone(), seq);
    }
    // Everything the doors handed to the broker must reach the subscriber.
    let wait_started = Instant::now();
    let (lost, duplicates, total_unique, tap_events, tap_span) = loop {
        let s = seen.lock().expect("lock");
        let mut lost = 0;
        let mut duplicates = 0;
        let mut unique = 0;
        for (id, high) in &newest {
            let d = s.doors.get(id);
            let seqs = d.map(|d| &d.seqs);
            lost += (1..=*high)
                .filter(|q| !seqs.is_some_and(|s| s.contains(q)))
                .count();
            if let Some(d) = d {
                duplicates += d.total - d.seqs.len();
                unique += d.seqs.len();
            }
        }
        if lost == 0 || wait_started.elapsed() > Duration::from_secs(10) {
            // The rate: events up to each door's last tap event (a door's final lock.secured
            // comes `unlock_for` later and would only measure that pause).
            let mut count = 0;
            let mut last = burst_started;
            for (id, d) in &s.doors {
                let high = last_tap_seq.get(id).copied().unwrap_or(0);
                for (seq, at) in &d.burst_arrivals {
                    if *seq <= high {
                        count += 1;
                        last = last.max(*at);
                    }
                }
            }
            break (lost, duplicates, unique, count, last - burst_started);
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(50));
    };
    let cpu_after_burst = broker.cpu();
    let (burst_event_msgs, burst_status_msgs) = {
        let s = seen.lock().expect("lock");
        (
            s.events_total - events_before,
            s.statuses_total - statuses_before,
        )
    };
    let end_rss = fleet.rss();
    let broker_rss_end = broker.rss();
    let broker_hwm = broker.hwm();
    let rate = tap_events as f64 / tap_span.as_secs_f64().max(1e-6);
    println!(
        "burst: {doors_n} doors × {taps} taps ({granted} granted) in {}; their {tap_events} events arrived within {} of the first tap ({rate:.0} events/s); {total_unique} unique events in all, {lost} lost, {duplicates} duplicates",
        common::fmt_dur(taps_done),
        common::fmt_dur(tap_span),
    );

    // --- report -----------------------------------------------------------------------------
    let tick = clock_ticks();
    let cpu = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / tick;
    let pct = |secs: f64, wall: Duration| 100.0 * secs / wall.as_secs_f64().max(1e-6);
    let cpu_start_s = cpu(cpu_start, cpu_after_start);
    let cpu_rev_s = cpu(cpu_before_revocation, cpu_after_revocation);
    let cpu_burst_s = cpu(cpu_before_burst, cpu_after_burst);
    let burst_wall = burst_started.elapsed();
    println!(
        "burst messages through the broker: {burst_event_msgs} events + {burst_status_msgs} status updates for {granted} taps ({:.2} per tap)",
        (burst_event_msgs + burst_status_msgs) as f64 / granted.max(1) as f64
    );
    println!(
        "phases: start {}, revocation rounds {} (with the confirming taps), burst {} (taps, 1.5 s for the last lock.secured, drain checks)",
        common::fmt_dur(start_time),
        common::fmt_dur(revocation_time),
        common::fmt_dur(burst_wall)
    );
    println!(
        "broker CPU: start {cpu_start_s:.2} s ({:.0}% of a core over {}), revocation rounds {cpu_rev_s:.2} s ({:.0}%), burst {cpu_burst_s:.2} s ({:.0}%); broker RSS idle {}, end {}, peak {}",
        pct(cpu_start_s, start_time),
        common::fmt_dur(start_time),
        pct(cpu_rev_s, revocation_time),
        pct(cpu_burst_s, burst_wall),
        common::fmt_mb(broker_rss_idle),
        common::fmt_mb(broker_rss_end),
        common::fmt_mb(broker_hwm),
    );
    println!(
        "pintud RSS: idle avg {} max {}; after the burst avg {} max {}",
        common::fmt_mb(idle_rss.0),
        common::fmt_mb(idle_rss.1),
        common::fmt_mb(end_rss.0),
        common::fmt_mb(end_rss.1),
    );

    common::result_line(
        &format!("fleet: {doors_n} pintud online with list v1 (batches of {batch})"),
        &common::fmt_dur(start_time),
        "— (reported)",
        "info",
    );
    common::result_line(
        &format!(
            "fleet: revocation → every door denies, {doors_n} doors × {rounds} rounds, {} list (p50, p99, max)",
            common::fmt_count(list_n)
        ),
        &format!(
            "{}, {}, {} ({confirmed} denials confirmed)",
            common::fmt_dur(rev.median),
            common::fmt_dur(rev.p99),
            common::fmt_dur(rev.max)
        ),
        "p99 ≤ 2 s",
        common::verdict(rev.p99 <= TARGET_P99 && confirmed == doors_n * rounds),
    );
    if let Some(p) = &polled {
        common::result_line(
            "fleet:   first denied tap, polling each door every 5 ms (p50, p99, max)",
            &format!(
                "{}, {}, {}",
                common::fmt_dur(p.median),
                common::fmt_dur(p.p99),
                common::fmt_dur(p.max)
            ),
            "p99 ≤ 2 s",
            common::verdict(p.p99 <= TARGET_P99),
        );
    }
    if let Some(a) = &apply {
        common::result_line(
            &format!(
                "fleet:   of which verify + apply in the door, {} list (p50, p99, max)",
                common::fmt_count(list_n)
            ),
            &format!(
                "{}, {}, {} ({:.2} MB list)",
                common::fmt_dur(a.median),
                common::fmt_dur(a.p99),
                common::fmt_dur(a.max),
                list_bytes as f64 / 1e6
            ),
            "— (attribution)",
            "info",
        );
    }
    common::result_line(
        &format!("fleet: events from {doors_n} doors at once ({taps} taps each)"),
        &format!("{tap_events} events at {rate:.0} events/s, {lost} lost, {duplicates} duplicates"),
        "0 lost",
        common::verdict(lost == 0),
    );
    common::result_line(
        &format!("fleet: broker CPU (start / revocations / burst), {doors_n} doors"),
        &format!(
            "{cpu_start_s:.2} s / {cpu_rev_s:.2} s / {cpu_burst_s:.2} s ({:.0}% / {:.0}% / {:.0}% of a core)",
            pct(cpu_start_s, start_time),
            pct(cpu_rev_s, revocation_time),
            pct(cpu_burst_s, burst_wall)
        ),
        "— (reported)",
        "info",
    );
    common::result_line(
        &format!("fleet: broker RSS, {doors_n} doors (idle, peak)"),
        &format!(
            "{:.1} MB, {:.1} MB",
            broker_rss_idle as f64 / 1e6,
            broker_hwm as f64 / 1e6
        ),
        "— (reported)",
        "info",
    );
    common::result_line(
        &format!("fleet: pintud RSS, {doors_n} doors (avg, max; after the burst)"),
        &format!(
            "{:.1} MB, {:.1} MB (idle: {:.1}, {:.1})",
            end_rss.0 as f64 / 1e6,
            end_rss.1 as f64 / 1e6,
            idle_rss.0 as f64 / 1e6,
            idle_rss.1 as f64 / 1e6
        ),
        "— (reported)",
        "info",
    );

    fleet.stop();
    subscriber.stop();
    drop(broker);
    if lost > 0 && !bench {
        panic!("{lost} event(s) lost");
    }
}

/// The site-wide list `version` of `n` entries (for every door, `"*"`), without the entries in
/// `without`, signed.
fn signed_list(site: &common::Site, n: usize, version: u64, without: &[usize]) -> Vec<u8> {
    let mut payload: Payload = site.synthetic_payload(version, n);
    payload.doors = vec![ALL_DOORS.to_string()];
    let gone: HashSet<String> = without.iter().map(|i| format!("h{i:07}")).collect();
    payload.entries.retain(|e| !gone.contains(&e.holder));
    site.sign(&payload)
}

/// Publishes a signed list retained (QoS 1) on `topic` as `pintuctl publish` does. Returns the
/// time from connecting to the PUBACK.
fn publish(
    office: &pintu::office::client::OfficeMqtt,
    topic: &str,
    bytes: Vec<u8>,
) -> Result<Duration, String> {
    pintu::office::client::block_on(office.publish_retained(topic, bytes))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Taps `uid` at the door every 5 ms until it is denied; the time since `published`.
fn poll_until_denied(socket: &Path, uid: &str, published: Instant) -> Result<Duration, String> {
    loop {
        let req = Request::Tap {
            uid: uid.to_string(),
            reader: None,
        };
        match control::request(socket, &req, CONTROL_TIMEOUT) {
            Ok(Reply::Tap(t)) if t.reason.as_deref() == Some("unknown_card") => {
                return Ok(published.elapsed())
            }
            Ok(Reply::Tap(_)) => {}
            other => return Err(format!("{}: {other:?}", socket.display())),
        }
        if published.elapsed() > REVOCATION_LIMIT {
            return Err(format!(
                "{}: still granted after {REVOCATION_LIMIT:?}",
                socket.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The door's config: the bench site, its own door id, a simulated entry reader, a small sled
/// cache, no flood lockout, MQTT to the local broker.
fn write_config(dir: &Path, id: &str, public: &str, card_key: &Path, port: u16) -> PathBuf {
    let site = common::SITE;
    let card_key = card_key.display();
    let config = format!(
        r#"site = "{site}"
state_dir = "state"

[door]
id = "{id}"
unlock_for = "1s"

[trust]
card_key_file = "{card_key}"

[[trust.keys]]
id = "k1"
public_key = "{public}"

[[reader]]
name = "entry"
backend = "sim"

[control]
socket = "control.sock"
mode = "0600"

[log]
level = "info"

[store]
cache_size = "4MiB"

# The bench taps revoked cards on purpose: no reader lockout.
[flood]
max_failures = 0

[mqtt]
host = "127.0.0.1"
insecure = true
port = {port}
reconnect_min = "200ms"
reconnect_max = "2s"
"#
    );
    let path = dir.join("pintu.toml");
    std::fs::write(&path, config).expect("door config");
    path
}

/// One `pintud`: its log goes to `pintud.log` in its directory.
struct Door {
    id: String,
    dir: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
}

impl Door {
    fn start(id: &str, dir: &Path, config: &Path) -> Door {
        let log = std::fs::File::create(dir.join("pintud.log")).expect("door log");
        let child = Command::new(env!("CARGO_BIN_EXE_pintud"))
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn pintud");
        Door {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            socket: dir.join("control.sock"),
            child: Some(child),
        }
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// The `ms=` of every `list applied` log line for a version of at least `from`.
    fn apply_times(&self, from: u64) -> Vec<u64> {
        let text = std::fs::read_to_string(self.dir.join("pintud.log")).unwrap_or_default();
        let field = |line: &str, key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
        };
        text.lines()
            .filter(|l| l.contains("list applied"))
            .filter(|l| field(l, "version=").is_some_and(|v| v >= from))
            .filter_map(|l| field(l, "ms="))
            .collect()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("pintud.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Every door; stops them all on drop (SIGTERM, then SIGKILL after 10 s), so no path leaves a
/// process behind.
struct Fleet {
    doors: Vec<Door>,
}

impl Fleet {
    /// Panics (and so stops the fleet) if a door exited.
    fn check_alive(&mut self) {
        let mut dead = None;
        for door in &mut self.doors {
            if let Some(child) = door.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    door.child = None;
                    dead = Some((door.id.clone(), status));
                    break;
                }
            }
        }
        if let Some((id, status)) = dead {
            fail(self, &format!("{id} exited: {status}"), Some(&id));
        }
    }

    /// Average and max `VmRSS` of the doors, in bytes.
    fn rss(&self) -> (u64, u64) {
        let values: Vec<u64> = self
            .doors
            .iter()
            .filter_map(|d| d.pid())
            .map(|p| proc_field(p, "VmRSS:"))
            .collect();
        let max = values.iter().copied().max().unwrap_or(0);
        let avg = values.iter().sum::<u64>() / values.len().max(1) as u64;
        (avg, max)
    }

    fn stop(&mut self) {
        for door in &self.doors {
            if let Some(pid) = door.pid() {
                let _ = kill(pid, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for door in &mut self.doors {
            if let Some(mut child) = door.child.take() {
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() >= deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops with a clear message and the named door's log tail; the guards stop every process.
fn fail(fleet: &Fleet, message: &str, door: Option<&str>) -> ! {
    if let Some(d) = door.and_then(|id| fleet.doors.iter().find(|d| d.id == id)) {
        eprintln!("--- last lines of {}'s log ---\n{}", d.id, d.log_tail());
    }
    panic!("fleet bench: {message}");
}

/// What the subscriber saw, per door.
#[derive(Default)]
struct Seen {
    doors: HashMap<String, DoorSeen>,
    burst_started: Option<Instant>,
    /// Event and status messages received so far (duplicates included).
    events_total: usize,
    statuses_total: usize,
}

#[derive(Default)]
struct DoorSeen {
    seqs: HashSet<u64>,
    total: usize,
    /// The list version of the newest retained `online` status.
    online_with: Option<u64>,
    /// First arrival of each `list.applied` version.
    applied: HashMap<u64, Instant>,
    /// First arrival of each seq once the burst started.
    burst_arrivals: HashMap<u64, Instant>,
}

/// A QoS 1 subscriber on every door's events and status, in its own thread.
struct Subscriber {
    stop: Arc<AtomicBool>,
    client: rumqttc::Client,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    fn start(port: u16, seen: Arc<Mutex<Seen>>) -> Subscriber {
        let mut opts = rumqttc::MqttOptions::new("bench-office-subscriber", "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = rumqttc::Client::new(opts, 10_000);
        let site = common::SITE;
        for filter in [
            format!("pintu/{site}/+/events"),
            format!("pintu/{site}/+/status"),
        ] {
            client
                .subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .expect("subscribe");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let mut subacks = 0;
            for event in connection.iter() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                match event {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == 2 {
                            let _ = ready_tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let now = Instant::now();
                        let Some(door) = p.topic.split('/').nth(2) else {
                            continue;
                        };
                        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
                            continue;
                        };
                        let mut s = seen.lock().expect("lock");
                        let in_burst = s.burst_started.is_some();
                        if p.topic.ends_with("/events") {
                            s.events_total += 1;
                        } else {
                            s.statuses_total += 1;
                        }
                        let d = s.doors.entry(door.to_string()).or_default();
                        if p.topic.ends_with("/events") {
                            let Some(seq) = v["seq"].as_u64() else {
                                continue;
                            };
                            d.total += 1;
                            d.seqs.insert(seq);
                            if v["kind"] == "list.applied" {
                                if let Some(version) = v["list_version"].as_u64() {
                                    d.applied.entry(version).or_insert(now);
                                }
                            }
                            if in_burst {
                                d.burst_arrivals.entry(seq).or_insert(now);
                            }
                        } else if v["state"] == "online" {
                            d.online_with = v["list"]["version"].as_u64();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        if flag.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            panic!("fleet bench: the subscriber got no SUBACK from the broker within 10 s");
        }
        Subscriber {
            stop,
            client,
            handle: Some(handle),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.disconnect();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Figures of the bench's broker process.
trait BrokerProc {
    fn cpu(&self) -> u64;
    fn rss(&self) -> u64;
    fn hwm(&self) -> u64;
}

impl BrokerProc for pintu_testkit::broker::Broker {
    /// utime + stime so far, in clock ticks.
    fn cpu(&self) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which ends with the last ')'): state is field 3, utime
        // field 14, stime field 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        get(11) + get(12)
    }

    fn rss(&self) -> u64 {
        self.pid().map_or(0, |p| proc_field(p, "VmRSS:"))
    }

    fn hwm(&self) -> u64 {
        self.pid().map_or(0, |p| proc_field(p, "VmHWM:"))
    }
}

/// A `kB` field of `/proc/PID/status`, in bytes (0 if unreadable).
fn proc_field(pid: Pid, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}
