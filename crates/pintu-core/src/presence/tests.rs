//! Unit tests of presence: exits, the unescorted alarm, overstay, restore.

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

const T0: &str = "2026-05-04T03:00:00Z";

fn at(offset: Duration) -> Timestamp {
    ts(T0) + SignedDuration::try_from(offset).unwrap()
}

fn staff(card: u8, holder: &str, mono: Instant) -> Occupant {
    Occupant::new(
        CardHash([card; 32]),
        holder,
        holder,
        Role::Staff,
        ts(T0),
        mono,
    )
}

fn visitor(card: u8, mono: Instant, until: Timestamp) -> Occupant {
    Occupant::new(
        CardHash([card; 32]),
        format!("badge-{card}"),
        "badge",
        Role::Visitor,
        ts(T0),
        mono,
    )
    .on_visit(
        VisitInfo {
            id: format!("V{card}"),
            visitor: "Andi".into(),
            host: "budi".into(),
            valid_until: until,
        },
        Some("budi".into()),
    )
}

fn kinds(events: &[EventDraft]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

#[test]
fn visitor_exit_writes_the_exit_record() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    p.enter(visitor(3, m0, at(mins(120))), &s);
    assert_eq!(p.count(), 2);
    let exit_wall = at(mins(45));
    let (left, events) = p
        .exit(
            &CardHash([3; 32]),
            Some("exit"),
            exit_wall,
            m0 + mins(45),
            &s,
        )
        .expect("inside");
    assert_eq!(left.holder, "badge-3");
    assert_eq!(kinds(&events), vec![EventKind::VisitClosed]);
    let e = &events[0];
    assert_eq!(e.visit.as_deref(), Some("V3"));
    assert_eq!(e.visitor.as_deref(), Some("Andi"));
    assert_eq!(e.holder.as_deref(), Some("badge-3"));
    assert_eq!(e.card.as_deref(), Some("c:03030303"));
    assert_eq!(e.escort.as_deref(), Some("budi"));
    assert_eq!(e.entered_at, Some(ts(T0)));
    assert_eq!(e.exited_at, Some(exit_wall));
    assert_eq!(e.duration_s, Some(45 * 60));
    assert_eq!(e.reader.as_deref(), Some("exit"));
    assert_eq!(p.count(), 1);
    assert!(
        p.exit(&CardHash([3; 32]), None, exit_wall, m0, &s)
            .is_none(),
        "not inside any more"
    );
}

#[test]
fn last_escort_leaving_raises_unescorted_and_an_escort_entering_clears_it() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    p.enter(staff(2, "siti", m0), &s);
    p.enter(visitor(3, m0, at(mins(120))), &s);
    let (_, e) = p
        .exit(&CardHash([1; 32]), Some("exit"), ts(T0), m0, &s)
        .unwrap();
    assert!(e.is_empty(), "siti is still inside");
    let (_, e) = p
        .exit(&CardHash([2; 32]), Some("exit"), ts(T0), m0, &s)
        .unwrap();
    assert_eq!(kinds(&e), vec![EventKind::VisitorUnescorted]);
    assert_eq!(e[0].visit.as_deref(), Some("V3"));
    assert!(p.unescorted_alarm());
    let e = p.enter(staff(1, "budi", m0), &s);
    assert_eq!(kinds(&e), vec![EventKind::VisitorUnescortedCleared]);
    assert!(!p.unescorted_alarm());
}

#[test]
fn the_last_visitor_leaving_clears_the_unescorted_alarm() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    p.enter(visitor(3, m0, at(mins(120))), &s);
    p.exit(&CardHash([1; 32]), None, ts(T0), m0, &s);
    let (_, e) = p.exit(&CardHash([3; 32]), None, ts(T0), m0, &s).unwrap();
    assert_eq!(
        kinds(&e),
        vec![EventKind::VisitClosed, EventKind::VisitorUnescortedCleared]
    );
    assert!(!p.unescorted_alarm());
}

#[test]
fn a_visitor_is_not_an_escort_for_another_visitor() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    p.enter(visitor(3, m0, at(mins(120))), &s);
    p.enter(visitor(4, m0, at(mins(120))), &s);
    let (_, e) = p.exit(&CardHash([1; 32]), None, ts(T0), m0, &s).unwrap();
    assert_eq!(
        kinds(&e),
        vec![EventKind::VisitorUnescorted, EventKind::VisitorUnescorted]
    );
}

#[test]
fn overstay_at_the_window_end_and_repeats() {
    let m0 = Instant::now();
    let repeat = mins(15);
    let end = at(mins(60));
    let mut p = Presence::new();
    p.enter(visitor(3, m0, end), &EscortSettings::default());
    assert_eq!(p.next_deadline(ts(T0), m0), Some(m0 + mins(60)));
    let just_before = mins(60) - Duration::from_nanos(1);
    assert!(p.tick(at(just_before), m0 + just_before, repeat).is_empty());
    let e = p.tick(end, m0 + mins(60), repeat);
    assert_eq!(kinds(&e), vec![EventKind::VisitOverstay]);
    assert_eq!(e[0].reason.as_deref(), Some("overstay"));
    assert_eq!(e[0].visit.as_deref(), Some("V3"));
    assert_eq!(p.next_deadline(end, m0 + mins(60)), Some(m0 + mins(75)));
    assert!(p.tick(at(mins(74)), m0 + mins(74), repeat).is_empty());
    let e = p.tick(at(mins(75)), m0 + mins(75), repeat);
    assert_eq!(e[0].reason.as_deref(), Some("overstay_repeat"));
    // A tick 40 min late raises one alarm, not a burst, and re-bases the schedule.
    let e = p.tick(at(mins(130)), m0 + mins(130), repeat);
    assert_eq!(e.len(), 1);
    assert_eq!(
        p.next_deadline(at(mins(130)), m0 + mins(130)),
        Some(m0 + mins(145))
    );
    assert_eq!(p.occupants()[0].overstay_alarms, 3);
}

#[test]
fn restart_with_visitors_inside_keeps_them_and_rearms_overstay_from_wall_time() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let repeat = mins(15);
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    p.enter(visitor(3, m0, at(mins(60))), &s); // overstays at T0 + 60
    p.enter(visitor(4, m0, at(mins(600))), &s); // fine for hours
    p.tick(at(mins(60)), m0 + mins(60), repeat); // V3's first alarm at T0 + 60
    let snap = p.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back: PresenceSnapshot = serde_json::from_str(&json).unwrap();

    // Power cut; the door is back at T0 + 70 on a fresh monotonic clock.
    let m1 = Instant::now() + mins(1000);
    let mut q = Presence::restore(back, at(mins(70)), m1, repeat).unwrap();
    assert_eq!(q.count(), 3);
    assert!(q.occupants().iter().all(|o| o.entered_mono.is_none()));
    // V3's repeat is due at T0 + 75 (last alarm + 15 min): 5 min from now.
    assert_eq!(q.next_deadline(at(mins(70)), m1), Some(m1 + mins(5)));
    assert!(q.tick(at(mins(74)), m1 + mins(4), repeat).is_empty());
    let e = q.tick(at(mins(75)), m1 + mins(5), repeat);
    assert_eq!(kinds(&e), vec![EventKind::VisitOverstay]);
    assert_eq!(e[0].visit.as_deref(), Some("V3"));
    // V4's first alarm comes at its window end, from wall time.
    let e = q.tick(at(mins(600)), m1 + mins(530), repeat);
    assert!(e
        .iter()
        .any(|e| e.visit.as_deref() == Some("V4") && e.reason.as_deref() == Some("overstay")));
    // Duration after a restart comes from wall-clock times.
    let (_, e) = q
        .exit(&CardHash([4; 32]), Some("exit"), at(mins(610)), m1, &s)
        .unwrap();
    assert_eq!(e[0].duration_s, Some(610 * 60));
}

#[test]
fn restore_of_a_visitor_whose_window_ended_while_down_fires_at_once() {
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(visitor(3, m0, at(mins(60))), &EscortSettings::default());
    let m1 = m0 + mins(1);
    let mut q = Presence::restore(p.snapshot(), at(mins(90)), m1, mins(15)).unwrap();
    assert_eq!(q.next_deadline(at(mins(90)), m1), Some(m1));
    assert_eq!(
        kinds(&q.tick(at(mins(90)), m1, mins(15))),
        vec![EventKind::VisitOverstay]
    );
}

#[test]
fn snapshot_of_another_format_is_refused() {
    let snap = PresenceSnapshot {
        format: 2,
        occupants: vec![],
        unescorted: false,
    };
    assert_eq!(
        Presence::restore(snap, ts(T0), Instant::now(), mins(1)).unwrap_err(),
        RestoreError::Format(2)
    );
}

#[test]
fn entering_twice_keeps_the_first_record() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    let mut again = staff(1, "budi", m0 + mins(5));
    again.entered_at = at(mins(5));
    p.enter(again, &s);
    assert_eq!(p.count(), 1);
    assert_eq!(p.occupants()[0].entered_at, ts(T0));
}

/// What the daemon keeps on disk: one record per card, and the alarm.
#[derive(Default)]
struct Records {
    occupants: std::collections::BTreeMap<CardHash, Occupant>,
    unescorted: bool,
}

impl Records {
    fn apply(&mut self, changes: PresenceChanges) {
        for change in changes.occupants {
            match change {
                OccupantChange::Upsert(o) => {
                    self.occupants.insert(o.card, *o);
                }
                OccupantChange::Remove(card) => {
                    self.occupants.remove(&card);
                }
            }
        }
        if let Some(on) = changes.unescorted {
            self.unescorted = on;
        }
    }

    /// The snapshot a boot rebuilds from the records (in no particular order on disk).
    fn snapshot(&self) -> PresenceSnapshot {
        PresenceSnapshot {
            format: SNAPSHOT_FORMAT,
            occupants: self.occupants.values().cloned().collect(),
            unescorted: self.unescorted,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Enter {
        card: u8,
        visitor: bool,
        window_min: u64,
    },
    Exit {
        card: u8,
    },
    Tick {
        min: u64,
    },
    Expire {
        max_min: u64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8, any::<bool>(), 1u64..120).prop_map(|(card, visitor, window_min)| Op::Enter {
            card,
            visitor,
            window_min
        }),
        (0u8..8).prop_map(|card| Op::Exit { card }),
        (0u64..60).prop_map(|min| Op::Tick { min }),
        (1u64..90).prop_map(|max_min| Op::Expire { max_min }),
        Just(Op::Restart),
    ]
}

use proptest::prelude::*;

proptest! {
    /// Applying every change set, in order, to an empty set of records always gives the whole
    /// snapshot; and a restart from those records (stored in card order, not entry order) gives
    /// back the same people in the same order.
    #[test]
    fn the_change_sets_applied_to_nothing_make_the_snapshot(ops in prop::collection::vec(op(), 1..60)) {
        let s = EscortSettings::default();
        let m0 = Instant::now();
        let repeat = mins(15);
        let mut p = Presence::new();
        let mut records = Records::default();
        let mut now = Duration::ZERO;
        for op in ops {
            match op {
                Op::Enter { card, visitor: true, window_min } => {
                    p.enter(self::visitor(card, m0 + now, at(now + mins(window_min))), &s);
                }
                Op::Enter { card, visitor: false, .. } => {
                    p.enter(staff(card, "h", m0 + now), &s);
                }
                Op::Exit { card } => {
                    p.exit(&CardHash([card; 32]), Some("exit"), at(now), m0 + now, &s);
                }
                Op::Tick { min } => {
                    now += mins(min);
                    p.tick(at(now), m0 + now, repeat);
                }
                Op::Expire { max_min } => {
                    p.expire(at(now), mins(max_min), &s);
                }
                Op::Restart => {
                    p = Presence::restore(records.snapshot(), at(now), m0 + now, repeat)
                        .expect("restore");
                    prop_assert!(p.take_changes().is_empty(), "a restore changes nothing");
                }
            }
            records.apply(p.take_changes());
            let mut want = p.snapshot();
            let mut got = records.snapshot();
            got.occupants.sort_by_key(|o| o.order);
            prop_assert_eq!(got.unescorted, want.unescorted);
            prop_assert_eq!(got.occupants.len(), want.occupants.len());
            // Instants are not persisted: compare what is.
            for o in want.occupants.iter_mut().chain(got.occupants.iter_mut()) {
                o.entered_mono = None;
                o.next_overstay = None;
            }
            prop_assert_eq!(&got.occupants, &want.occupants);
            prop_assert_eq!(p.visitors(), p.occupants().iter().filter(|o| o.is_visitor()).count());
        }
    }
}

#[test]
fn a_snapshot_from_before_entry_order_was_saved_keeps_its_order() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(9, "first", m0), &s);
    p.enter(staff(1, "second", m0), &s);
    p.enter(staff(5, "third", m0), &s);
    let mut old = p.snapshot();
    for o in old.occupants.iter_mut() {
        o.order = 0; // as read from a snapshot without the field
    }
    let mut q = Presence::restore(old, ts(T0), m0, mins(15)).expect("restore");
    let holders: Vec<_> = q.occupants().iter().map(|o| o.holder.as_str()).collect();
    assert_eq!(holders, vec!["first", "second", "third"]);
    q.enter(staff(2, "fourth", m0), &s);
    let orders: Vec<_> = q.occupants().iter().map(|o| o.order).collect();
    assert_eq!(orders, vec![0, 1, 2, 3]);
}

#[test]
fn presence_expires_after_the_limit_with_an_event_and_the_alarm_follows() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s); // entered at T0
    p.enter(visitor(3, m0, at(mins(600))), &s);
    let mut late = staff(2, "siti", m0);
    late.entered_at = at(mins(30));
    p.enter(late, &s);
    p.take_changes();
    let max = mins(120);
    assert!(p.expire(at(mins(119)), max, &s).is_empty());
    // Budi and the visitor reach the limit; siti (30 min later) is still inside, so the
    // visitor was not left alone while inside.
    let e = p.expire(at(mins(120)), max, &s);
    assert_eq!(
        kinds(&e),
        vec![EventKind::PresenceExpired, EventKind::PresenceExpired]
    );
    assert_eq!(e[0].holder.as_deref(), Some("budi"));
    assert_eq!(e[0].entered_at, Some(ts(T0)));
    assert_eq!(e[0].reason.as_deref(), Some("presence_expiry"));
    assert_eq!(e[1].visit.as_deref(), Some("V3"), "the visit is named");
    let inside: Vec<_> = p.occupants().iter().map(|o| o.holder.as_str()).collect();
    assert_eq!(inside, ["siti"]);
    assert_eq!(p.visitors(), 0);
    let changes = p.take_changes();
    assert_eq!(changes.occupants.len(), 2);
    assert!(changes
        .occupants
        .iter()
        .all(|c| matches!(c, OccupantChange::Remove(_))));
}

#[test]
fn an_escort_expiring_leaves_a_visitor_unescorted() {
    let s = EscortSettings::default();
    let m0 = Instant::now();
    let mut p = Presence::new();
    p.enter(staff(1, "budi", m0), &s);
    let mut v = visitor(3, m0, at(mins(600)));
    v.entered_at = at(mins(60));
    p.enter(v, &s);
    let e = p.expire(at(mins(120)), mins(120), &s);
    assert_eq!(
        kinds(&e),
        vec![EventKind::PresenceExpired, EventKind::VisitorUnescorted]
    );
    assert!(p.unescorted_alarm());
}
