//! Issue 15 items 1, 9 and 10 against a real Mosquitto and a real pintud: an event that cannot
//! be delivered is set aside and delivery goes on (a `door.forced_open` still reaches the office);
//! a broker that refuses the door's events (ACL) does not make them vanish; plain TCP is announced.

use std::time::Duration;

use pintu::core::event::{EventDraft, EventKind};
use pintu::door::control::Request;
use pintu::door::hw::DoorInput;
use serde_json::Value;

use crate::common::{Pintud, Site, DOOR, SITE};
use crate::mqtt::{mqtt_section, topic};
use pintu_testkit::broker::{Broker, BrokerOptions, Client, ClientOptions, Message};

const WAIT: Duration = Duration::from_secs(30);

fn events(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.topic == topic("events"))
        .map(Message::json)
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["kind"].as_str()).collect()
}

fn input(door: &Pintud, input: DoorInput) {
    assert!(matches!(
        door.request(&Request::Input { input }),
        pintu::door::control::Reply::Input { .. }
    ));
}

/// Appends events straight to the door's store (as if recorded before a restart), durably.
fn append_to_store(site: &Site, drafts: Vec<EventDraft>) -> Vec<u64> {
    let (store, _) = pintu::door::store::Store::open(&site.store_options(), &site.policy())
        .expect("open the store");
    let seqs = drafts
        .into_iter()
        .map(|d| store.append(d, jiff::Timestamp::now()).expect("append").seq)
        .collect();
    store.flush_blocking().expect("flush");
    seqs
}

/// Item 1 (the link half): an event too large for the broker's `max_packet_size` is set aside
/// with an alarm, kept in the store, and everything after it — a forced door included — reaches
/// the office in order. On the old code it was retried forever and nothing after it arrived.
/// (Events are bounded when written, `EVENT_MAX_BYTES`; the door's own per-event limit,
/// `LINK_EVENT_MAX_BYTES`, guards events an older pintud left in the outbox.)
#[test]
fn undeliverable_events_are_set_aside_and_a_forced_open_still_arrives() {
    let broker = Broker::start(BrokerOptions {
        max_packet_size: Some(4096),
        ..BrokerOptions::default()
    });
    let office = Client::connect(&broker, &ClientOptions::new());
    office.subscribe(&topic("events"));
    let site = Site::new();
    // A full detail of 4-byte characters: about 4.2 KB of JSON, within the door's limits.
    let over_broker = "\u{1F6AA}".repeat(1024);
    let seqs = append_to_store(
        &site,
        vec![EventDraft::new(EventKind::HardwareFault).detail(over_broker)],
    );
    let too_big_for_broker = seqs[0];

    let door = Pintud::start(
        &site.write_config(&mqtt_section(&broker, "")),
        &site.socket(),
        &[],
    );
    input(&door, DoorInput::DoorOpened);
    // The alarms are recorded when the link meets the events, so they may follow the forced door.
    let (mut forced, mut alarms) = (false, 0);
    let got = office.collect_until(
        |m| {
            if m.topic == topic("events") {
                match m.json()["kind"].as_str() {
                    Some("door.forced_open") => forced = true,
                    Some("event.set_aside") => alarms += 1,
                    _ => {}
                }
            }
            forced && alarms == 1
        },
        WAIT,
    );
    let got = events(&got);
    let seqs: Vec<u64> = got.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in seq order: {seqs:?}"
    );
    assert!(
        !seqs.contains(&too_big_for_broker),
        "the oversize event was not published: {seqs:?}"
    );
    let aside: Vec<&Value> = got
        .iter()
        .filter(|e| e["kind"] == "event.set_aside")
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "one alarm for the event set aside: {got:#?}"
    );
    assert_eq!(aside[0]["reason"], "too_large");
    let detail = aside[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("event {too_big_for_broker} (hardware.fault"))
            && detail.contains("the broker's maximum packet size of 4096"),
        "{detail}"
    );
    // Counted in status; the outbox empties; the events are kept in the store.
    let status = door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    assert_eq!(status.set_aside, 1);
    assert!(door.log_text().contains("event set aside"));
    assert_eq!(door.stop(), Some(0));
    let (store, _) =
        pintu::door::store::Store::open(&site.store_options(), &site.policy()).expect("reopen");
    assert_eq!(
        store.set_aside_seqs(10).expect("set aside"),
        [too_big_for_broker]
    );
}

const DOOR_USER: (&str, &str) = ("door", "door-secret");
const OFFICE_USER: (&str, &str) = ("office", "office-secret");

/// The door may write its status and read its lists and commands, but not write its events.
fn acl(events_allowed: bool) -> String {
    let prefix = format!("pintu/{SITE}/{DOOR}");
    let events = if events_allowed {
        format!("topic write {prefix}/events\n")
    } else {
        String::new()
    };
    format!(
        "user {}\n{events}topic write {prefix}/status\ntopic read {prefix}/list\ntopic read pintu/{SITE}/list\ntopic read {prefix}/commands\n\nuser {}\ntopic read #\n",
        DOOR_USER.0, OFFICE_USER.0
    )
}

/// Item 10: with an ACL that denies the door's events topic, Mosquitto (MQTT 5) answers
/// `not_authorized`: the events stay in the outbox, status (control socket and MQTT) and the log
/// say delivery is refused and why, the alarm is raised again on the next connection, and once
/// the ACL is fixed every event arrives, in order. On the old code (MQTT 3.1.1) the broker
/// acknowledged the denied publishes and the outbox drained to 0 with nothing delivered.
/// Item 9: plain TCP is allowed by `insecure = true` and announced by `mqtt.insecure`.
#[test]
fn events_the_broker_refuses_stay_in_the_outbox_and_the_door_says_why() {
    let mut broker = Broker::start(BrokerOptions {
        users: [DOOR_USER, OFFICE_USER]
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
        acl: Some(acl(false)),
        ..BrokerOptions::default()
    });
    let office = Client::connect(
        &broker,
        &ClientOptions::new().user(OFFICE_USER.0, OFFICE_USER.1),
    );
    office.subscribe(&format!("pintu/{SITE}/{DOOR}/#"));
    let site = Site::new();
    std::fs::write(site.path("mqtt.password"), DOOR_USER.1).expect("password");
    let door = Pintud::start(
        &site.write_config(&mqtt_section(
            &broker,
            &format!(
                "username = \"{}\"\npassword_file = \"mqtt.password\"\n",
                DOOR_USER.0
            ),
        )),
        &site.socket(),
        &[],
    );
    let mut last = 0;
    for _ in 0..3 {
        last = door.tap("04FFFFFFFF").seq.expect("tap stored");
    }
    let status = door.wait_for("delivery refused", |s| s.delivery_refused.is_some());
    assert!(
        status
            .delivery_refused
            .as_deref()
            .is_some_and(|w| w.starts_with("not_authorized")),
        "{status:?}"
    );
    // Nothing vanished: the taps are all still waiting (more refusals do not drain them).
    std::thread::sleep(Duration::from_secs(2));
    let status = door.status();
    assert!(status.outbox_depth >= last, "{status:?}");
    assert!(door
        .log_text()
        .contains("the broker refuses the door's events: not_authorized"));
    // The retained status tells the office (the status topic is allowed).
    let said = office.collect_until(
        |m| {
            m.topic == topic("status")
                && m.json()["outbox"]["delivery_refused"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("not_authorized"))
        },
        WAIT,
    );
    assert!(events(&said).is_empty(), "no event got through");
    let raised = |door: &Pintud| {
        door.events()
            .iter()
            .filter(|e| e.kind == EventKind::MqttDeliveryRefused)
            .count()
    };
    assert_eq!(
        raised(&door),
        1,
        "raised once per connection, not per retry"
    );
    assert!(door
        .events()
        .iter()
        .any(|e| e.kind == EventKind::MqttInsecure));

    // A new connection raises it again.
    broker.restart();
    let deadline = std::time::Instant::now() + WAIT;
    while raised(&door) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not raised again after a reconnect; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The ACL is fixed: everything arrives, in order, and the alarm clears.
    std::fs::write(broker.dir().join("acl"), acl(true)).expect("acl");
    broker.restart();
    let got = office.collect_until(
        |m| m.topic == topic("events") && m.json()["kind"] == "mqtt.delivery_refused.cleared",
        Duration::from_secs(90),
    );
    let got = events(&got);
    let mut firsts: Vec<u64> = Vec::new();
    for s in got.iter().filter_map(|e| e["seq"].as_u64()) {
        if !firsts.contains(&s) {
            firsts.push(s);
        }
    }
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    assert!(
        (1..=last).all(|s| firsts.contains(&s)),
        "every event refused before arrived: {firsts:?}"
    );
    assert!(kinds(&got).contains(&"mqtt.delivery_refused"));
    let status = door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    assert_eq!(status.delivery_refused, None);
}

/// A broker that refuses one message by its `message_size_limit`: Mosquitto 2.0.11 answers the
/// PUBACK with reason 0x95 (packet too large), which rumqttc 0.25 cannot parse, so the connection
/// breaks on the answer to that one event, again and again. The link publishes the suspect alone
/// on the next connection, and when that breaks too it sets the event aside (`broke_connection`);
/// the next ones, a forced door included, arrive. (Found while writing this test: without the
/// suspect logic the door reconnected forever. With the old 3.1.1 link the broker acknowledged
/// the message and dropped it: the event vanished without an alarm.)
#[test]
fn an_event_over_the_broker_message_size_limit_is_set_aside() {
    let broker = Broker::start(BrokerOptions {
        message_size_limit: Some(3000),
        ..BrokerOptions::default()
    });
    let office = Client::connect(&broker, &ClientOptions::new());
    office.subscribe(&topic("events"));
    let site = Site::new();
    let seqs = append_to_store(
        &site,
        // A full detail of 4-byte characters: about 4.2 KB, over the limit of 3000.
        vec![EventDraft::new(EventKind::HardwareFault).detail("\u{1F6AA}".repeat(1024))],
    );
    let door = Pintud::start(
        &site.write_config(&mqtt_section(&broker, "")),
        &site.socket(),
        &[],
    );
    input(&door, DoorInput::DoorOpened);
    let (mut forced, mut alarm) = (false, None);
    let got = office
        .try_collect_until(
            |m| {
                if m.topic == topic("events") {
                    let e = m.json();
                    match e["kind"].as_str() {
                        Some("door.forced_open") => forced = true,
                        Some("event.set_aside") => alarm = Some(e),
                        _ => {}
                    }
                }
                forced && alarm.is_some()
            },
            WAIT,
        )
        .unwrap_or_else(|got| panic!("got {:?}; log:\n{}", kinds(&events(&got)), door.log_text()));
    assert!(!events(&got).iter().any(|e| e["seq"] == seqs[0]));
    let alarm = alarm.unwrap_or_default();
    assert!(
        alarm["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("event {}", seqs[0]))),
        "{alarm}"
    );
    assert_eq!(alarm["reason"], "broke_connection");
}
