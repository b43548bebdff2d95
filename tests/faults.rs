//! Faults at the edges (issue 10, part 5): a real `pintud` against real components while the
//! edges fail again and again, each fault a loop with a bounded count. What each test proves:
//!
//! - **Serial reader unplugged and replugged** (a pseudo-terminal behind a `by-id` style link):
//!   after every replug a known card is granted and an unknown one denied; every unplug and replug
//!   is reported (status `readers[].state`, `reader.down` / `reader.up` events in order), and no
//!   tap is granted on the reader while it is down.
//! - **pcscd restarted** (pcscd with vsmartcard-vpcd, the virtual card of `crates/pintu-testkit/src/vcard.rs`): the
//!   card is decided correctly after every restart, and each restart is reported down, then up.
//! - **Broker flapping** (a real Mosquitto stopped and started every 1–3 s while taps go on): every
//!   tap is decided correctly whatever the link does, and afterwards every event has reached the
//!   office exactly once by `seq`, in order (the outage test's checker), and the outbox is empty.
//! - **Wall-clock jumps during a visit** (libfaketime moves `CLOCK_REALTIME` of the real process,
//!   `CLOCK_MONOTONIC` stays real, as an NTP step does): below the trusted-time floor a visitor
//!   badge fails closed (`clock_untrusted`) and the door says the clock is untrusted while escorts
//!   are still decided on the floor; back at the real time it is trusted again; past the visit's
//!   window the visitor is denied `outside_visit` and `visit.overstay` is raised; the exit record's
//!   duration is the real (monotonic) time inside, not the jump.
//! - **Wall-clock jumps during an unlock pulse**: the relay pulse is timed on the monotonic clock,
//!   so a step forward does not cut it short and a step back does not hold the door open.
//! - **A wall clock ten years ahead for a second, then back** (issue 15 item 4): the trusted-time
//!   floor rises at most `[clock] max_ahead_of_signed` past the signed list's `issued_at`, so the
//!   door is trusted again at once and grants, across a restart too, with its store; a floor a
//!   signed time pushed ahead is brought back by a signed `reset_time_floor` over MQTT, once.
//! - **A captured `unlock_once` replayed after a newer command and the clock set back two days**
//!   (issue 15 item 5): refused (windows are checked on the trusted time, ids kept until below
//!   the floor); so is an `unlock_once` for `"*"` or for over 10 minutes, and a list that expired
//!   on the trusted time.
//! - **Unknown-card flood** (hundreds of unknown cards on one serial reader, in bursts): the reader
//!   is locked out per `[flood]` and the door says so (`reader.locked_out`, then
//!   `reader.lockout.cleared`); during the lockout every unknown tap is denied `reader_locked_out`
//!   and staff still pass; a known card on another reader is granted throughout; after the lockout
//!   the reader decides normally again; every tap is an event and the outbox holds them all
//!   (gap-free `seq`, depth = every event).
//!
//! Counts: `PINTU_FAULT_CYCLES` sets every loop's count (defaults: 5 unplugs, 3 pcscd restarts,
//! 5 broker flaps, 3 clock cycles of each kind, 3 flood bursts); `PINTU_FAULT_FLOOD` the unknown
//! cards per burst (default 300, at most 900). `scripts/fault-soak` runs them longer.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use pintu::core::event::{Event, EventKind};
use pintu::core::list::{self, Entry, Role};
use pintu::core::visit::Visit;
use pintu::door::control::{Reply, Request, Status, TapOutcome};
use pintu::door::hw::LockState;

use crate::common::{Pintud, Site};
use crate::mqtt::{assert_exactly_once_in_order, events_until_seq, mqtt_section, topic};
use crate::pcsc::{self, vcard, PCSC_READER};
use crate::serial::{self, point, serial_reader, Pty};
use pintu_testkit::broker::{Broker, BrokerOptions, Client, ClientOptions};

/// Generous bound for anything the door should do in well under a second.
const WAIT: Duration = Duration::from_secs(20);
/// EM4100 cards (5 bytes). Staff.
const ALICE: &str = "1A007430FA";
const BOB: &str = "62E3086CED";
const DAVE: &str = "3C00D2E1A7";
/// Not in any list.
const STRANGER: &str = "0102030405";
/// Flood protection off, for the tests whose unknown taps are not a flood.
const NO_FLOOD: &str = "\n[flood]\nmax_failures = 0\n";

/// A loop's count: `PINTU_FAULT_CYCLES` when set, else `default`.
fn cycles(default: usize) -> usize {
    env_count("PINTU_FAULT_CYCLES", default)
}

fn env_count(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a count")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A staff entry valid for years around now.
fn staff(site: &Site, uid: &str, holder: &str) -> Entry {
    site.entry(uid, holder, "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z")
}

fn masked(site: &Site, uid: &str) -> String {
    site.card_key.hash(&uid.parse().expect("uid")).masked()
}

/// Starts pintud with `extra` config and a list of `entries` offered at start.
fn start_door(site: &Site, extra: &str, entries: Vec<Entry>) -> Pintud {
    let config = site.write_config(extra);
    let list = site.path("list.signed");
    std::fs::write(&list, site.sign(&site.payload(1, entries))).expect("write the list");
    Pintud::start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    )
}

/// A tap on a simulated reader, through the control socket.
fn tap_on(door: &Pintud, uid: &str, reader: &str) -> TapOutcome {
    match door.request(&Request::Tap {
        uid: uid.into(),
        reader: Some(reader.into()),
    }) {
        Reply::Tap(t) => t,
        other => panic!("unexpected reply to a tap on {reader}: {other:?}"),
    }
}

/// Polls `f` every 20 ms until it gives a value; panics with `what` and the log after `within`.
fn wait_until<T>(
    door: &Pintud,
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; log:\n{}",
            door.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Events of `kind` (on `reader`, if given), oldest first, among the newest 1000.
fn events_of(door: &Pintud, kind: EventKind, reader: Option<&str>) -> Vec<Event> {
    door.events()
        .into_iter()
        .filter(|e| e.kind == kind && (reader.is_none() || e.reader.as_deref() == reader))
        .collect()
}

/// Waits until there are at least `n` events of `kind` (on `reader`); returns them all.
fn wait_events(door: &Pintud, kind: EventKind, reader: Option<&str>, n: usize) -> Vec<Event> {
    wait_until(door, &format!("{n} × {}", kind.as_str()), WAIT, || {
        let got = events_of(door, kind, reader);
        (got.len() >= n).then_some(got)
    })
}

/// The reader's state in status (`up`, `down`, `unknown`).
fn reader_state(status: &Status, reader: &str) -> Option<String> {
    status
        .readers
        .iter()
        .find(|r| r.name == reader)
        .map(|r| r.state.clone())
}

/// Waits until status shows `reader` in `state`.
fn wait_reader(door: &Pintud, reader: &str, state: &str, within: Duration) -> Status {
    wait_until(
        door,
        &format!("reader {reader} {state} in status"),
        within,
        || {
            let s = door.status();
            (reader_state(&s, reader).as_deref() == Some(state)).then_some(s)
        },
    )
}

/// Walks `reader`'s history in `seq` order: `reader.down` and `reader.up` alternate, starting
/// with a down, and nothing is granted on the reader while it is down. Returns (downs, ups).
fn check_reader_history(events: &[Event], reader: &str) -> (usize, usize) {
    let (mut downs, mut ups, mut down) = (0, 0, false);
    let mut last_seq = 0;
    for e in events
        .iter()
        .filter(|e| e.reader.as_deref() == Some(reader))
    {
        assert!(e.seq > last_seq, "events out of seq order: {events:#?}");
        last_seq = e.seq;
        match e.kind {
            EventKind::ReaderDown => {
                assert!(!down, "reader.down twice without reader.up (seq {})", e.seq);
                down = true;
                downs += 1;
            }
            EventKind::ReaderUp => {
                assert!(down, "reader.up without reader.down (seq {})", e.seq);
                down = false;
                ups += 1;
            }
            EventKind::AccessGranted => {
                assert!(!down, "granted on {reader} while it was down: {e:?}")
            }
            _ => {}
        }
    }
    (downs, ups)
}

/// Every event the door has appended, by `seq`, gathered from repeated looks at its newest 1000
/// (the control socket's limit): look often enough that fewer than 1000 arrive in between.
#[derive(Default)]
struct Journal(BTreeMap<u64, Event>);

impl Journal {
    fn refresh(&mut self, door: &Pintud) {
        for e in door.events() {
            self.0.insert(e.seq, e);
        }
    }

    /// `reader`'s tap events (granted or denied).
    fn taps(&self, reader: &str) -> usize {
        self.0
            .values()
            .filter(|e| {
                e.reader.as_deref() == Some(reader)
                    && matches!(e.kind, EventKind::AccessGranted | EventKind::AccessDenied)
            })
            .count()
    }

    /// Refreshes until `reader` has `n` taps.
    fn wait_taps(&mut self, door: &Pintud, reader: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.refresh(door);
            let have = self.taps(reader);
            if have >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{reader}: {have} of {n} taps decided; log:\n{}",
                door.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count(&self, kind: EventKind, reader: &str) -> usize {
        self.0
            .values()
            .filter(|e| e.kind == kind && e.reader.as_deref() == Some(reader))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Serial reader unplugged and replugged
// ---------------------------------------------------------------------------------------------

#[test]
fn serial_reader_unplugged_and_replugged_in_a_loop() {
    let started = Instant::now();
    let k = cycles(5);
    let site = Site::new();
    let link = site.path("by-id-rdm6300");
    let mut pty = Pty::open();
    point(&link, &pty.slave);
    let reader = serial_reader("rdm", &link, "protocol = \"em4100\"\nhold = \"200ms\"");
    let door = start_door(
        &site,
        &format!("{reader}{NO_FLOOD}"),
        vec![staff(&site, ALICE, "alice")],
    );
    wait_reader(&door, "rdm", "up", WAIT);
    let (alice, stranger) = (masked(&site, ALICE), masked(&site, STRANGER));
    let mut decided = 0;
    let mut decide_both = |pty: &mut Pty| {
        pty.frame(ALICE);
        pty.frame(STRANGER);
        decided += 2;
        let t = serial::wait_taps(&door, "rdm", decided);
        let last: Vec<_> = t[decided - 2..]
            .iter()
            .map(|e| (e.card.clone(), e.decision.clone(), e.reason.clone()))
            .collect();
        assert_eq!(
            last,
            [
                (Some(alice.clone()), Some("grant".into()), None),
                (
                    Some(stranger.clone()),
                    Some("deny".into()),
                    Some("unknown_card".into())
                )
            ]
        );
    };
    for cycle in 1..=k {
        decide_both(&mut pty);
        // Unplug: the by-id link goes first (as udev removes it), then the device hangs up.
        std::fs::remove_file(&link).expect("remove the link");
        drop(pty);
        let s = wait_reader(&door, "rdm", "down", WAIT);
        let rdm = s.readers.iter().find(|r| r.name == "rdm").expect("rdm");
        assert!(
            rdm.detail
                .as_deref()
                .is_some_and(|d| d.contains("by-id-rdm6300")),
            "status says why: {rdm:?}"
        );
        wait_events(&door, EventKind::ReaderDown, Some("rdm"), cycle);
        // Replug: a new device behind the same name.
        pty = Pty::open();
        point(&link, &pty.slave);
        wait_reader(&door, "rdm", "up", WAIT);
        wait_events(&door, EventKind::ReaderUp, Some("rdm"), cycle);
    }
    decide_both(&mut pty);
    let events = door.events();
    assert_eq!(check_reader_history(&events, "rdm"), (k, k), "{events:#?}");
    eprintln!(
        "faults: serial: {k} unplug/replug cycles, {decided} taps decided, {k} reader.down + {k} reader.up [{:.1?}]",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. pcscd restarted
// ---------------------------------------------------------------------------------------------

/// Presents `uid` on the virtual reader until the door decides it, then lifts it; returns the
/// tap event. (A card placed before the door has its new PC/SC context is "already there" and
/// not a tap: present it again, as a person would.)
fn present(door: &Pintud, uid: &str, seen: &mut usize) -> Event {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let card = vcard::VirtualCard::place(uid);
        let tapped = pcsc::wait_taps(door, *seen + 1, Duration::from_secs(3));
        pcsc::lift(card);
        if let Some(taps) = tapped {
            assert_eq!(
                taps.len(),
                *seen + 1,
                "one presentation, one tap: {taps:#?}"
            );
            *seen += 1;
            return taps[*seen - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the door never decided the card; log:\n{}",
            door.log_text()
        );
    }
}

#[test]
fn pcscd_restarted_in_a_loop() {
    let started = Instant::now();
    let k = cycles(3);
    let _reader = vcard::exclusive();
    vcard::ensure_pcscd();
    let (site, list) = pcsc::site_with_list();
    let door = pcsc::pcsc_door_with(&site, &list, NO_FLOOD);
    wait_reader(&door, PCSC_READER, "up", WAIT);
    let mut seen = 0;
    let mut decide_both = |door: &Pintud| {
        let t = present(door, pcsc::ALICE, &mut seen);
        assert_eq!(
            (t.kind, t.holder.as_deref()),
            (EventKind::AccessGranted, Some("alice"))
        );
        let t = present(door, pcsc::UNKNOWN, &mut seen);
        assert_eq!(
            (t.kind, t.reason.as_deref()),
            (EventKind::AccessDenied, Some("unknown_card"))
        );
    };
    let mut recovery = Vec::new();
    for cycle in 1..=k {
        decide_both(&door);
        vcard::stop_pcscd();
        wait_reader(&door, PCSC_READER, "down", WAIT);
        wait_events(&door, EventKind::ReaderDown, Some(PCSC_READER), cycle);
        vcard::ensure_pcscd();
        let back = Instant::now();
        wait_reader(&door, PCSC_READER, "up", Duration::from_secs(30));
        wait_events(&door, EventKind::ReaderUp, Some(PCSC_READER), cycle);
        recovery.push(back.elapsed());
    }
    decide_both(&door);
    let events = door.events();
    assert_eq!(
        check_reader_history(&events, PCSC_READER),
        (k, k),
        "{events:#?}"
    );
    eprintln!(
        "faults: pcsc: {k} pcscd restarts, {seen} taps decided; reader up again after {recovery:?} [{:.1?}]",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Broker flapping
// ---------------------------------------------------------------------------------------------

/// Lines of the log containing `needle`.
fn log_count(door: &Pintud, needle: &str) -> usize {
    door.log_text().matches(needle).count()
}

#[test]
fn broker_flapping_loses_no_event_and_taps_are_decided_throughout() {
    let started = Instant::now();
    let k = cycles(5);
    // Persistence, and a persistent office session: what the door publishes while the office's
    // client is still reconnecting waits for it in the broker, across broker restarts.
    let mut broker = Broker::start(BrokerOptions {
        persistence: true,
        ..BrokerOptions::default()
    });
    let office = Client::connect(
        &broker,
        &ClientOptions::new().id("faults-office").persistent(),
    );
    office.subscribe(&topic("events"));
    let site = Site::new();
    let extra = format!(
        "{}keep_alive = \"5s\"\n{NO_FLOOD}",
        mqtt_section(&broker, "")
    );
    let door = start_door(&site, &extra, vec![staff(&site, ALICE, "alice")]);

    let stop = AtomicBool::new(false);
    let (taps, flaps) = std::thread::scope(|s| {
        let tapper = s.spawn(|| {
            let mut taps = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let uid = if taps.len() % 2 == 0 { ALICE } else { STRANGER };
                taps.push((uid, door.tap(uid)));
                std::thread::sleep(Duration::from_millis(50));
            }
            taps
        });
        let mut flaps = Vec::new();
        for cycle in 1..=k {
            // Up until the door has connected, and for 1 to 3 s.
            wait_until(&door, "the door to connect", WAIT, || {
                (log_count(&door, "MQTT connected") >= cycle).then_some(())
            });
            let up = Duration::from_millis(1000 + 500 * ((cycle as u64 - 1) % 5));
            std::thread::sleep(up);
            broker.stop();
            let down = Duration::from_millis(500 + 250 * ((cycle as u64 - 1) % 3));
            std::thread::sleep(down);
            broker.restart();
            flaps.push((up, down));
        }
        wait_until(&door, "the door to reconnect", WAIT, || {
            (log_count(&door, "MQTT connected") > k).then_some(())
        });
        // A few more taps on the last connection, then stop.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (tapper.join().expect("tap thread"), flaps)
    });

    // Every tap was decided correctly, whatever the link was doing.
    for (uid, t) in &taps {
        let want = if *uid == ALICE {
            ("grant", None)
        } else {
            ("deny", Some("unknown_card"))
        };
        assert_eq!((t.decision.as_str(), t.reason.as_deref()), want, "{t:?}");
        assert!(t.seq.is_some(), "every tap is recorded: {t:?}");
    }
    // Every event reached the office exactly once by seq, in order; the outbox is empty.
    door.wait_for("the lock secured", |s| s.lock == LockState::Secured);
    let last = door.events().last().expect("events").seq;
    let received = events_until_seq(&office, last);
    assert_exactly_once_in_order(&received, &(1..=last).collect::<Vec<_>>());
    door.wait_for("an empty outbox", |s| s.outbox_depth == 0);
    // The door noticed every flap (its log; status has no link state, the office sees the
    // retained status come back `online` at every reconnect).
    let lost = log_count(&door, "MQTT connection lost");
    assert!(lost >= k, "{lost} connection losses logged for {k} flaps");
    eprintln!(
        "faults: broker: {k} flaps (up/down {flaps:?}), {} taps, {last} events delivered exactly once in order ({} messages with re-sends) [{:.1?}]",
        taps.len(),
        received.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Wall-clock jumps (libfaketime)
// ---------------------------------------------------------------------------------------------

/// libfaketime's preload library: `PINTU_LIBFAKETIME`, else where Debian's `libfaketime` package
/// (pulled in by `faketime`) installs it.
fn libfaketime() -> PathBuf {
    if let Some(p) = std::env::var_os("PINTU_LIBFAKETIME") {
        return p.into();
    }
    const NAME: &str = "/libfaketime.so.1";
    if let Ok(out) = std::process::Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
    {
        if let Some(p) = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.ends_with(NAME) && Path::new(l).exists())
        {
            return p.into();
        }
    }
    let arch = std::env::consts::ARCH;
    [
        format!("/usr/lib/{arch}-linux-gnu/faketime{NAME}"),
        format!("/usr/lib/faketime{NAME}"),
        format!("/usr/local/lib/faketime{NAME}"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!("libfaketime not found: apt-get install faketime (or set PINTU_LIBFAKETIME)")
    })
}

/// A door site with a steppable wall clock, a broker, an office client and a status subscriber,
/// and a list v1 in which Alice is staff (for the clock and command tests of issue 15).
struct MqttDoor {
    broker: Broker,
    office: Client,
    status_sub: Client,
    site: Site,
    wall: WallClock,
    config: std::path::PathBuf,
    list: std::path::PathBuf,
}

impl MqttDoor {
    fn new() -> MqttDoor {
        let broker = Broker::start(BrokerOptions::default());
        let office = Client::connect(&broker, &ClientOptions::new());
        let status_sub = Client::connect(&broker, &ClientOptions::new());
        status_sub.subscribe(&topic("status"));
        let site = Site::new();
        let wall = WallClock::new(site.dir.path());
        let config = site.write_config(&format!("{NO_FLOOD}{}", mqtt_section(&broker, "")));
        let list = site.path("list.signed");
        std::fs::write(
            &list,
            site.sign(&site.payload(1, vec![staff(&site, ALICE, "alice")])),
        )
        .expect("list");
        MqttDoor {
            broker,
            office,
            status_sub,
            site,
            wall,
            config,
            list,
        }
    }
}

/// The wall clock of one pintud, stepped by rewriting libfaketime's timestamp file:
/// `CLOCK_REALTIME` reads the real time plus the offset in the file, re-read on every call
/// (`FAKETIME_NO_CACHE`); `CLOCK_MONOTONIC` stays real (`DONT_FAKE_MONOTONIC`), as when NTP
/// steps the clock. Rust's `SystemTime::now` (and so jiff's) calls glibc's `clock_gettime`,
/// which the preload replaces; `Instant` reads `CLOCK_MONOTONIC`.
struct WallClock {
    file: PathBuf,
    offset: i64,
}

impl WallClock {
    fn new(dir: &Path) -> WallClock {
        let mut w = WallClock {
            file: dir.join("faketime.offset"),
            offset: 0,
        };
        w.set(0);
        w
    }

    /// Steps the wall clock to the real time plus `offset` seconds (atomically: a rename).
    fn set(&mut self, offset: i64) {
        let tmp = self.file.with_extension("new");
        std::fs::write(&tmp, format!("{offset:+}\n")).expect("write the faketime file");
        std::fs::rename(&tmp, &self.file).expect("rename the faketime file");
        self.offset = offset;
    }

    /// What pintud's wall clock reads now.
    fn now(&self) -> Timestamp {
        Timestamp::now() + SignedDuration::from_secs(self.offset)
    }

    fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("LD_PRELOAD", libfaketime().into_os_string()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.clone().into_os_string(),
            ),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("DONT_FAKE_MONOTONIC", "1".into()),
        ]
    }

    /// Starts pintud under this clock.
    fn start(&self, config: &Path, socket: &Path, args: &[&str]) -> Pintud {
        let env = self.env();
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        Pintud::start_with_env(config, socket, args, &env)
    }

    /// Waits until pintud's wall clock reads this clock (within a minute: the steps are hours)
    /// and its status says the clock is `trusted` or not.
    fn wait(&self, door: &Pintud, trusted: bool) -> Status {
        wait_until(
            door,
            &format!("the clock stepped to {:+}s, trusted {trusted}", self.offset),
            WAIT,
            || {
                let s = door.status();
                let off = s.now.duration_since(self.now()).as_secs().abs();
                let t = s.clock.as_ref().is_some_and(|c| c.trusted);
                (off < 60 && t == trusted).then_some(s)
            },
        )
    }
}

const HOUR: i64 = 3600;
/// Each clock cycle of the visit test runs this far after the previous one (wall clock).
const VISIT_CYCLE: i64 = 10 * HOUR;
const ESCORT: &str = ALICE;
const BADGE: &str = BOB;

/// A list with an escort, a visitor badge and one visit per cycle: visit `V-i` covers
/// `real0 + i × 10 h` from half an hour before to an hour after.
fn visits_list(site: &Site, real0: Timestamp, cycles: usize) -> Vec<u8> {
    let mut escort = staff(site, ESCORT, "h-escort");
    escort.role = Role::Escort;
    let at = |s: i64| real0 + SignedDuration::from_secs(s);
    let span = cycles as i64 * VISIT_CYCLE;
    let mut badge = site.entry(
        BADGE,
        "badge-07",
        &at(-HOUR).to_string(),
        &at(span + VISIT_CYCLE).to_string(),
    );
    badge.role = Role::Visitor;
    let visits: Vec<Visit> = (0..cycles as i64)
        .map(|i| Visit {
            id: format!("V-{i}"),
            badge: badge.card,
            visitor: format!("Visitor {i} (PT Vendor)"),
            host: "h-escort".into(),
            valid_from: at(i * VISIT_CYCLE - HOUR / 2),
            valid_until: at(i * VISIT_CYCLE + HOUR),
        })
        .collect();
    let mut payload = site.payload(1, vec![escort, badge]);
    payload.expires_at = at(span + 30 * 24 * HOUR);
    let bytes = list::payload_bytes(&payload, &visits).expect("payload bytes");
    list::sign(&bytes, &site.keys[..1])
}

fn decision(t: &TapOutcome) -> (&str, Option<&str>) {
    (t.decision.as_str(), t.reason.as_deref())
}

#[test]
fn wall_clock_jumps_during_a_visit() {
    let started = Instant::now();
    let k = cycles(3);
    let site = Site::new();
    let mut wall = WallClock::new(site.dir.path());
    let real0 = Timestamp::now();
    let list = site.path("visits.signed");
    std::fs::write(&list, visits_list(&site, real0, k)).expect("write the list");
    // The steps forward (10 h per cycle) must raise the trusted-time floor for the steps back to
    // fall below it: since issue 15 item 4 a reading raises it at most `max_ahead_of_signed`
    // past the list's signed `issued_at` (default 1 h), so this door allows the whole run.
    let config = site.write_config(&format!(
        "\n[[reader]]\nname = \"back\"\nrole = \"exit\"\nbackend = \"sim\"\n{NO_FLOOD}\n[clock]\nmax_ahead_of_signed = \"400days\"\n"
    ));
    let door = wall.start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    );
    for cycle in 0..k {
        let base = cycle as i64 * VISIT_CYCLE;
        let visit = format!("V-{cycle}");
        wall.set(base);
        wall.wait(&door, true);
        // Visitor and escort enter inside the visit's window.
        let entered = Instant::now();
        assert_eq!(decision(&tap_on(&door, ESCORT, "entry")), ("grant", None));
        let v = tap_on(&door, BADGE, "entry");
        assert_eq!(decision(&v), ("grant", None), "visit {visit}");
        assert_eq!(door.status().visitors_inside, 1);

        // The wall clock steps an hour back, below the trusted-time floor: the door says the
        // clock is untrusted; the visitor badge fails closed; the escort is decided on the floor.
        wall.set(base - HOUR);
        wall.wait(&door, false);
        wait_events(&door, EventKind::ClockUntrusted, None, cycle + 1);
        assert_eq!(
            decision(&tap_on(&door, BADGE, "entry")),
            ("deny", Some("clock_untrusted"))
        );
        assert_eq!(decision(&tap_on(&door, ESCORT, "entry")), ("grant", None));

        // Back to the real time (NTP): trusted again.
        wall.set(base);
        wall.wait(&door, true);
        wait_events(&door, EventKind::ClockUntrustedCleared, None, cycle + 1);

        // Forward two hours, past the visit's end: overstay raised, the badge denied.
        wall.set(base + 2 * HOUR);
        wall.wait(&door, true);
        let over = wait_events(&door, EventKind::VisitOverstay, None, cycle + 1);
        let over = over.last().expect("overstay");
        assert_eq!(
            (over.visit.as_deref(), over.reason.as_deref()),
            (Some(visit.as_str()), Some("overstay"))
        );
        assert_eq!(
            decision(&tap_on(&door, BADGE, "entry")),
            ("deny", Some("outside_visit"))
        );

        // The visitor and the escort leave: the exit record's duration is the time really spent
        // inside (monotonic), not the wall clock's jumps.
        assert_eq!(decision(&tap_on(&door, BADGE, "back")), ("grant", None));
        let closed = wait_events(&door, EventKind::VisitClosed, None, cycle + 1);
        let closed = closed.last().expect("visit.closed");
        assert_eq!(closed.visit.as_deref(), Some(visit.as_str()));
        let inside = closed.duration_s.expect("duration_s");
        assert!(
            inside <= entered.elapsed().as_secs() + 1,
            "visit {visit}: {inside} s inside by the exit record, {:?} really",
            entered.elapsed()
        );
        assert_eq!(decision(&tap_on(&door, ESCORT, "back")), ("grant", None));
        assert_eq!(door.status().occupancy, 0);
    }
    let events = door.events();
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(
        (
            count(EventKind::ClockUntrusted),
            count(EventKind::ClockUntrustedCleared),
            count(EventKind::VisitOverstay),
            count(EventKind::VisitClosed)
        ),
        (k, k, k, k),
        "{events:#?}"
    );
    eprintln!(
        "faults: clock/visit: {k} cycles of -1 h / back / +2 h steps during a visit; {k} clock.untrusted, {k} cleared, {k} overstays, {k} visits closed [{:.1?}]",
        started.elapsed()
    );
}

#[test]
fn wall_clock_jumps_during_an_unlock_pulse() {
    let started = Instant::now();
    let k = cycles(3);
    let pulse = Duration::from_secs(3);
    let site = Site::new();
    let mut wall = WallClock::new(site.dir.path());
    let config = site.path("pintu.toml");
    let text = site
        .config_text(NO_FLOOD)
        .replace("unlock_for = \"1s\"", "unlock_for = \"3s\"");
    assert!(text.contains("unlock_for = \"3s\""));
    std::fs::write(&config, text).expect("config");
    let list = site.path("list.signed");
    std::fs::write(
        &list,
        site.sign(&site.payload(1, vec![staff(&site, ALICE, "alice")])),
    )
    .expect("list");
    let door = wall.start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    );
    wall.wait(&door, true);
    // Steps: forward 6 h, back below the floor, forward further, back again, …
    let step = |c: usize| -> i64 {
        let n = (c / 2 + 1) as i64;
        if c % 2 == 0 {
            6 * n * HOUR
        } else {
            -n * HOUR
        }
    };
    let (mut conclusive, mut attempts) = (0, 0);
    while conclusive < k {
        let jump = step(attempts);
        attempts += 1;
        let sent = Instant::now();
        let t = door.tap(ALICE);
        assert_eq!(
            decision(&t),
            ("grant", None),
            "staff open at any clock: {t:?}"
        );
        // The wall clock steps while the lock is released.
        wall.set(jump);
        // A status that came back before `sent + pulse` was read before the lock could have
        // re-secured on the monotonic clock: it must say released. Once one of them also shows
        // the stepped wall clock, the step happened during the pulse: this pulse counts.
        let mut saw_step = false;
        loop {
            let s = door.status();
            if Instant::now() >= sent + pulse {
                break;
            }
            assert_eq!(
                s.lock,
                LockState::Released,
                "the lock re-secured early after a wall step of {jump:+} s; log:\n{}",
                door.log_text()
            );
            saw_step |= s.now.duration_since(wall.now()).as_secs().abs() < 60;
            std::thread::sleep(Duration::from_millis(100));
        }
        // And it re-secures: a pulse timed on the wall clock would hold it for hours.
        door.wait_for("the lock re-secured", |s| s.lock == LockState::Secured);
        if saw_step {
            conclusive += 1;
        } else {
            assert!(
                attempts < 3 * k,
                "too slow to see a wall step within a {pulse:?} pulse ({attempts} attempts)"
            );
        }
    }
    let events = door.events();
    let released = events
        .iter()
        .filter(|e| e.kind == EventKind::LockReleased)
        .count();
    let secured = events
        .iter()
        .filter(|e| e.kind == EventKind::LockSecured)
        .count();
    assert_eq!((released, secured), (attempts, attempts), "{events:#?}");
    let s = door.status();
    assert_eq!(s.lock, LockState::Secured);
    assert!(
        s.lock_changes.windows(2).all(|w| w[0].state != w[1].state),
        "the relay alternates: {:?}",
        s.lock_changes
    );
    eprintln!(
        "faults: clock/pulse: {conclusive} wall steps ({:?} s) seen during a {pulse:?} pulse, none cut it short or held it ({attempts} pulses) [{:.1?}]",
        (0..attempts).map(step).collect::<Vec<_>>(),
        started.elapsed()
    );
}

/// A signed command for this door, made now by `keys`, valid for `valid_s` from `issued_at`.
fn door_command(
    site: &Site,
    action: pintu::core::command::Action,
    doors: &[&str],
    issued_at: Timestamp,
    valid_s: i64,
) -> Vec<u8> {
    use pintu::core::command::{self, CommandPayload};
    command::sign(
        &CommandPayload {
            format: command::COMMAND_PAYLOAD_FORMAT,
            site: crate::common::SITE.into(),
            doors: doors.iter().map(|d| d.to_string()).collect(),
            id: uuid::Uuid::new_v4(),
            issued_at,
            expires_at: issued_at + SignedDuration::from_secs(valid_s),
            operator: "ani".into(),
            command: action,
        },
        &site.keys[..1],
    )
}

/// Issue 15 item 5: an `unlock_once` is captured; a newer command arrives two days later (on the
/// door's clock); the door's clock is then set back into the captured command's window and it is
/// replayed. On the old code the newer command made the door forget the old id (ids were kept for
/// a day past the *newest* command's expiry) and the window was checked on the raw wall clock: the
/// replay opened the door. Now windows are checked on the trusted time (never below the floor)
/// and ids are kept until their window is below the floor: refused, the lock untouched.
/// `unlock_once` for `"*"` or for longer than 10 minutes is refused too, and a list that has
/// expired on the trusted time is refused while the clock is set back.
#[test]
fn a_captured_unlock_once_cannot_be_replayed_after_the_clock_is_set_back() {
    use pintu::core::command::Action;
    let MqttDoor {
        // Bound to the end of the test: dropping the broker stops it.
        broker: _broker,
        office,
        status_sub,
        site,
        mut wall,
        config,
        list,
    } = MqttDoor::new();
    let door = wall.start(
        &config,
        &site.socket(),
        &["--list", list.to_str().expect("utf-8 path")],
    );
    wall.wait(&door, true);
    status_sub.collect_until(|m| m.json()["state"] == "online", WAIT);
    let released = |door: &Pintud| events_of(door, EventKind::LockReleased, None).len();

    // Too broad or too long: refused with their own reasons.
    let now = Timestamp::now();
    let unlock = || Action::UnlockOnce {
        reason: "vendor".into(),
    };
    for (bytes, reason, n) in [
        (
            door_command(&site, unlock(), &["*"], now, 120),
            "door_not_named",
            1,
        ),
        (
            door_command(&site, unlock(), &[crate::common::DOOR], now, 3600),
            "lifetime_too_long",
            2,
        ),
    ] {
        office.publish(&topic("commands"), bytes, false);
        let r = wait_events(&door, EventKind::CommandRejected, None, n);
        assert_eq!(r[n - 1].reason.as_deref(), Some(reason));
    }
    assert_eq!(released(&door), 0);

    // The captured command: carried out once.
    let captured = door_command(&site, unlock(), &[crate::common::DOOR], now, 300);
    office.publish(&topic("commands"), captured.clone(), false);
    wait_events(&door, EventKind::CommandAccepted, None, 1);
    door.wait_for("the lock released", |_| released(&door) == 1);

    // Two days later (the door's clock), a newer command.
    const DAYS_2: i64 = 48 * HOUR;
    wall.set(DAYS_2);
    wall.wait(&door, true);
    let newer = door_command(
        &site,
        Action::ReleaseLockdown {},
        &[crate::common::DOOR],
        Timestamp::now() + SignedDuration::from_secs(DAYS_2),
        120,
    );
    office.publish(&topic("commands"), newer, false);
    wait_events(&door, EventKind::CommandAccepted, None, 2);
    std::thread::sleep(Duration::from_millis(1500));

    // The clock set back into the captured command's window; the replay.
    wall.set(0);
    wall.wait(&door, false);
    office.publish(&topic("commands"), captured, false);
    let r = wait_events(&door, EventKind::CommandRejected, None, 3);
    let reason = r[2].reason.as_deref();
    assert!(
        matches!(reason, Some("expired" | "replayed")),
        "the replay is refused: {:?}",
        r[2]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(released(&door), 1, "the replay did not open the door");
    assert_eq!(events_of(&door, EventKind::CommandAccepted, None).len(), 2);
    // Lists too: one that expires tomorrow (real time) has expired on the trusted time.
    let mut stale = site.payload(2, vec![staff(&site, ALICE, "alice")]);
    stale.expires_at = Timestamp::now() + SignedDuration::from_secs(24 * HOUR);
    std::fs::create_dir_all(site.inbox()).expect("inbox");
    std::fs::write(site.inbox().join("stale.signed"), site.sign(&stale)).expect("drop");
    let r = wait_events(&door, EventKind::ListRejected, None, 1);
    assert_eq!(r[0].reason.as_deref(), Some("expired"), "{:?}", r[0]);
    eprintln!("faults: clock/commands: a captured unlock_once replayed after a newer command and a clock set back two days: refused ({reason:?})");
}

/// Issue 15 item 4: one spoofed clock reading ten years ahead, for about a second, then the
/// clock is right again. On the old code the reading raised the trusted-time floor ten years
/// and persisted it: afterwards the clock stayed untrusted, every tap was denied `list_expired`
/// (the list expired on the floor) and the documented recovery deleted the store. Now a reading
/// raises the floor at most `[clock] max_ahead_of_signed` past the newest signed time (the
/// list's `issued_at`, an hour ago here): the door is trusted again and grants at once, across a
/// restart too, with its store. A floor a signed time did push ahead (a list signed with a
/// future `issued_at`) is brought back by a signed `reset_time_floor` over MQTT, once.
#[test]
fn a_clock_ten_years_ahead_for_a_second_does_not_lock_the_door_out() {
    use pintu::core::command::{self, Action, CommandPayload};
    let started = Instant::now();
    let MqttDoor {
        // Bound to the end of the test: dropping the broker stops it.
        broker: _broker,
        office,
        status_sub,
        site,
        mut wall,
        config,
        list,
    } = MqttDoor::new();
    let args = ["--list", list.to_str().expect("utf-8 path")];
    let door = wall.start(&config, &site.socket(), &args);
    wall.wait(&door, true);
    assert_eq!(decision(&door.tap(ALICE)), ("grant", None));

    // Ten years ahead for a second or two (the door task reads the clock every second).
    const YEARS_10: i64 = 10 * 365 * 24 * HOUR;
    wall.set(YEARS_10);
    wall.wait(&door, true);
    std::thread::sleep(Duration::from_millis(1500));
    wall.set(0);

    // Back: trusted at once, staff granted, the floor not in the future, the list not expired
    // (status's effective time is the door task's last tick: up to a second old).
    wall.wait(&door, true);
    let s = wait_until(&door, "the list not expired", WAIT, || {
        let s = door.status();
        s.list.as_ref().is_some_and(|l| !l.expired).then_some(s)
    });
    let floor = s.clock.as_ref().and_then(|c| c.floor).expect("a floor");
    assert!(
        floor <= Timestamp::now() + SignedDuration::from_secs(60),
        "the floor is {floor}, in the future"
    );
    assert!(s.clock.as_ref().is_some_and(|c| c.trusted), "{s:?}");
    assert_eq!(decision(&door.tap(ALICE)), ("grant", None));
    let events_before = door.events().len();
    assert_eq!(door.stop(), Some(0));

    // The persisted floor is sane too: a restart on the same store is trusted and grants.
    let door = wall.start(&config, &site.socket(), &args);
    wall.wait(&door, true);
    assert_eq!(decision(&door.tap(ALICE)), ("grant", None));
    assert!(
        door.events().len() > events_before,
        "the store and its events were kept"
    );
    status_sub.collect_until(|m| m.json()["state"] == "online", WAIT);

    // A signed time can push the floor ahead: a list signed with issued_at 30 min from now.
    let mut ahead = site.payload(2, vec![staff(&site, ALICE, "alice")]);
    ahead.issued_at = Timestamp::now() + SignedDuration::from_secs(30 * 60);
    std::fs::create_dir_all(site.inbox()).expect("inbox");
    std::fs::write(site.inbox().join("ahead.signed"), site.sign(&ahead)).expect("drop");
    door.wait_for("list v2", |s| {
        s.list.as_ref().is_some_and(|l| l.version == 2)
    });
    wall.wait(&door, false);
    // Staff are decided on the floor meanwhile.
    assert_eq!(decision(&door.tap(ALICE)), ("grant", None));

    // The office resets it with a signed command (list keys; this door by name).
    let now = Timestamp::now();
    let reset = command::sign(
        &CommandPayload {
            format: command::COMMAND_PAYLOAD_FORMAT,
            site: crate::common::SITE.into(),
            doors: vec![crate::common::DOOR.into()],
            id: uuid::Uuid::new_v4(),
            issued_at: now,
            expires_at: now + SignedDuration::from_secs(300),
            operator: "kabid".into(),
            command: Action::ResetTimeFloor {},
        },
        &site.keys[..1],
    );
    office.publish(&topic("commands"), reset.clone(), false);
    let s = wall.wait(&door, true);
    let floor = s.clock.as_ref().and_then(|c| c.floor).expect("a floor");
    assert!(floor < ahead.issued_at, "the floor is back: {floor}");
    let accepted = wait_events(&door, EventKind::CommandAccepted, None, 1);
    assert_eq!(accepted[0].reason.as_deref(), Some("reset_time_floor"));
    // Once only.
    office.publish(&topic("commands"), reset, false);
    let rejected = wait_events(&door, EventKind::CommandRejected, None, 1);
    assert_eq!(rejected[0].reason.as_deref(), Some("replayed"));
    eprintln!(
        "faults: clock/floor: +10 years for ~1.5 s and back: trusted at once, staff granted, store kept; a signed reset_time_floor undoes a signed floor ahead [{:.1?}]",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Unknown-card flood
// ---------------------------------------------------------------------------------------------

/// The `i`-th unknown card of burst `b`.
fn flood_card(b: usize, i: usize) -> String {
    format!("F{:01X}{:06X}5A", b % 16, i)
}

#[test]
fn unknown_card_flood_locks_the_reader_out_and_loses_no_event() {
    let started = Instant::now();
    const N: usize = 5;
    let bursts = cycles(3);
    let m = env_count("PINTU_FAULT_FLOOD", 300).min(900);
    let site = Site::new();
    let (flood_link, side_link) = (site.path("flood-rdm"), site.path("side-rdm"));
    let mut flood = Pty::open();
    let mut side = Pty::open();
    point(&flood_link, &flood.slave);
    point(&side_link, &side.slave);
    let extra = format!(
        "{}{}\n[flood]\nmax_failures = {N}\nwindow = \"30s\"\nlockout = \"2s\"\n",
        serial_reader(
            "flood",
            &flood_link,
            "protocol = \"em4100\"\nhold = \"100ms\""
        ),
        serial_reader(
            "side",
            &side_link,
            "protocol = \"em4100\"\nhold = \"100ms\""
        ),
    );
    let door = start_door(
        &site,
        &extra,
        vec![
            staff(&site, ALICE, "alice"),
            staff(&site, BOB, "bob"),
            staff(&site, DAVE, "dave"),
        ],
    );
    wait_reader(&door, "flood", "up", WAIT);
    wait_reader(&door, "side", "up", WAIT);
    let mut journal = Journal::default();
    let (mut flood_taps, mut side_taps) = (0, 0);
    for b in 0..bursts {
        // The burst: m unknown cards over about 3 s, a staff card in the middle; meanwhile known
        // cards on the other reader every 100 ms.
        std::thread::scope(|s| {
            let f = &mut flood;
            let writer = s.spawn(move || {
                // Spread over 3 s (1.5 lockouts): a lockout ends and a new one starts mid-flood.
                let per_10ms = m.div_ceil(300);
                for i in 0..m {
                    if i == m / 2 {
                        f.frame(DAVE);
                    }
                    f.frame(&flood_card(b, i));
                    if (i + 1) % per_10ms == 0 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            });
            let mut n = 0;
            while !writer.is_finished() || n < 3 {
                side.frame(if n % 2 == 0 { ALICE } else { BOB });
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
                journal.refresh(&door);
            }
            writer.join().expect("flood writer");
            side_taps += n;
        });
        flood_taps += m + 1;
        journal.wait_taps(&door, "flood", flood_taps);
        journal.wait_taps(&door, "side", side_taps);
        // The lockout ends…
        wait_until(&door, "the lockout to end", WAIT, || {
            journal.refresh(&door);
            let locked = journal.count(EventKind::ReaderLockedOut, "flood");
            let cleared = journal.count(EventKind::ReaderLockoutCleared, "flood");
            (locked > 0 && locked == cleared).then_some(())
        });
        // …and the reader decides normally again.
        flood.frame(STRANGER);
        flood.frame(ALICE);
        flood_taps += 2;
        journal.wait_taps(&door, "flood", flood_taps);
        let last: Vec<_> = journal
            .0
            .values()
            .filter(|e| {
                e.reader.as_deref() == Some("flood")
                    && matches!(e.kind, EventKind::AccessGranted | EventKind::AccessDenied)
            })
            .rev()
            .take(2)
            .map(|e| (e.decision.clone(), e.reason.clone()))
            .collect();
        assert_eq!(
            last,
            [
                (Some("grant".into()), None),
                (Some("deny".into()), Some("unknown_card".into()))
            ],
            "after the lockout (burst {b})"
        );
    }
    journal.refresh(&door);
    let events: Vec<&Event> = journal.0.values().collect();
    // No event lost: seq runs 1..=last without a gap, and (no MQTT here) all are in the outbox.
    let last = events.last().expect("events").seq;
    assert!(
        events.iter().zip(1..).all(|(e, want)| e.seq == want),
        "seq has gaps (or the journal missed events)"
    );
    assert_eq!(
        door.status().outbox_depth,
        last,
        "every event waits in the outbox"
    );

    // The flooded reader's history follows the rule: N failures lock it out; while locked out,
    // unknown cards are denied `reader_locked_out` and staff pass; each lockout ends with a clear.
    let (mut locked, mut failures, mut lockouts, mut locked_denies) = (false, 0, 0, 0);
    for e in events
        .iter()
        .filter(|e| e.reader.as_deref() == Some("flood"))
    {
        match (e.kind, e.reason.as_deref()) {
            (EventKind::AccessDenied, Some("reader_locked_out")) => {
                assert!(
                    locked,
                    "denied reader_locked_out while not locked out: {e:?}"
                );
                locked_denies += 1;
            }
            (EventKind::AccessDenied, Some("unknown_card")) => {
                assert!(!locked, "a failure counted during the lockout: {e:?}");
                failures += 1;
            }
            (EventKind::AccessGranted, _) => {
                assert!(
                    matches!(e.holder.as_deref(), Some("dave" | "alice")),
                    "{e:?}"
                );
            }
            (EventKind::ReaderLockedOut, Some("flood")) => {
                assert!(!locked, "locked out twice without a clear: {e:?}");
                assert!(failures >= N, "locked out after {failures} failures: {e:?}");
                (locked, failures) = (true, 0);
                lockouts += 1;
            }
            (EventKind::ReaderLockoutCleared, _) => {
                assert!(locked, "a clear without a lockout: {e:?}");
                locked = false;
            }
            _ => panic!("unexpected event on the flooded reader: {e:?}"),
        }
    }
    assert!(
        !locked && lockouts >= bursts,
        "{lockouts} lockouts for {bursts} bursts"
    );
    // The other reader was never locked out and granted every known card.
    for e in events
        .iter()
        .filter(|e| e.reader.as_deref() == Some("side"))
    {
        assert_eq!(
            (e.kind, e.decision.as_deref()),
            (EventKind::AccessGranted, Some("grant")),
            "{e:?}"
        );
    }
    eprintln!(
        "faults: flood: {bursts} bursts of {m} unknown cards; {flood_taps} taps on the flooded reader ({locked_denies} denied reader_locked_out), {side_taps} granted on the other, {lockouts} lockouts each cleared, {last} events gap-free in the outbox [{:.1?}]",
        started.elapsed()
    );
}
