//! The door state machine: lock, door contact and exit button → lock commands and door events.
//!
//! Pure: callers pass inputs with the monotonic time and get [`Output`]s back; [`DoorMachine::next_deadline`]
//! says when to call [`DoorMachine::tick`]. Timing uses the monotonic clock, never the wall clock,
//! so an NTP step cannot hold the door open.
//!
//! ```text
//!  locked ──grant/exit button──► released ──contact opens──► open (authorised)
//!    ▲                              │                           │
//!    └──── unlock time over ◄───────┘      contact closes ◄─────┘ (relock at once if configured)
//!  locked ──contact opens──► open (FORCED: alarm until it closes)
//!  open for held_open_prealarm ► pre-alarm; for held_open_alarm ► alarm; both cleared on close
//! ```

use std::time::{Duration, Instant};

/// What to do with the lock (the relay): the machine's commands, carried out by the door task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCommand {
    /// Release the lock (energise or de-energise as wired) so the door can be opened.
    Release,
    /// Return to the locked, safe state.
    Secure,
}

/// How the lock behaves without power, which decides what a fault or a stop leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockType {
    /// Locked without power (electric strike): a fault or stop leaves the door locked.
    FailSecure,
    /// Unlocked without power (maglock, for fire codes): a fault or stop releases the door.
    FailSafe,
}

/// Door timing and behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorSettings {
    /// How long a grant or exit request releases the lock.
    pub unlock_for: Duration,
    /// Secure the lock as soon as the door closes after being opened.
    pub relock_on_close: bool,
    /// Open this long: pre-alarm (`door.held_open` with reason `prealarm`).
    pub held_open_prealarm: Duration,
    /// Open this long: alarm (`door.held_open` with reason `alarm`).
    pub held_open_alarm: Duration,
    /// A door opening this soon after the lock was secured still counts as authorised (the
    /// person pulled the door just as the strike relocked).
    pub relock_grace: Duration,
}

/// What the machine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Drive the lock.
    Lock(LockCommand),
    /// Record a door event.
    Event(DoorEvent),
}

/// Door events (each becomes an event in the outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorEvent {
    /// The door opened; `authorised` is false for a forced opening.
    Opened {
        /// Opened while released (or within the relock grace).
        authorised: bool,
    },
    /// The door closed.
    Closed,
    /// Alarm: the door was opened while locked and no exit was requested.
    ForcedOpen,
    /// The forced-open alarm cleared (door closed).
    ForcedOpenCleared,
    /// The door has been open for the pre-alarm time.
    HeldOpenPrealarm,
    /// The door has been open for the alarm time.
    HeldOpenAlarm,
    /// A held-open pre-alarm or alarm cleared (door closed).
    HeldOpenCleared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeldOpen {
    None,
    Prealarm,
    Alarm,
}

/// The door's state.
#[derive(Debug, Clone)]
pub struct DoorMachine {
    settings: DoorSettings,
    released_until: Option<Instant>,
    last_secured_at: Option<Instant>,
    opened_at: Option<Instant>,
    forced: bool,
    held: HeldOpen,
}

impl DoorMachine {
    /// A locked, closed door.
    pub fn new(settings: DoorSettings) -> Self {
        DoorMachine {
            settings,
            released_until: None,
            last_secured_at: None,
            opened_at: None,
            forced: false,
            held: HeldOpen::None,
        }
    }

    /// Whether the lock is released.
    pub fn is_released(&self) -> bool {
        self.released_until.is_some()
    }

    /// Whether the contact says the door is open.
    pub fn is_open(&self) -> bool {
        self.opened_at.is_some()
    }

    /// Whether an alarm (forced or held open) is active.
    pub fn alarm_active(&self) -> bool {
        self.forced || self.held != HeldOpen::None
    }

    /// A granted tap or an exit request: release (or extend the release).
    pub fn release(&mut self, now: Instant) -> Vec<Output> {
        let was_secured = self.released_until.is_none();
        self.released_until = Some(now + self.settings.unlock_for);
        if was_secured {
            vec![Output::Lock(LockCommand::Release)]
        } else {
            vec![]
        }
    }

    /// The door contact opened.
    pub fn contact_opened(&mut self, now: Instant) -> Vec<Output> {
        if self.opened_at.is_some() {
            return vec![]; // a repeated edge: already open
        }
        self.opened_at = Some(now);
        let in_grace = self
            .last_secured_at
            .is_some_and(|t| now.saturating_duration_since(t) <= self.settings.relock_grace);
        let authorised = self.released_until.is_some() || in_grace;
        let mut out = vec![Output::Event(DoorEvent::Opened { authorised })];
        if !authorised {
            self.forced = true;
            out.push(Output::Event(DoorEvent::ForcedOpen));
        }
        out
    }

    /// The door contact closed.
    pub fn contact_closed(&mut self, _now: Instant) -> Vec<Output> {
        if self.opened_at.take().is_none() {
            return vec![]; // a repeated edge: already closed
        }
        let mut out = vec![Output::Event(DoorEvent::Closed)];
        if std::mem::take(&mut self.forced) {
            out.push(Output::Event(DoorEvent::ForcedOpenCleared));
        }
        if std::mem::replace(&mut self.held, HeldOpen::None) != HeldOpen::None {
            out.push(Output::Event(DoorEvent::HeldOpenCleared));
        }
        if self.settings.relock_on_close && self.released_until.is_some() {
            out.extend(self.secure(_now));
        }
        out
    }

    /// Time passes: relock when the release is over; raise held-open alarms.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.released_until.is_some_and(|until| now >= until) {
            out.extend(self.secure(now));
        }
        if let Some(opened) = self.opened_at {
            let open_for = now.saturating_duration_since(opened);
            if self.held == HeldOpen::None && open_for >= self.settings.held_open_prealarm {
                self.held = HeldOpen::Prealarm;
                out.push(Output::Event(DoorEvent::HeldOpenPrealarm));
            }
            if self.held == HeldOpen::Prealarm && open_for >= self.settings.held_open_alarm {
                self.held = HeldOpen::Alarm;
                out.push(Output::Event(DoorEvent::HeldOpenAlarm));
            }
        }
        out
    }

    /// Secure at once (shutdown, fault, relock on close).
    pub fn secure(&mut self, now: Instant) -> Vec<Output> {
        if self.released_until.take().is_some() {
            self.last_secured_at = Some(now);
        }
        vec![Output::Lock(LockCommand::Secure)]
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let held = self.opened_at.and_then(|opened| match self.held {
            HeldOpen::None => Some(opened + self.settings.held_open_prealarm),
            HeldOpen::Prealarm => Some(opened + self.settings.held_open_alarm),
            HeldOpen::Alarm => None,
        });
        [self.released_until, held].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DoorEvent::*;
    use LockCommand::*;
    use Output::{Event, Lock};

    fn settings() -> DoorSettings {
        DoorSettings {
            unlock_for: Duration::from_secs(5),
            relock_on_close: true,
            held_open_prealarm: Duration::from_secs(20),
            held_open_alarm: Duration::from_secs(30),
            relock_grace: Duration::from_secs(1),
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn grant_open_close_relocks_at_once() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        assert_eq!(d.release(t), vec![Lock(Release)]);
        assert_eq!(
            d.contact_opened(t + s(1)),
            vec![Event(Opened { authorised: true })]
        );
        assert_eq!(
            d.contact_closed(t + s(3)),
            vec![Event(Closed), Lock(Secure)]
        );
        assert!(!d.is_released());
        assert_eq!(d.tick(t + s(5)), vec![]);
        assert!(!d.alarm_active());
    }

    #[test]
    fn without_relock_on_close_the_unlock_time_runs_out() {
        let t = Instant::now();
        let mut d = DoorMachine::new(DoorSettings {
            relock_on_close: false,
            ..settings()
        });
        d.release(t);
        d.contact_opened(t + s(1));
        assert_eq!(d.contact_closed(t + s(2)), vec![Event(Closed)]);
        assert!(d.is_released());
        assert_eq!(d.next_deadline(), Some(t + s(5)));
        assert_eq!(d.tick(t + s(5)), vec![Lock(Secure)]);
    }

    #[test]
    fn unopened_grant_relocks_after_unlock_time_and_extends_on_second_grant() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        d.release(t);
        assert_eq!(
            d.release(t + s(3)),
            vec![],
            "a second grant extends without a second pulse"
        );
        assert_eq!(d.tick(t + s(5)), vec![]);
        assert_eq!(d.tick(t + s(8)), vec![Lock(Secure)]);
    }

    #[test]
    fn forced_open_alarm_and_clear() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        assert_eq!(
            d.contact_opened(t),
            vec![Event(Opened { authorised: false }), Event(ForcedOpen)]
        );
        assert!(d.alarm_active());
        assert_eq!(
            d.contact_closed(t + s(2)),
            vec![Event(Closed), Event(ForcedOpenCleared)]
        );
        assert!(!d.alarm_active());
    }

    #[test]
    fn exit_button_makes_the_opening_authorised() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        assert_eq!(d.release(t), vec![Lock(Release)]); // REX
        assert_eq!(
            d.contact_opened(t + s(1)),
            vec![Event(Opened { authorised: true })]
        );
    }

    #[test]
    fn opening_just_after_relock_is_within_grace_but_not_later() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        d.release(t);
        assert_eq!(d.tick(t + s(5)), vec![Lock(Secure)]);
        assert_eq!(
            d.contact_opened(t + s(5) + Duration::from_millis(500)),
            vec![Event(Opened { authorised: true })]
        );
        d.contact_closed(t + s(7));
        assert_eq!(
            d.contact_opened(t + s(9)),
            vec![Event(Opened { authorised: false }), Event(ForcedOpen)]
        );
    }

    #[test]
    fn held_open_prealarm_alarm_and_clear() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        d.release(t);
        d.contact_opened(t);
        assert_eq!(d.tick(t + s(5)), vec![Lock(Secure)]);
        assert_eq!(d.next_deadline(), Some(t + s(20)));
        assert_eq!(d.tick(t + s(19)), vec![]);
        assert_eq!(d.tick(t + s(20)), vec![Event(HeldOpenPrealarm)]);
        assert_eq!(d.next_deadline(), Some(t + s(30)));
        assert_eq!(d.tick(t + s(30)), vec![Event(HeldOpenAlarm)]);
        assert_eq!(d.next_deadline(), None);
        assert_eq!(d.tick(t + s(60)), vec![], "alarms are raised once");
        assert_eq!(
            d.contact_closed(t + s(61)),
            vec![Event(Closed), Event(HeldOpenCleared)]
        );
        assert!(!d.alarm_active());
    }

    #[test]
    fn a_late_tick_raises_both_held_open_levels_in_order() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        d.contact_opened(t);
        assert_eq!(
            d.tick(t + s(45)),
            vec![Event(HeldOpenPrealarm), Event(HeldOpenAlarm)]
        );
    }

    #[test]
    fn repeated_edges_are_ignored() {
        let t = Instant::now();
        let mut d = DoorMachine::new(settings());
        assert_eq!(d.contact_closed(t), vec![]);
        d.release(t);
        d.contact_opened(t);
        assert_eq!(d.contact_opened(t + s(1)), vec![]);
    }
}
