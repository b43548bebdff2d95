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

mod build;
mod edit;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

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
    /// Set by `pintu-office register import`: the office database is now the source of truth
    /// and `pintuctl`'s commands that write the register refuse this file
    /// ([`LoadedRegister::refuse_if_imported`]).
    #[serde(default)]
    pub imported_into: Option<String>,
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

    /// Refuses `command` (a `pintuctl` command that writes the register) once the register was
    /// imported into `pintu-office`: a second writable source would drift from the database.
    /// `instead` names what replaces it.
    pub fn refuse_if_imported(&self, command: &str, instead: &str) -> Result<(), RegisterError> {
        match &self.register.imported_into {
            None => Ok(()),
            Some(into) => Err(self.error(
                "imported_into",
                format!(
                    "this register was imported into {into}; the office database is the one \
                     source of truth now and `pintuctl {command}` no longer writes this file: \
                     use {instead} (see docs/operator.md, \"Moving to pintu-office\")"
                ),
            )),
        }
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
