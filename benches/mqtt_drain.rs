//! The MQTT link, measured against a local Mosquitto (started here on a free loopback port):
//!
//! 1. **Outbox drain**: `PINTU_BENCH_EVENTS` events (default 100,000; 20,000 with
//!    `PINTU_BENCH_QUICK=1`) are queued in a door's outbox while it has no broker; then `pintud`
//!    starts with `[mqtt]` and a subscriber counts what arrives. Reported: events per second from
//!    the first to the last event received, events lost (must be 0) and duplicates.
//! 2. **Tap → decision latency while the broker is up, down, and stalled** (mosquitto stopped
//!    with SIGSTOP: connections stay open and nothing is acknowledged): taps through the control
//!    socket, the daemon's own `micros` (tap received → decided and relay driven). Must not change.
//!
//! `cargo bench --bench mqtt_drain` runs it; without `--bench` (as `cargo test --benches` runs
//! it) it smoke tests 500 events and 20 taps per phase. Prints `RESULT` lines for `benches/run`.

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pintu::core::event::{EventDraft, EventKind};
use pintu::door::control::{self, Reply, Request};
use pintu::door::store::Store;

/// The target for draining the outbox to a local broker.
const TARGET_RATE: f64 = 5_000.0;

fn main() {
    let bench = common::bench_mode();
    let events = if bench {
        common::env_usize(
            "PINTU_BENCH_EVENTS",
            if common::quick() { 20_000 } else { 100_000 },
        )
    } else {
        500
    };
    let taps = if bench { 300 } else { 20 };
    let dir = common::temp_dir();
    let site = common::Site::new();
    let mut broker = common::bench_broker();

    // Queue the events in the door's outbox while it has no broker.
    let store_opts = site.bench_store_options(dir.path());
    {
        let (store, _) = Store::open(&store_opts, &site.bench_policy()).expect("open store");
        let now = common::now();
        for i in 0..events {
            let draft = EventDraft::new(EventKind::AccessDenied)
                .reason("unknown_card")
                .detail(format!("queued event {i}"));
            store.append(draft, now).expect("append");
        }
        store.flush_blocking().expect("flush");
    }

    let received = Arc::new(Mutex::new(Received::default()));
    let _subscriber = subscribe(broker.port(), received.clone());

    let list = dir.path().join("list.signed");
    std::fs::write(&list, site.signed_synthetic_list(1, 1000)).expect("list");
    std::fs::write(dir.path().join("card.key"), site.card_key.to_hex()).expect("card key");
    let config = common::write_door_config(
        dir.path(),
        &site.keys[0].1.verifying_key(),
        "name = \"entry\"\nbackend = \"sim\"",
    );
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[mqtt]\nhost = \"127.0.0.1\"\ninsecure = true\nport = {}\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n\n[store]\noutbox_critical = 10000000\noutbox_warning = 5000000\n",
        broker.port()
    ));
    std::fs::write(&config, text).expect("config");
    let (mut pintud, _lines) = common::spawn_pintud(&config, &list);

    // The queued events plus what pintud adds at start (daemon.started, list.applied, ...).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let got = received.lock().expect("lock").seqs.len();
        if got >= events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {events} events arrived in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (rate, lost, duplicates) = {
        let r = received.lock().expect("lock");
        let first = r.first.expect("first");
        let last = r.last.expect("last");
        let span = last.duration_since(first).as_secs_f64().max(1e-6);
        let lost = (1..=events as u64).filter(|s| !r.seqs.contains(s)).count();
        (events as f64 / span, lost, r.total - r.seqs.len())
    };
    println!(
        "outbox drain: {events} events to local Mosquitto at {rate:.0} events/s, {lost} lost, {duplicates} duplicates"
    );
    common::result_line(
        &format!(
            "outbox drain to local Mosquitto, {} events",
            common::fmt_count(events)
        ),
        &format!("{rate:.0} events/s, {lost} lost"),
        "≥ 5,000 events/s, 0 lost",
        common::verdict(rate >= TARGET_RATE && lost == 0),
    );

    // Tap latency with the broker up, down and stalled.
    let socket = dir.path().join("control.sock");
    let mut phases = Vec::new();
    for phase in ["up", "stalled", "down"] {
        match phase {
            "stalled" => broker.signal(Signal::SIGSTOP),
            "down" => {
                broker.signal(Signal::SIGCONT);
                broker.stop();
            }
            _ => {}
        }
        let mut micros = Vec::with_capacity(taps);
        for i in 0..taps {
            let uid = common::known_uid(i % 1000).to_hex();
            match control::request(
                &socket,
                &Request::Tap { uid, reader: None },
                Duration::from_secs(10),
            ) {
                Ok(Reply::Tap(t)) => micros.push(Duration::from_micros(t.micros)),
                other => panic!("tap failed with the broker {phase}: {other:?}"),
            }
        }
        let stats = common::Stats::of(micros);
        println!(
            "tap → decision with the broker {phase}: p50 {}, p99 {}",
            common::fmt_dur(stats.median),
            common::fmt_dur(stats.p99)
        );
        phases.push((phase, stats));
    }
    let base = phases[0].1.p99;
    for (phase, stats) in &phases {
        // "Unchanged": within 2x of the broker-up p99, or under 1 ms either way.
        let ok = stats.p99 <= (base * 2).max(Duration::from_millis(1));
        common::result_line(
            &format!("tap → decision, broker {phase} (p50, p99)"),
            &format!(
                "{}, {}",
                common::fmt_dur(stats.median),
                common::fmt_dur(stats.p99)
            ),
            "unchanged by the broker",
            common::verdict(ok),
        );
    }
    let _ = kill(Pid::from_raw(pintud.id() as i32), Signal::SIGTERM);
    let _ = pintud.wait();
}

#[derive(Default)]
struct Received {
    seqs: HashSet<u64>,
    total: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// A QoS 1 subscriber on the door's events topic, counting by seq.
fn subscribe(port: u16, received: Arc<Mutex<Received>>) -> std::thread::JoinHandle<()> {
    let mut opts = rumqttc::MqttOptions::new("bench-office", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = rumqttc::Client::new(opts, 1000);
    client
        .subscribe(
            format!("pintu/{}/{}/events", common::SITE, common::DOOR),
            rumqttc::QoS::AtLeastOnce,
        )
        .expect("subscribe");
    let handle = std::thread::spawn(move || {
        let _client = client;
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&p.payload).expect("event JSON");
                    let seq = v["seq"].as_u64().expect("seq");
                    let now = Instant::now();
                    let mut r = received.lock().expect("lock");
                    r.total += 1;
                    r.seqs.insert(seq);
                    r.first.get_or_insert(now);
                    r.last = Some(now);
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    // Wait for the subscription to be in place before anything is published.
    std::thread::sleep(Duration::from_millis(500));
    handle
}
