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
