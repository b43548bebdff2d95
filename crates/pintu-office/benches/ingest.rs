//! Event ingest into the office database, through a real Mosquitto (started here on a free
//! loopback port), to SQLite and to PostgreSQL, with durable batches (each burst committed
//! before its PUBACKs; SQLite with `synchronous = FULL`):
//!
//! 1. **live**: the ingest runs; ten doors publish `PINTU_BENCH_EVENTS` events (default
//!    100,000; 20,000 with `PINTU_BENCH_QUICK=1`) as fast as the broker takes them. Reported:
//!    events per second from the first publish to the last event committed.
//! 2. **catch-up**: the same number of events queued on the broker for the ingest's session while
//!    it is stopped; then it starts. Reported: events per second until the last is committed.
//!
//! Each pass checks that every event was archived once (0 lost, 0 duplicates, no gaps). The
//! goal (issue 17): at least 5,000 events/s sustained.
//!
//! A criterion group measures `store_batch` alone (1,000 events per transaction, SQLite).
//! `PINTU_BENCH_MODE`: `criterion` or `report` to run only that part.
//!
//! PostgreSQL comes from `PINTU_TEST_POSTGRES` (`scripts/with-postgres cargo bench -p
//! pintu-office --bench ingest`); without it that half is skipped. The figure printed says
//! whether that server has `fsync` and `synchronous_commit` on (`scripts/with-postgres` turns
//! both off: run against a server with them on for a durable PostgreSQL figure).
//!
//! `cargo bench -p pintu-office --bench ingest` runs it; without `--bench` (as
//! `cargo test --benches` runs it) it smoke tests 500 events per pass. Prints `RESULT` lines.

use std::time::{Duration, Instant};

use criterion::Criterion;
use pintu::mqtt::BrokerSettings;
use pintu_office::archive::{self, Message};
use pintu_office::db::Db;
use pintu_testkit::broker::{Broker, BrokerOptions};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use sqlx::Row;

const SITE: &str = "bench-site";
const DOORS: usize = 10;
/// The goal.
const TARGET_RATE: f64 = 5_000.0;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn quick() -> bool {
    matches!(
        std::env::var("PINTU_BENCH_QUICK").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

fn result_line(figure: &str, value: &str, target: &str, verdict: &str) {
    println!("RESULT\t{figure}\t{value}\t{target}\t{verdict}");
}

fn event(door: &str, seq: u64) -> String {
    serde_json::json!({
        "schema": "pintu.event.v1", "id": uuid::Uuid::new_v4(), "seq": seq,
        "time": "2026-05-04T01:00:00Z", "site": SITE, "door": door, "kind": "access.granted",
        "reader": "entry", "holder": format!("h{}", seq % 5000), "card": "c:0a1b2c3d",
        "decision": "grant", "list_version": 7,
    })
    .to_string()
}

fn settings(broker: &Broker) -> BrokerSettings {
    BrokerSettings {
        host: broker.host().into(),
        port: broker.port(),
        client_id: "pintu-office-bench".into(),
        topic_prefix: "pintu".into(),
        credentials: None,
        tls: None,
        keep_alive: Duration::from_secs(30),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        insecure: true,
    }
}

/// Where the SQLite file goes: `PINTU_BENCH_DIR`, else cargo's target tmp dir (the disk of
/// `target/`, so fsyncs are real).
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var("PINTU_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("temp dir")
}

async fn postgres_db() -> Option<(Db, String)> {
    let base = std::env::var(pintu_office::testing::POSTGRES_ENV).ok()?;
    let admin = Db::connect(&format!("{base}/postgres"), 1)
        .await
        .expect("connect to PostgreSQL");
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin.pool())
        .await
        .expect("create the bench database");
    let show = |what: &'static str| {
        let pool = admin.pool().clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(format!("SHOW {what}")))
                .fetch_one(&pool)
                .await
                .ok()
                .and_then(|r| r.try_get::<String, _>(0).ok())
                .unwrap_or_else(|| "?".into())
        }
    };
    let note = format!(
        "fsync={}, synchronous_commit={}",
        show("fsync").await,
        show("synchronous_commit").await
    );
    admin.close().await;
    let db = Db::connect(&format!("{base}/{name}"), 4)
        .await
        .expect("open the bench database");
    db.migrate().await.expect("migrate");
    Some((db, note))
}

async fn sqlite_db(dir: &std::path::Path) -> Db {
    let db = Db::connect(&format!("sqlite://{}", dir.join("office.db").display()), 4)
        .await
        .expect("open SQLite");
    db.migrate().await.expect("migrate");
    db
}

/// Publishes `per_door` events for each of the doors `doors` (seq from `first`), QoS 1, one
/// pipelining client per door; returns when the broker acknowledged all.
async fn publish(port: u16, doors: &[String], first: u64, per_door: u64) {
    let mut tasks = Vec::new();
    for door in doors {
        let door = door.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = MqttOptions::new(
                format!("bench-pub-{door}-{}", uuid::Uuid::new_v4().simple()),
                "127.0.0.1",
                port,
            );
            o.set_keep_alive(Duration::from_secs(30));
            o.set_inflight(100);
            let (client, mut eventloop) = AsyncClient::new(o, 200);
            let topic = format!("pintu/{SITE}/{door}/events");
            let sender = tokio::spawn(async move {
                for seq in first..first + per_door {
                    client
                        .publish(&topic, QoS::AtLeastOnce, false, event(&door, seq))
                        .await
                        .expect("queue a publish");
                }
                client
            });
            let mut acked = 0;
            while acked < per_door {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => panic!("bench publisher: {e}"),
                }
            }
            let client = sender.await.expect("sender");
            let _ = client.disconnect().await;
        }));
    }
    for t in tasks {
        t.await.expect("publisher");
    }
}

struct Running {
    task: tokio::task::JoinHandle<Result<(), archive::ArchiveError>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the ingest; `settle` waits a little more after it connected (a new subscription is in
/// place before the doors publish).
async fn start_ingest(db: &Db, broker: &Broker, settle: bool) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(archive::run(
        db.clone(),
        settings(broker),
        SITE.into(),
        "bench".into(),
        async move {
            let _ = stopped.await;
        },
    ));
    // Subscribed once the instance has recorded its connection (the SUBACK follows at once).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM ingest_instances")
            .fetch_one(db.pool())
            .await
            .and_then(|r| r.try_get(0))
            .unwrap_or(0);
        if n > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the ingest never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if settle {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Running { task, stop }
}

async fn stop_ingest(r: Running) {
    let _ = r.stop.send(());
    r.task
        .await
        .expect("ingest task")
        .expect("the ingest ends without error");
}

async fn wait_stored(db: &Db, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let c = archive::stats(db).await.expect("stats").counters;
        if c.stored >= n {
            return;
        }
        assert!(Instant::now() < deadline, "stuck at {c:?}, want {n} stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks every event was archived once; returns the number lost (0 when all is well).
async fn check_all(db: &Db, doors: &[String], per_door: i64) -> i64 {
    let s = archive::stats(db).await.expect("stats");
    let gaps = archive::gaps(db).await.expect("gaps");
    assert_eq!(s.counters.duplicates, 0, "duplicates: {:?}", s.counters);
    assert_eq!(
        s.counters.conflicts + s.counters.rejected,
        0,
        "{:?}",
        s.counters
    );
    assert!(gaps.is_empty(), "gaps: {gaps:?}");
    doors
        .iter()
        .map(|d| {
            let got = s
                .doors
                .iter()
                .find(|r| &r.door == d)
                .map_or(0, |r| r.events);
            per_door - got
        })
        .sum()
}

/// Both passes on one database; prints their RESULT lines.
async fn passes(engine: &str, note: &str, db: &Db, events: u64) {
    let broker = tokio::task::block_in_place(|| {
        Broker::start(BrokerOptions {
            quiet: true,
            extra_config: "max_queued_bytes 0\n".into(),
            ..BrokerOptions::default()
        })
    });
    let doors: Vec<String> = (1..=DOORS).map(|i| format!("door-{i}")).collect();
    let per_door = events / DOORS as u64;
    let total = per_door * DOORS as u64;

    // 1. Live: the ingest runs while the doors publish.
    let ingest = start_ingest(db, &broker, true).await;
    let started = Instant::now();
    publish(broker.port(), &doors, 1, per_door).await;
    let published = started.elapsed();
    wait_stored(db, total as i64).await;
    let live = started.elapsed();
    stop_ingest(ingest).await;
    let lost = check_all(db, &doors, per_door as i64).await;
    let rate = total as f64 / live.as_secs_f64();
    eprintln!(
        "{engine}: live: {total} events published in {:.2} s, all committed after {:.2} s: {rate:.0} events/s, {lost} lost",
        published.as_secs_f64(),
        live.as_secs_f64()
    );
    result_line(
        &format!("ingest live, {engine} ({note}), {total} events"),
        &format!("{rate:.0} events/s, {lost} lost"),
        "≥ 5000 events/s, 0 lost",
        if bench_mode() {
            verdict(rate >= TARGET_RATE && lost == 0)
        } else {
            "info"
        },
    );

    // 2. Catch-up: queued on the broker while the ingest is away.
    publish(broker.port(), &doors, per_door + 1, per_door).await;
    let started = Instant::now();
    let ingest = start_ingest(db, &broker, false).await;
    wait_stored(db, 2 * total as i64).await;
    let catch_up = started.elapsed();
    stop_ingest(ingest).await;
    let lost = check_all(db, &doors, 2 * per_door as i64).await;
    let rate = total as f64 / catch_up.as_secs_f64();
    eprintln!(
        "{engine}: catch-up: {total} queued events committed in {:.2} s: {rate:.0} events/s, {lost} lost",
        catch_up.as_secs_f64()
    );
    result_line(
        &format!("ingest catch-up, {engine} ({note}), {total} events"),
        &format!("{rate:.0} events/s, {lost} lost"),
        "≥ 5000 events/s, 0 lost",
        if bench_mode() {
            verdict(rate >= TARGET_RATE && lost == 0)
        } else {
            "info"
        },
    );
    assert_eq!(lost, 0, "events lost");
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "FAIL"
    }
}

fn run_criterion(rt: &tokio::runtime::Runtime) {
    let dir = bench_dir();
    let db = rt.block_on(sqlite_db(dir.path()));
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let mut next = 0u64;
    c.bench_function("store_batch 1000 events (SQLite, durable)", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batch: Vec<Message> = (0..1000)
                    .map(|_| {
                        next += 1;
                        Message {
                            topic: format!("pintu/{SITE}/door-1/events"),
                            payload: event("door-1", next).into_bytes(),
                        }
                    })
                    .collect();
                let t = Instant::now();
                rt.block_on(archive::store_batch(&db, SITE, "bench", &batch))
                    .expect("store");
                spent += t.elapsed();
            }
            spent
        })
    });
    c.final_summary();
}

fn main() {
    let bench = bench_mode();
    let events: u64 = if bench {
        std::env::var("PINTU_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick() { 20_000 } else { 100_000 })
    } else {
        500
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mode = std::env::var("PINTU_BENCH_MODE")
        .ok()
        .filter(|m| !m.is_empty());
    if bench && mode.as_deref() != Some("report") {
        run_criterion(&rt);
        if mode.as_deref() == Some("criterion") {
            return;
        }
    }
    rt.block_on(async {
        let dir = bench_dir();
        let db = sqlite_db(dir.path()).await;
        passes("SQLite", "synchronous=FULL", &db, events).await;
        match postgres_db().await {
            Some((db, note)) => passes("PostgreSQL", &note, &db, events).await,
            None => {
                eprintln!(
                    "PostgreSQL skipped: PINTU_TEST_POSTGRES is not set (scripts/with-postgres)"
                );
                result_line(
                    "ingest, PostgreSQL",
                    "skipped (no PINTU_TEST_POSTGRES)",
                    "≥ 5000 events/s, 0 lost",
                    "info",
                );
            }
        }
    });
}
