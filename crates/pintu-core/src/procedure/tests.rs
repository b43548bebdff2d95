//! Table and property tests of the procedure: escort pairing, visits, anti-passback, floods,
//! the trusted-time floor, presence across restarts, lockdown and the tap's own event.

use super::*;
use crate::event::Event;
use crate::presence::OccupantChange;
use crate::visit::Visit;
use jiff::tz::TimeZone;
use jiff::SignedDuration;
use proptest::prelude::*;
use std::time::Duration;
use uuid::Uuid;
use Direction::{Entry as In, Exit as Out};

const T0: &str = "2026-05-04T03:00:00Z";
const STAFF: u8 = 1;
const ESCORT: u8 = 2;
const V3: u8 = 3;
const V4: u8 = 4;
const EXPIRED: u8 = 5;
const UNKNOWN: u8 = 6;
const IDLE_BADGE: u8 = 7;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn entry(card: u8, holder: &str, role: Role) -> Entry {
    Entry {
        card: CardHash([card; 32]),
        holder: holder.into(),
        name: holder.to_uppercase(),
        role,
        valid_from: ts("2026-01-01T00:00:00Z"),
        valid_until: ts("2027-01-01T00:00:00Z"),
        doors: None,
        schedule: vec![],
        request_ref: "REQ".into(),
        approver: "kabid".into(),
    }
}

/// Visits V3 and V4: T0 - 1 h .. T0 + 1 h.
fn visit(card: u8) -> Visit {
    Visit {
        id: format!("V{card}"),
        badge: CardHash([card; 32]),
        visitor: format!("Visitor {card}"),
        host: "budi".into(),
        valid_from: ts("2026-05-04T02:00:00Z"),
        valid_until: ts("2026-05-04T04:00:00Z"),
    }
}

struct Door {
    p: Procedure,
    meta: ListMeta,
    entries: Vec<Entry>,
    m0: Instant,
}

impl Door {
    fn new(settings: ProcedureSettings) -> Self {
        let m0 = Instant::now();
        let mut expired = entry(EXPIRED, "lapsed", Role::Staff);
        expired.valid_until = ts("2026-02-01T00:00:00Z");
        let entries = vec![
            entry(STAFF, "budi", Role::Staff),
            entry(ESCORT, "siti", Role::Escort),
            entry(V3, "badge-3", Role::Visitor),
            entry(V4, "badge-4", Role::Visitor),
            expired,
            entry(IDLE_BADGE, "badge-7", Role::Visitor),
        ];
        let meta = ListMeta {
            site: "s".into(),
            doors: vec!["server-room".into()],
            version: 3,
            issued_at: ts("2026-05-01T00:00:00Z"),
            expires_at: ts("2026-06-01T00:00:00Z"),
            time_zone: TimeZone::get("Asia/Jakarta").unwrap(),
            entry_count: entries.len(),
            payload_digest: [0; 32],
            signed_by: vec![],
            visits: vec![visit(V3), visit(V4)],
        };
        Door {
            p: Procedure::new(settings, ts(T0), m0),
            meta,
            entries,
            m0,
        }
    }

    fn default() -> Self {
        Door::new(ProcedureSettings::new("server-room"))
    }

    fn wall(&self, at: Duration) -> Timestamp {
        ts(T0) + SignedDuration::try_from(at).unwrap()
    }

    fn tap_on(&mut self, reader: &str, card: u8, dir: Direction, at: Duration) -> TapResult {
        let hash = CardHash([card; 32]);
        let found = self.entries.iter().find(|e| e.card == hash);
        let tap = Tap {
            reader,
            direction: dir,
            card: hash,
            lookup: found.map_or(Lookup::NotFound, Lookup::Found),
            wall: self.wall(at),
            mono: self.m0 + at,
        };
        self.p.on_tap(Some(&self.meta), tap)
    }

    fn tap(&mut self, card: u8, dir: Direction, at: Duration) -> TapResult {
        let reader = if dir == In { "entry" } else { "exit" };
        self.tap_on(reader, card, dir, at)
    }

    fn tick(&mut self, at: Duration) -> Vec<EventDraft> {
        let wall = self.wall(at);
        self.p.on_tick(wall, self.m0 + at)
    }

    fn inside(&self) -> Vec<&str> {
        self.p
            .presence()
            .occupants()
            .iter()
            .map(|o| o.holder.as_str())
            .collect()
    }
}

fn kinds(events: &[EventDraft]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

fn visitor_grant(events: &[EventDraft]) -> Option<&EventDraft> {
    events
        .iter()
        .find(|e| e.kind == EventKind::AccessGranted && e.visit.is_some())
}

/// (escort first?, gap in ms, visitor admitted?): N = 10 s, inclusive.
#[test]
fn escort_at_exactly_n_seconds_pairs_and_one_millisecond_later_does_not() {
    let cases = [
        (true, 0, true),
        (true, 10_000, true),
        (true, 10_001, false),
        (false, 0, true),
        (false, 10_000, true),
        (false, 10_001, false),
    ];
    for (escort_first, gap, admitted) in cases {
        let name = format!("escort first {escort_first}, gap {gap} ms");
        let mut d = Door::default();
        let (first, second) = if escort_first {
            (ESCORT, V3)
        } else {
            (V3, ESCORT)
        };
        let r1 = d.tap(first, In, ms(0));
        let r2 = d.tap(second, In, ms(gap));
        if escort_first {
            assert_eq!(
                r1.verdict,
                Verdict::Grant,
                "{name}: the escort opens for themself"
            );
            let want = if admitted { Verdict::Grant } else { r2.verdict };
            assert_eq!(r2.verdict, want, "{name}");
            assert_eq!(
                matches!(r2.verdict, Verdict::AwaitEscort { .. }),
                !admitted,
                "{name}"
            );
        } else {
            assert!(matches!(r1.verdict, Verdict::AwaitEscort { .. }), "{name}");
            assert_eq!(kinds(&r1.events), vec![EventKind::EscortAwaited], "{name}");
            assert_eq!(
                r2.verdict,
                Verdict::Grant,
                "{name}: the escort opens anyway"
            );
        }
        let grant = visitor_grant(&r2.events);
        assert_eq!(grant.is_some(), admitted, "{name}: {:?}", r2.events);
        if let Some(g) = grant {
            assert_eq!(g.escort.as_deref(), Some("siti"), "{name}");
            assert_eq!(g.visit.as_deref(), Some("V3"), "{name}");
            assert_eq!(r2.escort.as_deref(), Some("siti"), "{name}");
            assert_eq!(d.inside(), vec!["siti", "badge-3"], "{name}");
        } else {
            assert_eq!(d.inside(), vec!["siti"], "{name}");
        }
    }
}

#[test]
fn a_waiting_visitor_times_out_with_a_deny() {
    let mut d = Door::default();
    let Verdict::AwaitEscort { until } = d.tap(V3, In, ms(0)).verdict else {
        panic!("should wait");
    };
    assert_eq!(until, d.m0 + ms(10_000) + Duration::from_nanos(1));
    assert_eq!(d.p.next_deadline(), Some(until));
    assert!(d.tick(ms(10_000)).is_empty(), "exactly N s still waits");
    let e = d.tick(ms(10_000) + Duration::from_nanos(1));
    assert_eq!(kinds(&e), vec![EventKind::AccessDenied]);
    assert_eq!(e[0].reason.as_deref(), Some("escort_timeout"));
    assert_eq!(e[0].visit.as_deref(), Some("V3"));
    assert_eq!(e[0].holder.as_deref(), Some("badge-3"));
    // The escort comes too late: they enter, the visitor does not.
    let r = d.tap(ESCORT, In, ms(10_500));
    assert_eq!(r.verdict, Verdict::Grant);
    assert!(visitor_grant(&r.events).is_none());
    assert_eq!(d.inside(), vec!["siti"]);
}

#[test]
fn a_visitor_cannot_escort_and_the_same_card_twice_never_counts() {
    let mut d = Door::default();
    assert!(matches!(
        d.tap(V3, In, ms(0)).verdict,
        Verdict::AwaitEscort { .. }
    ));
    assert!(matches!(
        d.tap(V4, In, ms(1_000)).verdict,
        Verdict::AwaitEscort { .. }
    ));
    assert!(
        matches!(
            d.tap(V3, In, ms(2_000)).verdict,
            Verdict::AwaitEscort { .. }
        ),
        "same card again"
    );
    assert!(d.inside().is_empty());
    let e = d.tick(ms(30_000));
    assert_eq!(
        kinds(&e),
        vec![EventKind::AccessDenied, EventKind::AccessDenied]
    );
    assert!(e
        .iter()
        .all(|e| e.reason.as_deref() == Some("escort_timeout")));
}

#[test]
fn staff_can_escort_by_default_and_not_when_configured_otherwise() {
    let mut d = Door::default();
    d.tap(STAFF, In, ms(0));
    assert_eq!(d.tap(V3, In, ms(1)).verdict, Verdict::Grant);
    let mut s = ProcedureSettings::new("server-room");
    s.escort.escort_roles = crate::escort::RoleSet::of(&[Role::Escort]);
    let mut d = Door::new(s);
    d.tap(STAFF, In, ms(0));
    assert!(matches!(
        d.tap(V3, In, ms(1)).verdict,
        Verdict::AwaitEscort { .. }
    ));
}

#[test]
fn visit_window_edges_and_idle_badges() {
    // The visit runs T0 - 1 h (inclusive) .. T0 + 1 h (exclusive).
    let start = Duration::ZERO; // shift the door so that T0 + offset hits the edges
    let cases: [(&str, u8, i64, Option<DenyReason>); 5] = [
        (
            "before the window",
            V3,
            -3_600_001,
            Some(DenyReason::OutsideVisit),
        ),
        ("at the start", V3, -3_600_000, None),
        ("last millisecond", V3, 3_599_999, None),
        ("at the end", V3, 3_600_000, Some(DenyReason::OutsideVisit)),
        (
            "badge bound to no visit",
            IDLE_BADGE,
            0,
            Some(DenyReason::NoVisit),
        ),
    ];
    for (name, card, offset_ms, want) in cases {
        let mut d = Door::default();
        let wall = ts(T0) + SignedDuration::from_millis(offset_ms);
        let hash = CardHash([card; 32]);
        let found = d.entries.iter().find(|e| e.card == hash).cloned();
        let r = d.p.on_tap(
            Some(&d.meta),
            Tap {
                reader: "entry",
                direction: In,
                card: hash,
                lookup: found.as_ref().map_or(Lookup::NotFound, Lookup::Found),
                wall,
                mono: d.m0 + start,
            },
        );
        match want {
            Some(reason) => assert_eq!(r.verdict, Verdict::Deny(reason), "{name}"),
            None => assert!(
                matches!(r.verdict, Verdict::AwaitEscort { .. }),
                "{name}: {:?}",
                r.verdict
            ),
        }
    }
}

#[test]
fn list_level_denies_come_first() {
    let mut d = Door::default();
    let r = d.tap(EXPIRED, In, ms(0));
    assert_eq!(r.verdict, Verdict::Deny(DenyReason::Expired));
    assert_eq!(r.events[0].holder.as_deref(), Some("lapsed"));
    assert_eq!(
        d.tap(UNKNOWN, In, ms(1)).verdict,
        Verdict::Deny(DenyReason::UnknownCard)
    );
    let r = d.p.on_tap(
        Some(&d.meta),
        Tap {
            reader: "entry",
            direction: In,
            card: CardHash([STAFF; 32]),
            lookup: Lookup::Failed,
            wall: ts(T0),
            mono: d.m0,
        },
    );
    assert_eq!(r.verdict, Verdict::Deny(DenyReason::StoreError));
    let r = d.p.on_tap(
        None,
        Tap {
            reader: "entry",
            direction: In,
            card: CardHash([STAFF; 32]),
            lookup: Lookup::NotFound,
            wall: ts(T0),
            mono: d.m0,
        },
    );
    assert_eq!(r.verdict, Verdict::Deny(DenyReason::NoList));
}

/// (mode, direction of the violating tap, action, violation alarm?)
#[test]
fn anti_passback_modes_in_both_directions() {
    use AntiPassback::*;
    let cases = [
        (Off, In, Verdict::Grant, false),
        (Soft, In, Verdict::Grant, true),
        (Hard, In, Verdict::Deny(DenyReason::AntiPassback), true),
        (Off, Out, Verdict::Grant, false),
        (Soft, Out, Verdict::Grant, true),
        (Hard, Out, Verdict::Deny(DenyReason::AntiPassback), true),
    ];
    for (mode, dir, want, alarm) in cases {
        let name = format!("{mode:?} {dir:?}");
        let mut s = ProcedureSettings::new("server-room");
        s.anti_passback = mode;
        let mut d = Door::new(s);
        if dir == In {
            assert_eq!(d.tap(STAFF, In, ms(0)).verdict, Verdict::Grant, "{name}");
        }
        // In: already inside. Out: never came in.
        let r = d.tap(STAFF, dir, ms(1_000));
        assert_eq!(r.verdict, want, "{name}");
        let violation = r
            .events
            .iter()
            .find(|e| e.kind == EventKind::AntipassbackViolation);
        assert_eq!(violation.is_some(), alarm, "{name}");
        if let Some(v) = violation {
            let why = if dir == In {
                "already_inside"
            } else {
                "not_inside"
            };
            assert_eq!(v.reason.as_deref(), Some(why), "{name}");
            assert_eq!(v.holder.as_deref(), Some("budi"), "{name}");
        }
        let tap_event = r.events.last().unwrap();
        assert_eq!(tap_event.decision, Some(want_decision(want)), "{name}");
        let expected_inside: Vec<&str> = if dir == In { vec!["budi"] } else { vec![] };
        assert_eq!(
            d.inside(),
            expected_inside,
            "{name}: presence unchanged by the violation"
        );
    }
}

fn want_decision(a: Verdict) -> &'static str {
    match a {
        Verdict::Grant => "grant",
        _ => "deny",
    }
}

#[test]
fn hard_anti_passback_applies_to_visitors_too() {
    let mut s = ProcedureSettings::new("server-room");
    s.anti_passback = AntiPassback::Hard;
    let mut d = Door::new(s);
    d.tap(ESCORT, In, ms(0));
    assert_eq!(d.tap(V3, In, ms(1)).verdict, Verdict::Grant);
    assert_eq!(
        d.tap(V3, In, ms(2)).verdict,
        Verdict::Deny(DenyReason::AntiPassback)
    );
}

#[test]
fn last_escort_leaving_alarms_and_the_visitor_exit_closes_the_visit() {
    let mut d = Door::default();
    d.tap(ESCORT, In, ms(0));
    d.tap(V3, In, ms(2_000));
    let r = d.tap(ESCORT, Out, ms(60_000));
    assert_eq!(r.verdict, Verdict::Grant);
    assert_eq!(
        kinds(&r.events),
        vec![EventKind::AccessGranted, EventKind::VisitorUnescorted]
    );
    assert_eq!(r.events[1].visit.as_deref(), Some("V3"));
    let r = d.tap(ESCORT, In, ms(70_000));
    assert_eq!(
        kinds(&r.events),
        vec![
            EventKind::AccessGranted,
            EventKind::VisitorUnescortedCleared
        ]
    );
    let r = d.tap(V3, Out, ms(1_202_000));
    assert_eq!(r.verdict, Verdict::Grant, "no escort needed to leave");
    assert_eq!(
        kinds(&r.events),
        vec![EventKind::AccessGranted, EventKind::VisitClosed]
    );
    let closed = &r.events[1];
    assert_eq!(closed.visit.as_deref(), Some("V3"));
    assert_eq!(closed.visitor.as_deref(), Some("Visitor 3"));
    assert_eq!(closed.holder.as_deref(), Some("badge-3"));
    assert_eq!(closed.card.as_deref(), Some("c:03030303"));
    assert_eq!(closed.escort.as_deref(), Some("siti"));
    assert_eq!(closed.entered_at, Some(d.wall(ms(2_000))));
    assert_eq!(closed.exited_at, Some(d.wall(ms(1_202_000))));
    assert_eq!(closed.duration_s, Some(1_200));
    assert_eq!(d.inside(), vec!["siti"]);
    assert!(d.p.take_dirty());
    assert!(!d.p.take_dirty());
}

#[test]
fn the_exit_reader_lets_out_whoever_is_inside_even_if_their_card_lapsed() {
    let mut d = Door::default();
    d.tap(STAFF, In, ms(0));
    // A new list drops Budi while he is inside.
    d.entries.retain(|e| e.holder != "budi");
    assert_eq!(
        d.tap(STAFF, In, ms(1)).verdict,
        Verdict::Deny(DenyReason::UnknownCard)
    );
    let r = d.tap(STAFF, Out, ms(2));
    assert_eq!(r.verdict, Verdict::Grant);
    assert_eq!(r.events[0].holder.as_deref(), Some("budi"));
    assert!(d.inside().is_empty());
}

#[test]
fn a_waiting_visitor_whose_visit_ends_before_the_escort_comes_is_denied() {
    let mut d = Door::default();
    // The visit ends at T0 + 1 h; the visitor taps 5 s before, the escort 6 s later.
    let r = d.tap(V3, In, ms(3_595_000));
    assert!(matches!(r.verdict, Verdict::AwaitEscort { .. }));
    let r = d.tap(ESCORT, In, ms(3_601_000));
    assert_eq!(r.verdict, Verdict::Grant);
    let v = r
        .events
        .iter()
        .find(|e| e.holder.as_deref() == Some("badge-3"))
        .unwrap();
    assert_eq!(v.reason.as_deref(), Some("outside_visit"));
    assert_eq!(d.inside(), vec!["siti"]);
}

#[test]
fn flood_threshold_lockout_staff_pass_and_expiry() {
    let mut d = Door::default();
    for i in 0..4 {
        let r = d.tap(UNKNOWN, In, ms(i * 1_000));
        assert_eq!(
            kinds(&r.events),
            vec![EventKind::AccessDenied],
            "failure {}",
            i + 1
        );
    }
    let r = d.tap(EXPIRED, In, ms(4_000));
    assert_eq!(
        kinds(&r.events),
        vec![EventKind::AccessDenied, EventKind::ReaderLockedOut],
        "the 5th"
    );
    assert_eq!(
        d.tap(UNKNOWN, In, ms(5_000)).verdict,
        Verdict::Deny(DenyReason::ReaderLockedOut)
    );
    assert_eq!(
        d.tap(STAFF, In, ms(6_000)).verdict,
        Verdict::Grant,
        "staff still pass"
    );
    assert_eq!(
        d.tap(V3, In, ms(7_000)).verdict,
        Verdict::Deny(DenyReason::ReaderLockedOut)
    );
    assert_eq!(
        d.tap_on("entry-2", UNKNOWN, In, ms(7_000)).verdict,
        Verdict::Deny(DenyReason::UnknownCard),
        "other readers are not locked"
    );
    assert_eq!(d.p.next_deadline(), Some(d.m0 + ms(64_000)));
    assert_eq!(d.p.locked_readers().count(), 1);
    assert_eq!(
        kinds(&d.tick(ms(64_000))),
        vec![EventKind::ReaderLockoutCleared]
    );
    assert_eq!(
        d.tap(UNKNOWN, In, ms(65_000)).verdict,
        Verdict::Deny(DenyReason::UnknownCard)
    );

    let mut s = ProcedureSettings::new("server-room");
    s.flood.pass_roles = crate::escort::RoleSet::NONE;
    let mut d = Door::new(s);
    for i in 0..5 {
        d.tap(UNKNOWN, In, ms(i));
    }
    assert_eq!(
        d.tap(STAFF, In, ms(10)).verdict,
        Verdict::Deny(DenyReason::ReaderLockedOut)
    );
}

#[test]
fn a_lockout_that_ended_is_cleared_by_the_next_tap_when_the_tick_is_late() {
    let mut d = Door::default();
    for i in 0..5 {
        d.tap(UNKNOWN, In, ms(i));
    }
    assert_eq!(d.p.locked_readers().count(), 1);
    // No tick at 60 s (the door task was busy): the next taps clear the lockout first…
    let r = d.tap(UNKNOWN, In, ms(60_004));
    assert_eq!(
        kinds(&r.events),
        vec![EventKind::ReaderLockoutCleared, EventKind::AccessDenied]
    );
    assert_eq!(r.verdict, Verdict::Deny(DenyReason::UnknownCard));
    // …and a new lockout starts only after the clear, counted afresh.
    for i in 1..4 {
        assert_eq!(
            kinds(&d.tap(UNKNOWN, In, ms(60_004 + i)).events),
            vec![EventKind::AccessDenied]
        );
    }
    assert_eq!(
        kinds(&d.tap(UNKNOWN, In, ms(60_010)).events),
        vec![EventKind::AccessDenied, EventKind::ReaderLockedOut]
    );
    // The late tick has nothing left to clear.
    assert!(d.tick(ms(60_011)).is_empty());
}

#[test]
fn procedure_denies_do_not_count_towards_a_lockout() {
    let mut s = ProcedureSettings::new("server-room");
    s.anti_passback = AntiPassback::Hard;
    let mut d = Door::new(s);
    for i in 0..10 {
        d.tap(STAFF, Out, ms(i)); // hard anti-passback denies
    }
    assert_eq!(d.p.locked_readers().count(), 0);
}

#[test]
fn clock_below_the_floor_uses_the_floor_and_reports_untrusted() {
    let m0 = Instant::now();
    let mut d = Door::default();
    let snapshot = ProcedureSnapshot {
        floor: Some(ts(T0)),
        presence: Presence::new().snapshot(),
    };
    let settings = ProcedureSettings::new("server-room");
    d.p = Procedure::restore(settings, snapshot, ts("1970-01-01T00:00:05Z"), m0).unwrap();
    d.m0 = m0;
    let boot_wall = ts("1970-01-01T00:00:05Z");
    let status = d.p.clock_status(boot_wall, m0, NtpState::Unsynchronized);
    assert_eq!(status.trust, ClockTrust::Untrusted);
    assert_eq!(status.effective, ts(T0));
    let tap = |d: &mut Door, card: u8, at: Duration| {
        let hash = CardHash([card; 32]);
        let found = d.entries.iter().find(|e| e.card == hash).cloned();
        d.p.on_tap(
            Some(&d.meta),
            Tap {
                reader: "entry",
                direction: In,
                card: hash,
                lookup: found.as_ref().map_or(Lookup::NotFound, Lookup::Found),
                wall: boot_wall,
                mono: m0 + at,
            },
        )
    };
    // At 1970 every entry would be "not yet valid"; on the floor, staff are decided normally.
    let r = tap(&mut d, STAFF, ms(0));
    assert_eq!(r.verdict, Verdict::Grant);
    assert_eq!(
        r.events[0].kind,
        EventKind::ClockUntrusted,
        "raised once, first"
    );
    // Time-boxed badges fail closed: the floor cannot show the visit has not ended.
    let r = tap(&mut d, V3, ms(1_000));
    assert_eq!(r.verdict, Verdict::Deny(DenyReason::ClockUntrusted));
    assert_eq!(kinds(&r.events), vec![EventKind::AccessDenied]);
    // NTP answers.
    let e = d.p.on_tick(ts("2026-05-04T03:00:30Z"), m0 + ms(2_000));
    assert_eq!(kinds(&e), vec![EventKind::ClockUntrustedCleared]);
    // Opting in decides visitors on the floor.
    let mut s = ProcedureSettings::new("server-room");
    s.visitors_when_clock_untrusted = true;
    d.p = Procedure::restore(
        s,
        ProcedureSnapshot {
            floor: Some(ts(T0)),
            presence: Presence::new().snapshot(),
        },
        boot_wall,
        m0,
    )
    .unwrap();
    assert!(matches!(
        tap(&mut d, V3, ms(0)).verdict,
        Verdict::AwaitEscort { .. }
    ));
}

#[test]
fn a_list_raises_the_floor() {
    let mut d = Door::default();
    let mut meta = d.meta.clone();
    meta.issued_at = ts("2026-05-04T05:00:00Z");
    d.p.on_list_applied(&meta, d.m0);
    assert_eq!(d.p.now(ts(T0), d.m0).trust, ClockTrust::Untrusted);
    assert_eq!(
        d.p.snapshot(d.m0 + ms(1_000)).floor,
        Some(ts("2026-05-04T05:00:01Z"))
    );
}

/// Issue 15 item 4: a tick on a wall clock ten years ahead raises the floor at most
/// `clock_max_ahead` past the list's `issued_at`; the clock back at T0 is trusted again
/// within that bound, and staff are decided (not `list_expired`) meanwhile. A signed reset
/// brings the floor back at once.
#[test]
fn a_reading_years_ahead_raises_the_floor_only_to_the_signed_bound() {
    let mut d = Door::default();
    let mut meta = d.meta.clone();
    meta.issued_at = ts("2026-05-04T02:50:00Z");
    d.p.on_list_applied(&meta, d.m0);
    d.p.on_tick(ts(T0), d.m0);
    d.p.on_tick(ts("2036-05-04T03:00:00Z"), d.m0 + ms(1_000));
    let floor = d.p.snapshot(d.m0 + ms(1_000)).floor.expect("floor");
    assert_eq!(floor, ts("2026-05-04T03:50:00Z"), "issued_at + 1 h");
    // The clock is right again: untrusted until real time reaches the bound, staff granted.
    let events = d.p.on_tick(ts("2026-05-04T03:00:02Z"), d.m0 + ms(2_000));
    assert_eq!(kinds(&events), vec![EventKind::ClockUntrusted]);
    assert_eq!(d.tap(STAFF, In, ms(2_000)).verdict, Verdict::Grant);
    // Never past the list's expiry, whatever max_ahead says.
    let mut s = ProcedureSettings::new("server-room");
    s.clock_max_ahead = Duration::from_secs(400 * 86_400);
    let mut d2 = Door::new(s);
    let mut meta = d2.meta.clone();
    meta.issued_at = ts("2026-05-04T02:50:00Z");
    meta.expires_at = ts("2026-05-05T00:00:00Z");
    d2.p.on_list_applied(&meta, d2.m0);
    d2.p.on_tick(ts("2036-05-04T03:00:00Z"), d2.m0);
    assert_eq!(d2.p.snapshot(d2.m0).floor, Some(ts("2026-05-05T00:00:00Z")));
    // The reset: the floor is the command's issued_at again.
    d.p.reset_time_floor(ts(T0), d.m0 + ms(2_000));
    assert!(d.p.take_dirty());
    let events = d.p.on_tick(ts("2026-05-04T03:00:01Z"), d.m0 + ms(3_000));
    assert_eq!(kinds(&events), vec![EventKind::ClockUntrustedCleared]);
}

#[test]
fn restart_with_visitors_inside_keeps_presence_and_overstay_still_fires() {
    let mut d = Door::default();
    d.tap(ESCORT, In, ms(0));
    d.tap(V3, In, ms(1_000));
    let snap = d.p.snapshot(d.m0 + ms(2_000));
    let bytes = serde_json::to_vec(&snap).unwrap();
    let back: ProcedureSnapshot = serde_json::from_slice(&bytes).unwrap();
    // Power cut. Back 30 min later; the monotonic clock starts again.
    let m1 = Instant::now();
    let settings = ProcedureSettings::new("server-room");
    let wall = d.wall(Duration::from_secs(1_800));
    let mut p = Procedure::restore(settings, back, wall, m1).unwrap();
    assert_eq!(p.presence().count(), 2);
    assert!(p.presence().is_inside(&CardHash([V3; 32])));
    // The visit ends at T0 + 1 h: 30 min from now.
    assert_eq!(p.next_deadline(), Some(m1 + Duration::from_secs(1_800)));
    let e = p.on_tick(
        d.wall(Duration::from_secs(3_600)),
        m1 + Duration::from_secs(1_800),
    );
    assert_eq!(kinds(&e), vec![EventKind::VisitOverstay]);
    assert!(p.take_dirty(), "the overstay count must be persisted");
    let e = p.on_tick(
        d.wall(Duration::from_secs(4_500)),
        m1 + Duration::from_secs(2_700),
    );
    assert_eq!(
        kinds(&e),
        vec![EventKind::VisitOverstay],
        "repeats after 15 min"
    );
    // The visitor leaves: the record spans the restart, timed by the wall clock.
    let r = p.on_tap(
        Some(&d.meta),
        Tap {
            reader: "exit",
            direction: Out,
            card: CardHash([V3; 32]),
            lookup: Lookup::Found(&d.entries[2]),
            wall: d.wall(Duration::from_secs(4_801)),
            mono: m1 + Duration::from_secs(3_001),
        },
    );
    let closed = r
        .events
        .iter()
        .find(|e| e.kind == EventKind::VisitClosed)
        .unwrap();
    assert_eq!(closed.duration_s, Some(4_800));
    assert_eq!(closed.entered_at, Some(d.wall(ms(1_000))));
}

#[test]
fn exit_button_passage_exits_the_only_occupant_and_never_guesses() {
    let mut d = Door::default();
    d.tap(STAFF, In, ms(0));
    let e = d.p.on_exit_passage(d.wall(ms(1_000)), d.m0 + ms(1_000));
    assert!(e.is_empty());
    assert!(d.inside().is_empty());
    d.tap(STAFF, In, ms(2_000));
    d.tap(ESCORT, In, ms(3_000));
    let e = d.p.on_exit_passage(d.wall(ms(4_000)), d.m0 + ms(4_000));
    assert_eq!(kinds(&e), vec![EventKind::ExitUnattributed]);
    assert_eq!(d.inside().len(), 2);
}

#[test]
fn visit_closed_json_carries_the_exit_record_and_old_events_are_unchanged() {
    let mut d = Door::default();
    d.tap(ESCORT, In, ms(0));
    d.tap(V3, In, ms(1_000));
    let r = d.tap(V3, Out, ms(61_000));
    let closed = r
        .events
        .into_iter()
        .find(|e| e.kind == EventKind::VisitClosed)
        .unwrap();
    let event = closed.into_event(
        Uuid::from_u128(1),
        9,
        d.wall(ms(61_000)),
        "kominfo",
        "server-room",
    );
    let json = serde_json::to_string(&event).unwrap();
    assert_eq!(
        json,
        r#"{"schema":"pintu.event.v1","id":"00000000-0000-0000-0000-000000000001","seq":9,"time":"2026-05-04T03:01:01Z","site":"kominfo","door":"server-room","kind":"visit.closed","reader":"exit","holder":"badge-3","card":"c:03030303","escort":"siti","visit":"V3","visitor":"Visitor 3","entered_at":"2026-05-04T03:00:01Z","exited_at":"2026-05-04T03:01:01Z","duration_s":60}"#
    );
    assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    // A staff grant has none of the new fields.
    let r = d.tap(STAFF, In, ms(70_000));
    let json = serde_json::to_string(&r.events[0].clone().into_event(
        Uuid::from_u128(2),
        10,
        d.wall(ms(70_000)),
        "kominfo",
        "server-room",
    ))
    .unwrap();
    assert_eq!(
        json,
        r#"{"schema":"pintu.event.v1","id":"00000000-0000-0000-0000-000000000002","seq":10,"time":"2026-05-04T03:01:10Z","site":"kominfo","door":"server-room","kind":"access.granted","reader":"entry","holder":"budi","card":"c:01010101","decision":"grant","list_version":3}"#
    );
}

#[test]
fn new_kinds_and_reasons_match_their_serde_names() {
    for k in [
        EventKind::VisitOverstay,
        EventKind::EscortAwaited,
        EventKind::VisitorUnescorted,
        EventKind::VisitorUnescortedCleared,
        EventKind::VisitClosed,
        EventKind::AntipassbackViolation,
        EventKind::ReaderLockedOut,
        EventKind::ReaderLockoutCleared,
        EventKind::ClockUntrusted,
        EventKind::ClockUntrustedCleared,
        EventKind::ExitUnattributed,
    ] {
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            format!("\"{}\"", k.as_str())
        );
    }
    for r in [
        DenyReason::NoVisit,
        DenyReason::OutsideVisit,
        DenyReason::EscortTimeout,
        DenyReason::AntiPassback,
        DenyReason::ReaderLockedOut,
        DenyReason::ClockUntrusted,
    ] {
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!("\"{}\"", r.as_str())
        );
    }
}

// --- lockdown -----------------------------------------------------------------------------

/// (lockdown, card, side, verdict): a lockdown keeps other listed roles out on the entry
/// side, before any other rule; unknown cards, failed lookups and exits are decided as usual.
#[test]
fn lockdown_admits_only_its_role_on_entry_and_never_refuses_an_exit() {
    use DenyReason::*;
    let staff = Some(Role::Staff);
    let escort = Some(Role::Escort);
    let cases = [
        (None, STAFF, In, Verdict::Grant),
        (staff, STAFF, In, Verdict::Grant),
        (staff, ESCORT, In, Verdict::Deny(Lockdown)),
        (escort, STAFF, In, Verdict::Deny(Lockdown)),
        (escort, ESCORT, In, Verdict::Grant),
        (staff, V3, In, Verdict::Deny(Lockdown)),
        (Some(Role::Visitor), STAFF, In, Verdict::Deny(Lockdown)),
        // The lockdown comes first: a lapsed card of another role hears "lockdown".
        (escort, EXPIRED, In, Verdict::Deny(Lockdown)),
        (staff, EXPIRED, In, Verdict::Deny(Expired)),
        (staff, UNKNOWN, In, Verdict::Deny(UnknownCard)),
        (escort, STAFF, Out, Verdict::Grant),
        (staff, ESCORT, Out, Verdict::Grant),
    ];
    for (lockdown, card, side, want) in cases {
        let name = format!("lockdown {lockdown:?}, card {card}, {side:?}");
        let mut d = Door::default();
        assert_eq!(d.p.set_lockdown(lockdown), None, "{name}");
        assert_eq!(d.p.lockdown(), lockdown, "{name}");
        let r = d.tap(card, side, ms(0));
        assert_eq!(r.verdict, want, "{name}");
        if want == Verdict::Deny(Lockdown) {
            // Exactly the event the door recorded before the lockdown moved into the core.
            let holder = d.entries.iter().find(|e| e.card == CardHash([card; 32]));
            let want_event = EventDraft::tap(
                Decision::Deny(Lockdown),
                "entry",
                holder.map(|e| e.holder.as_str()),
                CardHash([card; 32]).masked(),
                Some(3),
            );
            assert_eq!(r.events, vec![want_event], "{name}");
            assert_eq!(r.tap_event, 0, "{name}");
            assert_eq!(r.escort, None, "{name}");
            assert!(d.inside().is_empty(), "{name}");
            assert!(!d.p.take_dirty(), "{name}: nothing changed");
        }
    }
    let mut d = Door::default();
    let r = d.tap(STAFF, In, ms(0));
    assert_eq!(r.verdict, Verdict::Grant);
    d.p.set_lockdown(escort);
    let found = d.entries[0].clone();
    let r = d.p.on_tap(
        Some(&d.meta),
        Tap {
            reader: "entry",
            direction: In,
            card: found.card,
            lookup: Lookup::Failed,
            wall: d.wall(ms(1)),
            mono: d.m0 + ms(1),
        },
    );
    assert_eq!(
        r.verdict,
        Verdict::Deny(StoreError),
        "a failed lookup fails closed as usual"
    );
}

#[test]
fn lockdown_denies_count_towards_no_lockout_and_release_restores_the_usual_rules() {
    let mut d = Door::default();
    assert_eq!(d.p.set_lockdown(Some(Role::Escort)), None);
    for i in 0..20 {
        let r = d.tap(STAFF, In, ms(i * 100));
        assert_eq!(r.verdict, Verdict::Deny(DenyReason::Lockdown), "tap {i}");
        assert_eq!(kinds(&r.events), vec![EventKind::AccessDenied], "tap {i}");
    }
    assert_eq!(
        d.p.locked_readers().count(),
        0,
        "no lockout from lockdown denies"
    );
    assert_eq!(d.tap(ESCORT, In, ms(2_500)).verdict, Verdict::Grant);
    assert_eq!(d.p.set_lockdown(None), Some(Role::Escort), "the one before");
    assert_eq!(d.p.lockdown(), None);
    assert_eq!(d.tap(STAFF, In, ms(3_000)).verdict, Verdict::Grant);
    assert_eq!(d.inside(), vec!["siti", "budi"]);
}

#[test]
fn the_tap_event_is_marked_when_other_events_come_before_it() {
    // Soft anti-passback: the alarm comes first, then the grant it let through.
    let mut s = ProcedureSettings::new("server-room");
    s.anti_passback = AntiPassback::Soft;
    let mut d = Door::new(s);
    d.tap(STAFF, In, ms(0));
    let r = d.tap(STAFF, In, ms(1_000));
    assert_eq!(
        kinds(&r.events),
        vec![EventKind::AntipassbackViolation, EventKind::AccessGranted]
    );
    assert_eq!(r.tap_event, 1);
    // An escort completing a waiting visitor: the escort's grant is the tap's, the
    // visitor's grant that follows is not.
    let mut d = Door::default();
    d.tap(V3, In, ms(0));
    let r = d.tap(ESCORT, In, ms(1_000));
    let own = r.own_event().unwrap();
    assert_eq!(own.holder.as_deref(), Some("siti"));
    assert!(r.events[r.tap_event + 1..]
        .iter()
        .any(|e| e.holder.as_deref() == Some("badge-3") && e.kind == EventKind::AccessGranted));
    // A lockout that ended is cleared before the tap's own event.
    let mut d = Door::default();
    for i in 0..5 {
        d.tap(UNKNOWN, In, ms(i));
    }
    let r = d.tap(UNKNOWN, In, ms(70_000));
    assert_eq!(
        kinds(&r.events),
        vec![EventKind::ReaderLockoutCleared, EventKind::AccessDenied]
    );
    assert_eq!(r.tap_event, 1);
}

// --- properties ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Tap { card: u8, exit: bool, after_ms: u64 },
    Tick { after_ms: u64 },
    ExitButton { after_ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..=7, any::<bool>(), 0u64..15_000).prop_map(|(card, exit, after_ms)| Op::Tap { card, exit, after_ms }),
        2 => (0u64..30_000).prop_map(|after_ms| Op::Tick { after_ms }),
        1 => (0u64..5_000).prop_map(|after_ms| Op::ExitButton { after_ms }),
    ]
}

fn apb() -> impl Strategy<Value = AntiPassback> {
    prop_oneof![
        Just(AntiPassback::Off),
        Just(AntiPassback::Soft),
        Just(AntiPassback::Hard)
    ]
}

/// The tap's own event is the one the daemon used to guess: the first decision event
/// (granted, denied, awaited) for this card on this reader, and it says what the verdict does.
fn check_tap_event(r: &TapResult, reader: &str, card: u8) -> Result<(), TestCaseError> {
    let masked = CardHash([card; 32]).masked();
    let is_decision = |e: &EventDraft| {
        e.reader.as_deref() == Some(reader)
            && e.card.as_deref() == Some(masked.as_str())
            && matches!(
                e.kind,
                EventKind::AccessGranted | EventKind::AccessDenied | EventKind::EscortAwaited
            )
    };
    prop_assert_eq!(r.events.iter().position(is_decision), Some(r.tap_event));
    let own = &r.events[r.tap_event];
    let want = match r.verdict {
        Verdict::Grant => EventKind::AccessGranted,
        Verdict::Deny(_) => EventKind::AccessDenied,
        Verdict::AwaitEscort { .. } => EventKind::EscortAwaited,
    };
    prop_assert_eq!(own.kind, want);
    if let Verdict::Deny(reason) = r.verdict {
        prop_assert_eq!(own.reason.as_deref(), Some(reason.as_str()));
    }
    Ok(())
}

fn lockdown_role() -> impl Strategy<Value = Option<Role>> {
    prop_oneof![
        Just(None),
        Just(Some(Role::Staff)),
        Just(Some(Role::Escort)),
        Just(Some(Role::Visitor))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Under any lockdown, changed at any time: an entry tap of a listed card of another role
    /// is denied `lockdown` with one event and changes nothing; every other tap is decided as
    /// by a door without the lockdown in the same state.
    #[test]
    fn lockdown_is_one_rule_in_front_of_the_others(
        ops in proptest::collection::vec((op(), lockdown_role()), 1..40),
    ) {
        let mut d = Door::default();
        let mut now = Duration::ZERO;
        for (op, lockdown) in ops {
            d.p.set_lockdown(lockdown);
            let Op::Tap { card, exit, after_ms } = op else { continue };
            now += ms(after_ms);
            let dir = if exit { Out } else { In };
            let role = d.entries.iter().find(|e| e.card == CardHash([card; 32])).map(|e| e.role);
            let kept_out = !exit && matches!((lockdown, role), (Some(a), Some(r)) if a != r);
            let mut twin = d.p.clone();
            twin.set_lockdown(None);
            let before = d.p.presence().count();
            let r = d.tap(card, dir, now);
            check_tap_event(&r, if exit { "exit" } else { "entry" }, card)?;
            if kept_out {
                prop_assert_eq!(r.verdict, Verdict::Deny(DenyReason::Lockdown));
                prop_assert_eq!(r.events.len(), 1);
                prop_assert_eq!(d.p.presence().count(), before);
            } else {
                let hash = CardHash([card; 32]);
                let found = d.entries.iter().find(|e| e.card == hash);
                let want = twin.on_tap(Some(&d.meta), Tap {
                    reader: if exit { "exit" } else { "entry" },
                    direction: dir,
                    card: hash,
                    lookup: found.map_or(Lookup::NotFound, Lookup::Found),
                    wall: d.wall(now),
                    mono: d.m0 + now,
                });
                prop_assert_eq!(r, want);
            }
        }
    }

    /// No visitor is granted without a distinct, valid escort tap within the window; presence
    /// always equals what the grant events say; every `visit.closed` matches an earlier entry.
    #[test]
    fn procedure_invariants(ops in proptest::collection::vec(op(), 1..60), mode in apb()) {
        let mut s = ProcedureSettings::new("server-room");
        s.anti_passback = mode;
        let window = s.escort.window;
        let mut d = Door::new(s);
        let mut now = Duration::ZERO;
        // (when, holder, entry side?, granted?) of every tap
        let mut taps: Vec<(Duration, String, bool, bool)> = Vec::new();
        let mut model: std::collections::BTreeSet<String> = Default::default();
        // visitor holder -> (visit id, entry wall time)
        let mut open: std::collections::HashMap<String, (String, Timestamp)> = Default::default();
        let holder_of = |card: u8| match card {
            STAFF => "budi", ESCORT => "siti", V3 => "badge-3", V4 => "badge-4",
            EXPIRED => "lapsed", IDLE_BADGE => "badge-7", _ => "",
        };
        for op in ops {
            let events = match op {
                Op::Tap { card, exit, after_ms } => {
                    now += ms(after_ms);
                    let r = d.tap(card, if exit { Out } else { In }, now);
                    taps.push((now, holder_of(card).to_string(), !exit, r.verdict == Verdict::Grant));
                    check_tap_event(&r, if exit { "exit" } else { "entry" }, card)?;
                    r.events
                }
                Op::Tick { after_ms } => { now += ms(after_ms); d.tick(now) }
                Op::ExitButton { after_ms } => {
                    now += ms(after_ms);
                    let before: Vec<String> = d.inside().iter().map(|h| h.to_string()).collect();
                    let e = d.p.on_exit_passage(d.wall(now), d.m0 + now);
                    if before.len() == 1 { model.clear(); }
                    e
                }
            };
            for e in &events {
                let holder = e.holder.clone().unwrap_or_default();
                if e.kind == EventKind::AccessGranted {
                    let entering = e.reader.as_deref() == Some("entry");
                    if entering && holder.starts_with("badge-") {
                        // The visitor's last tap, and a distinct escort's granted entry tap
                        // within the window of it.
                        let escort = e.escort.clone();
                        prop_assert!(escort.is_some(), "visitor granted without escort: {e:?}");
                        let escort = escort.unwrap();
                        prop_assert!(escort == "budi" || escort == "siti", "{escort}");
                        prop_assert_ne!(&escort, &holder);
                        let tv = taps.iter().rev().find(|t| t.1 == holder && t.2).map(|t| t.0);
                        prop_assert!(tv.is_some());
                        let tv = tv.unwrap();
                        let paired = taps.iter().any(|t| {
                            t.1 == escort && t.2 && t.3 && t.0.abs_diff(tv) <= window
                        });
                        prop_assert!(paired, "no escort tap within {window:?} of {tv:?}: {taps:?}");
                        open.entry(holder.clone()).or_insert((e.visit.clone().unwrap_or_default(), d.wall(now)));
                    }
                    if entering { model.insert(holder); } else { model.remove(&holder); }
                } else if e.kind == EventKind::VisitClosed {
                    let entered = open.remove(&holder);
                    prop_assert!(entered.is_some(), "visit.closed without an entry: {e:?}");
                    let (visit, at) = entered.unwrap();
                    prop_assert_eq!(e.visit.clone(), Some(visit));
                    prop_assert_eq!(e.entered_at, Some(at));
                    prop_assert!(e.exited_at >= e.entered_at);
                }
            }
            let inside: std::collections::BTreeSet<String> =
                d.inside().iter().map(|h| h.to_string()).collect();
            prop_assert_eq!(&inside, &model, "presence differs from the grants");
            prop_assert_eq!(d.p.presence().count(), inside.len(), "no card twice");
        }
    }
}

/// Issue 24 item 2: with `presence_expiry`, someone who entered and was never seen leaving is
/// dropped at the tick past the limit, and the change is there to persist.
#[test]
fn presence_expiry_drops_who_was_never_seen_leaving() {
    let mut s = ProcedureSettings::new("server-room");
    s.presence_expiry = Some(Duration::from_secs(3_600));
    let mut d = Door::new(s);
    assert_eq!(d.tap(STAFF, In, ms(0)).verdict, Verdict::Grant);
    d.p.take_changes();
    assert!(d.tick(Duration::from_secs(3_599)).is_empty());
    assert_eq!(d.inside(), vec!["budi"]);
    let e = d.tick(Duration::from_secs(3_600));
    assert_eq!(kinds(&e), vec![EventKind::PresenceExpired]);
    assert!(d.inside().is_empty());
    let changes = d.p.take_changes();
    assert_eq!(
        changes.presence.occupants,
        vec![OccupantChange::Remove(CardHash([STAFF; 32]))]
    );
    // Without the setting nobody expires.
    let mut d = Door::default();
    d.tap(STAFF, In, ms(0));
    assert!(d.tick(Duration::from_secs(30 * 86_400)).is_empty());
    assert_eq!(d.inside(), vec!["budi"]);
}
