//! The access decision: card entry + list + door + time → grant, or deny with a reason.
//!
//! Pure: the caller looks the card up (in the store) and passes the entry in, with the time from
//! its clock. Checks run from the broadest to the most specific so the reason given is the one an
//! operator needs first (no list before unknown card, expired grant before schedule).

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::list::{Entry, ListMeta};
use super::schedule::schedule_allows;

/// Why a tap was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The door holds no list yet.
    NoList,
    /// The door's list is past its `expires_at` (fails closed against freeze attacks).
    ListExpired,
    /// The card is not in the list.
    UnknownCard,
    /// The card's entry does not name this door.
    WrongDoor,
    /// The card's validity has not started.
    NotYetValid,
    /// The card's validity has ended.
    Expired,
    /// Outside the entry's weekly schedule.
    OutsideSchedule,
    /// The door's store could not be read; fails closed.
    StoreError,
    /// A visitor badge that no visit in the list binds (an idle badge of the pool).
    NoVisit,
    /// A visitor badge tapped outside every window of the visits that bind it.
    OutsideVisit,
    /// A visitor badge waited for an escort's card longer than the escort window.
    EscortTimeout,
    /// Anti-passback (hard): entry while already inside, or exit while not inside.
    #[serde(rename = "antipassback")]
    AntiPassback,
    /// The reader is locked out after a flood of unknown or denied taps.
    ReaderLockedOut,
    /// The wall clock is below the trusted-time floor and time-boxed badges fail closed.
    ClockUntrusted,
    /// The door is in lockdown (a signed command) and the card's role is not the one admitted.
    Lockdown,
}

impl DenyReason {
    /// Stable wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoList => "no_list",
            DenyReason::ListExpired => "list_expired",
            DenyReason::UnknownCard => "unknown_card",
            DenyReason::WrongDoor => "wrong_door",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::Expired => "expired",
            DenyReason::OutsideSchedule => "outside_schedule",
            DenyReason::StoreError => "store_error",
            DenyReason::NoVisit => "no_visit",
            DenyReason::OutsideVisit => "outside_visit",
            DenyReason::EscortTimeout => "escort_timeout",
            DenyReason::AntiPassback => "antipassback",
            DenyReason::ReaderLockedOut => "reader_locked_out",
            DenyReason::ClockUntrusted => "clock_untrusted",
            DenyReason::Lockdown => "lockdown",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Open the door.
    Grant,
    /// Keep it locked, for this reason.
    Deny(DenyReason),
}

impl Decision {
    /// `"grant"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Grant => "grant",
            Decision::Deny(_) => "deny",
        }
    }

    /// The deny reason, if any.
    pub fn reason(self) -> Option<DenyReason> {
        match self {
            Decision::Grant => None,
            Decision::Deny(r) => Some(r),
        }
    }
}

/// Decides a tap. `entry` is the list's entry for the tapped card, if any.
pub fn decide(
    list: Option<&ListMeta>,
    entry: Option<&Entry>,
    door: &str,
    now: Timestamp,
) -> Decision {
    let Some(list) = list else {
        return Decision::Deny(DenyReason::NoList);
    };
    if now >= list.expires_at {
        return Decision::Deny(DenyReason::ListExpired);
    }
    let Some(entry) = entry else {
        return Decision::Deny(DenyReason::UnknownCard);
    };
    if !entry.opens_door(door) {
        return Decision::Deny(DenyReason::WrongDoor);
    }
    if now < entry.valid_from {
        return Decision::Deny(DenyReason::NotYetValid);
    }
    if now >= entry.valid_until {
        return Decision::Deny(DenyReason::Expired);
    }
    if !entry.schedule.is_empty() {
        let local = now.to_zoned(list.time_zone.clone());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        if !schedule_allows(&entry.schedule, local.weekday(), minute) {
            return Decision::Deny(DenyReason::OutsideSchedule);
        }
    }
    Decision::Grant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::CardHash;
    use crate::list::Role;
    use crate::schedule::Window;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn meta() -> ListMeta {
        ListMeta {
            site: "s".into(),
            doors: vec!["door-1".into()],
            version: 1,
            issued_at: ts("2026-01-01T00:00:00Z"),
            expires_at: ts("2026-03-01T00:00:00Z"),
            time_zone: TimeZone::get("Asia/Jakarta").unwrap(),
            entry_count: 1,
            payload_digest: [0; 32],
            signed_by: vec![],
            visits: vec![],
        }
    }

    fn entry() -> Entry {
        Entry {
            card: CardHash([1; 32]),
            holder: "h".into(),
            name: "H".into(),
            role: Role::Staff,
            valid_from: ts("2026-01-10T00:00:00Z"),
            valid_until: ts("2026-02-10T00:00:00Z"),
            doors: None,
            schedule: vec![],
            request_ref: "r".into(),
            approver: "a".into(),
        }
    }

    fn office_hours() -> Vec<Window> {
        serde_json::from_str(
            r#"[{"days":["mon","tue","wed","thu","fri"],"from":"07:00","until":"17:00"}]"#,
        )
        .unwrap()
    }

    #[test]
    fn decision_table() {
        let m = meta();
        let e = entry();
        let mut other_door = entry();
        other_door.doors = Some(vec!["door-2".into()]);
        let mut all_doors = entry();
        all_doors.doors = Some(vec!["*".into()]);
        let mut scheduled = entry();
        scheduled.schedule = office_hours();
        use Decision::*;
        use DenyReason::*;
        // 2026-01-14 is a Wednesday; Asia/Jakarta is UTC+7.
        type Case<'a> = (
            &'a str,
            Option<&'a ListMeta>,
            Option<&'a Entry>,
            &'a str,
            Decision,
        );
        let cases: Vec<Case> = vec![
            (
                "no list",
                None,
                Some(&e),
                "2026-01-15T03:00:00Z",
                Deny(NoList),
            ),
            (
                "list expired",
                Some(&m),
                Some(&e),
                "2026-03-01T00:00:00Z",
                Deny(ListExpired),
            ),
            (
                "unknown card",
                Some(&m),
                None,
                "2026-01-15T03:00:00Z",
                Deny(UnknownCard),
            ),
            (
                "wrong door",
                Some(&m),
                Some(&other_door),
                "2026-01-15T03:00:00Z",
                Deny(WrongDoor),
            ),
            (
                "star door",
                Some(&m),
                Some(&all_doors),
                "2026-01-15T03:00:00Z",
                Grant,
            ),
            (
                "not yet valid",
                Some(&m),
                Some(&e),
                "2026-01-09T23:59:59Z",
                Deny(NotYetValid),
            ),
            (
                "valid from is inclusive",
                Some(&m),
                Some(&e),
                "2026-01-10T00:00:00Z",
                Grant,
            ),
            (
                "valid until is exclusive",
                Some(&m),
                Some(&e),
                "2026-02-10T00:00:00Z",
                Deny(Expired),
            ),
            ("granted", Some(&m), Some(&e), "2026-01-15T03:00:00Z", Grant),
            (
                "in schedule (Wed 10:00 WIB)",
                Some(&m),
                Some(&scheduled),
                "2026-01-14T03:00:00Z",
                Grant,
            ),
            (
                "before schedule (Wed 06:59 WIB)",
                Some(&m),
                Some(&scheduled),
                "2026-01-13T23:59:00Z",
                Deny(OutsideSchedule),
            ),
            (
                "weekend (Sat 10:00 WIB)",
                Some(&m),
                Some(&scheduled),
                "2026-01-17T03:00:00Z",
                Deny(OutsideSchedule),
            ),
            (
                "UTC says Tue, WIB says Wed 06:30",
                Some(&m),
                Some(&scheduled),
                "2026-01-13T23:30:00Z",
                Deny(OutsideSchedule),
            ),
        ];
        for (name, list, entry, now, expected) in cases {
            assert_eq!(decide(list, entry, "door-1", ts(now)), expected, "{name}");
        }
    }

    proptest! {
        /// Whatever the inputs, a grant implies every condition holds.
        #[test]
        fn grant_implies_all_conditions(
            offset_from in -1_000_000i64..1_000_000,
            len in 1i64..2_000_000,
            now_off in -2_000_000i64..3_000_000,
            list_exp_off in -1_000_000i64..3_000_000,
            on_door in any::<bool>(),
            with_schedule in any::<bool>(),
        ) {
            let base = ts("2026-01-15T00:00:00Z");
            let mut m = meta();
            m.expires_at = base + jiff::SignedDuration::from_secs(list_exp_off);
            let mut e = entry();
            e.valid_from = base + jiff::SignedDuration::from_secs(offset_from);
            e.valid_until = e.valid_from + jiff::SignedDuration::from_secs(len);
            if !on_door { e.doors = Some(vec!["elsewhere".into()]); }
            if with_schedule { e.schedule = office_hours(); }
            let now = base + jiff::SignedDuration::from_secs(now_off);
            let d = decide(Some(&m), Some(&e), "door-1", now);
            if d == Decision::Grant {
                prop_assert!(now < m.expires_at);
                prop_assert!(on_door);
                prop_assert!(e.valid_from <= now && now < e.valid_until);
            }
            // An unknown card is never granted, and without a list nothing is.
            prop_assert_ne!(decide(Some(&m), None, "door-1", now), Decision::Grant);
            prop_assert_eq!(decide(None, Some(&e), "door-1", now), Decision::Deny(DenyReason::NoList));
        }
    }
}
