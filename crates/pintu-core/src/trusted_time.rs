//! Trusted time without an RTC: the door never believes a wall clock below the newest time it has
//! seen.
//!
//! A Raspberry Pi has no battery-backed clock. After a power cut it boots at 1970 (or at the time
//! `fake-hwclock` saved) until NTP answers, and an attacker on the network can step an unsigned NTP
//! clock back. The door therefore keeps a **floor**: a time known to have passed. The daemon
//! persists it.
//!
//! What may raise the floor (`docs/visits.md`, "The clock without an RTC"):
//! - **signed times** ([`TrustedTime::observe`]): an applied list's `issued_at`, signed at the
//!   office; a signed `reset_time_floor` command sets it ([`TrustedTime::reset`]);
//! - **the monotonic clock**: time elapsed since the floor was seen has passed;
//! - **wall-clock readings** ([`TrustedTime::observe_clock`]), but never past the
//!   [`clock_ceiling`]: the newest signed time plus `max_ahead` (a documented bound), nor the
//!   active list's `expires_at`. One spoofed reading years ahead therefore cannot push the floor
//!   (and every later decision) into the future: it moves the floor at most `max_ahead` beyond
//!   what the office signed.
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

/// The highest a wall-clock reading may raise the floor to: the newest signed time plus
/// `max_ahead`, and never past the active list's `expires_at`. `None` (no signed time yet): a
/// reading raises nothing.
pub fn clock_ceiling(
    signed: Option<Timestamp>,
    max_ahead: Duration,
    expires_at: Option<Timestamp>,
) -> Option<Timestamp> {
    let signed = signed?;
    let ahead = SignedDuration::try_from(max_ahead).unwrap_or(SignedDuration::MAX);
    let by_signed = signed.checked_add(ahead).unwrap_or(Timestamp::MAX);
    Some(match expires_at {
        Some(expires) => by_signed.min(expires),
        None => by_signed,
    })
}

/// The floor and where it was seen on the monotonic clock of this boot.
#[derive(Debug, Clone)]
pub struct TrustedTime {
    floor: Option<Timestamp>,
    /// The newest signed time seen in this boot: the basis of the [`clock_ceiling`]. Not
    /// persisted: after a restart the daemon observes the active list's `issued_at` again.
    signed: Option<Timestamp>,
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
            signed: None,
            anchor: floor.map(|_| at),
            tolerance,
        }
    }

    /// The newest signed time seen in this boot.
    pub fn signed(&self) -> Option<Timestamp> {
        self.signed
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

    /// A signed time (a list's `issued_at`) was seen at monotonic `at`: it becomes the basis of
    /// the clock ceiling, and raises the floor if it is newer. The floor never goes down here.
    /// Returns whether the floor rose.
    pub fn observe(&mut self, seen: Timestamp, at: Instant) -> bool {
        self.signed = Some(self.signed.map_or(seen, |s| s.max(seen)));
        self.raise(seen, at)
    }

    /// A signed time that is not itself known to have passed (a command's `issued_at`, which
    /// may be ahead of the door by the office's clock skew): only the basis of the clock
    /// ceiling.
    pub fn observe_signed_basis(&mut self, seen: Timestamp) {
        self.signed = Some(self.signed.map_or(seen, |s| s.max(seen)));
    }

    /// A trusted wall-clock reading at monotonic `at`: raises the floor, but never past the
    /// [`clock_ceiling`] of the newest signed time plus `max_ahead` and the active list's
    /// `expires_at`. Returns whether the floor rose.
    pub fn observe_clock(
        &mut self,
        reading: Timestamp,
        at: Instant,
        max_ahead: Duration,
        expires_at: Option<Timestamp>,
    ) -> bool {
        let Some(ceiling) = clock_ceiling(self.signed, max_ahead, expires_at) else {
            return false;
        };
        self.raise(reading.min(ceiling), at)
    }

    /// A signed reset (`reset_time_floor`): the floor becomes `to` at monotonic `at`, up or
    /// down, and so does the basis of the clock ceiling. The way out of a floor pushed into the
    /// future (by a clock reading under an older pintud, or by a list signed with a wrong
    /// `issued_at`).
    pub fn reset(&mut self, to: Timestamp, at: Instant) {
        self.floor = Some(to);
        self.anchor = Some(at);
        self.signed = Some(to);
    }

    fn raise(&mut self, seen: Timestamp, at: Instant) -> bool {
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

    #[test]
    fn clock_ceiling_table() {
        let signed = ts("2026-05-04T08:00:00Z");
        let hour = Duration::from_secs(3600);
        let cases = [
            ("no signed time: no ceiling", None, None, None),
            (
                "signed + max_ahead",
                Some(signed),
                None,
                Some("2026-05-04T09:00:00Z"),
            ),
            (
                "the list expires sooner",
                Some(signed),
                Some("2026-05-04T08:30:00Z"),
                Some("2026-05-04T08:30:00Z"),
            ),
            (
                "the list expires later",
                Some(signed),
                Some("2026-06-04T08:00:00Z"),
                Some("2026-05-04T09:00:00Z"),
            ),
        ];
        for (name, signed, expires, want) in cases {
            assert_eq!(
                clock_ceiling(signed, hour, expires.map(ts)),
                want.map(ts),
                "{name}"
            );
        }
        // Saturates instead of overflowing.
        assert_eq!(
            clock_ceiling(Some(Timestamp::MAX), hour, None),
            Some(Timestamp::MAX)
        );
    }

    #[test]
    fn a_reading_years_ahead_moves_the_floor_at_most_max_ahead() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut t = TrustedTime::new(None, t0, Duration::from_secs(5));
        // Before any signed time a reading raises nothing.
        assert!(!t.observe_clock(ts("2036-05-04T08:00:00Z"), t0, hour, None));
        assert_eq!(t.floor(), None);
        assert!(t.observe(ts("2026-05-04T08:00:00Z"), t0));
        // Ten years ahead: the floor stops at signed + 1 h.
        assert!(t.observe_clock(ts("2036-05-04T08:00:00Z"), t0, hour, None));
        assert_eq!(t.floor(), Some(ts("2026-05-04T09:00:00Z")));
        // The clock back at the real time: within an hour it is trusted again.
        let later = t0 + hour;
        assert_eq!(
            t.now(ts("2026-05-04T09:00:01Z"), later).trust,
            ClockTrust::Untrusted
        );
        assert_eq!(
            t.now(ts("2026-05-04T10:00:00Z"), later).trust,
            ClockTrust::Trusted
        );
        // Never past the active list's expiry.
        let mut t = TrustedTime::new(None, t0, Duration::ZERO);
        t.observe(ts("2026-05-04T08:00:00Z"), t0);
        t.observe_clock(
            ts("2036-05-04T08:00:00Z"),
            t0,
            hour,
            Some(ts("2026-05-04T08:10:00Z")),
        );
        assert_eq!(t.floor(), Some(ts("2026-05-04T08:10:00Z")));
    }

    #[test]
    fn a_reset_sets_the_floor_down_and_the_ceiling_with_it() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut t = TrustedTime::new(Some(ts("2036-05-04T08:00:00Z")), t0, Duration::ZERO);
        assert_eq!(
            t.now(ts("2026-05-04T08:00:00Z"), t0).trust,
            ClockTrust::Untrusted
        );
        t.reset(ts("2026-05-04T07:59:00Z"), t0);
        assert_eq!(t.floor(), Some(ts("2026-05-04T07:59:00Z")));
        assert_eq!(t.signed(), Some(ts("2026-05-04T07:59:00Z")));
        assert_eq!(
            t.now(ts("2026-05-04T08:00:00Z"), t0).trust,
            ClockTrust::Trusted
        );
        // A command's issued_at is a basis for the ceiling, not a floor.
        t.observe_signed_basis(ts("2026-05-04T10:00:00Z"));
        assert_eq!(t.floor(), Some(ts("2026-05-04T07:59:00Z")));
        assert!(t.observe_clock(ts("2026-05-04T10:30:00Z"), t0, hour, None));
        assert_eq!(t.floor(), Some(ts("2026-05-04T10:30:00Z")));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const BASE: i64 = 1_780_000_000;

        proptest! {
            /// Whatever clock readings arrive, the floor never exceeds the newest signed time plus
            /// `max_ahead` (plus the monotonic time elapsed), nor the list's expiry (plus the same).
            #[test]
            fn readings_never_raise_the_floor_past_the_ceiling(
                signed in 0i64..1_000_000,
                max_ahead in 0u64..100_000,
                expires in proptest::option::of(0i64..2_000_000),
                readings in proptest::collection::vec((0i64..400_000_000, 0u64..1_000), 1..20),
            ) {
                let t0 = Instant::now();
                let signed = Timestamp::from_second(BASE + signed).unwrap();
                let expires = expires.map(|e| Timestamp::from_second(BASE + e).unwrap());
                let max = Duration::from_secs(max_ahead);
                let mut t = TrustedTime::new(None, t0, Duration::ZERO);
                t.observe(signed, t0);
                let mut elapsed = 0u64;
                for (reading, step) in readings {
                    elapsed += step;
                    let at = t0 + Duration::from_secs(elapsed);
                    t.observe_clock(Timestamp::from_second(BASE + reading).unwrap(), at, max, expires);
                    let ceiling = clock_ceiling(Some(signed), max, expires).unwrap().max(signed);
                    let allowed = ceiling + SignedDuration::from_secs(elapsed as i64);
                    prop_assert!(t.lower_bound(at).unwrap() <= allowed);
                }
            }
        }
    }
}
