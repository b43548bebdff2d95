//! The operator's register: the office-side source of truth from which signed lists are made.
//!
//! A TOML file, human-readable and diff-friendly in git: the site, its doors and time zone, and
//! one `[[holder]]` per cardholder with their raw card UIDs (office side only: the list carries
//! only keyed hashes), validity, doors, schedule, and the request reference and approver of the
//! grant. `[list] version` records the last version signed; `pintuctl sign` bumps it.
//! Format reference: `docs/register.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

use crate::config::{line_of_key, parse_toml, ConfigError, HumanDuration};
use crate::core::card::{CardKey, Uid};
use crate::core::list::{check_payload, Entry, Payload, Role, PAYLOAD_FORMAT};
use crate::core::schedule::Window;

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
#[derive(Debug, Deserialize)]
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
    /// Card UIDs in hex.
    pub cards: Vec<String>,
    /// Start of validity.
    pub valid_from: DateSpec,
    /// End of validity (exclusive).
    pub valid_until: DateSpec,
    /// Doors; absent means every door of the list.
    #[serde(default)]
    pub doors: Option<Vec<String>>,
    /// Weekly windows; absent means at any time.
    #[serde(default)]
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
        let register = parse_toml(path, &text)?;
        Ok(LoadedRegister {
            path: path.to_path_buf(),
            text,
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
    pub fn build_payload(
        &self,
        card_key: &CardKey,
        version: u64,
        now: Timestamp,
    ) -> Result<Payload, RegisterError> {
        let reg = &self.register;
        let tz = TimeZone::get(&reg.time_zone).map_err(|_| {
            self.error(
                "time_zone",
                format!(
                    "unknown time zone {:?} (e.g. \"Asia/Jakarta\")",
                    reg.time_zone
                ),
            )
        })?;
        let valid_for = jiff::SignedDuration::try_from(reg.list_valid_for.0)
            .map_err(|_| self.error("list_valid_for", "too long"))?;
        let mut entries = Vec::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut uids: HashMap<Vec<u8>, String> = HashMap::new();
        for (i, h) in reg.holders.iter().enumerate() {
            let key = |field: &str| format!("holder[{i}].{field}");
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
            for (w, window) in h.schedule.iter().enumerate() {
                window
                    .validate()
                    .map_err(|m| self.error(&key(&format!("schedule[{w}]")), m))?;
            }
            if h.cards.is_empty() {
                return Err(self.error(
                    &key("cards"),
                    "a holder needs at least one card (remove the holder to revoke)",
                ));
            }
            for (c, text) in h.cards.iter().enumerate() {
                let uid: Uid = text
                    .parse()
                    .map_err(|e| self.error(&key(&format!("cards[{c}]")), format!("{e}")))?;
                if let Some(other) = uids.insert(uid.as_bytes().to_vec(), h.id.clone()) {
                    return Err(self.error(
                        &key(&format!("cards[{c}]")),
                        format!("card {text} is also held by {other:?}"),
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
        Ok(payload)
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
                holders.push(self.holder_table(id, uid, new));
                Enrolled::HolderCreated
            }
        };
        let text = doc.to_string();
        self.register = parse_toml(&self.path, &text)?;
        self.text = text;
        Ok(change)
    }

    /// The `[[holder]]` table for a new holder, in the order the format documents.
    fn holder_table(&self, id: &str, uid: &Uid, new: &NewHolder) -> toml_edit::Table {
        use toml_edit::value;
        let today = TimeZone::get(&self.register.time_zone)
            .map(|tz| Timestamp::now().to_zoned(tz).date())
            .unwrap_or_else(|_| Timestamp::now().to_zoned(TimeZone::UTC).date());
        // A date or date-time as TOML writes it, anything else as a string (DateSpec takes both).
        let date = |s: &str| match s.parse::<toml_edit::Datetime>() {
            Ok(d) => value(d),
            Err(_) => value(s),
        };
        let mut t = toml_edit::Table::new();
        t.decor_mut()
            .set_prefix(format!("\n# Added by `pintuctl enroll` on {today}.\n"));
        t["id"] = value(id);
        t["name"] = value(&new.name);
        if let Some(unit) = &new.unit {
            t["unit"] = value(unit);
        }
        t["role"] = value(new.role.as_str());
        t["cards"] = value(toml_edit::Array::from_iter([uid.to_hex()]));
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
        crate::fsutil::write_atomic(&self.path, self.text.as_bytes(), mode).map_err(|source| {
            RegisterError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Records `version` as the last signed version, keeping the file's comments and layout.
    pub fn set_version(&mut self, version: u64) -> Result<(), RegisterError> {
        let mut doc: toml_edit::DocumentMut = self
            .text
            .parse()
            .map_err(|e: toml_edit::TomlError| self.error("", e.to_string()))?;
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
        let text = doc.to_string();
        // Keep the register's own permissions.
        let mode = std::fs::metadata(&self.path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o640);
        crate::fsutil::write_atomic(&self.path, text.as_bytes(), mode).map_err(|source| {
            RegisterError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        self.text = text;
        self.register.list.version = version;
        Ok(())
    }
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
}
