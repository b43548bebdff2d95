//! pintud's MQTT link against a real Mosquitto (started per test on a free loopback port):
//! ordered at-least-once event delivery through broker outages and daemon kills, the retained
//! status and last will, lists and signed commands over MQTT, TLS with client certificates and
//! the outbox alarms.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pintu::core::command::{self, Action, CommandPayload};
use pintu::core::list::Role;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{Pintud, Site, TinyDisk, DOOR, SITE};
use pintu_testkit::broker::{
    Broker, BrokerOptions, Client, ClientOptions, ClientTls, Message, Pki,
};

const WAIT: Duration = Duration::from_secs(20);
const STAFF: &str = "04A1B2C3D4";
const ESCORT: &str = "04E5E5E5E5";
const UNKNOWN: &str = "04FFFFFFFF";

pub(crate) fn topic(leaf: &str) -> String {
    format!("pintu/{SITE}/{DOOR}/{leaf}")
}

pub(crate) fn mqtt_section(broker: &Broker, extra: &str) -> String {
    // Test brokers listen on loopback in plain TCP unless the test adds [mqtt.tls].
    let insecure = if extra.contains("[mqtt.tls]") {
        ""
    } else {
        "insecure = true\n"
    };
    format!(
        r#"
[mqtt]
host = "127.0.0.1"
port = {}
reconnect_min = "200ms"
reconnect_max = "1s"
heartbeat = "5s"
{insecure}{extra}"#,
        broker.port()
    )
}

fn start_door(site: &Site, broker: &Broker, extra: &str) -> Pintud {
    let config = site.write_config(&mqtt_section(broker, extra));
    Pintud::start(&config, &site.socket(), &[])
}

fn pid(door: &Pintud) -> Pid {
    Pid::from_raw(door.child.id() as i32)
}

fn subscriber(broker: &Broker, filter: &str) -> Client {
    let c = Client::connect(broker, &ClientOptions::new());
    c.subscribe(filter);
    c
}

fn events_in(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.topic == topic("events"))
        .map(Message::json)
        .collect()
}

fn seq(event: &Value) -> u64 {
    event["seq"].as_u64().expect("seq is a number")
}

/// Receives events until one with `seq >= upto` arrived; returns all received events.
pub(crate) fn events_until_seq(client: &Client, upto: u64) -> Vec<Value> {
    let got = client.collect_until(
        |m| m.topic == topic("events") && seq(&m.json()) >= upto,
        WAIT,
    );
    events_in(&got)
}

/// De-duplicates by seq (what the office does) and checks the first deliveries come in seq order
/// and cover exactly `expected`.
pub(crate) fn assert_exactly_once_in_order(received: &[Value], expected: &[u64]) {
    let mut seen = HashSet::new();
    let mut firsts = Vec::new();
    for e in received {
        let s = seq(e);
        if seen.insert(s) {
            firsts.push(s);
        }
    }
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "events out of order: {firsts:?}"
    );
    let want: Vec<u64> = expected.to_vec();
    let got: Vec<u64> = firsts
        .iter()
        .copied()
        .filter(|s| *s >= expected[0])
        .collect();
    assert_eq!(got, want, "every event exactly once by seq");
}

fn list_with(site: &Site, version: u64) -> Vec<u8> {
    let mut escort = site.entry(
        ESCORT,
        "h-escort",
        "2020-01-01T00:00:00Z",
        "2099-01-01T00:00:00Z",
    );
    escort.role = Role::Escort;
    site.sign(&site.payload(
        version,
        vec![
            site.entry(
                STAFF,
                "h-staff",
                "2020-01-01T00:00:00Z",
                "2099-01-01T00:00:00Z",
            ),
            escort,
        ],
    ))
}

fn command_payload(action: Action) -> CommandPayload {
    let now = Timestamp::now();
    CommandPayload {
        format: command::COMMAND_PAYLOAD_FORMAT,
        site: SITE.into(),
        doors: vec![DOOR.into()],
        id: Uuid::new_v4(),
        issued_at: now,
        expires_at: now + jiff::SignedDuration::from_secs(120),
        operator: "ani".into(),
        command: action,
    }
}

fn signed(site: &Site, payload: &CommandPayload) -> Vec<u8> {
    command::sign(payload, &site.keys[..1])
}

#[test]
fn events_arrive_in_order_with_the_schema_and_leave_the_outbox() {
    let broker = Broker::start(BrokerOptions::default());
    let sub = subscriber(&broker, &topic("events"));
    let site = Site::new();
    let door = start_door(&site, &broker, "");
    let mut last = 0;
    for _ in 0..5 {
        last = door.tap(UNKNOWN).seq.expect("tap event stored");
    }
    let events = events_until_seq(&sub, last);
    assert_exactly_once_in_order(&events, &(1..=last).collect::<Vec<_>>());
    assert_eq!(events[0]["kind"], "daemon.started");
    let ids: HashSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    for e in &events {
        assert_eq!(e["schema"], "pintu.event.v1");
        assert_eq!(e["site"], SITE);
        assert_eq!(e["door"], DOOR);
        assert!(e["time"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok()));
    }
    let denied: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "access.denied")
        .collect();
    assert_eq!(denied.len(), 5);
    for e in denied {
        assert_eq!(e["reader"], "entry");
        assert_eq!(e["decision"], "deny");
        assert_eq!(e["reason"], "no_list");
        assert!(e["card"].as_str().is_some_and(|c| c.starts_with("c:")));
        assert!(!e.to_string().contains(UNKNOWN), "no raw UID on the wire");
    }
    // Delivered events leave the outbox; `pintuctl events` still shows them (journal).
    door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    assert!(door.events().iter().any(|e| e.seq == last));
}

/// Broker down, taps, broker back (without persistence): every event exactly once, in order.
fn outage_and_recovery(persistence: bool) {
    let mut broker = Broker::start(BrokerOptions {
        persistence,
        ..BrokerOptions::default()
    });
    let sub = subscriber(&broker, &topic("events"));
    let site = Site::new();
    let door = start_door(&site, &broker, "");
    let first = door.tap(UNKNOWN).seq.expect("seq");
    let mut received = events_until_seq(&sub, first);

    broker.stop();
    let mut seqs = Vec::new();
    for _ in 0..20 {
        // Each tap is acknowledged: its event is durable in the outbox while the broker is down.
        seqs.push(door.tap(UNKNOWN).seq.expect("seq"));
    }
    let depth = door.status().outbox_depth;
    assert!(depth >= 20, "events wait in the outbox: depth {depth}");
    // Hold pintud until the subscriber is back, so the test sees what pintud republishes.
    kill(pid(&door), Signal::SIGSTOP).expect("SIGSTOP");
    let n = sub.connections();
    broker.restart();
    assert!(sub.wait_connections(n + 1, WAIT), "subscriber reconnects");
    kill(pid(&door), Signal::SIGCONT).expect("SIGCONT");
    let last = *seqs.last().expect("taps");
    received.extend(events_until_seq(&sub, last));
    assert_exactly_once_in_order(&received, &(1..=last).collect::<Vec<_>>());
    door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
}

#[test]
fn broker_outage_without_persistence_loses_no_event() {
    outage_and_recovery(false);
}

#[test]
fn broker_outage_with_persistence_loses_no_event() {
    outage_and_recovery(true);
}

#[test]
fn events_pending_at_sigkill_are_delivered_after_restart() {
    let mut broker = Broker::start(BrokerOptions::default());
    let site = Site::new();
    let door = start_door(&site, &broker, "");
    broker.stop();
    let mut seqs = Vec::new();
    for _ in 0..10 {
        seqs.push(door.tap(UNKNOWN).seq.expect("seq"));
    }
    kill(pid(&door), Signal::SIGKILL).expect("SIGKILL");
    drop(door);
    broker.restart();
    let sub = subscriber(&broker, &topic("events"));
    let door = start_door(&site, &broker, "");
    let last = *seqs.last().expect("taps");
    let events = events_until_seq(&sub, last);
    assert_exactly_once_in_order(&events, &(seqs[0]..=last).collect::<Vec<_>>());
    // And the new run continues the numbering.
    let next = door.tap(UNKNOWN).seq.expect("seq");
    assert!(next > last);
}

#[test]
fn last_will_says_offline_when_killed_and_status_is_retained() {
    let broker = Broker::start(BrokerOptions::default());
    let site = Site::new();
    let status = subscriber(&broker, &topic("status"));
    let door = start_door(&site, &broker, "");
    let online = status.collect_until(|m| m.json()["state"] == "online", WAIT);
    let msg = online.last().expect("online status").json();
    assert_eq!(msg["schema"], "pintu.status.v1");
    assert_eq!(msg["site"], SITE);
    assert_eq!(msg["door"], DOOR);
    assert_eq!(msg["lock"], "secured");
    assert_eq!(msg["contact"], "unknown");
    assert_eq!(msg["lockdown"], Value::Null);
    assert_eq!(msg["list"], Value::Null);
    assert!(msg["outbox"]["depth"].is_u64());
    assert_eq!(msg["readers"][0]["name"], "entry");

    kill(pid(&door), Signal::SIGKILL).expect("SIGKILL");
    drop(door);
    let will = status.collect_until(|m| m.json()["state"] == "offline", WAIT);
    assert_eq!(will.last().expect("will").json()["door"], DOOR);
    // A late subscriber gets the retained offline status.
    let late = subscriber(&broker, &topic("status"));
    let retained = late.expect_message("retained status");
    assert!(retained.retain);
    assert_eq!(retained.json()["state"], "offline");

    // After a restart the retained status is online again.
    let door = start_door(&site, &broker, "");
    status.collect_until(|m| m.json()["state"] == "online", WAIT);
    let later = subscriber(&broker, &topic("status"));
    let retained = later.expect_message("retained status");
    assert!(retained.retain);
    assert_eq!(retained.json()["state"], "online");
    // A clean stop publishes offline too (and the broker drops the will).
    assert_eq!(door.stop(), Some(0));
    status.collect_until(|m| m.json()["state"] == "offline", WAIT);
}

#[test]
fn lists_over_mqtt_are_verified_like_the_file_drop() {
    let broker = Broker::start(BrokerOptions::default());
    let office = Client::connect(&broker, &ClientOptions::new());
    let events = subscriber(&broker, &topic("events"));
    let site = Site::new();
    // Retained before the door is even up: applied at connect.
    office.publish(&format!("pintu/{SITE}/list"), list_with(&site, 1), true);
    let door = start_door(&site, &broker, "");
    door.wait_for("list v1 from the site topic", |s| {
        s.list.as_ref().is_some_and(|l| l.version == 1)
    });
    assert_eq!(door.tap(STAFF).decision, "grant");

    // A newer list on the door's own topic wins.
    office.publish(&topic("list"), list_with(&site, 2), true);
    door.wait_for("list v2 from the door topic", |s| {
        s.list.as_ref().is_some_and(|l| l.version == 2)
    });

    // Tampered: one byte of the payload changed after signing.
    let mut tampered = list_with(&site, 3);
    let at = tampered
        .windows(10)
        .position(|w| w == b"\"payload\":")
        .expect("payload field")
        + 14;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    office.publish(&topic("list"), tampered, true);
    let got = events.collect_until(
        |m| m.topic == topic("events") && m.json()["kind"] == "list.rejected",
        WAIT,
    );
    let rejected = got.last().expect("rejection").json();
    assert!(
        ["bad_signature", "malformed"].contains(&rejected["reason"].as_str().unwrap_or("")),
        "{rejected}"
    );
    // Rollback: version 1 again on the door topic.
    office.publish(&topic("list"), list_with(&site, 1), true);
    let got = events.collect_until(
        |m| m.json()["kind"] == "list.rejected" && m.json()["reason"] == "rollback",
        WAIT,
    );
    assert!(!got.is_empty());
    // Someone else's key.
    let foreign = crate::common::sign_with(
        &site.payload(9, vec![]),
        &[(
            "k1".into(),
            ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
        )],
    );
    office.publish(&topic("list"), foreign, true);
    events.collect_until(
        |m| m.json()["kind"] == "list.rejected" && m.json()["reason"] == "bad_signature",
        WAIT,
    );
    let s = door.status();
    assert_eq!(s.list.as_ref().map(|l| l.version), Some(2), "v2 kept");
    assert_eq!(door.tap(STAFF).decision, "grant");
}

#[test]
fn a_100k_entry_list_arrives_over_mqtt() {
    let broker = Broker::start(BrokerOptions::default());
    let office = Client::connect(&broker, &ClientOptions::new());
    let site = Site::new();
    let mut entries = Vec::with_capacity(100_000);
    for i in 0..100_000u32 {
        let uid = format!("04{i:08X}");
        entries.push(site.entry(
            &uid,
            &format!("h{i}"),
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        ));
    }
    let bytes = site.sign(&site.payload(5, entries));
    assert!(bytes.len() > 10 << 20, "a big list: {} bytes", bytes.len());
    office.publish(&topic("list"), bytes, true);
    let config = site
        .config_text(&mqtt_section(&broker, ""))
        .replace("max_size = \"1MiB\"", "max_size = \"64MiB\"");
    let path = site.path("pintu.toml");
    std::fs::write(&path, config).expect("config");
    let door = Pintud::start(&path, &site.socket(), &[]);
    // 33 MB verified and applied by a debug build: seconds, more on a busy machine. The limit
    // only catches a hang (the speed target is in benches/apply.rs).
    let s = door.wait_for_within("the 100k list", Duration::from_secs(90), |s| {
        s.list.as_ref().is_some_and(|l| l.version == 5)
    });
    assert_eq!(s.list.expect("list").entries, 100_000);
    assert_eq!(door.tap("0400001234").decision, "grant");
}

#[test]
fn signed_commands_fire_once_and_bad_ones_are_rejected() {
    let broker = Broker::start(BrokerOptions::default());
    let office = Client::connect(&broker, &ClientOptions::new());
    let events = subscriber(&broker, &topic("events"));
    let site = Site::new();
    office.publish(&topic("list"), list_with(&site, 1), true);
    let door = start_door(&site, &broker, "");
    door.wait_for("a list", |s| s.list.is_some());
    let kind_is = |k: &'static str| move |m: &Message| m.json()["kind"] == k;

    // unlock_once: accepted, then the lock is released.
    let unlock = signed(
        &site,
        &command_payload(Action::UnlockOnce {
            reason: "vendor visit".into(),
        }),
    );
    office.publish(&topic("commands"), unlock.clone(), false);
    let got = events.collect_until(kind_is("lock.released"), WAIT);
    let accepted: Vec<Value> = events_in(&got)
        .into_iter()
        .filter(|e| e["kind"] == "command.accepted")
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["reason"], "unlock_once");
    assert!(accepted[0]["detail"].as_str().unwrap_or("").contains("ani"));

    // The same bytes again: replayed, nothing fires.
    office.publish(&topic("commands"), unlock.clone(), false);
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(got.last().expect("rejection").json()["reason"], "replayed");

    // Unsigned, mis-signed, expired.
    let mut p = command_payload(Action::UnlockOnce { reason: "x".into() });
    office.publish(&topic("commands"), command::sign(&p, &[]), false);
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(
        got.last().expect("rejection").json()["reason"],
        "missing_signature"
    );
    let forged = command::sign(
        &p,
        &[(
            "k1".into(),
            ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
        )],
    );
    office.publish(&topic("commands"), forged, false);
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(
        got.last().expect("rejection").json()["reason"],
        "bad_signature"
    );
    p.id = Uuid::new_v4();
    p.issued_at = Timestamp::now() - jiff::SignedDuration::from_secs(300);
    p.expires_at = Timestamp::now() - jiff::SignedDuration::from_secs(60);
    office.publish(&topic("commands"), signed(&site, &p), false);
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(got.last().expect("rejection").json()["reason"], "expired");
    office.publish(&topic("commands"), b"{not json".to_vec(), false);
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(got.last().expect("rejection").json()["reason"], "malformed");

    // Lockdown: only staff; the escort card is denied with reason lockdown.
    let lockdown = signed(
        &site,
        &command_payload(Action::Lockdown {
            allow_role: Role::Staff,
        }),
    );
    office.publish(&topic("commands"), lockdown, false);
    events.collect_until(kind_is("lockdown.started"), WAIT);
    let tap = door.tap(ESCORT);
    assert_eq!(
        (tap.decision.as_str(), tap.reason.as_deref()),
        ("deny", Some("lockdown"))
    );
    assert_eq!(door.tap(STAFF).decision, "grant");
    assert_eq!(door.status().lockdown.as_deref(), Some("staff"));
    office.publish(
        &topic("commands"),
        signed(&site, &command_payload(Action::ReleaseLockdown {})),
        false,
    );
    events.collect_until(kind_is("lockdown.ended"), WAIT);
    assert_eq!(door.tap(ESCORT).decision, "grant");
}

#[test]
fn a_retained_command_does_not_fire_again_after_restart() {
    let broker = Broker::start(BrokerOptions::default());
    let office = Client::connect(&broker, &ClientOptions::new());
    let events = subscriber(&broker, &topic("events"));
    let site = Site::new();
    office.publish(
        &topic("commands"),
        signed(
            &site,
            &command_payload(Action::UnlockOnce {
                reason: "retained by mistake".into(),
            }),
        ),
        true,
    );
    let door = start_door(&site, &broker, "");
    let got = events.collect_until(|m| m.json()["kind"] == "lock.released", WAIT);
    assert_eq!(
        events_in(&got)
            .iter()
            .filter(|e| e["kind"] == "command.accepted")
            .count(),
        1
    );
    assert_eq!(door.stop(), Some(0));
    let door = start_door(&site, &broker, "");
    let got = events.collect_until(|m| m.json()["kind"] == "command.rejected", WAIT);
    let replayed = got.last().expect("rejection").json();
    assert_eq!(replayed["reason"], "replayed");
    // Nothing was released in the second run.
    let since_restart: Vec<Value> = events_in(&got);
    assert!(
        !since_restart.iter().any(|e| e["kind"] == "lock.released"),
        "{since_restart:?}"
    );
    assert!(
        door.events()
            .iter()
            .filter(|e| e.kind == pintu::core::event::EventKind::LockReleased)
            .count()
            == 1
    );
}

#[test]
fn tls_with_a_client_certificate() {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(pki_dir.path());
    let broker = Broker::start(BrokerOptions {
        tls: Some(pki.clone()),
        require_certificate: true,
        ..BrokerOptions::default()
    });
    let office_cert = pki.client_cert("office");
    let sub = Client::connect(
        &broker,
        &ClientOptions::new().tls(ClientTls::trusting(&pki).with_cert(&office_cert)),
    );
    sub.subscribe(&topic("events"));
    let site = Site::new();
    let door_cert = pki.client_cert("door-1");
    let files = site.path("tls");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(files.join("ca.pem"), pki.ca_pem()).expect("ca");
    std::fs::write(files.join("door.pem"), door_cert.cert_pem()).expect("cert");
    std::fs::write(files.join("door.key"), door_cert.key_pem()).expect("key");
    let door = start_door(
        &site,
        &broker,
        "[mqtt.tls]\nca_file = \"tls/ca.pem\"\nclient_cert_file = \"tls/door.pem\"\nclient_key_file = \"tls/door.key\"\n",
    );
    let s = door.tap(UNKNOWN).seq.expect("seq");
    let events = events_until_seq(&sub, s);
    assert!(events.iter().any(|e| seq(e) == s));
    door.wait_for("an empty outbox", |st| st.outbox_depth == 0);
    drop(door);

    // Without the client certificate the broker refuses the door: events stay in the outbox.
    let site = Site::new();
    std::fs::create_dir_all(site.path("tls")).expect("dir");
    std::fs::write(site.path("tls/ca.pem"), pki.ca_pem()).expect("ca");
    let door = start_door(&site, &broker, "[mqtt.tls]\nca_file = \"tls/ca.pem\"\n");
    door.tap(UNKNOWN);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        door.status().outbox_depth >= 2,
        "nothing delivered without a certificate"
    );
}

#[test]
fn outbox_alarms_at_the_thresholds_and_clears() {
    let mut broker = Broker::start(BrokerOptions::default());
    let site = Site::new();
    let config = site.write_config(&mqtt_section(&broker, ""));
    // Thresholds in [store]: rewrite the config with small ones.
    let text = std::fs::read_to_string(&config).expect("config").replace(
        "cache_size = \"4MiB\"",
        "cache_size = \"4MiB\"\noutbox_warning = 5\noutbox_critical = 10",
    );
    std::fs::write(&config, text).expect("config");
    let door = Pintud::start(&config, &site.socket(), &[]);
    door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    broker.stop();
    for _ in 0..12 {
        door.tap(UNKNOWN);
    }
    let kinds: Vec<(String, Option<String>)> = door
        .events()
        .iter()
        .filter(|e| e.kind.as_str().starts_with("outbox."))
        .map(|e| (e.kind.as_str().to_string(), e.reason.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("outbox.alarm".to_string(), Some("warning".to_string())),
            ("outbox.alarm".to_string(), Some("critical".to_string())),
        ]
    );
    broker.restart();
    door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    assert!(door
        .events()
        .iter()
        .any(|e| e.kind.as_str() == "outbox.alarm.cleared"));
}

#[test]
fn a_command_made_by_pintuctl_is_carried_out() {
    use base64::Engine as _;
    let broker = Broker::start(BrokerOptions::default());
    let office = Client::connect(&broker, &ClientOptions::new());
    let events = subscriber(&broker, &topic("events"));
    let site = Site::new();
    let key_file = site.path("k1.key");
    std::fs::write(
        &key_file,
        format!(
            "key_id = \"k1\"\nsecret_key = \"{}\"\n",
            base64::engine::general_purpose::STANDARD.encode(site.keys[0].1.to_bytes())
        ),
    )
    .expect("key file");
    let status = subscriber(&broker, &topic("status"));
    let _door = start_door(&site, &broker, "");
    // Online status is published after the subscriptions: the door now hears its commands.
    status.collect_until(|m| m.json()["state"] == "online", WAIT);
    let out = site.path("cmd.json");
    let made = crate::common::pintuctl(&[
        "command",
        "lockdown",
        "--allow-role",
        "staff",
        "--site",
        SITE,
        "--door",
        "*",
        "--operator",
        "ani",
        "--key",
        key_file.to_str().expect("utf8 path"),
        "--out",
        out.to_str().expect("utf8 path"),
    ]);
    assert!(
        made.status.success(),
        "{}",
        crate::common::text(&made.stderr)
    );
    office.publish(&topic("commands"), std::fs::read(&out).expect("cmd"), false);
    let got = events.collect_until(|m| m.json()["kind"] == "lockdown.started", WAIT);
    let accepted = events_in(&got)
        .into_iter()
        .find(|e| e["kind"] == "command.accepted")
        .expect("accepted");
    assert_eq!(accepted["reason"], "lockdown");
    // Missing operator: a clear error, nothing written.
    let bad = crate::common::pintuctl(&[
        "command",
        "release-lockdown",
        "--site",
        SITE,
        "--door",
        DOOR,
        "--key",
        key_file.to_str().expect("utf8 path"),
    ]);
    assert!(!bad.status.success());
    assert!(crate::common::text(&bad.stderr).contains("--operator"));
}

/// The disk under the state directory fills up: taps are still decided with the lock driven, but
/// a tap whose event cannot be stored is answered with an error, and pintud stops with the lock
/// secured (exit code 1) for systemd to restart it. Events stored before stay; after space is
/// freed the door works again.
#[test]
fn a_full_disk_stops_the_door_safely_and_loses_no_stored_event() {
    let Some(disk) = TinyDisk::mount("8m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let site = Site::new();
    let state = disk.path().join("state");
    let text = site
        .config_text("")
        .replace("state_dir = \"state\"", &format!("state_dir = {state:?}"));
    let config = site.path("pintu.toml");
    std::fs::write(&config, text).expect("config");
    let door = Pintud::start(&config, &site.socket(), &[]);
    let stored = door.tap(UNKNOWN).seq.expect("stored before the disk fills");
    let filler = disk.fill();
    let mut refused = None;
    for _ in 0..500 {
        match pintu::door::control::request(
            &site.socket(),
            &pintu::door::control::Request::Tap {
                uid: UNKNOWN.into(),
                reader: None,
            },
            Duration::from_secs(10),
        ) {
            Ok(pintu::door::control::Reply::Tap(_)) => continue,
            Ok(pintu::door::control::Reply::Error { message }) => {
                refused = Some(message);
                break;
            }
            // The daemon may already be stopping.
            Ok(other) => panic!("unexpected reply {other:?}"),
            Err(_) => break,
        }
    }
    let message = refused.expect("a tap is refused once the disk is full");
    assert!(
        message.contains("not durable") || message.contains("could not be stored"),
        "{message}"
    );
    // pintud stops by itself, the lock secured, with a failure exit for systemd.
    let mut door = door;
    let deadline = std::time::Instant::now() + WAIT;
    let code = loop {
        if let Some(status) = door.child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(std::time::Instant::now() < deadline, "pintud did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(1), "log:\n{}", door.log_text());
    let log = door.log_text();
    assert!(log.contains("the store cannot record events"), "{log}");
    assert!(log.contains("lock secured"), "{log}");
    drop(door);

    // Space freed: the door starts again, and what was stored is still there.
    std::fs::remove_file(filler).expect("free space");
    let door = Pintud::start(&config, &site.socket(), &[]);
    assert!(door.events().iter().any(|e| e.seq == stored));
    let after = door.tap(UNKNOWN).seq.expect("stored again");
    assert!(after > stored);
}

/// Issue 15 item 5: commands may have their own keys (`[[trust.command_keys]]`), so the list keys
/// stay offline. With them set, a list key alone no longer signs an `unlock_once`, a command key
/// does, and a command key alone cannot sign a floor reset (`reset_threshold_not_met`): that
/// needs the list keys.
#[test]
fn command_keys_sign_commands_and_list_keys_sign_resets() {
    use base64::Engine as _;
    let broker = Broker::start(BrokerOptions::default());
    let office = Client::connect(&broker, &ClientOptions::new());
    let events = subscriber(&broker, &topic("events"));
    let status = subscriber(&broker, &topic("status"));
    let site = Site::new();
    let ops = format!(
        "\n[[trust.command_keys]]\nid = \"ops\"\npublic_key = \"{}\"\n",
        base64::engine::general_purpose::STANDARD.encode(site.keys[1].1.verifying_key().to_bytes())
    );
    let text = site.config_text(&mqtt_section(&broker, "")).replacen(
        "\n[list]\n",
        &format!("{ops}\n[list]\n"),
        1,
    );
    let config = site.path("pintu.toml");
    std::fs::write(&config, text).expect("config");
    let _door = Pintud::start(&config, &site.socket(), &[]);
    status.collect_until(|m| m.json()["state"] == "online", WAIT);
    let kind_is = |k: &'static str| move |m: &Message| m.json()["kind"] == k;
    let ops_key = [("ops".to_string(), site.keys[1].1.clone())];
    let unlock = command_payload(Action::UnlockOnce {
        reason: "vendor".into(),
    });

    // The list key k1 alone: not a command key.
    office.publish(
        &topic("commands"),
        command::sign(&unlock, &site.keys[..1]),
        false,
    );
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(
        got.last().expect("rejection").json()["reason"],
        "threshold_not_met"
    );
    // The command key: carried out.
    office.publish(&topic("commands"), command::sign(&unlock, &ops_key), false);
    events.collect_until(kind_is("lock.released"), WAIT);
    // A reset by the command key alone: refused; by the list key: accepted.
    let reset = command_payload(Action::ResetListFloor { version: 0 });
    office.publish(&topic("commands"), command::sign(&reset, &ops_key), false);
    let got = events.collect_until(kind_is("command.rejected"), WAIT);
    assert_eq!(
        got.last().expect("rejection").json()["reason"],
        "reset_threshold_not_met"
    );
    office.publish(
        &topic("commands"),
        command::sign(&reset, &site.keys[..1]),
        false,
    );
    let got = events.collect_until(kind_is("command.accepted"), WAIT);
    assert_eq!(
        got.last().expect("accepted").json()["reason"],
        "reset_list_floor"
    );
}
