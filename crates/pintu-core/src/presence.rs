//! Presence: who is inside the room, and the alarms and records that follow from it.
//!
//! Entries and exits (exit reader, or the exit button with the door contact when one person is
//! inside) change [`Presence`]. From it follow: anti-passback, the `visitor.unescorted` alarm when
//! the last person who may escort leaves while a visitor is inside, the `visit.closed` exit record
//! when a visitor leaves, and `visit.overstay` while a visitor stays past the visit's window.
//!
//! Presence must survive restarts and power cuts: [`Presence::snapshot`] gives a serde value for
//! the daemon to persist, and [`Presence::restore`] takes it back at boot. Monotonic instants do
//! not survive a reboot, so a restore re-arms overstay timing from wall-clock facts (the visit's
//! end and the last overstay alarm), and a visit's duration falls back to wall-clock times.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::card::CardHash;
use super::escort::EscortSettings;
use super::event::{EventDraft, EventKind};
use super::list::Role;
use super::visit::Visit;

/// Anti-passback: what to do with an entry while already inside, or an exit while not inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntiPassback {
    /// Not checked.
    #[default]
    Off,
    /// Granted, with an `antipassback.violation` alarm.
    Soft,
    /// Denied (`antipassback`), with an `antipassback.violation` alarm.
    Hard,
}

/// The visit a visitor inside is on: a copy, so overstay and the exit record still work when a
/// new list no longer carries the visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitInfo {
    /// Visit id.
    pub id: String,
    /// Who visits.
    pub visitor: String,
    /// Host's holder id.
    pub host: String,
    /// End of the approved window.
    pub valid_until: Timestamp,
}

impl From<&Visit> for VisitInfo {
    fn from(v: &Visit) -> Self {
        VisitInfo {
            id: v.id.clone(),
            visitor: v.visitor.clone(),
            host: v.host.clone(),
            valid_until: v.valid_until,
        }
    }
}

/// Someone inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupant {
    /// Card hash (events and status show only its masked form).
    pub card: CardHash,
    /// Holder id.
    pub holder: String,
    /// Display name.
    pub name: String,
    /// Role in the list at entry.
    pub role: Role,
    /// When they entered (effective wall time).
    pub entered_at: Timestamp,
    /// When they entered on this boot's monotonic clock (not persisted).
    #[serde(skip)]
    pub entered_mono: Option<Instant>,
    /// The visit, for a visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<VisitInfo>,
    /// Holder id of the escort who brought them in, for a visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escort: Option<String>,
    /// Overstay alarms raised so far.
    #[serde(default)]
    pub overstay_alarms: u32,
    /// When the last overstay alarm was raised (wall), to re-arm the repeat after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_overstay_at: Option<Timestamp>,
    /// When the next overstay repeat is due on this boot's monotonic clock (not persisted).
    #[serde(skip)]
    next_overstay: Option<Instant>,
}

impl Occupant {
    /// Someone entering now, with no visit.
    pub fn new(
        card: CardHash,
        holder: impl Into<String>,
        name: impl Into<String>,
        role: Role,
        wall: Timestamp,
        mono: Instant,
    ) -> Self {
        Occupant {
            card,
            holder: holder.into(),
            name: name.into(),
            role,
            entered_at: wall,
            entered_mono: Some(mono),
            visit: None,
            escort: None,
            overstay_alarms: 0,
            last_overstay_at: None,
            next_overstay: None,
        }
    }

    /// The same, on a visit with an escort.
    pub fn on_visit(mut self, visit: VisitInfo, escort: Option<String>) -> Self {
        self.visit = Some(visit);
        self.escort = escort;
        self
    }

    /// Whether this occupant is a visitor on a visit.
    pub fn is_visitor(&self) -> bool {
        self.role == Role::Visitor
    }

    fn describe(&self, kind: EventKind) -> EventDraft {
        let mut e = EventDraft::new(kind)
            .person(&self.holder, self.card.masked())
            .escort(self.escort.clone());
        if let Some(v) = &self.visit {
            e = e.visit(&v.id, &v.visitor);
        }
        e.entered_at = Some(self.entered_at);
        e
    }
}

/// What the daemon persists: everyone inside and the alarm state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceSnapshot {
    /// Snapshot format, 1.
    pub format: u32,
    /// Who is inside, in order of entry.
    pub occupants: Vec<Occupant>,
    /// Whether the unescorted-visitor alarm is raised.
    pub unescorted: bool,
}

/// The snapshot format written by this version.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A snapshot that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// Written by a newer version.
    #[error("presence snapshot format {0} is not supported (expected {SNAPSHOT_FORMAT})")]
    Format(u32),
}

/// Who is inside.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    inside: Vec<Occupant>,
    unescorted: bool,
}

/// Whole seconds from `from` to `to`, zero if negative.
fn whole_seconds(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.duration_since(from).as_secs()).unwrap_or(0)
}

fn wall_gap(later: Timestamp, earlier: Timestamp) -> Duration {
    let d: SignedDuration = later.duration_since(earlier);
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

impl Presence {
    /// Nobody inside.
    pub fn new() -> Self {
        Presence::default()
    }

    /// Everyone inside, in order of entry.
    pub fn occupants(&self) -> &[Occupant] {
        &self.inside
    }

    /// How many are inside.
    pub fn count(&self) -> usize {
        self.inside.len()
    }

    /// Whether `card` is inside.
    pub fn is_inside(&self, card: &CardHash) -> bool {
        self.inside.iter().any(|o| &o.card == card)
    }

    /// Whether the unescorted-visitor alarm is raised.
    pub fn unescorted_alarm(&self) -> bool {
        self.unescorted
    }

    fn escort_inside(&self, s: &EscortSettings) -> bool {
        self.inside.iter().any(|o| s.can_escort(o.role))
    }

    /// Someone entered. Someone already recorded inside keeps their first record (anti-passback
    /// is the caller's business). Clears the unescorted alarm when an escort comes in.
    pub fn enter(&mut self, occupant: Occupant, s: &EscortSettings) -> Vec<EventDraft> {
        if self.is_inside(&occupant.card) {
            return Vec::new();
        }
        let escorts = s.can_escort(occupant.role);
        self.inside.push(occupant);
        if self.unescorted && escorts {
            self.unescorted = false;
            return vec![
                EventDraft::new(EventKind::VisitorUnescortedCleared).reason("escort_entered")
            ];
        }
        Vec::new()
    }

    /// Someone left (exit reader, exit button with one person inside, or an operator correcting
    /// presence: `reader` is `None` then). Returns who left and the events: `visit.closed` for a
    /// visitor, `visitor.unescorted` per visitor left alone, or the alarm's clear event.
    pub fn exit(
        &mut self,
        card: &CardHash,
        reader: Option<&str>,
        wall: Timestamp,
        mono: Instant,
        s: &EscortSettings,
    ) -> Option<(Occupant, Vec<EventDraft>)> {
        let i = self.inside.iter().position(|o| &o.card == card)?;
        let left = self.inside.remove(i);
        let mut out = Vec::new();
        if left.is_visitor() {
            let mut closed = left.describe(EventKind::VisitClosed);
            closed.reader = reader.map(str::to_string);
            closed.exited_at = Some(wall);
            closed.duration_s = Some(match left.entered_mono {
                // Same boot: the monotonic clock is exact whatever the wall clock did.
                Some(entered) => mono.saturating_duration_since(entered).as_secs(),
                None => whole_seconds(left.entered_at, wall),
            });
            out.push(closed);
        }
        let visitors_inside = self.inside.iter().any(Occupant::is_visitor);
        if !self.unescorted && visitors_inside && !self.escort_inside(s) {
            self.unescorted = true;
            for v in self.inside.iter().filter(|o| o.is_visitor()) {
                out.push(
                    v.describe(EventKind::VisitorUnescorted)
                        .detail(format!("{} left; no escort is inside", left.holder)),
                );
            }
        } else if self.unescorted && !visitors_inside {
            self.unescorted = false;
            out.push(
                EventDraft::new(EventKind::VisitorUnescortedCleared).reason("no_visitor_inside"),
            );
        }
        Some((left, out))
    }

    /// Time passes: `visit.overstay` for visitors inside past their window, repeated every
    /// `repeat` until they leave. `wall` is the effective time (see `trusted_time`).
    pub fn tick(&mut self, wall: Timestamp, mono: Instant, repeat: Duration) -> Vec<EventDraft> {
        let mut out = Vec::new();
        for o in self.inside.iter_mut() {
            let Some(visit) = &o.visit else { continue };
            let due = match o.next_overstay {
                None if o.overstay_alarms == 0 => wall >= visit.valid_until,
                None => true, // restored without a re-arm: say it again now
                Some(next) => mono >= next,
            };
            if !due {
                continue;
            }
            o.overstay_alarms += 1;
            o.last_overstay_at = Some(wall);
            // After a late tick, skip the missed repeats rather than raise a burst.
            let next = o.next_overstay.map_or(mono + repeat, |n| n + repeat);
            o.next_overstay = Some(if next <= mono { mono + repeat } else { next });
            let over = wall_gap(wall, visit.valid_until);
            let mut e = o.describe(EventKind::VisitOverstay).detail(format!(
                "visit ended at {}; still inside {} min later (alarm {})",
                visit.valid_until,
                over.as_secs() / 60,
                o.overstay_alarms
            ));
            e.reason = Some(
                if o.overstay_alarms == 1 {
                    "overstay"
                } else {
                    "overstay_repeat"
                }
                .into(),
            );
            out.push(e);
        }
        out
    }

    /// When [`tick`](Self::tick) next has something to do, given the effective wall time and the
    /// monotonic time read together. A wall-clock deadline is converted with that pair; the
    /// daemon should tick at least every second anyway, so a stepped clock is noticed.
    pub fn next_deadline(&self, wall: Timestamp, mono: Instant) -> Option<Instant> {
        self.inside
            .iter()
            .filter_map(|o| {
                let visit = o.visit.as_ref()?;
                match o.next_overstay {
                    Some(next) => Some(next),
                    None if o.overstay_alarms == 0 => {
                        Some(mono + wall_gap(visit.valid_until, wall))
                    }
                    None => Some(mono),
                }
            })
            .min()
    }

    /// The state to persist.
    pub fn snapshot(&self) -> PresenceSnapshot {
        PresenceSnapshot {
            format: SNAPSHOT_FORMAT,
            occupants: self.inside.clone(),
            unescorted: self.unescorted,
        }
    }

    /// Restores a snapshot at boot. `wall` is the effective time, `mono` this boot's monotonic
    /// time: overstay repeats are re-armed from the last alarm's wall time (a visitor whose
    /// window ended while the door was down raises `visit.overstay` at the first tick).
    pub fn restore(
        snapshot: PresenceSnapshot,
        wall: Timestamp,
        mono: Instant,
        repeat: Duration,
    ) -> Result<Self, RestoreError> {
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(RestoreError::Format(snapshot.format));
        }
        let mut inside = snapshot.occupants;
        for o in inside.iter_mut() {
            o.entered_mono = None;
            o.next_overstay = match (o.overstay_alarms, o.last_overstay_at) {
                (0, _) => None,
                (_, Some(last)) => {
                    let due = last
                        .checked_add(
                            SignedDuration::try_from(repeat).unwrap_or(SignedDuration::MAX),
                        )
                        .unwrap_or(last);
                    Some(mono + wall_gap(due, wall))
                }
                (_, None) => Some(mono),
            };
        }
        Ok(Presence {
            inside,
            unescorted: snapshot.unescorted,
        })
    }
}

#[cfg(test)]
mod tests {
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
}
