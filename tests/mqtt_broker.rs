//! The MQTT test fixtures against a real Mosquitto, and the example broker config of
//! `config/mosquitto/`: start, round trip, stop and restart (with and without persistence),
//! large messages, TLS (server CA, client certificates), and the per-door ACL (a door cannot
//! publish to another door's topics, to lists or to commands, nor read another door's commands).
//!
//! Unauthorised publishes are dropped silently with MQTT 3.1.1 (the PUBACK still comes), so the
//! ACL tests show absence with a control message: the denied messages are published first, then
//! an allowed one on the same connection; Mosquitto handles one connection's packets in order and
//! forwards to a subscriber in that order, so once the allowed one has arrived, a denied one
//! would have arrived before it. The broker's "Denied PUBLISH" log lines are checked as well.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pintu_testkit::broker::{
    publish, publish_async, try_publish, Broker, BrokerOptions, Client, ClientOptions, ClientTls,
    Message, Pki, Subscriber, TIMEOUT,
};

/// How long to wait for something that must not happen, after a positive control.
const QUIET: Duration = Duration::from_millis(300);

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn topics(msgs: &[Message]) -> Vec<&str> {
    msgs.iter().map(|m| m.topic.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// (a) the fixture
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_then_stop_refuses_and_restart_serves_again() {
    let mut broker = Broker::start(BrokerOptions::default());
    let sub = Subscriber::connect(&broker, "pintu/#", &ClientOptions::new());
    publish(
        &broker,
        "pintu/dc1/a/events",
        "hello",
        false,
        &ClientOptions::new(),
    );
    let m = sub.expect_message("the published event");
    assert_eq!(
        (m.topic.as_str(), m.text().as_str(), m.retain),
        ("pintu/dc1/a/events", "hello", false)
    );

    let before = sub.connections();
    assert_eq!(before, 1);
    broker.stop();
    assert!(!broker.is_running());
    assert!(
        sub.wait_disconnected(TIMEOUT),
        "subscriber did not notice the stop"
    );
    let err = Client::try_connect(&broker, &ClientOptions::new())
        .err()
        .expect("connecting to a stopped broker must fail");
    assert!(err.contains("refused"), "unexpected error: {err}");

    broker.restart();
    // The subscriber reconnects and re-subscribes by itself (clean session).
    assert!(
        sub.wait_connections(before + 1, TIMEOUT),
        "subscriber did not come back; last error {:?}; log:\n{}",
        sub.last_error(),
        broker.log()
    );
    publish(
        &broker,
        "pintu/dc1/a/events",
        "again",
        false,
        &ClientOptions::new(),
    );
    assert_eq!(sub.expect_message("event after restart").text(), "again");
    assert_eq!(sub.recv_timeout(QUIET), None);
}

#[tokio::test]
async fn fixture_works_from_async_tests() {
    // Starting and stopping the broker block only briefly; waits use the *_async methods so
    // the test's (current-thread) runtime keeps running.
    let mut broker = Broker::start(BrokerOptions::default());
    let opts = ClientOptions::new();
    let sub = Client::connect(&broker, &opts);
    sub.subscribe_async("pintu/#").await;
    publish_async(&broker, "pintu/dc1/a/events", "async", false, &opts).await;
    assert_eq!(
        sub.expect_message_async("async round trip").await.text(),
        "async"
    );
    broker.restart();
    assert!(sub.wait_connections_async(2, TIMEOUT).await);
    sub.publish_async("pintu/dc1/a/events", "again", false)
        .await;
    let got = sub
        .collect_until_async(|m| m.text() == "again", TIMEOUT)
        .await;
    assert_eq!(topics(&got), ["pintu/dc1/a/events"]);
}

#[test]
fn retained_message_survives_restart_with_persistence_only() {
    for persistence in [true, false] {
        let mut broker = Broker::start(BrokerOptions {
            persistence,
            ..Default::default()
        });
        let opts = ClientOptions::new();
        publish(&broker, "pintu/dc1/a/status", "online", true, &opts);
        // The retained message is in place before the stop.
        let sub = Subscriber::connect(&broker, "pintu/dc1/a/status", &opts);
        assert!(sub.expect_message("retained status").retain);
        drop(sub);

        broker.stop();
        broker.restart();
        // Positive control: a message retained after the restart always arrives, after
        // a/status's if that survived (subscribed first).
        publish(&broker, "pintu/dc1/z/control", "x", true, &opts);
        // Retained messages are sent when a SUBSCRIBE is handled, in order.
        let sub = Subscriber::connect(&broker, "pintu/dc1/a/status", &opts);
        sub.subscribe("pintu/dc1/z/control");
        let got = sub.collect_until(|m| m.topic == "pintu/dc1/z/control", TIMEOUT);
        let got = [got, sub.drain()].concat();
        if persistence {
            assert!(
                got.iter()
                    .any(|m| m.topic == "pintu/dc1/a/status" && m.retain && m.text() == "online"),
                "retained status lost with persistence: {got:?}; log:\n{}",
                broker.log()
            );
            assert!(broker.dir().join("data/mosquitto.db").exists());
        } else {
            assert_eq!(
                topics(&got),
                ["pintu/dc1/z/control"],
                "retained status survived without persistence"
            );
        }
    }
}

#[test]
fn crash_loses_what_changed_since_the_last_save() {
    let mut broker = Broker::start(BrokerOptions {
        persistence: true,
        ..Default::default()
    });
    let opts = ClientOptions::new();
    publish(&broker, "pintu/dc1/a/status", "saved", true, &opts);
    broker.save();
    publish(&broker, "pintu/dc1/a/status", "unsaved", true, &opts);
    broker.kill();
    broker.restart();
    let sub = Subscriber::connect(&broker, "pintu/dc1/a/status", &opts);
    let m = sub.expect_message("retained status after SIGKILL and restart");
    assert_eq!((m.text().as_str(), m.retain), ("saved", true));
}

#[test]
fn large_retained_message_passes_unchanged() {
    // A list of ~100,000 entries is tens of MiB; the door's default cap is 64 MiB.
    let broker = Broker::start(BrokerOptions::default());
    let size = (64 << 20) + 4096;
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    publish(
        &broker,
        "pintu/dc1/list",
        payload.clone(),
        true,
        &ClientOptions::new(),
    );
    let sub = Subscriber::connect(&broker, "pintu/dc1/list", &ClientOptions::new());
    let m = sub
        .recv_timeout(Duration::from_secs(60))
        .expect("the large retained message");
    assert!(m.retain);
    assert_eq!(m.payload.len(), payload.len());
    assert!(m.payload == payload, "payload changed in transit");
    eprintln!("64 MiB retained round trip: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// (b) TLS
// ---------------------------------------------------------------------------------------------

#[test]
fn tls_server_ca_is_verified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let other = Pki::generate(&dir.path().join("other"));
    let broker = Broker::start(BrokerOptions {
        tls: Some(pki.clone()),
        ..Default::default()
    });
    let trusted = ClientOptions::new().tls(ClientTls::trusting(&pki));

    let sub = Subscriber::connect(&broker, "pintu/#", &trusted);
    publish(&broker, "pintu/dc1/a/events", "over tls", false, &trusted);
    assert_eq!(sub.expect_message("TLS round trip").text(), "over tls");

    let err = Client::try_connect(
        &broker,
        &ClientOptions::new().tls(ClientTls::trusting(&other)),
    )
    .err()
    .expect("a client trusting another CA must not connect");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "unexpected error: {err}"
    );
    assert!(
        Client::try_connect(&broker, &ClientOptions::new()).is_err(),
        "plain MQTT to a TLS listener must fail"
    );
}

#[test]
fn tls_client_certificate_required() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let other = Pki::generate(&dir.path().join("other"));
    let broker = Broker::start(BrokerOptions {
        tls: Some(pki.clone()),
        require_certificate: true,
        ..Default::default()
    });

    let err = Client::try_connect(
        &broker,
        &ClientOptions::new().tls(ClientTls::trusting(&pki)),
    )
    .err()
    .expect("a client without a certificate must be refused");
    // TLS 1.3: the broker's alert arrives after the client's side of the handshake.
    assert!(
        err.contains("CertificateRequired") || err.contains("HandshakeFailure"),
        "unexpected error: {err}"
    );

    let stranger = other.client_cert(DOOR_A.0);
    let err = Client::try_connect(
        &broker,
        &ClientOptions::new().tls(ClientTls::trusting(&pki).with_cert(&stranger)),
    )
    .err()
    .expect("a certificate from another CA must be refused");
    assert!(err.contains("alert"), "unexpected error: {err}");

    let door = pki.client_cert(DOOR_A.0);
    let opts = ClientOptions::new().tls(ClientTls::trusting(&pki).with_cert(&door));
    let sub = Subscriber::connect(&broker, "pintu/#", &opts);
    publish(&broker, "pintu/dc1/a/events", "with cert", false, &opts);
    assert_eq!(
        sub.expect_message("mutual TLS round trip").text(),
        "with cert"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) the example ACL
// ---------------------------------------------------------------------------------------------

const DOOR_A: (&str, &str) = ("door-dc1-a", "pw-door-a");
const DOOR_B: (&str, &str) = ("door-dc1-b", "pw-door-b");
const OFFICE: (&str, &str) = ("office", "pw-office");
const ARCHIVE: (&str, &str) = ("archive", "pw-archive");
/// Test-only user that may read everything: shows what a denied publish would have reached.
const OBSERVER: (&str, &str) = ("test-observer", "pw-observer");

/// `config/mosquitto/acl` as shipped, plus the test observer.
fn example_acl() -> String {
    let acl = std::fs::read_to_string(repo_file("config/mosquitto/acl"))
        .expect("read config/mosquitto/acl");
    format!("{acl}\n# test only\nuser {}\ntopic read #\n", OBSERVER.0)
}

fn user((name, pw): (&str, &str)) -> ClientOptions {
    ClientOptions::new().user(name, pw)
}

fn acl_broker(extra: BrokerOptions) -> Broker {
    Broker::start(BrokerOptions {
        users: [DOOR_A, DOOR_B, OFFICE, ARCHIVE, OBSERVER]
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
        acl: Some(example_acl()),
        ..extra
    })
}

/// Publishes each of `denied` and then `control` on one connection as `who`, and checks that
/// the observer and `watchers` receive `control` and nothing denied, and that the broker
/// logged each denial.
fn assert_denied_then_allowed(
    broker: &Broker,
    who: &ClientOptions,
    denied: &[&str],
    control: &str,
    observer: &Subscriber,
) {
    let c = Client::connect(broker, who);
    for t in denied {
        // Acknowledged although dropped (MQTT 3.1.1).
        if let Err(e) = c.try_publish(t, format!("forged {t}"), false) {
            panic!("publish to {t}: {e}; log:\n{}", broker.log());
        }
    }
    c.publish(control, "control", false);
    let got = observer.collect_until(|m| m.topic == control, TIMEOUT);
    assert_eq!(
        topics(&got),
        [control],
        "a denied publish got through; log:\n{}",
        broker.log()
    );
    for t in denied {
        let needle = format!("'{t}'");
        assert!(
            broker.wait_log(&needle, TIMEOUT)
                && broker
                    .log()
                    .lines()
                    .any(|l| l.contains("Denied PUBLISH") && l.contains(&needle)),
            "no \"Denied PUBLISH\" for {t} in the log:\n{}",
            broker.log()
        );
    }
}

#[test]
fn acl_door_writes_only_its_own_events_and_status() {
    let broker = acl_broker(BrokerOptions::default());
    let observer = Subscriber::connect(&broker, "#", &user(OBSERVER));
    let office = Subscriber::connect(&broker, "pintu/dc1/+/events", &user(OFFICE));
    office.subscribe("pintu/dc1/+/status");
    let door_b = Subscriber::connect(&broker, "pintu/dc1/b/commands", &user(DOOR_B));
    door_b.subscribe("pintu/dc1/b/list");
    door_b.subscribe("pintu/dc1/list");

    assert_denied_then_allowed(
        &broker,
        &user(DOOR_A),
        &[
            // another door's events and status: forging what b reports
            "pintu/dc1/b/events",
            "pintu/dc1/b/status",
            // lists and commands: only the office writes them, not even for the door itself
            "pintu/dc1/list",
            "pintu/dc1/b/list",
            "pintu/dc1/a/list",
            "pintu/dc1/b/commands",
            "pintu/dc1/a/commands",
            // outside the site's topics
            "pintu/dc2/a/events",
            "other/topic",
        ],
        "pintu/dc1/a/events",
        &observer,
    );
    // The office got the door's own event; door b got none of the forged lists or commands.
    let m = office.expect_message("door a's event at the office");
    assert_eq!(
        (m.topic.as_str(), m.text().as_str()),
        ("pintu/dc1/a/events", "control")
    );
    assert_eq!(
        door_b.recv_timeout(QUIET),
        None,
        "door b received a forgery"
    );

    // Its own status, retained, reaches the office.
    publish(
        &broker,
        "pintu/dc1/a/status",
        r#"{"schema":"pintu.status.v1","state":"online"}"#,
        true,
        &user(DOOR_A),
    );
    let m = office.expect_message("door a's status at the office");
    assert_eq!(m.topic, "pintu/dc1/a/status");
    assert_eq!(office.recv_timeout(QUIET), None);
}

#[test]
fn acl_door_reads_only_its_own_list_and_commands() {
    let broker = acl_broker(BrokerOptions::default());
    // Door a asks for b's commands explicitly and for everything; Mosquitto 2.0 grants both
    // subscriptions but delivers only what a may read.
    let door_a = Subscriber::connect(&broker, "pintu/dc1/b/commands", &user(DOOR_A));
    door_a.subscribe("#");
    let door_b = Subscriber::connect(&broker, "pintu/dc1/b/commands", &user(DOOR_B));

    let office = Client::connect(&broker, &user(OFFICE));
    office.publish("pintu/dc1/b/commands", "cmd for b", false);
    office.publish("pintu/dc1/b/list", "list for b", false);
    publish(
        &broker,
        "pintu/dc1/b/events",
        "b's event",
        false,
        &user(DOOR_B),
    );
    publish(
        &broker,
        "pintu/dc1/b/status",
        "b's status",
        false,
        &user(DOOR_B),
    );
    // Allowed for a, in this order.
    office.publish("pintu/dc1/list", "site list", false);
    office.publish("pintu/dc1/a/list", "list for a", false);
    office.publish("pintu/dc1/a/commands", "cmd for a", false);

    let got = door_a.collect_until(|m| m.topic == "pintu/dc1/a/commands", TIMEOUT);
    assert_eq!(
        topics(&got),
        ["pintu/dc1/list", "pintu/dc1/a/list", "pintu/dc1/a/commands"],
        "door a read something not its own"
    );
    assert_eq!(door_a.recv_timeout(QUIET), None);
    // The office may write b's commands: b gets them.
    assert_eq!(door_b.expect_message("b's command").text(), "cmd for b");
}

#[test]
fn acl_office_cannot_forge_door_events() {
    let broker = acl_broker(BrokerOptions::default());
    let observer = Subscriber::connect(&broker, "#", &user(OBSERVER));
    assert_denied_then_allowed(
        &broker,
        &user(OFFICE),
        &["pintu/dc1/a/events", "pintu/dc1/a/status"],
        "pintu/dc1/a/commands",
        &observer,
    );
}

/// Issue 15 item 9: the archive's account reads every door's events and status and writes
/// nothing: stolen archive credentials cannot publish a list, a command or an event.
#[test]
fn acl_archive_is_read_only() {
    let broker = acl_broker(BrokerOptions::default());
    let observer = Subscriber::connect(&broker, "#", &user(OBSERVER));
    let archive = Subscriber::connect(&broker, "pintu/dc1/+/events", &user(ARCHIVE));
    archive.subscribe("pintu/dc1/+/status");
    let forger = Client::connect(&broker, &user(ARCHIVE).id("archive-forger"));
    for t in [
        "pintu/dc1/list",
        "pintu/dc1/a/list",
        "pintu/dc1/a/commands",
        "pintu/dc1/a/events",
        "pintu/dc1/a/status",
    ] {
        forger.publish(t, format!("forged {t}"), false);
    }
    publish(
        &broker,
        "pintu/dc1/a/events",
        "control",
        false,
        &user(DOOR_A),
    );
    let got = observer.collect_until(|m| m.text() == "control", TIMEOUT);
    assert_eq!(topics(&got), ["pintu/dc1/a/events"], "{got:?}");
    let m = archive.expect_message("door a's event at the archive");
    assert_eq!(
        (m.topic.as_str(), m.text().as_str()),
        ("pintu/dc1/a/events", "control")
    );
}

/// Issue 15 item 9: with the example config's `use_username_as_clientid`, credentials cannot
/// take another client's id: door a claiming door b's id does not disconnect door b. (Without
/// it, door b is kicked off and this fails.)
#[test]
fn client_ids_are_tied_to_usernames() {
    let broker = acl_broker(BrokerOptions {
        extra_config: "use_username_as_clientid true\n".into(),
        ..Default::default()
    });
    let door_b = Subscriber::connect(
        &broker,
        "pintu/dc1/b/commands",
        &user(DOOR_B).id("pintu-dc1-b"),
    );
    let _thief = Client::connect(&broker, &user(DOOR_A).id("pintu-dc1-b"));
    Client::connect(&broker, &user(OFFICE)).publish("pintu/dc1/b/commands", "still here", false);
    assert_eq!(door_b.expect_message("b's command").text(), "still here");
    assert_eq!(door_b.connections(), 1, "door b was never kicked off");
}

#[test]
fn acl_last_will_on_own_status_reaches_the_office() {
    let broker = acl_broker(BrokerOptions::default());
    let office = Subscriber::connect(&broker, "pintu/dc1/+/status", &user(OFFICE));
    let will = br#"{"schema":"pintu.status.v1","state":"offline","site":"dc1","door":"a"}"#;
    let door = Client::connect(
        &broker,
        &user(DOOR_A).will("pintu/dc1/a/status", will, true),
    );
    door.publish(
        "pintu/dc1/a/status",
        r#"{"schema":"pintu.status.v1","state":"online"}"#,
        true,
    );
    assert!(office
        .expect_message("online status")
        .text()
        .contains("online"));
    door.abort();
    let m = office.expect_message("the door's last will");
    assert_eq!(m.payload, will);
    // Retained: an office that connects later sees the door offline.
    let late = Subscriber::connect(&broker, "pintu/dc1/a/status", &user(OFFICE));
    let m = late.expect_message("retained will");
    assert!(m.retain);
    assert_eq!(m.payload, will);

    // A will on another door's status: Mosquitto 2.0 accepts the connection but drops the
    // will when it would publish it, so door a cannot mark b offline.
    Client::connect(
        &broker,
        &user(DOOR_A)
            .id("forged-will")
            .will("pintu/dc1/b/status", b"forged offline", true),
    )
    .abort();
    // The will goes out when the broker sees the connection drop; wait for that first.
    assert!(broker.wait_log("Client forged-will closed its connection", TIMEOUT));
    publish(
        &broker,
        "pintu/dc1/a/status",
        "control",
        true,
        &user(DOOR_A),
    );
    let got = office.collect_until(|m| m.text() == "control", TIMEOUT);
    assert_eq!(topics(&got), ["pintu/dc1/a/status"], "{got:?}");
}

#[test]
fn acl_with_certificate_identity_as_username() {
    // The README's variant: client certificates, CN = username, no passwords.
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    let broker = Broker::start(BrokerOptions {
        tls: Some(pki.clone()),
        require_certificate: true,
        use_identity_as_username: true,
        acl: Some(example_acl()),
        ..Default::default()
    });
    let as_cert = |name: &str| {
        ClientOptions::new().tls(ClientTls::trusting(&pki).with_cert(&pki.client_cert(name)))
    };
    let observer = Subscriber::connect(&broker, "#", &as_cert(OBSERVER.0));
    assert_denied_then_allowed(
        &broker,
        &as_cert(DOOR_A.0),
        &[
            "pintu/dc1/b/events",
            "pintu/dc1/list",
            "pintu/dc1/b/commands",
        ],
        "pintu/dc1/a/events",
        &observer,
    );
    // A certificate whose CN names no ACL user connects but may use no topic.
    let intruder = Client::connect(&broker, &as_cert("intruder"));
    intruder.publish("pintu/dc1/a/events", "forged", false);
    publish(
        &broker,
        "pintu/dc1/a/events",
        "control",
        false,
        &as_cert(DOOR_A.0),
    );
    let got = observer.collect_until(|m| m.text() == "control", TIMEOUT);
    assert_eq!(topics(&got), ["pintu/dc1/a/events"], "{got:?}");
    assert!(broker
        .log()
        .lines()
        .any(|l| l.contains("Denied PUBLISH") && l.contains("'pintu/dc1/a/events'")));
}

// ---------------------------------------------------------------------------------------------
// the example mosquitto.conf
// ---------------------------------------------------------------------------------------------

#[test]
fn example_mosquitto_conf_runs_with_tls_passwords_and_acl() {
    let text = std::fs::read_to_string(repo_file("config/mosquitto/mosquitto.conf"))
        .expect("read config/mosquitto/mosquitto.conf");
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&dir.path().join("pki"));
    // Point the example's paths at the test's files; keep every other line as shipped.
    let mut conf = String::new();
    if nix::unistd::geteuid().is_root() {
        conf.push_str("user root\n");
    }
    for line in text.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        let line = match key {
            "listener" => "listener {port} 127.0.0.1".to_string(),
            "cafile" => format!("cafile {}", pki.ca_cert.display()),
            "certfile" => format!("certfile {}", pki.server_cert.display()),
            "keyfile" => format!("keyfile {}", pki.server_key.display()),
            "password_file" => "password_file {dir}/passwd".into(),
            "acl_file" => "acl_file {dir}/acl".into(),
            "persistence_location" => "persistence_location {dir}/data/".into(),
            "log_dest" => "log_dest stderr".into(),
            "pid_file" | "user" => continue,
            _ => line.to_string(),
        };
        conf.push_str(&line);
        conf.push('\n');
    }
    let mut broker = acl_broker(BrokerOptions {
        config: Some(conf),
        ..Default::default()
    });
    let trusted = ClientTls::trusting(&pki);
    let office = Subscriber::connect(
        &broker,
        "pintu/dc1/+/events",
        &user(OFFICE).tls(trusted.clone()),
    );
    publish(
        &broker,
        "pintu/dc1/a/events",
        "from the example config",
        false,
        &user(DOOR_A).tls(trusted.clone()),
    );
    assert_eq!(
        office.expect_message("event via the example config").text(),
        "from the example config"
    );
    // No anonymous clients, no wrong passwords, no plain TCP.
    let err = Client::try_connect(&broker, &ClientOptions::new().tls(trusted.clone()))
        .err()
        .expect("anonymous client must be refused");
    assert!(err.contains("refused"), "unexpected error: {err}");
    let err = try_publish(
        &broker,
        "pintu/dc1/a/events",
        "x",
        false,
        &ClientOptions::new()
            .user(DOOR_A.0, "wrong")
            .tls(trusted.clone()),
    )
    .expect_err("a wrong password must be refused");
    assert!(err.contains("refused"), "unexpected error: {err}");
    assert!(Client::try_connect(&broker, &user(DOOR_A)).is_err());

    // Persistence is on: a retained list survives a restart.
    publish(
        &broker,
        "pintu/dc1/list",
        "signed list",
        true,
        &user(OFFICE).tls(trusted.clone()),
    );
    broker.restart();
    let door = Subscriber::connect(&broker, "pintu/dc1/list", &user(DOOR_A).tls(trusted));
    let m = door.expect_message("retained list after restart");
    assert_eq!((m.text().as_str(), m.retain), ("signed list", true));
}
