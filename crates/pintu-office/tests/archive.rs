//! The office archive's ingest against a real Mosquitto, on both databases: duplicates stored
//! once, conflicts kept with both digests, gaps reported exactly, nothing acknowledged before it
//! is committed, no loss across ingest crashes, clean stops and broker restarts, a real pintud's
//! events archived as published, and two instances sharing the work on one database. (The
//! guarantees `tests/archive.rs` of the pintu package checks for the sled archive.)

use std::time::{Duration, Instant};

use pintu::mqtt::BrokerSettings;
use pintu_office::archive::{self, ArchiveError, Counters, EventQuery};
use pintu_office::db::Db;
use pintu_office::db_test;
use pintu_testkit::broker::{Broker, BrokerOptions, Client, ClientOptions};
use pintu_testkit::{Pintud, Site, DOOR, SITE};

const WAIT: Duration = Duration::from_secs(30);

/// The broker settings the office would resolve for the test broker.
pub fn settings(broker: &Broker) -> BrokerSettings {
    BrokerSettings {
        host: broker.host().into(),
        port: broker.port(),
        client_id: "pintu-office-test".into(),
        topic_prefix: "pintu".into(),
        credentials: None,
        tls: None,
        keep_alive: Duration::from_secs(5),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        insecure: true,
    }
}

/// Runs blocking fixture code (broker restarts, blocking MQTT clients) on a test's runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A running ingest instance (a task of the test's runtime).
pub struct Ingest {
    task: tokio::task::JoinHandle<Result<(), ArchiveError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Its MQTT client id.
    pub client_id: String,
}

impl Ingest {
    /// Starts instance `instance` on `db` and waits until the broker acknowledged its
    /// subscription.
    pub async fn start(db: &Db, broker: &Broker, instance: &str) -> Ingest {
        let s = settings(broker);
        let client_id = archive::client_id(&s, instance);
        let subacks = |log: &str| {
            log.matches(&format!("Sending SUBACK to {client_id}"))
                .count()
        };
        let before = subacks(&broker.log());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(archive::run(
            db.clone(),
            s,
            SITE.to_string(),
            instance.to_string(),
            async move {
                let _ = stopped.await;
            },
        ));
        let ingest = Ingest {
            task,
            stop: Some(stop),
            client_id,
        };
        ingest.wait_subscribed(broker, before + 1).await;
        ingest
    }

    /// Waits until the broker has acknowledged `n` subscriptions of this instance.
    pub async fn wait_subscribed(&self, broker: &Broker, n: usize) {
        let needle = format!("Sending SUBACK to {}", self.client_id);
        let deadline = Instant::now() + WAIT;
        while broker.log().matches(&needle).count() < n {
            assert!(
                !self.task.is_finished(),
                "the ingest ended before subscribing"
            );
            assert!(
                Instant::now() < deadline,
                "no SUBACK for {}; broker log:\n{}",
                self.client_id,
                broker.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A clean stop; the ingest must end without error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ended = tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the ingest stops in time")
            .expect("the ingest task");
        ended.expect("the ingest ends without error");
    }

    /// A crash: the task is dropped where it stands (the connection closes without DISCONNECT,
    /// an open transaction rolls back).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Waits until the counters satisfy `pred`; returns them.
pub async fn wait_counters(db: &Db, what: &str, pred: impl Fn(&Counters) -> bool) -> Counters {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = archive::stats(db).await.expect("stats").counters;
        if pred(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; counters: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn topic(door: &str) -> String {
    format!("pintu/{SITE}/{door}/events")
}

/// A hand-made schema v1 event; the id is derived from (door, seq), so a re-publish is a
/// duplicate.
pub fn event(door: &str, seq: u64) -> String {
    let id = uuid::Uuid::from_u128(
        (u128::from(seq) << 32) | u128::from(door.bytes().map(u32::from).sum::<u32>()),
    );
    serde_json::json!({
        "schema": "pintu.event.v1", "id": id, "seq": seq,
        "time": format!("2026-05-04T01:{:02}:{:02}Z", seq / 60 % 60, seq % 60),
        "site": SITE, "door": door, "kind": "access.denied", "reader": "entry",
        "card": "c:0a1b2c3d", "decision": "deny", "reason": "unknown_card",
    })
    .to_string()
}

/// Connects a test publisher (blocking fixture, off the runtime's worker).
pub fn publisher(broker: &Broker) -> Client {
    blocking(|| Client::connect(broker, &ClientOptions::new()))
}

/// Publishes `seqs` of `door` with a small pause, from a thread.
pub fn publish_slowly(
    broker: &Broker,
    door: &'static str,
    seqs: std::ops::RangeInclusive<u64>,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    let publisher = publisher(broker);
    std::thread::spawn(move || {
        for seq in seqs {
            publisher.publish(&topic(door), event(door, seq), false);
            std::thread::sleep(pause);
        }
    })
}

fn ranges(stats: &archive::Stats) -> Vec<(String, i64, i64, i64)> {
    stats
        .doors
        .iter()
        .map(|d| (d.door.clone(), d.events, d.first, d.last))
        .collect()
}

/// Every archived event of `door`, through the paged query.
pub async fn door_events(db: &Db, door: &str) -> Vec<archive::ArchivedEvent> {
    let mut q = EventQuery {
        from_ms: 0,
        until_ms: i64::MAX,
        door: Some(door.into()),
        limit: 100,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = archive::events(db, &q).await.expect("events");
        out.extend(page.events);
        match page.next {
            Some(c) => q.after = Some(c),
            None => return out,
        }
    }
}

db_test!(async fn duplicates_are_stored_once_and_a_gap_is_reported_exactly(t) {
    let broker = blocking(|| Broker::start(BrokerOptions::default()));
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let p = publisher(&broker);
    // door-1: 1 2 2 3 3 6 7 (4 and 5 missing); door-2: 1 2 1.
    let sent = [
        ("door-1", 1), ("door-1", 2), ("door-1", 2), ("door-1", 3), ("door-2", 1),
        ("door-1", 3), ("door-1", 6), ("door-2", 2), ("door-1", 7), ("door-2", 1),
    ];
    for (door, seq) in sent {
        p.publish_async(&topic(door), event(door, seq), false).await;
    }
    // Not events: kept aside, acknowledged, never stored.
    p.publish_async(&topic("door-1"), "not json", false).await;
    p.publish_async(&topic("door-3"), event("door-1", 8), false).await;
    let c = wait_counters(&t.db, "12 received", |c| c.received >= 12).await;
    assert_eq!(
        c,
        Counters { received: 12, stored: 7, duplicates: 3, conflicts: 0, rejected: 2 }
    );
    let s = archive::stats(&t.db).await.expect("stats");
    assert_eq!(
        ranges(&s),
        vec![("door-1".into(), 5, 1, 7), ("door-2".into(), 2, 1, 2)]
    );
    let gaps = archive::gaps(&t.db).await.expect("gaps");
    assert_eq!(
        gaps.iter().map(|g| (g.door.as_str(), g.from, g.to)).collect::<Vec<_>>(),
        vec![("door-1", 4, 5)]
    );
    let rejected = archive::rejected(&t.db, 10).await.expect("rejected");
    assert!(rejected.iter().any(|r| r.payload == "not json"), "{rejected:?}");
    assert!(rejected.iter().any(|r| r.topic == topic("door-3")), "{rejected:?}");

    // The late events fill the gap; the archive keeps each message byte for byte.
    p.publish_async(&topic("door-1"), event("door-1", 4), false).await;
    p.publish_async(&topic("door-1"), event("door-1", 5), false).await;
    wait_counters(&t.db, "9 stored", |c| c.stored >= 9).await;
    assert!(archive::gaps(&t.db).await.expect("gaps").is_empty());
    ingest.stop().await;
    let events = door_events(&t.db, "door-1").await;
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(events[1].body, event("door-1", 2));
});

db_test!(async fn a_conflicting_door_seq_is_kept_aside_with_both_digests(t) {
    let broker = blocking(|| Broker::start(BrokerOptions::default()));
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let p = publisher(&broker);
    let original = event("door-1", 1);
    let mut other_id: serde_json::Value = serde_json::from_str(&original).expect("json");
    other_id["id"] = uuid::Uuid::from_u128(99).to_string().into();
    let mut other_content: serde_json::Value = serde_json::from_str(&original).expect("json");
    other_content["kind"] = "access.granted".into();
    for payload in [original.clone(), original.clone(), other_id.to_string(), other_content.to_string()] {
        p.publish_async(&topic("door-1"), payload, false).await;
    }
    let c = wait_counters(&t.db, "4 received", |c| c.received >= 4).await;
    assert_eq!((c.stored, c.duplicates, c.conflicts), (1, 1, 2), "{c:?}");
    let problems = archive::problems(&t.db, Some("conflict"), 10).await.expect("problems");
    assert_eq!(problems.len(), 2);
    for pr in &problems {
        assert_eq!(pr.kept_digest.as_deref(), Some(archive::digest(original.as_bytes()).as_str()));
        assert_ne!(pr.other_digest, pr.kept_digest);
        assert_eq!((pr.door.as_deref(), pr.seq), (Some("door-1"), Some(1)));
    }
    let others: Vec<String> = problems.iter().filter_map(|p| p.other_body.clone()).collect();
    assert!(others.contains(&other_id.to_string()) && others.contains(&other_content.to_string()));
    // The first one is what the archive holds.
    assert_eq!(door_events(&t.db, "door-1").await[0].body, original);
    ingest.stop().await;
});

db_test!(async fn nothing_is_acknowledged_before_it_is_committed(t) {
    let broker = blocking(|| Broker::start(BrokerOptions::default()));
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let pubacks = |client_id: &str| {
        broker.log().matches(&format!("Received PUBACK from {client_id}")).count()
    };
    // The database refuses every write to the archive.
    sqlx::query("ALTER TABLE door_events RENAME TO door_events_away")
        .execute(t.db.pool())
        .await
        .expect("rename");
    let p = publisher(&broker);
    for seq in 1..=10 {
        p.publish_async(&topic("door-1"), event("door-1", seq), false).await;
    }
    let needle = format!("Sending PUBLISH to {}", ingest.client_id);
    let deadline = Instant::now() + WAIT;
    while broker.log().matches(&needle).count() < 10 {
        assert!(Instant::now() < deadline, "the broker never sent the events");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Retried, never acknowledged.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pubacks(&ingest.client_id), 0, "{}", broker.log());
    assert_eq!(archive::stats(&t.db).await.expect("stats").counters.stored, 0);
    // The database is back: the same batch is committed, then acknowledged.
    sqlx::query("ALTER TABLE door_events_away RENAME TO door_events")
        .execute(t.db.pool())
        .await
        .expect("rename back");
    wait_counters(&t.db, "10 stored", |c| c.stored >= 10).await;
    let deadline = Instant::now() + WAIT;
    while pubacks(&ingest.client_id) < 10 {
        assert!(Instant::now() < deadline, "no PUBACKs after the commit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Down again, and the instance stops while it is: what it held stays queued on the broker
    // for its session and arrives after a restart.
    sqlx::query("ALTER TABLE door_events RENAME TO door_events_away")
        .execute(t.db.pool())
        .await
        .expect("rename");
    for seq in 11..=20 {
        p.publish_async(&topic("door-1"), event("door-1", seq), false).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ingest.stop().await;
    sqlx::query("ALTER TABLE door_events_away RENAME TO door_events")
        .execute(t.db.pool())
        .await
        .expect("rename back");
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let c = wait_counters(&t.db, "20 stored", |c| c.stored >= 20).await;
    assert_eq!((c.stored, c.conflicts), (20, 0), "{c:?}");
    assert!(archive::gaps(&t.db).await.expect("gaps").is_empty());
    ingest.stop().await;
});

db_test!(async fn an_ingest_killed_while_events_flow_misses_nothing_after_restart(t) {
    let broker = blocking(|| Broker::start(BrokerOptions::default()));
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let flow = publish_slowly(&broker, "door-1", 1..=400, Duration::from_millis(3));
    wait_counters(&t.db, "60 stored", |c| c.stored >= 60).await;
    // A crash mid-flow: whatever the broker did not get a PUBACK for, it keeps for the session.
    ingest.kill().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    wait_counters(&t.db, "200 stored", |c| c.stored >= 200).await;
    // And a clean stop mid-flow.
    ingest.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    blocking(|| flow.join()).expect("publisher");
    let c = wait_counters(&t.db, "400 stored", |c| c.stored >= 400).await;
    assert_eq!(c.conflicts, 0);
    let s = archive::stats(&t.db).await.expect("stats");
    assert_eq!(ranges(&s), vec![("door-1".into(), 400, 1, 400)]);
    assert!(archive::gaps(&t.db).await.expect("gaps").is_empty());
    // The session survived both: the broker never lost it.
    assert!(archive::problems(&t.db, Some("session_lost"), 10).await.expect("problems").is_empty());
    ingest.stop().await;
});

db_test!(async fn broker_restarts_lose_nothing(t) {
    let mut broker = blocking(|| Broker::start(BrokerOptions { persistence: true, ..BrokerOptions::default() }));
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let p = publisher(&broker);
    for seq in 1..=20 {
        p.publish_async(&topic("door-1"), event("door-1", seq), false).await;
    }
    wait_counters(&t.db, "20 stored", |c| c.stored >= 20).await;

    // The ingest is down; events queue on the broker for its session; the broker restarts
    // (saving its database on the way down).
    ingest.stop().await;
    for seq in 21..=60 {
        p.publish_async(&topic("door-1"), event("door-1", seq), false).await;
    }
    blocking(|| broker.restart());
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    wait_counters(&t.db, "60 stored", |c| c.stored >= 60).await;

    // The broker restarts under a running ingest: it reconnects and carries on.
    blocking(|| broker.restart());
    ingest.wait_subscribed(&broker, 3).await;
    assert!(blocking(|| p.wait_connections(2, WAIT)), "publisher reconnects");
    for seq in 61..=100 {
        p.publish_async(&topic("door-1"), event("door-1", seq), false).await;
    }
    wait_counters(&t.db, "100 stored", |c| c.stored >= 100).await;
    let s = archive::stats(&t.db).await.expect("stats");
    assert_eq!(ranges(&s), vec![("door-1".into(), 100, 1, 100)]);
    assert!(archive::gaps(&t.db).await.expect("gaps").is_empty());
    ingest.stop().await;
});

/// A door config publishing to `broker`.
pub fn door_config(site: &Site, broker: &Broker) -> std::path::PathBuf {
    site.write_config(&format!(
        "\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\ninsecure = true\n",
        broker.port()
    ))
}

db_test!(async fn a_real_doors_events_are_archived_as_published(t) {
    let broker = blocking(|| Broker::start(BrokerOptions::default()));
    let ingest = Ingest::start(&t.db, &broker, "a").await;
    let site = Site::new();
    let config = door_config(&site, &broker);
    let door = blocking(|| Pintud::start(&config, &site.socket(), &[]));
    let mut last = 0;
    for _ in 0..5 {
        last = blocking(|| door.tap("04FFFFFFFF")).seq.expect("tap stored");
    }
    let want = i64::try_from(last).expect("seq");
    let deadline = Instant::now() + WAIT;
    loop {
        let s = archive::stats(&t.db).await.expect("stats");
        if s.doors.iter().any(|d| d.door == DOOR && d.last >= want && d.events >= want) {
            break;
        }
        assert!(Instant::now() < deadline, "the door's events never all arrived: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocking(|| door.wait_for("an empty outbox", |s| s.outbox_depth == 0));
    let mut from_door = blocking(|| door.events());
    from_door.sort_by_key(|e| e.seq);
    let upto: Vec<_> = from_door.into_iter().filter(|e| e.seq <= last).collect();
    assert_eq!(upto.len() as u64, last, "the door shows every event");
    let archived: Vec<_> = door_events(&t.db, DOOR)
        .await
        .into_iter()
        .filter(|e| e.seq <= want)
        .map(|e| e.parsed().expect("schema v1"))
        .collect();
    assert_eq!(archived, upto, "the archive holds the door's events");
    assert!(archive::gaps(&t.db).await.expect("gaps").is_empty());
    ingest.stop().await;
});

db_test!(async fn two_instances_on_one_database_archive_every_event_once(t) {
    let broker = blocking(|| Broker::start(BrokerOptions::default()));
    // A second pool on the same database: another pintu-office process.
    let other = Db::connect(&t.url, 4).await.expect("second pool");
    let a = Ingest::start(&t.db, &broker, "a").await;
    let b = Ingest::start(&other, &broker, "b").await;
    let site = Site::new();
    let config = door_config(&site, &broker);
    let door = blocking(|| Pintud::start(&config, &site.socket(), &[]));
    let flows = [
        publish_slowly(&broker, "door-2", 1..=300, Duration::from_millis(2)),
        publish_slowly(&broker, "door-3", 1..=300, Duration::from_millis(2)),
    ];
    // The real door taps while the flows run, and instance b restarts in the middle.
    let mut last = 0;
    let mut b = Some(b);
    for i in 0..20 {
        last = blocking(|| door.tap("04FFFFFFFF")).seq.expect("tap stored");
        if i == 8 {
            if let Some(b) = b.take() {
                b.stop().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = Ingest::start(&other, &broker, "b").await;
    for f in flows {
        blocking(|| f.join()).expect("publisher");
    }
    blocking(|| door.wait_for("an empty outbox", |s| s.outbox_depth == 0));
    let want = 600 + i64::try_from(last).expect("seq");
    let c = wait_counters(&t.db, "every event", |c| c.stored >= want).await;
    assert_eq!((c.stored, c.duplicates, c.conflicts, c.rejected), (want, 0, 0, 0), "{c:?}");
    let s = archive::stats(&t.db).await.expect("stats");
    let r = ranges(&s);
    assert!(r.contains(&("door-2".into(), 300, 1, 300)), "{r:?}");
    assert!(r.contains(&("door-3".into(), 300, 1, 300)), "{r:?}");
    assert!(archive::gaps(&t.db).await.expect("gaps").is_empty());
    // Both instances took a share.
    for client_id in [&a.client_id, &b.client_id] {
        let n = broker.log().matches(&format!("Sending PUBLISH to {client_id}")).count();
        assert!(n > 0, "{client_id} received nothing");
    }
    a.stop().await;
    b.stop().await;
});
