//! The server-room procedure at the door: one pure state machine the door task calls per tap and
//! per tick, composing the list decision ([`decide`]) with visits, the escort rule, presence and
//! anti-passback, flood lockouts and the trusted-time floor.
//!
//! Inputs carry the wall clock and the monotonic clock read together; outputs are a [`Verdict`]
//! for the lock (grant, deny, or wait for an escort) and [`EventDraft`]s, in the order they
//! happened, with the tap's own event marked ([`TapResult::tap_event`]). A lockdown (a signed
//! command admitting one role) is decided here too, before anything else about an entry tap. No I/O: the daemon persists what [`Procedure::take_changes`] says changed (occupants
//! entered or left, the unescorted alarm, the time floor), rebuilds a [`ProcedureSnapshot`] from
//! those records at boot, and calls [`Procedure::on_tick`] at
//! [`Procedure::next_deadline`] (and at least every second). Rules and defaults: `docs/visits.md`.
//!
//! ```text
//!  tap ─► lockdown? (entry side, listed card of another role: deny, nothing else happens)
//!       ─► effective time (floor) ─► decide(list, entry, door, time) ─► reader lockout?
//!          entry reader: visitor? ─► clock trusted? visit window? anti-passback? escort pair?
//!                        staff/escort ─► anti-passback ─► grant, enter; completes a waiting visitor
//!          exit reader:  inside? ─► grant, leave (visit.closed, visitor.unescorted)
//!                        not inside ─► decide + anti-passback
//!  tick ─► escort timeouts, lockouts ending, overstay alarms, clock trust changes
//! ```

use std::time::Instant;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::card::CardHash;
use super::decision::{decide, Decision, DenyReason};
use super::escort::{EscortBook, PendingVisitor, Tapper, VisitorTap};
use super::event::{EventDraft, EventKind};
use super::flood::{counts_as_failure, FloodGuard};
use super::list::{Entry, ListMeta, Role};
use super::presence::{
    AntiPassback, Occupant, Presence, PresenceChanges, PresenceSnapshot, RestoreError, VisitInfo,
};
use super::trusted_time::{ClockStatus, ClockTrust, EffectiveTime, NtpState, TrustedTime};
use super::visit::{visit_for, VisitLookup};

mod settings;
pub use self::settings::ProcedureSettings;

/// Which side of the door a reader is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Outside: taps to enter.
    Entry,
    /// Inside: taps to leave.
    Exit,
}

/// The list lookup for the tapped card.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// The card's entry.
    Found(&'a Entry),
    /// The card is not in the list (or there is no list).
    NotFound,
    /// The store could not be read: the tap fails closed (`store_error`).
    Failed,
}

/// One tap.
#[derive(Debug, Clone, Copy)]
pub struct Tap<'a> {
    /// Reader name.
    pub reader: &'a str,
    /// Entry or exit side.
    pub direction: Direction,
    /// The card's keyed hash.
    pub card: CardHash,
    /// What the list says about it.
    pub lookup: Lookup<'a>,
    /// Wall clock at the tap.
    pub wall: Timestamp,
    /// Monotonic clock at the tap.
    pub mono: Instant,
}

/// What the door does with a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Release the lock.
    Grant,
    /// Keep it locked.
    Deny(DenyReason),
    /// Keep it locked: a visitor waits for an escort until `until`; a later escort tap or the
    /// tick at `until` decides.
    AwaitEscort {
        /// When the wait times out (first instant past the window).
        until: Instant,
    },
}

impl Verdict {
    /// `grant`, `deny` or `await_escort` (for logs and the control socket).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Grant => "grant",
            Verdict::Deny(_) => "deny",
            Verdict::AwaitEscort { .. } => "await_escort",
        }
    }
}

/// The result of a tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapResult {
    /// What to do with the lock.
    pub verdict: Verdict,
    /// Holder id of the escort, when this tap admitted a visitor (either half of the pair).
    pub escort: Option<String>,
    /// Events to record, in order. Clock and lockout events may come before the tap's own event
    /// (an anti-passback alarm too), presence and visit events after it.
    pub events: Vec<EventDraft>,
    /// Index in `events` of the tap's own event (`access.granted`, `access.denied` or
    /// `escort.awaited` for this card on this reader): the one whose sequence number
    /// acknowledges the tap. Every tap has exactly one.
    pub tap_event: usize,
}

impl TapResult {
    /// The tap's own event.
    pub fn own_event(&self) -> Option<&EventDraft> {
        self.events.get(self.tap_event)
    }
}

/// What the daemon persists (sled) so presence and the time floor survive a power cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureSnapshot {
    /// Trusted-time floor (the lower bound on the time when the snapshot was taken).
    pub floor: Option<Timestamp>,
    /// Who is inside.
    pub presence: PresenceSnapshot,
}

/// What changed since the last [`Procedure::take_changes`]: what the daemon writes before it
/// acknowledges the input that changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcedureChanges {
    /// Occupants entered, updated or left, and the unescorted alarm.
    pub presence: PresenceChanges,
    /// The time floor was raised by a signed time or reset by a signed command: save it now
    /// (floor rises from clock readings are saved at the daemon's own pace).
    pub floor: bool,
}

impl ProcedureChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.presence.is_empty() && !self.floor
    }
}

/// The procedure's state at one door.
#[derive(Debug, Clone)]
pub struct Procedure {
    settings: ProcedureSettings,
    time: TrustedTime,
    escorts: EscortBook,
    presence: Presence,
    flood: FloodGuard,
    clock_untrusted: bool,
    /// The active list's `expires_at`: a clock reading never raises the floor past it.
    list_expires: Option<Timestamp>,
    /// Last effective wall time and monotonic time seen, to turn wall deadlines into instants.
    last: (Timestamp, Instant),
    /// The floor moved by a signed time or a reset since the last `take_changes`.
    floor_changed: bool,
    /// The role still admitted during a lockdown (a signed command). Not in the snapshot: the
    /// daemon persists it on its own, as the command that set it is recorded.
    lockdown: Option<Role>,
}

impl Procedure {
    /// A fresh door: nobody inside, no floor.
    pub fn new(settings: ProcedureSettings, wall: Timestamp, mono: Instant) -> Self {
        let time = TrustedTime::new(None, mono, settings.clock_tolerance);
        Procedure {
            settings,
            time,
            escorts: EscortBook::new(),
            presence: Presence::new(),
            flood: FloodGuard::new(),
            clock_untrusted: false,
            list_expires: None,
            last: (wall, mono),
            floor_changed: false,
            lockdown: None,
        }
    }

    /// A door restarting from its persisted snapshot. Overstay timers are re-armed from wall
    /// time (the monotonic clock restarted); the effective time already respects the floor.
    pub fn restore(
        settings: ProcedureSettings,
        snapshot: ProcedureSnapshot,
        wall: Timestamp,
        mono: Instant,
    ) -> Result<Self, RestoreError> {
        let time = TrustedTime::new(snapshot.floor, mono, settings.clock_tolerance);
        let now = time.now(wall, mono);
        let presence =
            Presence::restore(snapshot.presence, now.at, mono, settings.overstay_repeat)?;
        Ok(Procedure {
            settings,
            time,
            escorts: EscortBook::new(),
            presence,
            flood: FloodGuard::new(),
            clock_untrusted: false,
            list_expires: None,
            last: (now.at, mono),
            floor_changed: false,
            lockdown: None,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ProcedureSettings {
        &self.settings
    }

    /// Who is inside.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Visitors waiting for an escort.
    pub fn awaiting_escort(&self) -> impl Iterator<Item = &PendingVisitor> {
        self.escorts.pending()
    }

    /// Readers locked out, with the instant their lockout ends.
    pub fn locked_readers(&self) -> impl Iterator<Item = (&str, Instant)> {
        self.flood.locked_readers()
    }

    /// The lockdown in force: the role still admitted, if any.
    pub fn lockdown(&self) -> Option<Role> {
        self.lockdown
    }

    /// A signed `lockdown` (`Some(role)`: only that role may enter) or `release_lockdown`
    /// (`None`). Returns the lockdown that was in force before. Leaving is never refused.
    pub fn set_lockdown(&mut self, role: Option<Role>) -> Option<Role> {
        std::mem::replace(&mut self.lockdown, role)
    }

    /// The time decisions use now.
    pub fn now(&self, wall: Timestamp, mono: Instant) -> EffectiveTime {
        self.time.now(wall, mono)
    }

    /// Clock facts for status.
    pub fn clock_status(&self, wall: Timestamp, mono: Instant, ntp: NtpState) -> ClockStatus {
        self.time.status(wall, mono, ntp)
    }

    /// A list became active: its `issued_at` (signed at the office) raises the floor, and its
    /// `expires_at` bounds what clock readings may raise it to.
    pub fn on_list_applied(&mut self, meta: &ListMeta, mono: Instant) {
        self.list_expires = Some(meta.expires_at);
        self.observe_time(meta.issued_at, mono);
    }

    /// A signed time known to have passed raises the floor.
    pub fn observe_time(&mut self, seen: Timestamp, mono: Instant) {
        if self.time.observe(seen, mono) {
            self.floor_changed = true;
        }
    }

    /// A verified signed command's `issued_at`: the office's clock, a basis for how far clock
    /// readings may raise the floor (not the floor itself: it may be ahead by the clock skew).
    pub fn observe_command_time(&mut self, issued_at: Timestamp) {
        self.time.observe_signed_basis(issued_at);
    }

    /// A signed `reset_time_floor`: the floor becomes `to` (the command's `issued_at`).
    pub fn reset_time_floor(&mut self, to: Timestamp, mono: Instant) {
        self.time.reset(to, mono);
        self.floor_changed = true;
    }

    /// The snapshot to persist. `mono`: now, so the floor includes the time elapsed since it was
    /// seen.
    pub fn snapshot(&self, mono: Instant) -> ProcedureSnapshot {
        ProcedureSnapshot {
            floor: self.time.to_persist(mono),
            presence: self.presence.snapshot(),
        }
    }

    /// The time floor to persist now (`mono`: now, so it includes the time elapsed since it
    /// was seen).
    pub fn floor_to_persist(&self, mono: Instant) -> Option<Timestamp> {
        self.time.to_persist(mono)
    }

    /// What changed since the last call (see [`ProcedureChanges`]): persist it before
    /// acknowledging the input that changed it.
    pub fn take_changes(&mut self) -> ProcedureChanges {
        ProcedureChanges {
            presence: self.presence.take_changes(),
            floor: std::mem::take(&mut self.floor_changed),
        }
    }

    /// Whether anything changed since the last call (and forgets what): for a caller that
    /// saves the whole [`snapshot`](Self::snapshot).
    pub fn take_dirty(&mut self) -> bool {
        !self.take_changes().is_empty()
    }

    /// When [`on_tick`](Self::on_tick) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let (wall, mono) = self.last;
        [
            self.escorts.next_deadline(&self.settings.escort),
            self.flood.next_deadline(),
            self.presence.next_deadline(wall, mono),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The effective time, with `clock.untrusted` / `.cleared` on a change of trust.
    fn clock(
        &mut self,
        wall: Timestamp,
        mono: Instant,
        events: &mut Vec<EventDraft>,
    ) -> EffectiveTime {
        let now = self.time.now(wall, mono);
        let untrusted = now.trust == ClockTrust::Untrusted;
        if untrusted != self.clock_untrusted {
            self.clock_untrusted = untrusted;
            events.push(if untrusted {
                EventDraft::new(EventKind::ClockUntrusted).detail(format!(
                    "wall clock {wall} is below the trusted floor; deciding on {}",
                    now.at
                ))
            } else {
                EventDraft::new(EventKind::ClockUntrustedCleared)
                    .detail(format!("wall clock {wall} is trusted again"))
            });
        }
        if !untrusted {
            // Time seen on a trusted clock has passed, as far as something signed vouches for
            // it: the floor never rises past the newest signed time plus `clock_max_ahead`,
            // nor past the list's expiry, so one spoofed reading cannot push it into the future.
            // (Saved with the next snapshot, at least once a minute, as before.)
            self.time.observe_clock(
                now.at,
                mono,
                self.settings.clock_max_ahead,
                self.list_expires,
            );
        }
        self.last = (now.at, mono);
        now
    }

    /// Time passes: escort timeouts, lockouts ending, overstay alarms, clock trust changes.
    pub fn on_tick(&mut self, wall: Timestamp, mono: Instant) -> Vec<EventDraft> {
        let mut events = Vec::new();
        let now = self.clock(wall, mono, &mut events);
        for p in self.escorts.expire(&self.settings.escort, mono) {
            events.push(
                EventDraft::tap(
                    Decision::Deny(DenyReason::EscortTimeout),
                    &p.reader,
                    Some(&p.visitor.holder),
                    p.visitor.card.masked(),
                    None,
                )
                .visit(&p.visit.id, &p.visit.visitor)
                .detail(format!(
                    "no escort within {:?}",
                    self.settings.escort.max_window()
                )),
            );
        }
        events.extend(self.flood.tick(mono));
        if let Some(max) = self.settings.presence_expiry {
            events.extend(self.presence.expire(now.at, max, &self.settings.escort));
        }
        events.extend(
            self.presence
                .tick(now.at, mono, self.settings.overstay_repeat),
        );
        events
    }

    /// The exit button was pressed and the door opened: someone left, but who? With exactly one
    /// person inside, they did. With several, presence is left as it is (`exit.unattributed`):
    /// use an exit reader where visitors are escorted.
    pub fn on_exit_passage(&mut self, wall: Timestamp, mono: Instant) -> Vec<EventDraft> {
        let mut events = Vec::new();
        let now = self.clock(wall, mono, &mut events);
        match self.presence.occupants() {
            [] => {}
            [only] => {
                let card = only.card;
                if let Some((_, e)) =
                    self.presence
                        .exit(&card, None, now.at, mono, &self.settings.escort)
                {
                    events.extend(e);
                }
            }
            many => events.push(EventDraft::new(EventKind::ExitUnattributed).detail(format!(
                "exit button with {} inside; presence unchanged",
                many.len()
            ))),
        }
        events
    }

    /// A tap. `list` is the active list's metadata (its visits included), `None` without a list.
    pub fn on_tap(&mut self, list: Option<&ListMeta>, tap: Tap<'_>) -> TapResult {
        let list_version = list.map(|l| l.version);
        // A lockdown keeps every other listed role out, ahead of any other rule and without
        // touching any state (no clock reading, no lockout count): the card is known and
        // simply not admitted now. Unknown cards and exits go through the usual rules.
        if let (Some(allowed), Direction::Entry, Lookup::Found(e)) =
            (self.lockdown, tap.direction, tap.lookup)
        {
            if e.role != allowed {
                let event = EventDraft::tap(
                    Decision::Deny(DenyReason::Lockdown),
                    tap.reader,
                    Some(&e.holder),
                    tap.card.masked(),
                    list_version,
                );
                return TapResult {
                    verdict: Verdict::Deny(DenyReason::Lockdown),
                    escort: None,
                    events: vec![event],
                    tap_event: 0,
                };
            }
        }
        let mut events = Vec::new();
        let now = self.clock(tap.wall, tap.mono, &mut events);
        // Lockouts that have ended are cleared before the tap is decided, not only at the next
        // tick: under a flood the tick can come after a few more taps, which must neither be
        // counted as failures before `reader.lockout.cleared` is said nor start a new lockout on
        // top of one that was never cleared.
        events.extend(self.flood.tick(tap.mono));
        let entry = match tap.lookup {
            Lookup::Found(e) => Some(e),
            Lookup::NotFound | Lookup::Failed => None,
        };
        let base = match tap.lookup {
            Lookup::Failed => Decision::Deny(DenyReason::StoreError),
            _ => decide(list, entry, &self.settings.door, now.at),
        };
        let mut ctx = TapCtx {
            tap,
            entry,
            list_version,
            events,
            escort: None,
        };
        let decided = match tap.direction {
            Direction::Exit => self.exit_tap(&mut ctx, base, now),
            Direction::Entry => self.entry_tap(&mut ctx, list, base, now),
        };
        TapResult {
            verdict: decided.verdict,
            escort: ctx.escort,
            events: ctx.events,
            tap_event: decided.tap_event,
        }
    }

    /// A deny: the tap's event, and a failure towards a lockout when it counts.
    fn deny(&mut self, ctx: &mut TapCtx<'_>, reason: DenyReason) -> Decided {
        let event = ctx.tap_event(Decision::Deny(reason));
        let decided = ctx.decide(event, Verdict::Deny(reason));
        if counts_as_failure(reason) {
            ctx.events.extend(self.flood.record_failure(
                &self.settings.flood,
                ctx.tap.reader,
                ctx.tap.mono,
            ));
        }
        decided
    }

    /// A reader in lockout lets through only granted cards of the pass roles.
    fn locked_out(&self, ctx: &TapCtx<'_>, base: Decision) -> bool {
        if !self.flood.is_locked(ctx.tap.reader, ctx.tap.mono) {
            return false;
        }
        let passes = base == Decision::Grant
            && ctx.entry.is_some_and(|e| {
                e.role != Role::Visitor && self.settings.flood.pass_roles.contains(e.role)
            });
        !passes
    }

    /// Anti-passback on a violation: `Some(deny)` in hard mode; the alarm in soft and hard.
    fn anti_passback(&self, ctx: &mut TapCtx<'_>, why: &str) -> Option<Decided> {
        let mode = self.settings.anti_passback;
        if mode == AntiPassback::Off {
            return None;
        }
        let (holder, name) = ctx.who();
        let hard = mode == AntiPassback::Hard;
        ctx.events.push(
            EventDraft::new(EventKind::AntipassbackViolation)
                .reader(ctx.tap.reader)
                .person(holder, ctx.tap.card.masked())
                .reason(why)
                .detail(format!(
                    "{name}: {}; {}",
                    why.replace('_', " "),
                    if hard {
                        "denied (hard)"
                    } else {
                        "granted (soft)"
                    }
                )),
        );
        hard.then(|| {
            let event = ctx.tap_event(Decision::Deny(DenyReason::AntiPassback));
            ctx.decide(event, Verdict::Deny(DenyReason::AntiPassback))
        })
    }

    fn exit_tap(&mut self, ctx: &mut TapCtx<'_>, base: Decision, now: EffectiveTime) -> Decided {
        let card = ctx.tap.card;
        // Someone inside always gets out (and their exit is recorded), whatever the list says now.
        if let Some((left, events)) = self.presence.exit(
            &card,
            Some(ctx.tap.reader),
            now.at,
            ctx.tap.mono,
            &self.settings.escort,
        ) {
            let mut granted = EventDraft::tap(
                Decision::Grant,
                ctx.tap.reader,
                Some(&left.holder),
                card.masked(),
                ctx.list_version,
            );
            if let Some(v) = &left.visit {
                granted = granted.visit(&v.id, &v.visitor);
            }
            let decided = ctx.decide(granted, Verdict::Grant);
            ctx.events.extend(events);
            return decided;
        }
        if self.locked_out(ctx, base) {
            return self.deny(ctx, DenyReason::ReaderLockedOut);
        }
        if let Decision::Deny(reason) = base {
            return self.deny(ctx, reason);
        }
        if let Some(denied) = self.anti_passback(ctx, "not_inside") {
            return denied;
        }
        // Soft mode: the alarm came first, then the grant it let through (as on entry).
        let event = ctx.tap_event(Decision::Grant);
        ctx.decide(event, Verdict::Grant)
    }

    fn entry_tap(
        &mut self,
        ctx: &mut TapCtx<'_>,
        list: Option<&ListMeta>,
        base: Decision,
        now: EffectiveTime,
    ) -> Decided {
        if self.locked_out(ctx, base) {
            return self.deny(ctx, DenyReason::ReaderLockedOut);
        }
        let entry = match (base, ctx.entry) {
            (Decision::Deny(reason), _) => return self.deny(ctx, reason),
            (Decision::Grant, Some(e)) => e,
            // decide() never grants without an entry; fail closed if it ever did.
            (Decision::Grant, None) => return self.deny(ctx, DenyReason::UnknownCard),
        };
        let tapper = Tapper {
            card: ctx.tap.card,
            holder: entry.holder.clone(),
            name: entry.name.clone(),
            role: entry.role,
        };
        if entry.role == Role::Visitor {
            return self.visitor_entry(ctx, list, tapper, now);
        }
        if self.presence.is_inside(&ctx.tap.card) {
            if let Some(denied) = self.anti_passback(ctx, "already_inside") {
                return denied;
            }
        }
        let event = ctx.tap_event(Decision::Grant);
        let decided = ctx.decide(event, Verdict::Grant);
        let occupant = Occupant::new(
            tapper.card,
            &tapper.holder,
            &tapper.name,
            tapper.role,
            now.at,
            ctx.tap.mono,
        );
        ctx.events
            .extend(self.presence.enter(occupant, &self.settings.escort));
        if self.settings.escort.can_escort(tapper.role) {
            let escort_holder = tapper.holder.clone();
            if let Some(p) = self
                .escorts
                .escort_tapped(&self.settings.escort, tapper, ctx.tap.mono)
            {
                self.admit_waiting_visitor(ctx, list, p, escort_holder, now);
            }
        }
        decided
    }

    fn visitor_entry(
        &mut self,
        ctx: &mut TapCtx<'_>,
        list: Option<&ListMeta>,
        visitor: Tapper,
        now: EffectiveTime,
    ) -> Decided {
        if now.trust == ClockTrust::Untrusted && !self.settings.visitors_when_clock_untrusted {
            return self.deny(ctx, DenyReason::ClockUntrusted);
        }
        let visits = list.map_or(&[][..], |l| &l.visits[..]);
        let visit = match visit_for(visits, &visitor.card, now.at) {
            VisitLookup::Active(v) => v.clone(),
            VisitLookup::NotNow => return self.deny(ctx, DenyReason::OutsideVisit),
            VisitLookup::None => return self.deny(ctx, DenyReason::NoVisit),
        };
        if self.presence.is_inside(&visitor.card) {
            if let Some(denied) = self.anti_passback(ctx, "already_inside") {
                return denied;
            }
        }
        let waiting = PendingVisitor {
            reader: ctx.tap.reader.to_string(),
            visitor: visitor.clone(),
            visit: visit.clone(),
            at: ctx.tap.mono,
            wall: now.at,
        };
        match self.escorts.visitor_tapped(&self.settings.escort, waiting) {
            VisitorTap::Escorted(escort) => {
                ctx.escort = Some(escort.holder.clone());
                let event = ctx
                    .tap_event(Decision::Grant)
                    .visit(&visit.id, &visit.visitor)
                    .escort(Some(escort.holder.clone()));
                let decided = ctx.decide(event, Verdict::Grant);
                let occupant = Occupant::new(
                    visitor.card,
                    &visitor.holder,
                    &visitor.name,
                    Role::Visitor,
                    now.at,
                    ctx.tap.mono,
                )
                .on_visit(VisitInfo::from(&visit), Some(escort.holder));
                ctx.events
                    .extend(self.presence.enter(occupant, &self.settings.escort));
                decided
            }
            VisitorTap::Awaiting { deadline } => {
                let event = EventDraft::new(EventKind::EscortAwaited)
                    .reader(ctx.tap.reader)
                    .person(&visitor.holder, visitor.card.masked())
                    .visit(&visit.id, &visit.visitor)
                    .list_version(ctx.list_version)
                    .detail(format!(
                        "waiting up to {:?} for an escort's card",
                        self.settings.escort.max_window()
                    ));
                ctx.decide(event, Verdict::AwaitEscort { until: deadline })
            }
        }
    }

    /// An escort's tap completed a waiting visitor: admit them, unless their visit no longer
    /// covers the time (it ended, or a new list dropped it, while they waited).
    fn admit_waiting_visitor(
        &mut self,
        ctx: &mut TapCtx<'_>,
        list: Option<&ListMeta>,
        p: PendingVisitor,
        escort: String,
        now: EffectiveTime,
    ) {
        let visits = list.map_or(&[][..], |l| &l.visits[..]);
        let still = matches!(visit_for(visits, &p.visitor.card, now.at), VisitLookup::Active(v) if v.id == p.visit.id);
        let decision = if still {
            Decision::Grant
        } else {
            Decision::Deny(DenyReason::OutsideVisit)
        };
        let mut e = EventDraft::tap(
            decision,
            &p.reader,
            Some(&p.visitor.holder),
            p.visitor.card.masked(),
            ctx.list_version,
        )
        .visit(&p.visit.id, &p.visit.visitor);
        if !still {
            ctx.events.push(e);
            return;
        }
        e = e.escort(Some(escort.clone()));
        ctx.events.push(e);
        ctx.escort = Some(escort.clone());
        let occupant = Occupant::new(
            p.visitor.card,
            &p.visitor.holder,
            &p.visitor.name,
            Role::Visitor,
            now.at,
            ctx.tap.mono,
        )
        .on_visit(VisitInfo::from(&p.visit), Some(escort));
        ctx.events
            .extend(self.presence.enter(occupant, &self.settings.escort));
    }
}

/// A tap decided: its verdict and where its own event sits in the tap's events. Made only by
/// [`TapCtx::decide`], which records that event, so every way through a tap yields exactly one.
#[must_use]
struct Decided {
    verdict: Verdict,
    tap_event: usize,
}

/// One tap being decided.
struct TapCtx<'a> {
    tap: Tap<'a>,
    entry: Option<&'a Entry>,
    list_version: Option<u64>,
    events: Vec<EventDraft>,
    escort: Option<String>,
}

impl TapCtx<'_> {
    /// Records the tap's own event and the verdict it carries.
    fn decide(&mut self, event: EventDraft, verdict: Verdict) -> Decided {
        self.events.push(event);
        Decided {
            verdict,
            tap_event: self.events.len() - 1,
        }
    }

    fn tap_event(&self, decision: Decision) -> EventDraft {
        EventDraft::tap(
            decision,
            self.tap.reader,
            self.entry.map(|e| e.holder.as_str()),
            self.tap.card.masked(),
            self.list_version,
        )
    }

    fn who(&self) -> (String, String) {
        match self.entry {
            Some(e) => (e.holder.clone(), e.name.clone()),
            None => (String::new(), "unknown holder".into()),
        }
    }
}

#[cfg(test)]
mod tests;
