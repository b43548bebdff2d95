//! Visits: a visitor badge from the pool, bound to one approved visit for a time window.
//!
//! Visits travel in the signed list, as the payload's optional top-level `visits` array (see
//! `docs/access-list.md` and `docs/visits.md`). A visit names the badge by its card hash; the
//! badge itself is an ordinary entry with role `visitor` (the pool badge, valid for as long as the
//! pool card is in service). A visitor badge opens only inside the window of a visit that binds
//! it, and only with an escort (see [`super::escort`]).
//!
//! Why a top-level array rather than a field on the entry: one pool badge serves many visits
//! (Monday morning for one visitor, Monday afternoon for another) without a second entry for the
//! same card, which the list forbids; the door keeps the few visits in memory with the list's
//! metadata, so the on-disk list cache and every existing entry stay exactly as they are.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::card::CardHash;
use super::list::{Entry, Role};

/// One approved visit: who visits, who hosts, which badge, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    /// Visit id from the office (the SOP's visit request), unique in the list.
    pub id: String,
    /// The badge's card hash; must be an entry with role `visitor`.
    pub badge: CardHash,
    /// Who visits (name or the office's visitor id; never the KTP number itself).
    pub visitor: String,
    /// Holder id of the host who asked for the visit.
    pub host: String,
    /// Start of the approved window (inclusive).
    pub valid_from: Timestamp,
    /// End of the approved window (exclusive): from here a visitor still inside overstays.
    pub valid_until: Timestamp,
}

impl Visit {
    /// Whether `now` lies inside the window: `valid_from <= now < valid_until`.
    pub fn covers(&self, now: Timestamp) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// What the visits say about a badge at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitLookup<'a> {
    /// A visit binds the badge and its window contains the moment.
    Active(&'a Visit),
    /// Visits bind the badge, but none now (`outside_visit`).
    NotNow,
    /// No visit binds the badge (`no_visit`).
    None,
}

/// Finds the visit that makes `badge` valid at `now`.
pub fn visit_for<'a>(visits: &'a [Visit], badge: &CardHash, now: Timestamp) -> VisitLookup<'a> {
    let mut bound = false;
    for v in visits.iter().filter(|v| &v.badge == badge) {
        if v.covers(now) {
            return VisitLookup::Active(v);
        }
        bound = true;
    }
    if bound {
        VisitLookup::NotNow
    } else {
        VisitLookup::None
    }
}

/// Content rules for `visits` against the list's entries. Errors name the visit (index and id)
/// and, where one is involved, the entry (index and holder).
///
/// A visitor entry bound to no visit is valid: it is an idle badge of the pool, and the door
/// denies it (`no_visit`). This keeps every list signed before visits existed acceptable.
pub fn check_visits(entries: &[Entry], visits: &[Visit]) -> Result<(), String> {
    let by_card: HashMap<&CardHash, (usize, &Entry)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (&e.card, (i, e)))
        .collect();
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(visits.len());
    for (i, v) in visits.iter().enumerate() {
        let at = || format!("visits[{i}] (id {:?})", v.id);
        if v.id.is_empty() {
            return Err(format!("visits[{i}]: id is empty"));
        }
        if let Some(first) = ids.insert(v.id.as_str(), i) {
            return Err(format!("{}: id is also used by visits[{first}]", at()));
        }
        if v.visitor.is_empty() {
            return Err(format!("{}: visitor is empty", at()));
        }
        if v.host.is_empty() {
            return Err(format!("{}: host is empty", at()));
        }
        if v.valid_until <= v.valid_from {
            return Err(format!(
                "{}: valid_until {} is not after valid_from {}",
                at(),
                v.valid_until,
                v.valid_from
            ));
        }
        let Some(&(j, entry)) = by_card.get(&v.badge) else {
            return Err(format!(
                "{}: badge {} is not a card in the list's entries",
                at(),
                v.badge
            ));
        };
        if entry.role != Role::Visitor {
            return Err(format!(
                "{}: badge {} is entries[{j}] (holder {:?}) with role {}; only visitor badges carry visits",
                at(),
                v.badge,
                entry.holder,
                entry.role.as_str()
            ));
        }
        if v.valid_from < entry.valid_from || v.valid_until > entry.valid_until {
            return Err(format!(
                "{}: window {}..{} is not inside the validity {}..{} of its badge entries[{j}] (holder {:?})",
                at(),
                v.valid_from,
                v.valid_until,
                entry.valid_from,
                entry.valid_until,
                entry.holder
            ));
        }
        // Two visits on one badge at the same time would make the door guess who is visiting.
        if let Some((k, other)) = visits[..i].iter().enumerate().find(|(_, o)| {
            o.badge == v.badge && o.valid_from < v.valid_until && v.valid_from < o.valid_until
        }) {
            return Err(format!(
                "{}: window overlaps visits[{k}] (id {:?}) on the same badge {}",
                at(),
                other.id,
                v.badge
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn entry(card: u8, holder: &str, role: Role) -> Entry {
        Entry {
            card: CardHash([card; 32]),
            holder: holder.into(),
            name: holder.to_uppercase(),
            role,
            valid_from: ts("2026-01-01T00:00:00Z"),
            valid_until: ts("2027-01-01T00:00:00Z"),
            doors: None,
            schedule: vec![],
            request_ref: "REQ".into(),
            approver: "kabid".into(),
        }
    }

    fn visit(id: &str, card: u8, from: &str, until: &str) -> Visit {
        Visit {
            id: id.into(),
            badge: CardHash([card; 32]),
            visitor: "Andi".into(),
            host: "budi".into(),
            valid_from: ts(from),
            valid_until: ts(until),
        }
    }

    #[test]
    fn window_is_inclusive_at_start_and_exclusive_at_end() {
        let v = visit("V1", 3, "2026-05-04T01:00:00Z", "2026-05-04T03:00:00Z");
        let visits = [v.clone()];
        let badge = CardHash([3; 32]);
        let cases = [
            (
                "just before",
                "2026-05-04T00:59:59.999Z",
                VisitLookup::NotNow,
            ),
            ("at start", "2026-05-04T01:00:00Z", VisitLookup::Active(&v)),
            ("inside", "2026-05-04T02:00:00Z", VisitLookup::Active(&v)),
            (
                "last instant",
                "2026-05-04T02:59:59.999Z",
                VisitLookup::Active(&v),
            ),
            ("at end", "2026-05-04T03:00:00Z", VisitLookup::NotNow),
        ];
        for (name, now, want) in cases {
            assert_eq!(visit_for(&visits, &badge, ts(now)), want, "{name}");
        }
        assert_eq!(
            visit_for(&visits, &CardHash([4; 32]), ts("2026-05-04T02:00:00Z")),
            VisitLookup::None
        );
    }

    #[test]
    fn one_badge_serves_successive_visits() {
        let visits = [
            visit("AM", 3, "2026-05-04T01:00:00Z", "2026-05-04T05:00:00Z"),
            visit("PM", 3, "2026-05-04T05:00:00Z", "2026-05-04T09:00:00Z"),
        ];
        let entries = [entry(3, "badge-03", Role::Visitor)];
        assert_eq!(check_visits(&entries, &visits), Ok(()));
        let badge = CardHash([3; 32]);
        assert!(
            matches!(visit_for(&visits, &badge, ts("2026-05-04T04:59:00Z")), VisitLookup::Active(v) if v.id == "AM")
        );
        assert!(
            matches!(visit_for(&visits, &badge, ts("2026-05-04T05:00:00Z")), VisitLookup::Active(v) if v.id == "PM")
        );
    }

    #[test]
    fn validation_names_the_visit_and_the_entry() {
        let entries = [
            entry(1, "budi", Role::Staff),
            entry(3, "badge-03", Role::Visitor),
        ];
        let good = visit("V1", 3, "2026-05-04T01:00:00Z", "2026-05-04T03:00:00Z");
        let cases: Vec<(&str, Vec<Visit>, &str)> = vec![
            (
                "visit on a staff entry",
                vec![Visit { badge: CardHash([1; 32]), ..good.clone() }],
                "visits[0] (id \"V1\"): badge c:01010101 is entries[0] (holder \"budi\") with role staff; only visitor badges carry visits",
            ),
            (
                "badge not in the list",
                vec![Visit { badge: CardHash([9; 32]), ..good.clone() }],
                "visits[0] (id \"V1\"): badge c:09090909 is not a card in the list's entries",
            ),
            (
                "empty id",
                vec![Visit { id: String::new(), ..good.clone() }],
                "visits[0]: id is empty",
            ),
            (
                "duplicate id",
                vec![good.clone(), Visit { valid_from: ts("2026-06-01T00:00:00Z"), valid_until: ts("2026-06-02T00:00:00Z"), ..good.clone() }],
                "visits[1] (id \"V1\"): id is also used by visits[0]",
            ),
            (
                "empty window",
                vec![Visit { valid_until: good.valid_from, ..good.clone() }],
                "is not after valid_from",
            ),
            (
                "window outside the badge's validity",
                vec![Visit { valid_until: ts("2027-01-01T00:00:01Z"), ..good.clone() }],
                "is not inside the validity",
            ),
            (
                "overlap on one badge",
                vec![good.clone(), Visit { id: "V2".into(), valid_from: ts("2026-05-04T02:59:59Z"), valid_until: ts("2026-05-04T04:00:00Z"), ..good.clone() }],
                "visits[1] (id \"V2\"): window overlaps visits[0] (id \"V1\")",
            ),
            ("empty visitor", vec![Visit { visitor: String::new(), ..good.clone() }], "visitor is empty"),
            ("empty host", vec![Visit { host: String::new(), ..good.clone() }], "host is empty"),
        ];
        for (name, visits, want) in cases {
            let err = check_visits(&entries, &visits).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
        }
        assert_eq!(check_visits(&entries, &[good]), Ok(()));
        assert_eq!(
            check_visits(&entries, &[]),
            Ok(()),
            "an idle visitor badge is valid"
        );
    }

    mod in_the_signed_list {
        use super::*;
        use crate::list::{
            payload_bytes, sign, verify, Payload, Rejection, TrustPolicy, TrustedKey,
        };
        use ed25519_dalek::SigningKey;

        fn payload() -> Payload {
            Payload {
                format: 1,
                site: "site-a".into(),
                doors: vec!["door-1".into()],
                version: 3,
                issued_at: ts("2026-01-01T00:00:00Z"),
                expires_at: ts("2026-02-01T00:00:00Z"),
                time_zone: "Asia/Jakarta".into(),
                entries: vec![
                    entry(1, "budi", Role::Staff),
                    entry(3, "badge-03", Role::Visitor),
                ],
            }
        }

        fn check(bytes: &[u8]) -> Result<crate::list::VerifiedList, Rejection> {
            let key = SigningKey::from_bytes(&[1; 32]);
            let signed = sign(bytes, &[("k1".into(), key.clone())]);
            let policy = TrustPolicy {
                keys: vec![TrustedKey {
                    id: "k1".into(),
                    key: key.verifying_key(),
                }],
                threshold: 1,
                site: Some("site-a".into()),
                door: Some("door-1".into()),
                max_bytes: 1 << 20,
            };
            verify(&signed, &policy, None, Some(ts("2026-01-15T00:00:00Z")))
        }

        #[test]
        fn without_visits_the_signed_bytes_are_unchanged() {
            let p = payload();
            assert_eq!(
                payload_bytes(&p, &[]).unwrap(),
                serde_json::to_vec(&p).unwrap()
            );
            let v = check(&serde_json::to_vec(&p).unwrap()).unwrap();
            assert!(v.meta.visits.is_empty());
            assert_eq!(v.payload, p);
        }

        #[test]
        fn visits_travel_after_the_entries_and_reach_the_meta() {
            let p = payload();
            let visits = vec![visit(
                "V1",
                3,
                "2026-01-15T01:00:00Z",
                "2026-01-15T03:00:00Z",
            )];
            let bytes = payload_bytes(&p, &visits).unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            let plain = String::from_utf8(serde_json::to_vec(&p).unwrap()).unwrap();
            assert_eq!(
                text,
                format!(
                    "{},\"visits\":{}}}",
                    &plain[..plain.len() - 1],
                    serde_json::to_string(&visits).unwrap()
                )
            );
            let v = check(&bytes).unwrap();
            assert_eq!(v.meta.visits, visits);
            assert_eq!(v.payload, p);
        }

        #[test]
        fn bad_visits_reject_the_list_with_a_message_naming_them() {
            let p = payload();
            let on_staff = vec![visit(
                "V1",
                1,
                "2026-01-15T01:00:00Z",
                "2026-01-15T03:00:00Z",
            )];
            let err = check(&payload_bytes(&p, &on_staff).unwrap()).unwrap_err();
            assert_eq!(err.code(), "malformed");
            assert!(
                err.to_string().contains("visits[0] (id \"V1\")")
                    && err.to_string().contains("entries[0] (holder \"budi\")"),
                "{err}"
            );
            // Unknown fields stay refused, inside a visit and at the top level.
            let mut json: serde_json::Value = serde_json::from_slice(
                &payload_bytes(
                    &p,
                    &[visit(
                        "V1",
                        3,
                        "2026-01-15T01:00:00Z",
                        "2026-01-15T03:00:00Z",
                    )],
                )
                .unwrap(),
            )
            .unwrap();
            json["visits"][0]["room"] = "A".into();
            let err = check(&serde_json::to_vec(&json).unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("visits[0]") && err.to_string().contains("room"),
                "{err}"
            );
            let mut json: serde_json::Value = serde_json::to_value(&p).unwrap();
            json["extra"] = 1.into();
            let err = check(&serde_json::to_vec(&json).unwrap()).unwrap_err();
            assert!(err.to_string().contains("unknown field `extra`"), "{err}");
        }
    }
}
