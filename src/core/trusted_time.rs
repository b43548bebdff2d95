//! Trusted time without an RTC: the door never believes a wall clock below the newest time it has
//! seen.
//!
//! A Raspberry Pi has no battery-backed clock. After a power cut it boots at 1970 (or at the time
//! `fake-hwclock` saved) until NTP answers, and an attacker on the network can step an unsigned NTP
//! clock back. The door therefore keeps a **floor**: the newest of the last applied list's
//! `issued_at` (signed at the office) and the last event time. The daemon persists it.
//!
//! Since the floor was seen, at least the monotonic time elapsed since then has passed, so the
//! lower bound on the real time is `floor + elapsed`. [`TrustedTime::now`] returns the wall clock
//! when it is at or above that bound (within a small tolerance for NTP corrections), and the bound
//! otherwise, marked [`ClockTrust::Untrusted`]. The effective time never goes back within a boot.
//!
//! The bound is only a lower bound: it can show that a window has not yet started, never that it
//! has not yet ended. So while the clock is untrusted, time-boxed (visitor) badges fail closed; see
//! `docs/visits.md`. NTP's state is passed in by the daemon and only reported.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Whether the wall clock can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockTrust {
    /// The wall clock is at or above the floor: decisions use it.
    Trusted,
    /// The wall clock is below the floor: decisions use the floor (a lower bound).
    Untrusted,
}

/// NTP synchronisation as the daemon sees it (e.g. from `timedatectl`'s `NTPSynchronized`);
/// reported in status, never used to override the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NtpState {
    /// The system clock is synchronised.
    Synchronized,
    /// Not (yet) synchronised.
    Unsynchronized,
    /// The daemon cannot tell.
    Unknown,
}

/// The time the core decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveTime {
    /// The time to decide on.
    pub at: Timestamp,
    /// Whether the wall clock was believed.
    pub trust: ClockTrust,
}

/// Clock facts for the door's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStatus {
    /// The wall clock as read.
    pub wall: Timestamp,
    /// The persisted floor, if any time has been seen yet.
    pub floor: Option<Timestamp>,
    /// The time decisions use.
    pub effective: Timestamp,
    /// Trusted or not.
    pub trust: ClockTrust,
    /// NTP state as passed in.
    pub ntp: NtpState,
}

/// The stateless rule: the wall clock if it is not below the floor, else the floor.
pub fn effective_now(wall: Timestamp, floor: Option<Timestamp>) -> (Timestamp, ClockTrust) {
    match floor {
        Some(floor) if wall < floor => (floor, ClockTrust::Untrusted),
        _ => (wall, ClockTrust::Trusted),
    }
}

/// The floor and where it was seen on the monotonic clock of this boot.
#[derive(Debug, Clone)]
pub struct TrustedTime {
    floor: Option<Timestamp>,
    /// When (monotonic) `floor` was set in this boot: the real time is at least
    /// `floor + (now - anchor)`.
    anchor: Option<Instant>,
    /// A wall clock this much below the bound still counts as trusted (NTP slews and small steps
    /// must not flap the status); the effective time is the bound all the same.
    tolerance: Duration,
}

impl TrustedTime {
    /// Restores the persisted floor at boot (`at`: the monotonic time of the restore).
    pub fn new(floor: Option<Timestamp>, at: Instant, tolerance: Duration) -> Self {
        TrustedTime {
            floor,
            anchor: floor.map(|_| at),
            tolerance,
        }
    }

    /// The floor as last raised.
    pub fn floor(&self) -> Option<Timestamp> {
        self.floor
    }

    /// What to persist at monotonic `at`: the lower bound, which includes the time elapsed since
    /// the floor was seen (it is known to have passed, so the next boot may start from it).
    pub fn to_persist(&self, at: Instant) -> Option<Timestamp> {
        self.lower_bound(at)
    }

    /// A time known to have passed (a list's `issued_at`, an event's time) was seen at monotonic
    /// `at`. Raises the floor if it is newer; the floor never goes down. Returns whether it rose.
    pub fn observe(&mut self, seen: Timestamp, at: Instant) -> bool {
        if self.lower_bound(at).is_some_and(|bound| seen <= bound) {
            return false;
        }
        self.floor = Some(seen);
        self.anchor = Some(at);
        true
    }

    /// The lower bound on the real time at monotonic `at`.
    pub fn lower_bound(&self, at: Instant) -> Option<Timestamp> {
        let floor = self.floor?;
        let elapsed = self
            .anchor
            .map(|anchor| at.saturating_duration_since(anchor))
            .unwrap_or_default();
        Some(
            floor
                .checked_add(SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX))
                .unwrap_or(floor),
        )
    }

    /// The time to decide on, given the wall clock and the monotonic clock read together.
    pub fn now(&self, wall: Timestamp, at: Instant) -> EffectiveTime {
        let Some(bound) = self.lower_bound(at) else {
            return EffectiveTime {
                at: wall,
                trust: ClockTrust::Trusted,
            };
        };
        if wall >= bound {
            return EffectiveTime {
                at: wall,
                trust: ClockTrust::Trusted,
            };
        }
        let behind = bound.duration_since(wall).unsigned_abs();
        EffectiveTime {
            at: bound,
            trust: if behind <= self.tolerance {
                ClockTrust::Trusted
            } else {
                ClockTrust::Untrusted
            },
        }
    }

    /// Status fields.
    pub fn status(&self, wall: Timestamp, at: Instant, ntp: NtpState) -> ClockStatus {
        let now = self.now(wall, at);
        ClockStatus {
            wall,
            floor: self.floor,
            effective: now.at,
            trust: now.trust,
            ntp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stateless_rule_table() {
        let floor = ts("2026-05-04T08:00:00Z");
        let cases = [
            (
                "no floor yet",
                "1970-01-01T00:00:10Z",
                None,
                "1970-01-01T00:00:10Z",
                ClockTrust::Trusted,
            ),
            (
                "1970 after a power cut",
                "1970-01-01T00:00:10Z",
                Some(floor),
                "2026-05-04T08:00:00Z",
                ClockTrust::Untrusted,
            ),
            (
                "one nanosecond below",
                "2026-05-04T07:59:59.999999999Z",
                Some(floor),
                "2026-05-04T08:00:00Z",
                ClockTrust::Untrusted,
            ),
            (
                "at the floor",
                "2026-05-04T08:00:00Z",
                Some(floor),
                "2026-05-04T08:00:00Z",
                ClockTrust::Trusted,
            ),
            (
                "above",
                "2026-05-04T09:00:00Z",
                Some(floor),
                "2026-05-04T09:00:00Z",
                ClockTrust::Trusted,
            ),
        ];
        for (name, wall, floor, want_at, want_trust) in cases {
            assert_eq!(
                effective_now(ts(wall), floor),
                (ts(want_at), want_trust),
                "{name}"
            );
        }
    }

    #[test]
    fn below_the_floor_uses_floor_plus_elapsed_and_reports_untrusted() {
        let boot = Instant::now();
        let floor = ts("2026-05-04T08:00:00Z");
        let t = TrustedTime::new(Some(floor), boot, Duration::from_secs(5));
        let wall = ts("1970-01-01T00:01:00Z");
        let later = boot + Duration::from_secs(90);
        let now = t.now(wall, later);
        assert_eq!(
            now.at,
            ts("2026-05-04T08:01:30Z"),
            "the bound advances with the monotonic clock"
        );
        assert_eq!(now.trust, ClockTrust::Untrusted);
        let status = t.status(wall, later, NtpState::Unsynchronized);
        assert_eq!(status.floor, Some(floor));
        assert_eq!(status.effective, now.at);
        assert_eq!(status.trust, ClockTrust::Untrusted);
        assert_eq!(status.ntp, NtpState::Unsynchronized);
        // NTP answers: the wall clock jumps above the bound and is believed again.
        let synced = ts("2026-05-04T09:30:00Z");
        assert_eq!(
            t.now(synced, later),
            EffectiveTime {
                at: synced,
                trust: ClockTrust::Trusted
            }
        );
    }

    #[test]
    fn small_steps_back_stay_trusted_but_never_move_time_back() {
        let t0 = Instant::now();
        let mut t = TrustedTime::new(None, t0, Duration::from_secs(5));
        assert!(t.observe(ts("2026-05-04T08:00:00Z"), t0));
        // NTP steps the clock back 2 s: within the tolerance, the effective time holds at the bound.
        let now = t.now(ts("2026-05-04T07:59:58Z"), t0);
        assert_eq!(
            now,
            EffectiveTime {
                at: ts("2026-05-04T08:00:00Z"),
                trust: ClockTrust::Trusted
            }
        );
        // 6 s back: untrusted.
        assert_eq!(
            t.now(ts("2026-05-04T07:59:54Z"), t0).trust,
            ClockTrust::Untrusted
        );
    }

    #[test]
    fn floor_only_rises() {
        let t0 = Instant::now();
        let mut t = TrustedTime::new(Some(ts("2026-05-04T08:00:00Z")), t0, Duration::ZERO);
        assert!(
            !t.observe(ts("2026-05-04T07:00:00Z"), t0),
            "an older time is ignored"
        );
        // 10 s later the bound is 08:00:10; an event stamped 08:00:05 does not lower it.
        assert!(!t.observe(ts("2026-05-04T08:00:05Z"), t0 + Duration::from_secs(10)));
        assert_eq!(t.floor(), Some(ts("2026-05-04T08:00:00Z")));
        assert!(t.observe(ts("2026-05-05T00:00:00Z"), t0 + Duration::from_secs(10)));
        assert_eq!(t.floor(), Some(ts("2026-05-05T00:00:00Z")));
    }
}
