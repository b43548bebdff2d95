//! The door's lock timing: when to release the strike and when to secure it again.
//!
//! Pure: callers pass the monotonic time in and get lock commands out. Timing uses the monotonic
//! clock, never the wall clock, so an NTP step cannot hold the door open.

use std::time::{Duration, Instant};

/// What to do with the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCommand {
    /// Release the lock (energise or de-energise as wired).
    Unlock,
    /// Return to the locked, safe state.
    Secure,
}

/// Lock state and the pending relock deadline.
#[derive(Debug, Clone)]
pub struct DoorTimer {
    unlock_for: Duration,
    unlocked_until: Option<Instant>,
}

impl DoorTimer {
    /// A locked door that unlocks for `unlock_for` per grant.
    pub fn new(unlock_for: Duration) -> Self {
        DoorTimer {
            unlock_for,
            unlocked_until: None,
        }
    }

    /// Whether the lock is released now.
    pub fn is_unlocked(&self) -> bool {
        self.unlocked_until.is_some()
    }

    /// A grant (or exit request): release, or extend the release if already released.
    pub fn grant(&mut self, now: Instant) -> Option<LockCommand> {
        let was_locked = self.unlocked_until.is_none();
        self.unlocked_until = Some(now + self.unlock_for);
        was_locked.then_some(LockCommand::Unlock)
    }

    /// Time passes: secure once the release time is over.
    pub fn tick(&mut self, now: Instant) -> Option<LockCommand> {
        match self.unlocked_until {
            Some(until) if now >= until => {
                self.unlocked_until = None;
                Some(LockCommand::Secure)
            }
            _ => None,
        }
    }

    /// Secure at once (shutdown, fault).
    pub fn secure_now(&mut self) -> LockCommand {
        self.unlocked_until = None;
        LockCommand::Secure
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.unlocked_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlock_extend_relock() {
        let t0 = Instant::now();
        let mut d = DoorTimer::new(Duration::from_secs(5));
        assert!(!d.is_unlocked());
        assert_eq!(d.tick(t0), None);
        assert_eq!(d.grant(t0), Some(LockCommand::Unlock));
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(5)));
        // A second grant while open extends without a second relay pulse.
        assert_eq!(d.grant(t0 + Duration::from_secs(3)), None);
        assert_eq!(d.tick(t0 + Duration::from_secs(5)), None);
        assert_eq!(
            d.tick(t0 + Duration::from_secs(8)),
            Some(LockCommand::Secure)
        );
        assert!(!d.is_unlocked());
        assert_eq!(d.tick(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            d.grant(t0 + Duration::from_secs(10)),
            Some(LockCommand::Unlock)
        );
        assert_eq!(d.secure_now(), LockCommand::Secure);
        assert_eq!(d.next_deadline(), None);
    }
}
