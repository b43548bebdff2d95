//! The periodic access review (`pintuctl review`): the procedure's review form. Every holder
//! and card in the register (role, doors, valid until, last used at a door, from the archive)
//! and every visitor badge, with flags for what needs a decision: dormant, expired, expiring,
//! a grant without request reference or approver, a card enrolled twice, a visitor badge not
//! returned.
//!
//! [`RegisterView`] is the part of the register the review and the report need, read by the
//! register's own parser ([`crate::office::register::LoadedRegister`]). [`review`] is pure: register,
//! card key, archived events and "now" in, rows out. Docs: `docs/archive.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::core::card::{CardKey, Uid};
use crate::core::event::{Event, EventKind};
use crate::office::format::{csv_row, local_time};
use crate::office::register::{Badge, Holder, LoadedRegister, RegisterError, VisitRecord};

/// Review failures.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The register cannot be read or is not valid (the register's own parser and checks).
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// What the review and the report need from the register, read by the register's own parser
/// ([`LoadedRegister`]): a register `pintuctl sign` refuses is refused here too, with the same
/// message.
#[derive(Debug)]
pub struct RegisterView {
    /// The register file.
    pub path: PathBuf,
    /// Site id.
    pub site: String,
    /// The site's time zone.
    pub time_zone: TimeZone,
    /// The card key file, resolved relative to the register.
    pub card_key_path: PathBuf,
    /// Cardholders.
    pub holders: Vec<Holder>,
    /// Visitor badges.
    pub badges: Vec<Badge>,
    /// Visits.
    pub visits: Vec<VisitRecord>,
}

impl RegisterView {
    /// Reads the register at `path`.
    pub fn load(path: &Path) -> Result<RegisterView, ReviewError> {
        RegisterView::from_loaded(LoadedRegister::load(path)?)
    }

    /// Parses register text (`path` names it in errors and resolves the card key).
    pub fn parse(path: &Path, text: &str) -> Result<RegisterView, ReviewError> {
        RegisterView::from_loaded(LoadedRegister::parse(path, text)?)
    }

    fn from_loaded(loaded: LoadedRegister) -> Result<RegisterView, ReviewError> {
        let time_zone = loaded.time_zone()?;
        let card_key_path = loaded.card_key_path();
        let register = loaded.register;
        Ok(RegisterView {
            path: loaded.path,
            site: register.site,
            time_zone,
            card_key_path,
            holders: register.holders,
            badges: register.badges,
            visits: register.visits,
        })
    }

    /// Holder id → display name, for holders and badges.
    pub fn names(&self) -> HashMap<String, String> {
        let mut names: HashMap<String, String> = self
            .holders
            .iter()
            .map(|h| (h.id.clone(), h.name.clone()))
            .collect();
        for b in &self.badges {
            names
                .entry(b.id.clone())
                .or_insert_with(|| format!("badge {}", b.id));
        }
        names
    }
}

/// A flag on a review row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Valid, but not used at any door for more than the dormancy period.
    Dormant,
    /// Past its `valid_until`.
    Expired,
    /// `valid_until` falls within the expiry warning period.
    Expiring,
    /// No request reference (the SOP's access request).
    NoRequestRef,
    /// No approver.
    NoApprover,
    /// The same card UID is on another holder or badge (or twice on this one).
    CardEnrolledTwice,
    /// A visit on this badge ended and the badge was not returned (no `ended_at`).
    BadgeNotReturned,
}

impl Flag {
    /// The flag's name, as in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Dormant => "dormant",
            Flag::Expired => "expired",
            Flag::Expiring => "expiring",
            Flag::NoRequestRef => "no_request_ref",
            Flag::NoApprover => "no_approver",
            Flag::CardEnrolledTwice => "card_enrolled_twice",
            Flag::BadgeNotReturned => "badge_not_returned",
        }
    }
}

/// Review parameters.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// The review's "now".
    pub now: Timestamp,
    /// Dormant: not used for more than this many days.
    pub dormant_days: u32,
    /// Expiring: `valid_until` within this many days.
    pub expiring_days: u32,
}

/// One card of a holder, or one badge.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewRow {
    /// `holder` or `badge`.
    pub kind: &'static str,
    /// Holder or badge id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Role (`visitor` for badges).
    pub role: String,
    /// Masked card (`c:` + 8 hex digits of its keyed hash), or the text if the UID is invalid.
    pub card: String,
    /// Doors (`all` when the holder names none).
    pub doors: String,
    /// Start of validity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    /// End of validity (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    /// The last granted tap of this card in the archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Timestamp>,
    /// The door of that tap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_door: Option<String>,
    /// Request reference.
    pub request_ref: String,
    /// Approver.
    pub approver: String,
    /// Flags, in [`Flag`] order.
    pub flags: Vec<Flag>,
    /// Why, for people (which visit, which other holder, …).
    pub notes: Vec<String>,
}

/// The review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// Site id.
    pub site: String,
    /// The review's time.
    pub generated_at: Timestamp,
    /// Dormancy period, days.
    pub dormant_days: u32,
    /// Expiry warning period, days.
    pub expiring_days: u32,
    /// Events in the archive (last-used and dormancy come from them).
    pub archive_events: usize,
    /// The oldest archived event's time: dormancy is judged only from then on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_since: Option<Timestamp>,
    /// Rows: holders' cards in register order, then badges.
    pub rows: Vec<ReviewRow>,
    /// Site time zone (for rendering).
    #[serde(skip)]
    pub time_zone: Option<TimeZone>,
}

/// Builds the review. Pure: everything comes in as arguments.
pub fn review(
    reg: &RegisterView,
    card_key: &CardKey,
    events: &[Event],
    settings: &ReviewSettings,
) -> Review {
    let now = settings.now;
    let day = SignedDuration::from_hours(24);
    let dormant_after = day * i32::try_from(settings.dormant_days).unwrap_or(i32::MAX);
    let expiring_within = day * i32::try_from(settings.expiring_days).unwrap_or(i32::MAX);
    let tz = &reg.time_zone;

    // Last grant per masked card.
    let mut last: HashMap<&str, (Timestamp, &str)> = HashMap::new();
    for e in events {
        if e.kind != EventKind::AccessGranted {
            continue;
        }
        if let Some(card) = e.card.as_deref() {
            let slot = last.entry(card).or_insert((e.time, &e.door));
            if e.time > slot.0 {
                *slot = (e.time, &e.door);
            }
        }
    }
    let archive_since = events.iter().map(|e| e.time).min();

    // Who holds each UID.
    let mut owners: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    let parse = |text: &str| text.parse::<Uid>().ok();
    for h in &reg.holders {
        for c in &h.cards {
            if let Some(uid) = parse(c) {
                owners
                    .entry(uid.as_bytes().to_vec())
                    .or_default()
                    .push(format!("holder {}", h.id));
            }
        }
    }
    for b in &reg.badges {
        if let Some(uid) = parse(&b.card) {
            owners
                .entry(uid.as_bytes().to_vec())
                .or_default()
                .push(format!("badge {}", b.id));
        }
    }

    // Overdue visits (ended, badge not returned), by badge id.
    let mut overdue: HashMap<&str, Vec<String>> = HashMap::new();
    for v in &reg.visits {
        if v.ended_at.is_some() {
            continue;
        }
        if let Ok(until) = v.until.resolve(tz) {
            if until <= now {
                overdue.entry(v.badge.as_str()).or_default().push(format!(
                    "visit {} ({}) ended {} and the badge was not returned",
                    v.id,
                    v.visitor,
                    local_time(until, tz)
                ));
            }
        }
    }

    let card_facts =
        |text: &str, me: &str, flags: &mut Vec<Flag>, notes: &mut Vec<String>| match parse(text) {
            Some(uid) => {
                let masked = card_key.hash(&uid).masked();
                let holders = owners.get(uid.as_bytes()).cloned().unwrap_or_default();
                if holders.len() > 1 {
                    flags.push(Flag::CardEnrolledTwice);
                    let others: Vec<&String> = holders.iter().filter(|o| *o != me).collect();
                    notes.push(if others.is_empty() {
                        format!("card {masked} is listed twice on {me}")
                    } else {
                        format!(
                            "card {masked} is also enrolled on {}",
                            others
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                }
                let (used, door) = match last.get(masked.as_str()) {
                    Some((t, d)) => (Some(*t), Some(d.to_string())),
                    None => (None, None),
                };
                (masked, used, door)
            }
            None => {
                notes.push(format!("card {text:?} is not a valid UID"));
                (text.to_string(), None, None)
            }
        };

    let mut rows = Vec::new();
    for h in &reg.holders {
        let me = format!("holder {}", h.id);
        let from = h.valid_from.resolve(tz).ok();
        let until = h.valid_until.resolve(tz).ok();
        for c in &h.cards {
            let mut flags = Vec::new();
            let mut notes = Vec::new();
            let (card, last_used, last_door) = card_facts(c, &me, &mut flags, &mut notes);
            match until {
                Some(u) if u <= now => flags.push(Flag::Expired),
                Some(u) if u <= now + expiring_within => flags.push(Flag::Expiring),
                Some(_) => {}
                None => notes.push(format!("valid_until {:?} does not parse", h.valid_until.0)),
            }
            let valid_now = from.is_some_and(|f| f <= now) && until.is_some_and(|u| now < u);
            if let (true, Some(since)) = (valid_now, archive_since) {
                // Idle since the last use, or since access began or the archive began.
                let idle_since = last_used.unwrap_or_else(|| from.map_or(since, |f| f.max(since)));
                if now.duration_since(idle_since) > dormant_after {
                    flags.push(Flag::Dormant);
                    notes.push(match last_used {
                        Some(t) => format!("last used {}", local_time(t, tz)),
                        None => format!("never used since {}", local_time(idle_since, tz)),
                    });
                }
            }
            if h.request_ref.trim().is_empty() {
                flags.push(Flag::NoRequestRef);
            }
            if h.approver.trim().is_empty() {
                flags.push(Flag::NoApprover);
            }
            if let Some(visits) = overdue.get(h.id.as_str()) {
                flags.push(Flag::BadgeNotReturned);
                notes.extend(visits.iter().cloned());
            }
            flags.sort();
            flags.dedup();
            rows.push(ReviewRow {
                kind: "holder",
                id: h.id.clone(),
                name: h.name.clone(),
                unit: h.unit.clone(),
                role: h.role.as_str().to_string(),
                card,
                doors: h
                    .doors
                    .as_ref()
                    .map(|d| d.join(" "))
                    .unwrap_or_else(|| "all".into()),
                valid_from: from,
                valid_until: until,
                last_used,
                last_door,
                request_ref: h.request_ref.clone(),
                approver: h.approver.clone(),
                flags,
                notes,
            });
        }
    }
    for b in &reg.badges {
        let me = format!("badge {}", b.id);
        let mut flags = Vec::new();
        let mut notes = Vec::new();
        let (card, last_used, last_door) = card_facts(&b.card, &me, &mut flags, &mut notes);
        if let Some(visits) = overdue.get(b.id.as_str()) {
            flags.push(Flag::BadgeNotReturned);
            notes.extend(visits.iter().cloned());
        }
        flags.sort();
        flags.dedup();
        rows.push(ReviewRow {
            kind: "badge",
            id: b.id.clone(),
            name: String::new(),
            unit: String::new(),
            role: "visitor".into(),
            card,
            doors: "all".into(),
            valid_from: None,
            valid_until: None,
            last_used,
            last_door,
            request_ref: String::new(),
            approver: String::new(),
            flags,
            notes,
        });
    }
    Review {
        site: reg.site.clone(),
        generated_at: now,
        dormant_days: settings.dormant_days,
        expiring_days: settings.expiring_days,
        archive_events: events.len(),
        archive_since,
        rows,
        time_zone: Some(tz.clone()),
    }
}

impl Review {
    fn t(&self, ts: Option<Timestamp>) -> String {
        match (ts, &self.time_zone) {
            (Some(t), Some(tz)) => local_time(t, tz),
            (Some(t), None) => t.to_string(),
            (None, _) => String::new(),
        }
    }

    fn day(&self, ts: Option<Timestamp>) -> String {
        let mut s = self.t(ts);
        s.truncate(10);
        s
    }

    fn flags(row: &ReviewRow) -> String {
        row.flags
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A table for people, then the notes of flagged rows.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Access review, site {}, {}; dormant: unused > {} days, expiring: within {} days",
            self.site,
            self.t(Some(self.generated_at)),
            self.dormant_days,
            self.expiring_days
        );
        match self.archive_since {
            Some(since) => {
                let _ = writeln!(
                    out,
                    "Last used from the archive: {} events since {}\n",
                    self.archive_events,
                    self.t(Some(since))
                );
            }
            None => out.push_str(
                "The archive is empty: no last-used dates, no dormant flags (run `pintuctl archive`).\n\n",
            ),
        }
        let header = [
            "HOLDER",
            "NAME",
            "ROLE",
            "CARD",
            "DOORS",
            "VALID UNTIL",
            "LAST USED",
            "FLAGS",
        ];
        let table: Vec<[String; 8]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    if r.kind == "badge" {
                        format!("badge {}", r.id)
                    } else {
                        r.id.clone()
                    },
                    r.name.clone(),
                    r.role.clone(),
                    r.card.clone(),
                    r.doors.clone(),
                    self.day(r.valid_until),
                    match &r.last_used {
                        Some(_) => format!(
                            "{} {}",
                            self.t(r.last_used).get(..16).unwrap_or(""),
                            r.last_door.clone().unwrap_or_default()
                        ),
                        None => "never".into(),
                    },
                    Review::flags(r),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &table {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(cell);
                } else {
                    let pad = w - cell.chars().count();
                    let _ = write!(l, "{cell}{}  ", " ".repeat(pad));
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
        for row in &table {
            let _ = writeln!(out, "{}", line(row));
        }
        let flagged: Vec<&ReviewRow> = self.rows.iter().filter(|r| !r.flags.is_empty()).collect();
        let _ = writeln!(
            out,
            "\n{} of {} rows flagged.",
            flagged.len(),
            self.rows.len()
        );
        for r in self.rows.iter().filter(|r| !r.notes.is_empty()) {
            let _ = writeln!(out, "  {} {}: {}", r.kind, r.id, r.notes.join("; "));
        }
        out
    }

    /// CSV (RFC 4180): one row per holder card and badge.
    pub fn to_csv(&self) -> String {
        let mut out = csv_row(&[
            "kind",
            "id",
            "name",
            "unit",
            "role",
            "card",
            "doors",
            "valid_from",
            "valid_until",
            "last_used",
            "last_door",
            "request_ref",
            "approver",
            "flags",
            "notes",
        ]);
        for r in &self.rows {
            out.push_str(&csv_row(&[
                r.kind.to_string(),
                r.id.clone(),
                r.name.clone(),
                r.unit.clone(),
                r.role.clone(),
                r.card.clone(),
                r.doors.clone(),
                self.t(r.valid_from),
                self.t(r.valid_until),
                self.t(r.last_used),
                r.last_door.clone().unwrap_or_default(),
                r.request_ref.clone(),
                r.approver.clone(),
                Review::flags(r),
                r.notes.join("; "),
            ]));
        }
        out
    }
}
