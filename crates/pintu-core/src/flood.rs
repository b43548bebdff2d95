//! Unknown-card floods: N unknown or denied taps within M seconds on one reader lock that reader
//! out for T seconds, with an alarm (`reader.locked_out`) and a clear event
//! (`reader.lockout.cleared`).
//!
//! Someone guessing or cloning UIDs taps many cards fast; a lockout slows them to N tries per
//! T seconds and tells the office. Valid cards of the configured roles (staff and escort by
//! default) still open during a lockout, so a flood cannot keep staff out. Counting uses the
//! monotonic clock: a sliding window of the last failures per reader.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::decision::DenyReason;
use super::escort::RoleSet;
use super::event::{EventDraft, EventKind};

/// Flood protection settings of one door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodSettings {
    /// N: failures that trigger a lockout. Default 5. 0 turns the protection off.
    pub max_failures: u32,
    /// M: the sliding window they must fall in. Default 30 s.
    pub window: Duration,
    /// T: how long the reader stays locked out. Default 60 s.
    pub lockout: Duration,
    /// Roles whose valid (granted) cards still open during a lockout. Default staff and escort.
    pub pass_roles: RoleSet,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            max_failures: 5,
            window: Duration::from_secs(30),
            lockout: Duration::from_secs(60),
            pass_roles: RoleSet::STAFF_AND_ESCORT,
        }
    }
}

/// Whether a deny counts as a failure towards a lockout.
///
/// Card-level refusals count (unknown card, a card used where or when it may not be). Door-level
/// states do not (no list, list expired, store error, untrusted clock: every tap would count and
/// a fault would lock out the reader), nor do the procedure's own refusals of valid cards
/// (escort timeout, anti-passback) or taps refused by the lockout itself (they would extend it
/// forever).
pub fn counts_as_failure(reason: DenyReason) -> bool {
    // Listed positively: a reason added later (a door-level state, most likely) does not count
    // until someone decides it should.
    matches!(
        reason,
        DenyReason::UnknownCard
            | DenyReason::WrongDoor
            | DenyReason::NotYetValid
            | DenyReason::Expired
            | DenyReason::OutsideSchedule
            | DenyReason::NoVisit
            | DenyReason::OutsideVisit
    )
}

#[derive(Debug, Clone, Default)]
struct ReaderState {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Failure counts and lockouts per reader.
#[derive(Debug, Clone, Default)]
pub struct FloodGuard {
    readers: HashMap<String, ReaderState>,
}

impl FloodGuard {
    /// No failures, no lockouts.
    pub fn new() -> Self {
        FloodGuard::default()
    }

    /// Whether `reader` is locked out at `now`.
    pub fn is_locked(&self, reader: &str, now: Instant) -> bool {
        self.readers
            .get(reader)
            .and_then(|r| r.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Readers locked out now, with the time their lockout ends.
    pub fn locked_readers(&self) -> impl Iterator<Item = (&str, Instant)> {
        self.readers
            .iter()
            .filter_map(|(name, r)| r.locked_until.map(|u| (name.as_str(), u)))
    }

    /// A tap on `reader` was denied for a reason that [`counts_as_failure`]. Returns the
    /// `reader.locked_out` alarm when this failure is the N-th within the window.
    pub fn record_failure(
        &mut self,
        s: &FloodSettings,
        reader: &str,
        now: Instant,
    ) -> Option<EventDraft> {
        if s.max_failures == 0 || self.is_locked(reader, now) {
            return None;
        }
        let state = self.readers.entry(reader.to_string()).or_default();
        state.failures.push_back(now);
        // Failures count while they are less than M old.
        while state
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= s.window)
        {
            state.failures.pop_front();
        }
        if state.failures.len() < s.max_failures as usize {
            return None;
        }
        state.failures.clear();
        state.locked_until = Some(now + s.lockout);
        Some(
            EventDraft::new(EventKind::ReaderLockedOut)
                .reader(reader)
                .reason("flood")
                .detail(format!(
                    "{} unknown or denied taps within {:?}; reader locked out for {:?}",
                    s.max_failures, s.window, s.lockout
                )),
        )
    }

    /// Time passes: lockouts that ended are cleared (`reader.lockout.cleared`).
    pub fn tick(&mut self, now: Instant) -> Vec<EventDraft> {
        let mut out = Vec::new();
        let mut names: Vec<&String> = self
            .readers
            .iter()
            .filter(|(_, r)| r.locked_until.is_some_and(|u| now >= u))
            .map(|(n, _)| n)
            .collect();
        names.sort(); // deterministic event order
        let names: Vec<String> = names.into_iter().cloned().collect();
        for name in names {
            if let Some(r) = self.readers.get_mut(&name) {
                r.locked_until = None;
            }
            out.push(EventDraft::new(EventKind::ReaderLockoutCleared).reader(name));
        }
        // Forget readers with nothing left to remember.
        self.readers
            .retain(|_, r| r.locked_until.is_some() || !r.failures.is_empty());
        out
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.readers.values().filter_map(|r| r.locked_until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> FloodSettings {
        FloodSettings::default()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn n_minus_one_failures_do_not_lock_n_do() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new();
        for i in 0..4 {
            assert_eq!(
                g.record_failure(&s(), "entry", t0 + secs(i)),
                None,
                "failure {}",
                i + 1
            );
        }
        assert!(!g.is_locked("entry", t0 + secs(4)));
        let alarm = g
            .record_failure(&s(), "entry", t0 + secs(4))
            .expect("5th failure locks");
        assert_eq!(alarm.kind, EventKind::ReaderLockedOut);
        assert_eq!(alarm.reader.as_deref(), Some("entry"));
        assert!(g.is_locked("entry", t0 + secs(4)));
        assert!(!g.is_locked("exit", t0 + secs(4)), "per reader");
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new();
        for i in 0..4 {
            g.record_failure(&s(), "entry", t0 + secs(i));
        }
        // The first failure (t0) is exactly 30 s old at t0 + 30: no longer counted.
        assert_eq!(g.record_failure(&s(), "entry", t0 + secs(30)), None);
        assert!(
            g.record_failure(&s(), "entry", t0 + secs(30)).is_some(),
            "t0+1..3, 30, 30"
        );
    }

    #[test]
    fn lockout_ends_after_t_with_a_clear_event_and_counting_starts_over() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new();
        for _ in 0..5 {
            g.record_failure(&s(), "entry", t0);
        }
        assert_eq!(g.next_deadline(), Some(t0 + secs(60)));
        assert!(g.tick(t0 + secs(59)).is_empty());
        assert_eq!(
            g.record_failure(&s(), "entry", t0 + secs(10)),
            None,
            "not counted while locked"
        );
        assert!(g.is_locked("entry", t0 + secs(60) - Duration::from_nanos(1)));
        let cleared = g.tick(t0 + secs(60));
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].kind, EventKind::ReaderLockoutCleared);
        assert!(!g.is_locked("entry", t0 + secs(60)));
        assert_eq!(g.next_deadline(), None);
        assert_eq!(
            g.record_failure(&s(), "entry", t0 + secs(61)),
            None,
            "a fresh count"
        );
    }

    #[test]
    fn zero_turns_it_off() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new();
        let off = FloodSettings {
            max_failures: 0,
            ..s()
        };
        for _ in 0..100 {
            assert_eq!(g.record_failure(&off, "entry", t0), None);
        }
    }

    #[test]
    fn which_denies_count() {
        assert!(counts_as_failure(DenyReason::UnknownCard));
        assert!(counts_as_failure(DenyReason::Expired));
        assert!(counts_as_failure(DenyReason::NoVisit));
        assert!(!counts_as_failure(DenyReason::NoList));
        assert!(!counts_as_failure(DenyReason::ReaderLockedOut));
        assert!(!counts_as_failure(DenyReason::EscortTimeout));
    }
}
