//! The operator's register: the office-side source of truth from which signed lists are made.
//!
//! A TOML file, human-readable and diff-friendly in git: the site, its doors and time zone, one
//! `[[holder]]` per cardholder with their raw card UIDs (office side only: the list carries only
//! keyed hashes), validity, doors, schedule, and the request reference and approver of the
//! grant; the visitor-badge pool (`[[badge]]`), approved visits (`[[visit]]`) and the record of
//! revoked cards (`[[revoked]]`). `[list] version` records the last version signed.
//!
//! [`LoadedRegister`] reads it, checks it ([`LoadedRegister::check`]), turns it into the payload
//! and visits of a signed list ([`LoadedRegister::build_list`]) and edits it in memory with
//! `toml_edit`, keeping the file's comments and layout, for `pintuctl` to write back atomically
//! ([`LoadedRegister::save`]). An edit refuses bad input before changing anything, with a
//! message naming the file and the item. Format reference: `docs/register.md`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::core::card::{CardKey, Uid};
use crate::core::list::{check_payload, Entry, Payload, Role, PAYLOAD_FORMAT};
use crate::core::schedule::Window;
use crate::core::visit::Visit;
use crate::util::toml::{line_of_key, parse_toml, ConfigError, HumanDuration};

/// Register failures; every one names the file, and the line and key when it can.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A problem in the register text.
    #[error(transparent)]
    At(#[from] ConfigError),
    /// The file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A date in the register: `2027-01-01` (start of that day in the site's time zone),
/// `2027-01-01T08:00:00` (site-local) or a full RFC 3339 time with offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateSpec(pub String);

impl<'de> Deserialize<'de> for DateSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(DateSpec(s)),
            toml::Value::Datetime(dt) => Ok(DateSpec(dt.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a date like 2027-01-01 or 2027-01-01T08:00:00+07:00, found {}",
                other.type_str()
            ))),
        }
    }
}

impl Serialize for DateSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for DateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DateSpec {
    /// Resolves to an instant, using `tz` for dates and local times.
    pub fn resolve(&self, tz: &TimeZone) -> Result<Timestamp, String> {
        let s = self.0.trim();
        if let Ok(ts) = s.parse::<Timestamp>() {
            return Ok(ts);
        }
        if let Ok(dt) = s.parse::<DateTime>() {
            return dt
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| e.to_string());
        }
        if let Ok(d) = s.parse::<Date>() {
            return d
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| e.to_string());
        }
        Err(format!(
            "expected a date like 2027-01-01 or 2027-01-01T08:00:00+07:00, found {s:?}"
        ))
    }
}

/// `[list]`: signing state.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListState {
    /// Last version signed (0 before the first).
    #[serde(default)]
    pub version: u64,
}

/// One cardholder.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// Stable id (e.g. employee number).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Organisational unit.
    #[serde(default)]
    pub unit: String,
    /// Staff, escort or visitor.
    pub role: Role,
    /// Card UIDs in hex. May be empty: a holder whose cards were all revoked stays in the
    /// register (for the review and the report) and has no entry in the list.
    #[serde(default)]
    pub cards: Vec<String>,
    /// Start of validity.
    pub valid_from: DateSpec,
    /// End of validity (exclusive).
    pub valid_until: DateSpec,
    /// Doors; absent means every door of the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doors: Option<Vec<String>>,
    /// Weekly windows; absent means at any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<Window>,
    /// Request reference (SOP access request form).
    pub request_ref: String,
    /// Who approved.
    pub approver: String,
}

/// The register file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Site id.
    pub site: String,
    /// IANA time zone of the site.
    pub time_zone: String,
    /// Doors the signed list applies to.
    pub doors: Vec<String>,
    /// The site's card key file (relative to the register).
    pub card_key_file: PathBuf,
    /// How long a signed list stays valid.
    #[serde(default = "default_valid_for")]
    pub list_valid_for: HumanDuration,
    /// Signing state.
    #[serde(default)]
    pub list: ListState,
    /// Cardholders.
    #[serde(default, rename = "holder")]
    pub holders: Vec<Holder>,
    /// The visitor-badge pool.
    #[serde(default, rename = "badge")]
    pub badges: Vec<Badge>,
    /// Approved visits, open and ended.
    #[serde(default, rename = "visit")]
    pub visits: Vec<VisitRecord>,
    /// Revoked cards, newest last.
    #[serde(default, rename = "revoked")]
    pub revoked: Vec<Revocation>,
}

/// `[[badge]]`: a card of the visitor-badge pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Badge {
    /// Label printed on the badge (e.g. `VB-01`), unique.
    pub id: String,
    /// Its UID in hex; unique across holders' cards and badges.
    pub card: String,
}

/// `[[visit]]`: an approved visit (the SOP's visit request), bound to a badge of the pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VisitRecord {
    /// Visit id (e.g. `V-2026-0042`), unique.
    pub id: String,
    /// Who visits (a name and company; never a national ID number).
    pub visitor: String,
    /// Holder id of the host (must exist and not be a visitor while the visit is open).
    pub host: String,
    /// Holder id expected to escort (staff or escort role), if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escort: Option<String>,
    /// Badge id from the pool.
    pub badge: String,
    /// Start of the approved window (inclusive).
    pub from: DateSpec,
    /// End of the approved window (exclusive).
    pub until: DateSpec,
    /// Reference of the visit request.
    pub request_ref: String,
    /// Who approved it.
    pub approver: String,
    /// When the visit was ended (`pintuctl visit end`): the badge is back in the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateSpec>,
}

impl VisitRecord {
    /// Open while it has no `ended_at`: its badge is in use.
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }
}

/// `[[revoked]]`: a card taken out of service, kept for the review and the report.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Holder id whose card it was (absent for a pool badge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Badge id, when a pool badge was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<String>,
    /// The card's UID in hex.
    pub card: String,
    /// When it was revoked.
    pub at: DateSpec,
    /// Why (lost card, left the unit, removal request, …).
    pub reason: String,
    /// Reference of the removal request.
    pub request_ref: String,
    /// Operator who recorded it.
    pub by: String,
}

/// Why and on whose request cards are revoked (`card revoke`, `holder remove`, `badge remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeInfo {
    /// Why.
    pub reason: String,
    /// Reference of the removal request.
    pub request_ref: String,
    /// Operator.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// Which cards `card revoke` takes out of service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// One card, by UID (a holder's card or a pool badge).
    Card(Uid),
    /// Every card of a holder.
    Holder(String),
}

/// One revoked card, as [`LoadedRegister::revoke`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCard {
    /// Holder id, or the badge id for a pool badge.
    pub owner: String,
    /// Whether it was a pool badge.
    pub badge: bool,
    /// UID in hex.
    pub card: String,
}

/// Changes to a holder (`holder edit`); `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderEdit {
    /// New display name.
    pub name: Option<String>,
    /// New unit.
    pub unit: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New start of validity, as written in the register.
    pub valid_from: Option<String>,
    /// New end of validity, as written in the register.
    pub valid_until: Option<String>,
    /// New doors: `Some(None)` is every door of the list.
    pub doors: Option<Option<Vec<String>>>,
    /// Reference of the request for this change (required when access changes).
    pub request_ref: Option<String>,
    /// Who approved this change (required when access changes).
    pub approver: Option<String>,
}

/// A visit to issue (`visit issue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisit {
    /// Visit id; `None` makes the next `V-YEAR-NNNN`.
    pub id: Option<String>,
    /// Who visits.
    pub visitor: String,
    /// Badge id from the pool.
    pub badge: String,
    /// Window start, as written in the register.
    pub from: String,
    /// Window end, as written in the register.
    pub until: String,
    /// Host holder id.
    pub host: String,
    /// Escort holder id.
    pub escort: Option<String>,
    /// Request reference.
    pub request_ref: String,
    /// Approver.
    pub approver: String,
}

fn default_valid_for() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 24 * 3600))
}

/// A holder to create at enrollment (`pintuctl enroll` for a holder not yet in the register).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHolder {
    /// Display name.
    pub name: String,
    /// Organisational unit.
    pub unit: Option<String>,
    /// Staff, escort or visitor.
    pub role: Role,
    /// Start of validity as written in the register; `None` is today in the site's time zone.
    pub valid_from: Option<String>,
    /// End of validity (exclusive), as written in the register.
    pub valid_until: String,
    /// Request reference.
    pub request_ref: String,
    /// Who approved.
    pub approver: String,
}

/// What [`LoadedRegister::enroll`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// The card was added to an existing holder, who now has `cards` cards.
    CardAdded {
        /// Cards the holder now has.
        cards: usize,
    },
    /// A new holder was created with the card.
    HolderCreated,
    /// The holder already had this card: nothing changed.
    AlreadyEnrolled,
}

/// A loaded register with its text (for error lines and the version bump).
pub struct LoadedRegister {
    /// File path.
    pub path: PathBuf,
    /// File text.
    pub text: String,
    /// Parsed content.
    pub register: Register,
}

impl LoadedRegister {
    /// Reads and parses a register file.
    pub fn load(path: &Path) -> Result<LoadedRegister, RegisterError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegisterError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        LoadedRegister::parse(path, &text)
    }

    /// Parses register text; `path` names it in errors and resolves the card key file.
    pub fn parse(path: &Path, text: &str) -> Result<LoadedRegister, RegisterError> {
        let register = parse_toml(path, text)?;
        Ok(LoadedRegister {
            path: path.to_path_buf(),
            text: text.to_string(),
            register,
        })
    }

    fn error(&self, key: &str, message: impl Into<String>) -> RegisterError {
        RegisterError::At(ConfigError {
            file: self.path.clone(),
            line: line_of_key(&self.text, key),
            key: key.to_string(),
            message: message.into(),
        })
    }

    /// The card key file, resolved relative to the register.
    pub fn card_key_path(&self) -> PathBuf {
        let p = &self.register.card_key_file;
        if p.is_absolute() {
            p.clone()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// Builds the payload for `version`, issued at `now`. Checks everything the door will check.
    /// Badge entries of open visits are included; the visits themselves are not (use
    /// [`LoadedRegister::build_list`] to sign).
    pub fn build_payload(
        &self,
        card_key: &CardKey,
        version: u64,
        now: Timestamp,
    ) -> Result<Payload, RegisterError> {
        self.build_list(card_key, version, now).map(|(p, _)| p)
    }

    /// Checks the whole register (everything [`LoadedRegister::build_list`] checks); every
    /// mutating command runs it before writing.
    pub fn check(&self) -> Result<(), RegisterError> {
        // The card key only shapes the hashes, never what is valid.
        let key = CardKey::from_bytes([0; 32]);
        self.build_list(&key, self.register.list.version + 1, Timestamp::now())
            .map(|_| ())
    }

    /// The site's time zone.
    pub fn time_zone(&self) -> Result<TimeZone, RegisterError> {
        TimeZone::get(&self.register.time_zone).map_err(|_| {
            self.error(
                "time_zone",
                format!(
                    "unknown time zone {:?} (e.g. \"Asia/Jakarta\")",
                    self.register.time_zone
                ),
            )
        })
    }

    /// `ts` in the site's time zone as the register writes it: `2026-11-24 09:00`.
    pub fn local_time(&self, ts: Timestamp) -> String {
        let tz = self.time_zone().unwrap_or(TimeZone::UTC);
        ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string()
    }

    /// Builds the payload for `version`, issued at `now`, and the visits it carries: one entry
    /// per holder card, one `visitor` entry per badge of an open visit whose window has not
    /// ended (holder id = badge id, validity = the visit window), and that visit. Checks the
    /// whole register and everything the door will check; serialize with
    /// [`crate::core::list::payload_bytes`].
    pub fn build_list(
        &self,
        card_key: &CardKey,
        version: u64,
        now: Timestamp,
    ) -> Result<(Payload, Vec<Visit>), RegisterError> {
        let reg = &self.register;
        let tz = self.time_zone()?;
        let valid_for = jiff::SignedDuration::try_from(reg.list_valid_for.0)
            .map_err(|_| self.error("list_valid_for", "too long"))?;
        let mut entries = Vec::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut uids: HashMap<Vec<u8>, String> = HashMap::new();
        for (i, h) in reg.holders.iter().enumerate() {
            let key = |field: &str| format!("holder[{i}].{field}");
            if h.id.trim().is_empty() {
                return Err(self.error(&key("id"), "holder id is empty"));
            }
            if let Some(prev) = ids.insert(h.id.as_str(), i) {
                return Err(self.error(
                    &key("id"),
                    format!("holder id {:?} is also used by holder[{prev}]", h.id),
                ));
            }
            let valid_from = h
                .valid_from
                .resolve(&tz)
                .map_err(|m| self.error(&key("valid_from"), m))?;
            let valid_until = h
                .valid_until
                .resolve(&tz)
                .map_err(|m| self.error(&key("valid_until"), m))?;
            if valid_until <= valid_from {
                return Err(self.error(&key("valid_until"), "must be after valid_from"));
            }
            // docs/register.md: the approver is required; a blank one is no approval, and it
            // would be signed into the list as if it were (issue 16).
            if h.approver.trim().is_empty() {
                return Err(self.error(
                    &key("approver"),
                    format!(
                        "holder {}: the approver is empty: say who approved the request",
                        h.id
                    ),
                ));
            }
            for (w, window) in h.schedule.iter().enumerate() {
                window
                    .validate()
                    .map_err(|m| self.error(&key(&format!("schedule[{w}]")), m))?;
            }
            // A holder without cards (all revoked) stays for the record and has no entry.
            for (c, text) in h.cards.iter().enumerate() {
                let uid: Uid = text
                    .parse()
                    .map_err(|e| self.error(&key(&format!("cards[{c}]")), format!("{e}")))?;
                if let Some(other) = uids.insert(uid.as_bytes().to_vec(), format!("{:?}", h.id)) {
                    return Err(self.error(
                        &key(&format!("cards[{c}]")),
                        format!("card {text} is also held by {other}"),
                    ));
                }
                entries.push(Entry {
                    card: card_key.hash(&uid),
                    holder: h.id.clone(),
                    name: h.name.clone(),
                    role: h.role,
                    valid_from,
                    valid_until,
                    doors: h.doors.clone(),
                    schedule: h.schedule.clone(),
                    request_ref: h.request_ref.clone(),
                    approver: h.approver.clone(),
                });
            }
        }

        let mut badges: HashMap<&str, (usize, Uid)> = HashMap::new();
        for (b, badge) in reg.badges.iter().enumerate() {
            let key = |field: &str| format!("badge[{b}].{field}");
            if badge.id.trim().is_empty() {
                return Err(self.error(&key("id"), "badge id is empty"));
            }
            let uid: Uid = badge
                .card
                .parse()
                .map_err(|e| self.error(&key("card"), format!("badge {}: {e}", badge.id)))?;
            if let Some((prev, _)) = badges.insert(badge.id.as_str(), (b, uid.clone())) {
                return Err(self.error(
                    &key("id"),
                    format!("badge id {:?} is also used by badge[{prev}]", badge.id),
                ));
            }
            if let Some(other) =
                uids.insert(uid.as_bytes().to_vec(), format!("badge {:?}", badge.id))
            {
                return Err(self.error(
                    &key("card"),
                    format!(
                        "badge {}: card {} is also held by {other}",
                        badge.id, badge.card
                    ),
                ));
            }
        }

        let holder = |id: &str| reg.holders.iter().find(|h| h.id == id);
        let mut visits = Vec::new();
        let mut visit_ids: HashMap<&str, usize> = HashMap::new();
        let mut in_use: HashMap<&str, usize> = HashMap::new();
        for (i, v) in reg.visits.iter().enumerate() {
            let key = |field: &str| format!("visit[{i}].{field}");
            let fail = |field: &str, what: String| {
                self.error(&key(field), format!("visit {}: {what}", v.id))
            };
            if v.id.trim().is_empty() {
                return Err(self.error(&key("id"), "visit id is empty"));
            }
            if let Some(prev) = visit_ids.insert(v.id.as_str(), i) {
                return Err(fail("id", format!("id is also used by visit[{prev}]")));
            }
            for (field, value) in [
                ("visitor", &v.visitor),
                ("request_ref", &v.request_ref),
                ("approver", &v.approver),
            ] {
                if value.trim().is_empty() {
                    return Err(fail(field, format!("{field} is empty")));
                }
            }
            let from = v.from.resolve(&tz).map_err(|m| fail("from", m))?;
            let until = v.until.resolve(&tz).map_err(|m| fail("until", m))?;
            if until <= from {
                return Err(fail(
                    "until",
                    format!(
                        "the window ends ({}) before it starts ({})",
                        v.until, v.from
                    ),
                ));
            }
            if let Some(ended) = &v.ended_at {
                ended.resolve(&tz).map_err(|m| fail("ended_at", m))?;
            }
            let Some((_, badge_uid)) = badges.get(v.badge.as_str()) else {
                if !v.is_open() {
                    // History: the badge may have left the pool since.
                    continue;
                }
                return Err(fail(
                    "badge",
                    format!("badge {} is not in the badge pool ([[badge]])", v.badge),
                ));
            };
            if !v.is_open() {
                continue;
            }
            match holder(&v.host) {
                None => {
                    return Err(fail(
                        "host",
                        format!("host {:?} is not a holder in the register", v.host),
                    ))
                }
                Some(h) if h.role == Role::Visitor => {
                    return Err(fail(
                        "host",
                        format!("host {:?} is a visitor; a host is staff or escort", v.host),
                    ))
                }
                Some(_) => {}
            }
            if let Some(escort) = &v.escort {
                match holder(escort) {
                    None => {
                        return Err(fail(
                            "escort",
                            format!("escort {escort:?} is not a holder in the register"),
                        ))
                    }
                    Some(h) if h.role == Role::Visitor => {
                        return Err(fail(
                            "escort",
                            format!("escort {escort:?} is a visitor; an escort is staff or escort"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(&prev) = in_use.get(v.badge.as_str()) {
                let other = &reg.visits[prev];
                return Err(fail(
                    "badge",
                    format!(
                        "badge {} is in use by visit {} (ends {})",
                        v.badge, other.id, other.until
                    ),
                ));
            }
            in_use.insert(v.badge.as_str(), i);
            if until <= now {
                // The window is over: the badge opens nothing until the visit is ended and the
                // badge issued again.
                continue;
            }
            let hash = card_key.hash(badge_uid);
            entries.push(Entry {
                card: hash,
                holder: v.badge.clone(),
                name: v.visitor.clone(),
                role: Role::Visitor,
                valid_from: from,
                valid_until: until,
                doors: None,
                schedule: Vec::new(),
                request_ref: v.request_ref.clone(),
                approver: v.approver.clone(),
            });
            visits.push(Visit {
                id: v.id.clone(),
                badge: hash,
                visitor: v.visitor.clone(),
                host: v.host.clone(),
                valid_from: from,
                valid_until: until,
            });
        }

        for (r, rev) in reg.revoked.iter().enumerate() {
            let key = |field: &str| format!("revoked[{r}].{field}");
            rev.card
                .parse::<Uid>()
                .map_err(|e| self.error(&key("card"), format!("{e}")))?;
            rev.at.resolve(&tz).map_err(|m| self.error(&key("at"), m))?;
            if rev.holder.is_some() == rev.badge.is_some() {
                return Err(self.error(
                    &key("holder"),
                    "a revocation names either a holder or a badge",
                ));
            }
        }

        let payload = Payload {
            format: PAYLOAD_FORMAT,
            site: reg.site.clone(),
            doors: reg.doors.clone(),
            version,
            issued_at: now,
            expires_at: now + valid_for,
            time_zone: reg.time_zone.clone(),
            entries,
        };
        check_payload(&payload).map_err(|m| self.error("", m))?;
        crate::core::visit::check_visits(&payload.entries, &visits)
            .map_err(|m| self.error("visit", m))?;
        Ok((payload, visits))
    }

    /// Adds the card `uid` to holder `id` in memory, creating the holder from `new` when the
    /// register has none with that id, and keeping the file's comments and layout. Refuses a card
    /// another holder holds, and `new` for an existing holder. The edited text is parsed again;
    /// [`LoadedRegister::save`] writes it (check it with [`LoadedRegister::build_payload`] first).
    pub fn enroll(
        &mut self,
        id: &str,
        uid: &Uid,
        new: Option<&NewHolder>,
    ) -> Result<Enrolled, RegisterError> {
        let mut position = None;
        for (i, h) in self.register.holders.iter().enumerate() {
            for (c, text) in h.cards.iter().enumerate() {
                if text.parse::<Uid>().ok().as_ref() != Some(uid) {
                    continue;
                }
                if h.id == id {
                    return Ok(Enrolled::AlreadyEnrolled);
                }
                return Err(self.error(
                    &format!("holder[{i}].cards[{c}]"),
                    format!(
                        "card {} is already held by {:?}; remove it there first to move it",
                        uid.to_hex(),
                        h.id
                    ),
                ));
            }
            if h.id == id {
                position = Some(i);
            }
        }
        if let Some(CardOwner::Badge(b)) = self.card_owner(uid) {
            return Err(self.error(
                &format!("badge[{b}].card"),
                format!(
                    "card {} is visitor badge {} of the pool",
                    uid.to_hex(),
                    self.register.badges[b].id
                ),
            ));
        }
        let mut doc: toml_edit::DocumentMut = self
            .text
            .parse()
            .map_err(|e: toml_edit::TomlError| self.error("", e.to_string()))?;
        let not_tables = || {
            self.error(
                "holder",
                "holders must be written as [[holder]] tables for pintuctl to edit them",
            )
        };
        if let Some(new) = new {
            refuse_blank_approver(self, id, &new.approver)?;
        }
        let change = match (position, new) {
            (Some(i), Some(_)) => {
                return Err(self.error(
                    &format!("holder[{i}].id"),
                    format!("holder {id:?} already exists: name, role, validity, request reference and approver are only for a new holder (edit the register to change them)"),
                ))
            }
            (None, None) => {
                return Err(self.error(
                    "",
                    format!("no holder {id:?} in the register: give the new holder's name, role, validity end, request reference and approver to add one"),
                ))
            }
            (Some(i), None) => {
                let cards = doc
                    .get_mut("holder")
                    .and_then(toml_edit::Item::as_array_of_tables_mut)
                    .and_then(|holders| holders.get_mut(i))
                    .and_then(|h| h.get_mut("cards"))
                    .and_then(toml_edit::Item::as_array_mut)
                    .ok_or_else(not_tables)?;
                cards.push(uid.to_hex());
                Enrolled::CardAdded { cards: cards.len() }
            }
            (None, Some(new)) => {
                let holders = doc
                    .entry("holder")
                    .or_insert_with(|| toml_edit::ArrayOfTables::new().into())
                    .as_array_of_tables_mut()
                    .ok_or_else(not_tables)?;
                holders.push(self.holder_table(id, std::slice::from_ref(uid), new, "enroll"));
                Enrolled::HolderCreated
            }
        };
        let text = doc.to_string();
        self.register = parse_toml(&self.path, &text)?;
        self.text = text;
        Ok(change)
    }

    /// Where holder `h` stands at `now`: `active`, `not yet valid`, `expired` or `no card`
    /// (every card revoked). Dates that do not resolve read as `invalid dates`.
    pub fn holder_state(&self, h: &Holder, now: Timestamp) -> &'static str {
        let Ok(tz) = self.time_zone() else {
            return "invalid dates";
        };
        match (h.valid_from.resolve(&tz), h.valid_until.resolve(&tz)) {
            (Ok(from), Ok(until)) => {
                if h.cards.is_empty() {
                    "no card"
                } else if now < from {
                    "not yet valid"
                } else if now >= until {
                    "expired"
                } else {
                    "active"
                }
            }
            _ => "invalid dates",
        }
    }

    /// Where visit `v` stands at `now`: `ended`, `upcoming`, `in progress` or `window over`
    /// (open, window past: end it to return the badge).
    pub fn visit_state(&self, v: &VisitRecord, now: Timestamp) -> &'static str {
        if !v.is_open() {
            return "ended";
        }
        let Ok(tz) = self.time_zone() else {
            return "invalid dates";
        };
        match (v.from.resolve(&tz), v.until.resolve(&tz)) {
            (Ok(from), _) if now < from => "upcoming",
            (Ok(_), Ok(until)) if now < until => "in progress",
            (Ok(_), Ok(_)) => "window over",
            _ => "invalid dates",
        }
    }

    /// An error about a requested change (no line: the change is not in the file).
    fn refuse(&self, message: impl Into<String>) -> RegisterError {
        RegisterError::At(ConfigError {
            file: self.path.clone(),
            line: None,
            key: String::new(),
            message: message.into(),
        })
    }

    fn document(&self) -> Result<toml_edit::DocumentMut, RegisterError> {
        self.text
            .parse()
            .map_err(|e: toml_edit::TomlError| self.error("", e.to_string()))
    }

    /// Takes the edited document as the register's text (parsed again).
    fn replace_text(&mut self, doc: &toml_edit::DocumentMut) -> Result<(), RegisterError> {
        let text = doc.to_string();
        self.register = parse_toml(&self.path, &text)?;
        self.text = text;
        Ok(())
    }

    /// The `[[name]]` tables of `doc`, created when absent.
    fn tables_mut<'d>(
        &self,
        doc: &'d mut toml_edit::DocumentMut,
        name: &str,
    ) -> Result<&'d mut toml_edit::ArrayOfTables, RegisterError> {
        doc.entry(name)
            .or_insert_with(|| toml_edit::ArrayOfTables::new().into())
            .as_array_of_tables_mut()
            .ok_or_else(|| {
                self.error(
                    name,
                    format!(
                        "{name} must be written as [[{name}]] tables for pintuctl to edit them"
                    ),
                )
            })
    }

    /// Index of holder `id`.
    pub fn holder_index(&self, id: &str) -> Option<usize> {
        self.register.holders.iter().position(|h| h.id == id)
    }

    fn holder_or_refuse(&self, id: &str) -> Result<usize, RegisterError> {
        self.holder_index(id).ok_or_else(|| {
            self.refuse(format!(
                "no holder {id:?} in the register (pintuctl list holders)"
            ))
        })
    }

    /// Who holds `uid` now: a holder (index, card index) or a pool badge (index).
    pub fn card_owner(&self, uid: &Uid) -> Option<CardOwner> {
        for (i, h) in self.register.holders.iter().enumerate() {
            for (c, text) in h.cards.iter().enumerate() {
                if text.parse::<Uid>().ok().as_ref() == Some(uid) {
                    return Some(CardOwner::Holder(i, c));
                }
            }
        }
        self.register
            .badges
            .iter()
            .position(|b| b.card.parse::<Uid>().ok().as_ref() == Some(uid))
            .map(CardOwner::Badge)
    }

    fn refuse_held(&self, uid: &Uid) -> Result<(), RegisterError> {
        match self.card_owner(uid) {
            None => Ok(()),
            Some(CardOwner::Holder(i, _)) => Err(self.refuse(format!(
                "card {} is already held by holder {:?}; revoke it there first to move it",
                uid.to_hex(),
                self.register.holders[i].id
            ))),
            Some(CardOwner::Badge(b)) => Err(self.refuse(format!(
                "card {} is visitor badge {} of the pool",
                uid.to_hex(),
                self.register.badges[b].id
            ))),
        }
    }

    fn check_date(&self, what: &str, text: &str) -> Result<Timestamp, RegisterError> {
        let tz = self.time_zone()?;
        DateSpec(text.to_string())
            .resolve(&tz)
            .map_err(|m| self.refuse(format!("{what}: {m}")))
    }

    /// The open visit that has badge `badge` out, if any.
    pub fn badge_in_use(&self, badge: &str) -> Option<&VisitRecord> {
        self.register
            .visits
            .iter()
            .find(|v| v.is_open() && v.badge == badge)
    }

    /// Adds holder `id` with `cards` (possibly none: enroll them later) and `doors` (`None`:
    /// every door of the list). Refuses an existing id, a card already held, bad dates.
    pub fn add_holder(
        &mut self,
        id: &str,
        new: &NewHolder,
        cards: &[Uid],
        doors: Option<&[String]>,
    ) -> Result<(), RegisterError> {
        if id.trim().is_empty() {
            return Err(self.refuse("holder id is empty"));
        }
        if self.holder_index(id).is_some() {
            return Err(self.refuse(format!(
                "holder {id:?} already exists (pintuctl holder edit to change it)"
            )));
        }
        for (n, uid) in cards.iter().enumerate() {
            self.refuse_held(uid)?;
            if cards[..n].contains(uid) {
                return Err(self.refuse(format!("card {} is given twice", uid.to_hex())));
            }
        }
        if let Some(from) = &new.valid_from {
            self.check_date(&format!("holder {id}: valid_from"), from)?;
        }
        self.check_date(&format!("holder {id}: valid_until"), &new.valid_until)?;
        if new.name.trim().is_empty() {
            return Err(self.refuse(format!("holder {id}: name is empty")));
        }
        refuse_blank_approver(self, id, &new.approver)?;
        let mut doc = self.document()?;
        let mut table = self.holder_table(id, cards, new, "holder add");
        if let Some(doors) = doors {
            table["doors"] = toml_edit::value(toml_edit::Array::from_iter(doors.iter()));
        }
        self.tables_mut(&mut doc, "holder")?.push(table);
        self.replace_text(&doc)
    }

    /// Applies `edit` to holder `id`; returns what changed (`field: old → new`), empty when
    /// nothing did. A change of role, validity or doors is a new grant: it needs the request
    /// reference and approver, which replace the holder's.
    pub fn edit_holder(
        &mut self,
        id: &str,
        edit: &HolderEdit,
    ) -> Result<Vec<String>, RegisterError> {
        let i = self.holder_or_refuse(id)?;
        let grant = edit.role.is_some()
            || edit.valid_from.is_some()
            || edit.valid_until.is_some()
            || edit.doors.is_some();
        if grant && (edit.request_ref.is_none() || edit.approver.is_none()) {
            return Err(self.refuse(format!(
                "holder {id}: a change of role, validity or doors is a new grant: give its request reference and approver"
            )));
        }
        if let Some(approver) = &edit.approver {
            refuse_blank_approver(self, id, approver)?;
        }
        if let Some(from) = &edit.valid_from {
            self.check_date(&format!("holder {id}: valid_from"), from)?;
        }
        if let Some(until) = &edit.valid_until {
            self.check_date(&format!("holder {id}: valid_until"), until)?;
        }
        let old = self.register.holders[i].clone();
        let mut doc = self.document()?;
        let table = self
            .tables_mut(&mut doc, "holder")?
            .get_mut(i)
            .ok_or_else(|| self.refuse(format!("holder {id:?} is not a [[holder]] table")))?;
        let mut changes = Vec::new();
        let mut set = |key: &str, old: String, new: &str, value: toml_edit::Value| {
            if old != new {
                changes.push(format!("{key}: {old:?} → {new:?}"));
                set_keeping_decor(table, key, value);
            }
        };
        if let Some(v) = &edit.name {
            set("name", old.name.clone(), v, v.into());
        }
        if let Some(v) = &edit.unit {
            set("unit", old.unit.clone(), v, v.into());
        }
        if let Some(v) = edit.role {
            set(
                "role",
                old.role.as_str().into(),
                v.as_str(),
                v.as_str().into(),
            );
        }
        if let Some(v) = &edit.valid_from {
            set("valid_from", old.valid_from.0.clone(), v, date_value(v));
        }
        if let Some(v) = &edit.valid_until {
            set("valid_until", old.valid_until.0.clone(), v, date_value(v));
        }
        if grant {
            if let Some(v) = &edit.request_ref {
                set("request_ref", old.request_ref.clone(), v, v.into());
            }
            if let Some(v) = &edit.approver {
                set("approver", old.approver.clone(), v, v.into());
            }
        }
        match &edit.doors {
            Some(Some(doors)) => {
                let old_doors = old.doors.as_ref().map_or("all".into(), |d| d.join(","));
                let new_doors = doors.join(",");
                if old.doors.as_ref() != Some(doors) {
                    changes.push(format!("doors: {old_doors} → {new_doors}"));
                    set_keeping_decor(
                        table,
                        "doors",
                        toml_edit::Array::from_iter(doors.iter()).into(),
                    );
                }
            }
            Some(None) => {
                if let Some(d) = &old.doors {
                    changes.push(format!("doors: {} → all", d.join(",")));
                    table.remove("doors");
                }
            }
            None => {}
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        self.replace_text(&doc)?;
        Ok(changes)
    }

    /// Removes holder `id`, recording each of their cards in `[[revoked]]`. Refuses while the
    /// holder hosts or escorts an open visit. Returns the revoked cards.
    pub fn remove_holder(
        &mut self,
        id: &str,
        info: &RevokeInfo,
    ) -> Result<Vec<RevokedCard>, RegisterError> {
        let i = self.holder_or_refuse(id)?;
        if let Some(v) = self
            .register
            .visits
            .iter()
            .find(|v| v.is_open() && (v.host == id || v.escort.as_deref() == Some(id)))
        {
            return Err(self.refuse(format!(
                "holder {id} hosts or escorts open visit {} (ends {}): end it first (pintuctl visit end {})",
                v.id, v.until, v.id
            )));
        }
        check_info(self, info)?;
        let cards = self.register.holders[i].cards.clone();
        let mut doc = self.document()?;
        self.tables_mut(&mut doc, "holder")?.remove(i);
        let at = self.local_time(info.at);
        let revoked = self.tables_mut(&mut doc, "revoked")?;
        let mut out = Vec::new();
        for card in cards {
            let card = card.parse::<Uid>().map(|u| u.to_hex()).unwrap_or(card);
            revoked.push(revocation_table(Some(id), None, &card, &at, info));
            out.push(RevokedCard {
                owner: id.to_string(),
                badge: false,
                card,
            });
        }
        self.replace_text(&doc)?;
        Ok(out)
    }

    /// Takes cards out of service: removes them from their holder (who stays, possibly with no
    /// card) or from the badge pool, and records each in `[[revoked]]`. A badge out on an open
    /// visit is refused (end the visit first).
    pub fn revoke(
        &mut self,
        target: &RevokeTarget,
        info: &RevokeInfo,
    ) -> Result<Vec<RevokedCard>, RegisterError> {
        check_info(self, info)?;
        // (holder index, card indices) or badge index.
        let (holder, badge) = match target {
            RevokeTarget::Holder(id) => {
                let i = self.holder_or_refuse(id)?;
                let cards: Vec<usize> = (0..self.register.holders[i].cards.len()).collect();
                if cards.is_empty() {
                    return Err(self.refuse(format!(
                        "holder {id} has no card to revoke (pintuctl show holder {id})"
                    )));
                }
                (Some((i, cards)), None)
            }
            RevokeTarget::Card(uid) => match self.card_owner(uid) {
                Some(CardOwner::Holder(i, c)) => (Some((i, vec![c])), None),
                Some(CardOwner::Badge(b)) => (None, Some(b)),
                None => {
                    return Err(self.refuse(format!(
                        "card {} is not in the register (no holder or badge has it)",
                        uid.to_hex()
                    )))
                }
            },
        };
        let at = self.local_time(info.at);
        let mut doc = self.document()?;
        let mut out = Vec::new();
        if let Some((i, cards)) = holder {
            let h = &self.register.holders[i];
            let array = self
                .tables_mut(&mut doc, "holder")?
                .get_mut(i)
                .and_then(|t| t.get_mut("cards"))
                .and_then(toml_edit::Item::as_array_mut)
                .ok_or_else(|| {
                    self.error(
                        &format!("holder[{i}].cards"),
                        "cards must be an array for pintuctl to edit it",
                    )
                })?;
            for &c in cards.iter().rev() {
                array.remove(c);
            }
            let revoked = self.tables_mut(&mut doc, "revoked")?;
            for &c in &cards {
                let text = &h.cards[c];
                let card = text
                    .parse::<Uid>()
                    .map(|u| u.to_hex())
                    .unwrap_or(text.clone());
                revoked.push(revocation_table(Some(&h.id), None, &card, &at, info));
                out.push(RevokedCard {
                    owner: h.id.clone(),
                    badge: false,
                    card,
                });
            }
        }
        if let Some(b) = badge {
            let badge = &self.register.badges[b];
            if let Some(v) = self.badge_in_use(&badge.id) {
                return Err(self.refuse(format!(
                    "badge {} is in use by visit {} (ends {}): end the visit first (pintuctl visit end {})",
                    badge.id, v.id, v.until, v.id
                )));
            }
            let card = badge
                .card
                .parse::<Uid>()
                .map(|u| u.to_hex())
                .unwrap_or(badge.card.clone());
            self.tables_mut(&mut doc, "badge")?.remove(b);
            self.tables_mut(&mut doc, "revoked")?.push(revocation_table(
                None,
                Some(&badge.id),
                &card,
                &at,
                info,
            ));
            out.push(RevokedCard {
                owner: badge.id.clone(),
                badge: true,
                card,
            });
        }
        self.replace_text(&doc)?;
        Ok(out)
    }

    /// Adds badge `id` with card `uid` to the visitor-badge pool.
    pub fn add_badge(&mut self, id: &str, uid: &Uid) -> Result<(), RegisterError> {
        if id.trim().is_empty() {
            return Err(self.refuse("badge id is empty"));
        }
        if self.register.badges.iter().any(|b| b.id == id) {
            return Err(self.refuse(format!("badge {id} is already in the pool")));
        }
        self.refuse_held(uid)?;
        let mut doc = self.document()?;
        let mut t = toml_edit::Table::new();
        t["id"] = toml_edit::value(id);
        t["card"] = toml_edit::value(uid.to_hex());
        self.tables_mut(&mut doc, "badge")?.push(t);
        self.replace_text(&doc)
    }

    /// Removes badge `id` from the pool, recorded in `[[revoked]]`.
    pub fn remove_badge(
        &mut self,
        id: &str,
        info: &RevokeInfo,
    ) -> Result<RevokedCard, RegisterError> {
        let badge = self
            .register
            .badges
            .iter()
            .find(|b| b.id == id)
            .ok_or_else(|| {
                self.refuse(format!("no badge {id} in the pool (pintuctl list badges)"))
            })?;
        let uid: Uid = badge
            .card
            .parse()
            .map_err(|e| self.refuse(format!("badge {id}: {e}")))?;
        let mut out = self.revoke(&RevokeTarget::Card(uid), info)?;
        out.pop()
            .ok_or_else(|| self.refuse(format!("badge {id} was not removed")))
    }

    /// Records an approved visit with a badge from the pool; returns its id. Refuses an unknown
    /// badge, host or escort, a badge in use, a window that is empty or already over, and a
    /// visitor written as a national ID number.
    pub fn issue_visit(&mut self, v: &NewVisit, now: Timestamp) -> Result<String, RegisterError> {
        let tz = self.time_zone()?;
        let id = match &v.id {
            Some(id) => id.trim().to_string(),
            None => self.next_visit_id(now.to_zoned(tz).year()),
        };
        if id.is_empty() {
            return Err(self.refuse("visit id is empty"));
        }
        let refuse = |what: String| self.refuse(format!("visit {id}: {what}"));
        if self.register.visits.iter().any(|o| o.id == id) {
            return Err(refuse("a visit with this id already exists".into()));
        }
        if v.visitor.trim().is_empty() {
            return Err(refuse("the visitor's name is empty".into()));
        }
        if looks_like_national_id(&v.visitor) {
            return Err(refuse(format!(
                "visitor {:?} looks like a national ID number (NIK): record the name and company only",
                v.visitor
            )));
        }
        for (what, value) in [
            ("request reference", &v.request_ref),
            ("approver", &v.approver),
        ] {
            if value.trim().is_empty() {
                return Err(refuse(format!("the {what} is empty")));
            }
        }
        if !self.register.badges.iter().any(|b| b.id == v.badge) {
            return Err(refuse(format!(
                "badge {} is not in the badge pool (pintuctl list badges)",
                v.badge
            )));
        }
        if let Some(other) = self.badge_in_use(&v.badge) {
            return Err(refuse(format!(
                "badge {} is in use by visit {} (ends {})",
                v.badge, other.id, other.until
            )));
        }
        let staff = |role: &str, holder: &str| -> Result<(), RegisterError> {
            match self.holder_index(holder).map(|i| &self.register.holders[i]) {
                None => Err(refuse(format!(
                    "{role} {holder:?} is not a holder in the register"
                ))),
                Some(h) if h.role == Role::Visitor => Err(refuse(format!(
                    "{role} {holder:?} is a visitor; a {role} is staff or escort"
                ))),
                Some(_) => Ok(()),
            }
        };
        staff("host", &v.host)?;
        if let Some(escort) = &v.escort {
            staff("escort", escort)?;
        }
        let from = self.check_date(&format!("visit {id}: from"), &v.from)?;
        let until = self.check_date(&format!("visit {id}: until"), &v.until)?;
        if until <= from {
            return Err(refuse(format!(
                "the window ends ({}) before it starts ({})",
                v.until, v.from
            )));
        }
        if until <= now {
            return Err(refuse(format!(
                "the window ends {}, which is in the past",
                self.local_time(until)
            )));
        }
        let mut doc = self.document()?;
        let mut t = toml_edit::Table::new();
        t["id"] = toml_edit::value(&id);
        t["visitor"] = toml_edit::value(&v.visitor);
        t["host"] = toml_edit::value(&v.host);
        if let Some(escort) = &v.escort {
            t["escort"] = toml_edit::value(escort);
        }
        t["badge"] = toml_edit::value(&v.badge);
        t["from"] = toml_edit::value(&v.from);
        t["until"] = toml_edit::value(&v.until);
        t["request_ref"] = toml_edit::value(&v.request_ref);
        t["approver"] = toml_edit::value(&v.approver);
        self.tables_mut(&mut doc, "visit")?.push(t);
        self.replace_text(&doc)?;
        Ok(id)
    }

    /// The next `V-YEAR-NNNN` visit id.
    fn next_visit_id(&self, year: i16) -> String {
        let prefix = format!("V-{year}-");
        let last = self
            .register
            .visits
            .iter()
            .filter_map(|v| v.id.strip_prefix(&prefix)?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        format!("{prefix}{:04}", last + 1)
    }

    /// Ends open visit `id` at `at`: its badge is back in the pool.
    pub fn end_visit(&mut self, id: &str, at: Timestamp) -> Result<VisitRecord, RegisterError> {
        let i = self
            .register
            .visits
            .iter()
            .position(|v| v.id == id)
            .ok_or_else(|| {
                self.refuse(format!(
                    "no visit {id} in the register (pintuctl list visits)"
                ))
            })?;
        if let Some(ended) = &self.register.visits[i].ended_at {
            return Err(self.refuse(format!("visit {id} already ended at {ended}")));
        }
        let at = self.local_time(at);
        let mut doc = self.document()?;
        let t = self
            .tables_mut(&mut doc, "visit")?
            .get_mut(i)
            .ok_or_else(|| self.refuse(format!("visit {id:?} is not a [[visit]] table")))?;
        t["ended_at"] = toml_edit::value(at);
        self.replace_text(&doc)?;
        Ok(self.register.visits[i].clone())
    }

    /// Records `version` as the last signed version in memory (keeping comments and layout);
    /// [`LoadedRegister::save`] writes it.
    pub fn bump_version(&mut self, version: u64) -> Result<(), RegisterError> {
        let mut doc = self.document()?;
        if !doc.contains_table("list") {
            doc["list"] = toml_edit::table();
        }
        let v =
            i64::try_from(version).map_err(|_| self.error("list.version", "version too large"))?;
        // Replace the number but keep its comments and spacing.
        match doc["list"]["version"].as_value_mut() {
            Some(old) => {
                let decor = old.decor().clone();
                *old = v.into();
                *old.decor_mut() = decor;
            }
            None => doc["list"]["version"] = toml_edit::value(v),
        }
        self.text = doc.to_string();
        self.register.list.version = version;
        Ok(())
    }

    /// The `[[holder]]` table for a new holder, in the order the format documents.
    fn holder_table(&self, id: &str, cards: &[Uid], new: &NewHolder, by: &str) -> toml_edit::Table {
        use toml_edit::value;
        let today = TimeZone::get(&self.register.time_zone)
            .map(|tz| Timestamp::now().to_zoned(tz).date())
            .unwrap_or_else(|_| Timestamp::now().to_zoned(TimeZone::UTC).date());
        let date = |s: &str| toml_edit::Item::Value(date_value(s));
        let mut t = toml_edit::Table::new();
        t.decor_mut()
            .set_prefix(format!("\n# Added by `pintuctl {by}` on {today}.\n"));
        t["id"] = value(id);
        t["name"] = value(&new.name);
        if let Some(unit) = &new.unit {
            t["unit"] = value(unit);
        }
        t["role"] = value(new.role.as_str());
        t["cards"] = value(toml_edit::Array::from_iter(cards.iter().map(Uid::to_hex)));
        t["valid_from"] = match &new.valid_from {
            Some(from) => date(from),
            None => date(&today.to_string()),
        };
        t["valid_until"] = date(&new.valid_until);
        t["request_ref"] = value(&new.request_ref);
        t["approver"] = value(&new.approver);
        t
    }

    /// Writes the register's text back to its file, atomically, keeping the file's mode.
    pub fn save(&self) -> Result<(), RegisterError> {
        let mode = std::fs::metadata(&self.path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o640);
        crate::util::files::write_atomic(&self.path, self.text.as_bytes(), mode).map_err(|source| {
            RegisterError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Records `version` as the last signed version and writes the register, keeping the file's
    /// comments and layout.
    pub fn set_version(&mut self, version: u64) -> Result<(), RegisterError> {
        self.bump_version(version)?;
        self.save()
    }
}

/// Refuses a blank approver for holder `id` before anything changes: docs/register.md makes the
/// approver required, and `--approver ""` is no approval.
fn refuse_blank_approver(
    reg: &LoadedRegister,
    id: &str,
    approver: &str,
) -> Result<(), RegisterError> {
    if approver.trim().is_empty() {
        return Err(reg.refuse(format!(
            "holder {id}: the approver is empty: say who approved the request (--approver NAME)"
        )));
    }
    Ok(())
}

/// Who holds a card in the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOwner {
    /// `holder[i].cards[c]`.
    Holder(usize, usize),
    /// `badge[b]`.
    Badge(usize),
}

/// A date or date-time as TOML writes it, anything else as a string (DateSpec takes both).
fn date_value(s: &str) -> toml_edit::Value {
    match s.parse::<toml_edit::Datetime>() {
        Ok(d) => d.into(),
        Err(_) => s.into(),
    }
}

/// Sets `key` in `table`, keeping the old value's comments and spacing.
fn set_keeping_decor(table: &mut toml_edit::Table, key: &str, mut value: toml_edit::Value) {
    if let Some(old) = table.get(key).and_then(toml_edit::Item::as_value) {
        *value.decor_mut() = old.decor().clone();
    }
    table[key] = toml_edit::Item::Value(value);
}

/// The `[[revoked]]` table for one card.
fn revocation_table(
    holder: Option<&str>,
    badge: Option<&str>,
    card: &str,
    at: &str,
    info: &RevokeInfo,
) -> toml_edit::Table {
    use toml_edit::value;
    let mut t = toml_edit::Table::new();
    if let Some(holder) = holder {
        t["holder"] = value(holder);
    }
    if let Some(badge) = badge {
        t["badge"] = value(badge);
    }
    t["card"] = value(card);
    t["at"] = value(at);
    t["reason"] = value(&info.reason);
    t["request_ref"] = value(&info.request_ref);
    t["by"] = value(&info.by);
    t
}

fn check_info(reg: &LoadedRegister, info: &RevokeInfo) -> Result<(), RegisterError> {
    for (what, value) in [
        ("reason", &info.reason),
        ("request reference", &info.request_ref),
        ("operator (by)", &info.by),
    ] {
        if value.trim().is_empty() {
            return Err(reg.refuse(format!("a revocation needs a {what}")));
        }
    }
    Ok(())
}

/// A run of 16 digits: how an Indonesian NIK (KTP number) looks. Visits record names only.
fn looks_like_national_id(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 16 {
                return true;
            }
        } else if c != ' ' && c != '.' {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# The test register.
site = "s"
time_zone = "Asia/Jakarta"
doors = ["d"]
card_key_file = "card.key"

[[holder]]
id = "alice"   # staff since 2020
name = "Alice"
role = "staff"
cards = ["04A1B2C3"]  # badge 17
valid_from = 2025-01-01
valid_until = 2030-01-01
request_ref = "R-1"
approver = "kabid"
"#;

    fn loaded() -> LoadedRegister {
        let path = PathBuf::from("register.toml");
        LoadedRegister {
            register: parse_toml(&path, TEXT).unwrap(),
            text: TEXT.into(),
            path,
        }
    }

    fn uid(s: &str) -> Uid {
        s.parse().unwrap()
    }

    fn visitor() -> NewHolder {
        NewHolder {
            name: "Vera".into(),
            unit: None,
            role: Role::Visitor,
            valid_from: Some("2026-01-05T08:00:00".into()),
            valid_until: "2026-01-05T17:00:00+07:00".into(),
            request_ref: "VIS-9".into(),
            approver: "kasi".into(),
        }
    }

    #[test]
    fn adds_a_card_to_a_holder_keeping_comments() {
        let mut reg = loaded();
        let change = reg.enroll("alice", &uid("0A:0B:0C:0D"), None).unwrap();
        assert_eq!(change, Enrolled::CardAdded { cards: 2 });
        assert!(reg
            .text
            .contains(r#"cards = ["04A1B2C3", "0A0B0C0D"]  # badge 17"#));
        assert!(reg.text.starts_with("# The test register.\n"));
        assert!(reg.text.contains("# staff since 2020"));
        assert_eq!(reg.register.holders[0].cards.len(), 2);
        // Again: nothing to do.
        let again = reg.enroll("alice", &uid("0a0b0c0d"), None).unwrap();
        assert_eq!(again, Enrolled::AlreadyEnrolled);
    }

    #[test]
    fn creates_a_holder() {
        let mut reg = loaded();
        let change = reg
            .enroll("vera", &uid("DEADBEEF"), Some(&visitor()))
            .unwrap();
        assert_eq!(change, Enrolled::HolderCreated);
        let h = &reg.register.holders[1];
        assert_eq!((h.id.as_str(), h.role), ("vera", Role::Visitor));
        assert_eq!(h.cards, vec!["DEADBEEF".to_string()]);
        assert!(reg.text.contains("# Added by `pintuctl enroll` on "));
        assert!(reg.text.contains("valid_from = 2026-01-05T08:00:00\n"));
        let key = CardKey::from_bytes([1; 32]);
        let payload = reg.build_payload(&key, 1, Timestamp::now()).unwrap();
        assert_eq!(payload.entries.len(), 2);
    }

    #[test]
    fn refuses_a_card_held_by_someone_else_and_unknown_holders() {
        let mut reg = loaded();
        let e = reg.enroll("vera", &uid("04A1B2C3"), Some(&visitor()));
        let msg = e.unwrap_err().to_string();
        assert!(
            msg.contains("holder[0].cards[0]") && msg.contains("already held by \"alice\""),
            "{msg}"
        );
        let e = reg.enroll("nobody", &uid("01020304"), None).unwrap_err();
        assert!(e.to_string().contains("no holder \"nobody\""), "{e}");
        let e = reg
            .enroll("alice", &uid("01020304"), Some(&visitor()))
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(reg.text, TEXT, "a refused enrollment changes nothing");
    }

    /// Issue 16: a blank approver (in the file, or given to an edit) is refused, naming the
    /// file, line and key; it is never signed into a list.
    #[test]
    fn a_blank_approver_is_refused_naming_file_line_and_key() {
        let text = TEXT.replace("approver = \"kabid\"", "approver = \"  \"");
        let path = PathBuf::from("register.toml");
        let reg = LoadedRegister {
            register: parse_toml(&path, &text).unwrap(),
            text,
            path,
        };
        let e = reg.check().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "register.toml:15: holder[0].approver: holder alice: the approver is empty"
            ),
            "{e}"
        );

        let mut reg = loaded();
        let edit = HolderEdit {
            valid_until: Some("2031-01-01".into()),
            request_ref: Some("R-2".into()),
            approver: Some(String::new()),
            ..HolderEdit::default()
        };
        let e = reg.edit_holder("alice", &edit).unwrap_err().to_string();
        assert!(e.contains("holder alice: the approver is empty"), "{e}");
        let mut new = visitor();
        new.approver = " ".into();
        let e = reg
            .enroll("vera", &uid("01020304"), Some(&new))
            .unwrap_err();
        assert!(e.to_string().contains("the approver is empty"), "{e}");
        assert_eq!(reg.text, TEXT, "a refused edit changes nothing");
    }
}
