//! The escort rule: a visitor badge opens only together with an escort's card tapped within N
//! seconds before or after it.
//!
//! [`EscortBook`] remembers the two halves that can wait for each other on this door's entry
//! readers: visitor taps awaiting an escort (`escort.awaited`, denied `escort_timeout` when the
//! window passes) and escort taps awaiting a visitor. Pure and monotonic: every input carries an
//! [`Instant`], and [`EscortBook::next_deadline`] says when a waiting visitor times out.
//!
//! Rules (see `docs/visits.md`):
//! - the pair must be within the window, **inclusive**: exactly N s apart pairs, N s + 1 ns does not;
//! - the window is the door's, optionally overridden per escorting role;
//! - two distinct cards of two distinct holders: the same card twice never counts;
//! - a visitor never escorts, whatever the configuration says;
//! - one escort tap escorts one visitor (a group: the escort taps once per visitor).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::card::CardHash;
use super::list::Role;
use super::visit::Visit;

/// A set of roles (escorting roles, roles that pass a reader lockout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct RoleSet {
    /// Staff is in the set.
    pub staff: bool,
    /// Escort is in the set.
    pub escort: bool,
    /// Visitor is in the set.
    pub visitor: bool,
}

impl RoleSet {
    /// No role.
    pub const NONE: RoleSet = RoleSet {
        staff: false,
        escort: false,
        visitor: false,
    };
    /// Staff and escort: the default escorting roles.
    pub const STAFF_AND_ESCORT: RoleSet = RoleSet {
        staff: true,
        escort: true,
        visitor: false,
    };

    /// The set of the given roles.
    pub fn of(roles: &[Role]) -> Self {
        let mut s = RoleSet::NONE;
        for r in roles {
            match r {
                Role::Staff => s.staff = true,
                Role::Escort => s.escort = true,
                Role::Visitor => s.visitor = true,
            }
        }
        s
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        match role {
            Role::Staff => self.staff,
            Role::Escort => self.escort,
            Role::Visitor => self.visitor,
        }
    }
}

/// Escort settings of one door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscortSettings {
    /// How far apart (before or after) the visitor's and the escort's taps may be. Default 10 s.
    pub window: Duration,
    /// Per escorting role overrides of `window` (e.g. a shorter window for `staff` than for
    /// `escort`).
    pub role_windows: Vec<(Role, Duration)>,
    /// Roles whose cards escort. Default staff and escort. `visitor` here is ignored: a visitor
    /// never escorts.
    pub escort_roles: RoleSet,
}

impl Default for EscortSettings {
    fn default() -> Self {
        EscortSettings {
            window: Duration::from_secs(10),
            role_windows: Vec::new(),
            escort_roles: RoleSet::STAFF_AND_ESCORT,
        }
    }
}

impl EscortSettings {
    /// Whether a card of `role` may escort.
    pub fn can_escort(&self, role: Role) -> bool {
        role != Role::Visitor && self.escort_roles.contains(role)
    }

    /// The window for an escort of `role`.
    pub fn window_for(&self, role: Role) -> Duration {
        self.role_windows
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(self.window, |(_, w)| *w)
    }

    /// The longest window any escorting role has: how long a visitor waits.
    pub fn max_window(&self) -> Duration {
        [Role::Staff, Role::Escort]
            .into_iter()
            .filter(|r| self.can_escort(*r))
            .map(|r| self.window_for(r))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// Who tapped: enough to pair cards and to report the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tapper {
    /// The card's keyed hash.
    pub card: CardHash,
    /// Holder id.
    pub holder: String,
    /// Display name.
    pub name: String,
    /// Role in the list.
    pub role: Role,
}

/// A visitor tap waiting for its escort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingVisitor {
    /// Reader it was tapped on.
    pub reader: String,
    /// The visitor badge.
    pub visitor: Tapper,
    /// The visit that made the badge valid.
    pub visit: Visit,
    /// When (monotonic).
    pub at: Instant,
    /// When (effective wall time), for the entry record.
    pub wall: Timestamp,
}

/// The outcome of a visitor tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitorTap {
    /// An escort tapped within the window before: the visitor may enter with this escort.
    Escorted(Tapper),
    /// No escort yet: the visitor waits until `deadline` (the first instant past the window).
    Awaiting {
        /// When the wait times out.
        deadline: Instant,
    },
}

#[derive(Debug, Clone)]
struct RecentEscort {
    escort: Tapper,
    at: Instant,
}

/// The pending halves of escort pairs at one door.
#[derive(Debug, Clone, Default)]
pub struct EscortBook {
    pending: VecDeque<PendingVisitor>,
    recent: VecDeque<RecentEscort>,
}

/// Whether two instants are at most `window` apart, in either order.
fn within(a: Instant, b: Instant, window: Duration) -> bool {
    let gap = if a >= b { a - b } else { b - a };
    gap <= window
}

impl EscortBook {
    /// An empty book.
    pub fn new() -> Self {
        EscortBook::default()
    }

    /// Visitors waiting for an escort, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &PendingVisitor> {
        self.pending.iter()
    }

    /// A valid visitor tap (its entry and visit already checked). Pairs it with the most recent
    /// unused escort tap within the window, or makes it wait. A second tap of a waiting badge
    /// restarts its wait.
    pub fn visitor_tapped(&mut self, s: &EscortSettings, tap: PendingVisitor) -> VisitorTap {
        self.forget_stale(s, tap.at);
        self.pending.retain(|p| p.visitor.card != tap.visitor.card);
        let found = self.recent.iter().rposition(|r| {
            r.escort.card != tap.visitor.card
                && r.escort.holder != tap.visitor.holder
                && s.can_escort(r.escort.role)
                && within(r.at, tap.at, s.window_for(r.escort.role))
        });
        if let Some(i) = found {
            if let Some(r) = self.recent.remove(i) {
                return VisitorTap::Escorted(r.escort);
            }
        }
        let deadline = tap.at + s.max_window() + Duration::from_nanos(1);
        self.pending.push_back(tap);
        VisitorTap::Awaiting { deadline }
    }

    /// A granted tap of a card that may escort (checked by the caller with
    /// [`EscortSettings::can_escort`]). Completes the oldest visitor waiting within the window, or
    /// is remembered for a visitor who taps next.
    pub fn escort_tapped(
        &mut self,
        s: &EscortSettings,
        escort: Tapper,
        at: Instant,
    ) -> Option<PendingVisitor> {
        if !s.can_escort(escort.role) {
            return None;
        }
        self.forget_stale(s, at);
        let window = s.window_for(escort.role);
        let found = self.pending.iter().position(|p| {
            p.visitor.card != escort.card
                && p.visitor.holder != escort.holder
                && within(p.at, at, window)
        });
        if let Some(i) = found {
            return self.pending.remove(i);
        }
        // The same card twice is one escort, not two: keep only its latest tap.
        self.recent.retain(|r| r.escort.card != escort.card);
        self.recent.push_back(RecentEscort { escort, at });
        None
    }

    /// Time passes: visitors whose window has passed time out (deny `escort_timeout`).
    pub fn expire(&mut self, s: &EscortSettings, now: Instant) -> Vec<PendingVisitor> {
        self.forget_stale(s, now);
        let max = s.max_window();
        let (gone, kept): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .partition(|p| now.saturating_duration_since(p.at) > max);
        self.pending = kept.into();
        gone
    }

    /// When [`expire`](Self::expire) next has something to do.
    pub fn next_deadline(&self, s: &EscortSettings) -> Option<Instant> {
        self.pending
            .iter()
            .map(|p| p.at + s.max_window() + Duration::from_nanos(1))
            .min()
    }

    fn forget_stale(&mut self, s: &EscortSettings, now: Instant) {
        self.recent
            .retain(|r| now.saturating_duration_since(r.at) <= s.window_for(r.escort.role));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tapper(card: u8, holder: &str, role: Role) -> Tapper {
        Tapper {
            card: CardHash([card; 32]),
            holder: holder.into(),
            name: holder.into(),
            role,
        }
    }

    fn visit() -> Visit {
        Visit {
            id: "V1".into(),
            badge: CardHash([3; 32]),
            visitor: "Andi".into(),
            host: "budi".into(),
            valid_from: "2026-05-04T00:00:00Z".parse().unwrap(),
            valid_until: "2026-05-05T00:00:00Z".parse().unwrap(),
        }
    }

    fn pending(at: Instant) -> PendingVisitor {
        PendingVisitor {
            reader: "entry".into(),
            visitor: tapper(3, "badge-03", Role::Visitor),
            visit: visit(),
            at,
            wall: "2026-05-04T03:00:00Z".parse().unwrap(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// (escort first?, gap, paired?) at the default 10 s window.
    #[test]
    fn window_edges_in_both_orders() {
        let cases = [
            (true, ms(0), true),
            (true, ms(9_999), true),
            (true, ms(10_000), true),
            (true, ms(10_001), false),
            (false, ms(0), true),
            (false, ms(10_000), true),
            (false, ms(10_001), false),
        ];
        let s = EscortSettings::default();
        for (escort_first, gap, paired) in cases {
            let t0 = Instant::now();
            let mut b = EscortBook::new();
            let escort = tapper(1, "budi", Role::Escort);
            let got = if escort_first {
                assert_eq!(b.escort_tapped(&s, escort.clone(), t0), None);
                matches!(b.visitor_tapped(&s, pending(t0 + gap)), VisitorTap::Escorted(e) if e == escort)
            } else {
                assert!(matches!(
                    b.visitor_tapped(&s, pending(t0)),
                    VisitorTap::Awaiting { .. }
                ));
                b.escort_tapped(&s, escort, t0 + gap).is_some()
            };
            assert_eq!(got, paired, "escort first {escort_first}, gap {gap:?}");
        }
    }

    #[test]
    fn visitor_times_out_just_after_the_window() {
        let s = EscortSettings::default();
        let t0 = Instant::now();
        let mut b = EscortBook::new();
        let VisitorTap::Awaiting { deadline } = b.visitor_tapped(&s, pending(t0)) else {
            panic!("expected to wait");
        };
        assert_eq!(deadline, t0 + ms(10_000) + Duration::from_nanos(1));
        assert_eq!(b.next_deadline(&s), Some(deadline));
        assert!(
            b.expire(&s, t0 + ms(10_000)).is_empty(),
            "exactly N s still waits"
        );
        let gone = b.expire(&s, deadline);
        assert_eq!(gone.len(), 1);
        assert_eq!(b.next_deadline(&s), None);
    }

    #[test]
    fn a_visitor_never_escorts_even_if_configured() {
        let s = EscortSettings {
            escort_roles: RoleSet::of(&[Role::Staff, Role::Escort, Role::Visitor]),
            ..EscortSettings::default()
        };
        let t0 = Instant::now();
        let mut b = EscortBook::new();
        let other_visitor = tapper(4, "badge-04", Role::Visitor);
        assert_eq!(b.escort_tapped(&s, other_visitor, t0), None);
        assert!(matches!(
            b.visitor_tapped(&s, pending(t0)),
            VisitorTap::Awaiting { .. }
        ));
        assert!(!s.can_escort(Role::Visitor));
    }

    #[test]
    fn the_same_card_or_holder_never_pairs_with_itself() {
        let s = EscortSettings::default();
        let t0 = Instant::now();
        // A (misconfigured) escort entry with the visitor's own card, and one of the same holder.
        for escort in [
            tapper(3, "x", Role::Escort),
            tapper(1, "badge-03", Role::Escort),
        ] {
            let mut b = EscortBook::new();
            assert_eq!(b.escort_tapped(&s, escort.clone(), t0), None);
            assert!(matches!(
                b.visitor_tapped(&s, pending(t0)),
                VisitorTap::Awaiting { .. }
            ));
            assert_eq!(b.escort_tapped(&s, escort, t0), None);
        }
    }

    #[test]
    fn one_escort_tap_escorts_one_visitor_and_a_repeated_tap_is_one_escort() {
        let s = EscortSettings::default();
        let t0 = Instant::now();
        let mut b = EscortBook::new();
        let escort = tapper(1, "budi", Role::Escort);
        b.escort_tapped(&s, escort.clone(), t0);
        b.escort_tapped(&s, escort.clone(), t0 + ms(1)); // the same card again
        assert!(matches!(
            b.visitor_tapped(&s, pending(t0 + ms(2))),
            VisitorTap::Escorted(_)
        ));
        let mut second = pending(t0 + ms(3));
        second.visitor = tapper(4, "badge-04", Role::Visitor);
        assert!(
            matches!(b.visitor_tapped(&s, second), VisitorTap::Awaiting { .. }),
            "the second visitor needs a tap of their own"
        );
        let done = b
            .escort_tapped(&s, escort, t0 + ms(4))
            .expect("completes the second visitor");
        assert_eq!(done.visitor.holder, "badge-04");
    }

    #[test]
    fn per_role_windows() {
        let s = EscortSettings {
            role_windows: vec![(Role::Staff, Duration::from_secs(5))],
            ..EscortSettings::default()
        };
        assert_eq!(s.max_window(), Duration::from_secs(10));
        let t0 = Instant::now();
        let mut b = EscortBook::new();
        b.visitor_tapped(&s, pending(t0));
        assert_eq!(
            b.escort_tapped(&s, tapper(1, "staff", Role::Staff), t0 + ms(5_001)),
            None,
            "staff: 5 s"
        );
        assert!(
            b.escort_tapped(&s, tapper(2, "esc", Role::Escort), t0 + ms(5_001))
                .is_some(),
            "escort: 10 s"
        );
        let staff_only = EscortSettings {
            escort_roles: RoleSet::of(&[Role::Staff]),
            ..EscortSettings::default()
        };
        assert!(!staff_only.can_escort(Role::Escort));
        assert_eq!(
            EscortSettings {
                escort_roles: RoleSet::NONE,
                ..s
            }
            .max_window(),
            Duration::ZERO
        );
    }

    #[test]
    fn an_escort_tap_too_old_is_forgotten() {
        let s = EscortSettings::default();
        let t0 = Instant::now();
        let mut b = EscortBook::new();
        b.escort_tapped(&s, tapper(1, "budi", Role::Escort), t0);
        assert!(matches!(
            b.visitor_tapped(&s, pending(t0 + ms(10_001))),
            VisitorTap::Awaiting { .. }
        ));
    }
}
