//! The freeze attack's alarm: the active list running out.
//!
//! An expired list already fails closed (every tap is denied `list_expired`), but a door that
//! silently denies everyone is found out only when someone stands at it. [`ExpiryWatch`] turns
//! the list's `expires_at` into events: `list.expiring` once the expiry is within the warning
//! lead time, and the `list.expired` alarm once it has passed, each once per list (a restart
//! raises them again if they still hold). A new list starts over; `list.applied` is what clears
//! them.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::event::{EventDraft, EventKind};
use super::list::ListMeta;

/// Watches the active list's expiry; feed it the active list and the time decisions use.
#[derive(Debug, Clone)]
pub struct ExpiryWatch {
    /// Warn this long before expiry; zero: no warning.
    lead: Duration,
    /// The list the flags below are about (version and payload digest).
    list: Option<(u64, [u8; 32])>,
    warned: bool,
    expired: bool,
}

impl ExpiryWatch {
    /// A watch warning `lead` before a list expires (`Duration::ZERO`: only the alarm).
    pub fn new(lead: Duration) -> Self {
        ExpiryWatch {
            lead,
            list: None,
            warned: false,
            expired: false,
        }
    }

    /// Checks `list` (the active one, if any) against `now`; returns the event due, if any.
    pub fn check(&mut self, list: Option<&ListMeta>, now: Timestamp) -> Option<EventDraft> {
        let Some(meta) = list else {
            self.list = None;
            return None;
        };
        let id = (meta.version, meta.payload_digest);
        if self.list != Some(id) {
            self.list = Some(id);
            self.warned = false;
            self.expired = false;
        }
        let left = meta.expires_at.duration_since(now);
        if left <= SignedDuration::ZERO {
            if self.expired {
                return None;
            }
            self.expired = true;
            self.warned = true;
            return Some(
                EventDraft::new(EventKind::ListExpired)
                    .reason("expired")
                    .list_version(Some(meta.version))
                    .detail(format!(
                        "list version {} expired at {}: every tap is denied until a new list arrives",
                        meta.version, meta.expires_at
                    )),
            );
        }
        let lead = SignedDuration::try_from(self.lead).unwrap_or(SignedDuration::MAX);
        if self.warned || self.lead.is_zero() || left > lead {
            return None;
        }
        self.warned = true;
        let whole_seconds = Duration::from_secs(left.as_secs().max(0).unsigned_abs());
        Some(
            EventDraft::new(EventKind::ListExpiring)
                .reason("expiring")
                .list_version(Some(meta.version))
                .detail(format!(
                    "list version {} expires at {} (in {}): deliver a new list before then, or every tap is denied",
                    meta.version,
                    meta.expires_at,
                    humantime::format_duration(whole_seconds)
                )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: u64, expires_at: &str) -> ListMeta {
        ListMeta {
            site: "s".into(),
            doors: vec!["d".into()],
            version,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            expires_at: expires_at.parse().unwrap(),
            time_zone: jiff::tz::TimeZone::UTC,
            entry_count: 0,
            payload_digest: [version as u8; 32],
            signed_by: vec!["k1".into()],
            visits: vec![],
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn kinds(watch: &mut ExpiryWatch, list: Option<&ListMeta>, times: &[&str]) -> Vec<String> {
        times
            .iter()
            .filter_map(|t| watch.check(list, at(t)))
            .map(|e| e.kind.as_str().to_string())
            .collect()
    }

    const DAYS_3: Duration = Duration::from_secs(3 * 86_400);

    #[test]
    fn warns_once_then_alarms_once() {
        let m = meta(7, "2026-02-01T00:00:00Z");
        let mut w = ExpiryWatch::new(DAYS_3);
        let got = kinds(
            &mut w,
            Some(&m),
            &[
                "2026-01-20T00:00:00Z",
                "2026-01-29T00:00:01Z",
                "2026-01-30T00:00:00Z",
                "2026-01-31T23:59:59Z",
                "2026-02-01T00:00:00Z",
                "2026-02-01T00:00:01Z",
                "2026-03-01T00:00:00Z",
            ],
        );
        assert_eq!(got, ["list.expiring", "list.expired"]);
    }

    #[test]
    fn a_list_expired_at_start_raises_only_the_alarm() {
        let m = meta(7, "2026-02-01T00:00:00Z");
        let mut w = ExpiryWatch::new(DAYS_3);
        let e = w.check(Some(&m), at("2026-02-05T00:00:00Z")).unwrap();
        assert_eq!(e.kind, EventKind::ListExpired);
        assert_eq!(e.list_version, Some(7));
        assert_eq!(e.reason.as_deref(), Some("expired"));
        assert!(w.check(Some(&m), at("2026-02-06T00:00:00Z")).is_none());
    }

    #[test]
    fn a_new_list_starts_over_and_no_list_raises_nothing() {
        let old = meta(7, "2026-02-01T00:00:00Z");
        let new = meta(8, "2026-03-01T00:00:00Z");
        let mut w = ExpiryWatch::new(DAYS_3);
        assert!(w.check(None, at("2026-02-05T00:00:00Z")).is_none());
        assert_eq!(
            kinds(&mut w, Some(&old), &["2026-02-05T00:00:00Z"]),
            ["list.expired"]
        );
        assert!(w.check(Some(&new), at("2026-02-05T00:00:00Z")).is_none());
        assert_eq!(
            kinds(
                &mut w,
                Some(&new),
                &["2026-02-27T00:00:00Z", "2026-03-02T00:00:00Z"]
            ),
            ["list.expiring", "list.expired"]
        );
    }

    #[test]
    fn zero_lead_means_no_warning() {
        let m = meta(7, "2026-02-01T00:00:00Z");
        let mut w = ExpiryWatch::new(Duration::ZERO);
        assert_eq!(
            kinds(
                &mut w,
                Some(&m),
                &["2026-01-31T23:59:59Z", "2026-02-01T00:00:00Z"]
            ),
            ["list.expired"]
        );
    }
}
