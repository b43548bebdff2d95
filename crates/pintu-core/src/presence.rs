//! Presence: who is inside the room, and the alarms and records that follow from it.
//!
//! Entries and exits (exit reader, or the exit button with the door contact when one person is
//! inside) change [`Presence`]. From it follow: anti-passback, the `visitor.unescorted` alarm when
//! the last person who may escort leaves while a visitor is inside, the `visit.closed` exit record
//! when a visitor leaves, and `visit.overstay` while a visitor stays past the visit's window.
//!
//! Presence must survive restarts and power cuts. The daemon saves it by change: after each
//! input, [`Presence::take_changes`] says which occupants were added, updated or removed (and
//! whether the unescorted alarm changed), so a tap writes one small record, not everyone inside.
//! At boot the records make a [`PresenceSnapshot`] again, which [`Presence::restore`] takes back
//! ([`Presence::snapshot`] gives the whole state at once). Monotonic instants do
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
    /// Position in the order of entry, set by [`Presence::enter`]: records saved one by one
    /// (in no order) are put back in entry order at boot. Snapshots written before it existed
    /// read as 0 and keep their list order.
    #[serde(default)]
    pub order: u64,
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
            order: 0,
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

/// One occupant's change since the last [`Presence::take_changes`]: what to write for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OccupantChange {
    /// Inside, with this record (new, or updated by an overstay alarm).
    Upsert(Box<Occupant>),
    /// No longer inside.
    Remove(CardHash),
}

impl OccupantChange {
    /// The card the change is about.
    pub fn card(&self) -> &CardHash {
        match self {
            OccupantChange::Upsert(o) => &o.card,
            OccupantChange::Remove(card) => card,
        }
    }
}

/// What changed in presence since the last [`Presence::take_changes`]. Applied in order to the
/// records saved before, it gives the records of [`Presence::snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresenceChanges {
    /// One change per occupant touched, at most.
    pub occupants: Vec<OccupantChange>,
    /// The unescorted alarm's new state, when it changed.
    pub unescorted: Option<bool>,
}

impl PresenceChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty() && self.unescorted.is_none()
    }
}

/// Who is inside.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    inside: Vec<Occupant>,
    unescorted: bool,
    /// Visitors among `inside` (status asks on every change; counted, not scanned).
    visitors: usize,
    /// The order the next occupant gets.
    next_order: u64,
    /// Cards entered, left or updated since the last `take_changes`.
    touched: Vec<CardHash>,
    /// Whether `unescorted` changed since the last `take_changes`.
    unescorted_touched: bool,
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

    /// How many of them are visitors.
    pub fn visitors(&self) -> usize {
        self.visitors
    }

    /// What changed since the last call: the records to write (one per occupant touched, as
    /// they are now) and the alarm state. The caller persists them before acknowledging the
    /// input that changed them.
    pub fn take_changes(&mut self) -> PresenceChanges {
        let mut touched = std::mem::take(&mut self.touched);
        // Few per input (a tap touches one or two cards): sorting is cheaper than a set.
        touched.sort_unstable();
        touched.dedup();
        let occupants = touched
            .into_iter()
            .map(|card| match self.inside.iter().find(|o| o.card == card) {
                Some(o) => OccupantChange::Upsert(Box::new(o.clone())),
                None => OccupantChange::Remove(card),
            })
            .collect();
        let unescorted = std::mem::take(&mut self.unescorted_touched).then_some(self.unescorted);
        PresenceChanges {
            occupants,
            unescorted,
        }
    }

    fn set_unescorted(&mut self, on: bool) {
        self.unescorted = on;
        self.unescorted_touched = true;
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
        let mut occupant = occupant;
        occupant.order = self.next_order;
        self.next_order += 1;
        self.visitors += usize::from(occupant.is_visitor());
        self.touched.push(occupant.card);
        self.inside.push(occupant);
        if self.unescorted && escorts {
            self.set_unescorted(false);
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
        let left = self.remove_at(i);
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
        out.extend(self.after_leaving(&left.holder, s));
        Some((left, out))
    }

    fn remove_at(&mut self, i: usize) -> Occupant {
        let left = self.inside.remove(i);
        self.visitors -= usize::from(left.is_visitor());
        self.touched.push(left.card);
        left
    }

    /// The unescorted alarm after `who` left: raised per visitor left without an escort, or
    /// cleared when no visitor is inside any more.
    fn after_leaving(&mut self, who: &str, s: &EscortSettings) -> Vec<EventDraft> {
        let mut out = Vec::new();
        let visitors_inside = self.visitors > 0;
        if !self.unescorted && visitors_inside && !self.escort_inside(s) {
            self.set_unescorted(true);
            for v in self.inside.iter().filter(|o| o.is_visitor()) {
                out.push(
                    v.describe(EventKind::VisitorUnescorted)
                        .detail(format!("{who} left; no escort is inside")),
                );
            }
        } else if self.unescorted && !visitors_inside {
            self.set_unescorted(false);
            out.push(
                EventDraft::new(EventKind::VisitorUnescortedCleared).reason("no_visitor_inside"),
            );
        }
        out
    }

    /// Drops whoever has been recorded inside for `max` or longer at `wall` (the effective
    /// time), with a `presence.expired` event each: a door without exit information never sees
    /// them leave, and must not count them inside forever. The unescorted alarm follows as for
    /// an exit. No `visit.closed` for a visitor: nobody saw them leave.
    pub fn expire(
        &mut self,
        wall: Timestamp,
        max: Duration,
        s: &EscortSettings,
    ) -> Vec<EventDraft> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.inside.len() {
            let o = &self.inside[i];
            let inside_for = wall_gap(wall, o.entered_at);
            if inside_for < max {
                i += 1;
                continue;
            }
            let left = self.remove_at(i);
            out.push(
                left.describe(EventKind::PresenceExpired)
                    .reason("presence_expiry")
                    .detail(format!(
                        "recorded inside since {} ({} min) with no exit seen; dropped from presence",
                        left.entered_at,
                        inside_for.as_secs() / 60
                    )),
            );
            out.extend(self.after_leaving(&left.holder, s));
        }
        out
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
            self.touched.push(o.card);
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
        // Records come back in entry order; a snapshot from before `order` existed (all 0)
        // keeps its list order and is numbered here.
        inside.sort_by_key(|o| o.order);
        if inside.windows(2).any(|w| w[0].order >= w[1].order) {
            for (i, o) in inside.iter_mut().enumerate() {
                o.order = i as u64;
            }
        }
        let next_order = inside.last().map_or(0, |o| o.order + 1);
        let visitors = inside.iter().filter(|o| o.is_visitor()).count();
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
            visitors,
            next_order,
            touched: Vec::new(),
            unescorted_touched: false,
        })
    }
}

#[cfg(test)]
mod tests;
