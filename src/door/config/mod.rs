//! Daemon configuration: TOML parsed in two phases.
//!
//! Phase one ([`RawConfig`]) is serde with unknown keys rejected and value formats (durations,
//! sizes, modes) checked as they are read. Phase two ([`Config::from_raw`]) checks what spans
//! several keys or touches files (keys decode, threshold fits, the card key file reads) and yields
//! the typed [`Config`] the daemon runs on; nothing downstream re-checks it. Every error names the
//! file, the line and the key: `pintu.toml:12: door.unlock_for: expected a duration like "5s"`.
//!
//! - `raw.rs`: the phase-one serde types of the general sections and their defaults.
//! - `hardware.rs`: `[lock]`, `[inputs]` and `[[reader]]`, raw and validated.
//! - `mqtt.rs`: everything about `[mqtt]`, raw, validated and its checks.
//! - `validate.rs`: phase two, one function per section.
//! - `secrets.rs`: secret files, through systemd credentials when there are any.
//! - here: the typed [`Config`], loading, and the partial reads `pintuctl` and
//!   `pintud --safe-state` need.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod hardware;
mod mqtt;
mod raw;
mod secrets;
mod validate;

pub use crate::core::list::{decode_public_key, is_identifier};
pub use crate::util::toml::{
    line_of_key, parse_toml, ByteSize, ConfigError, ConfigErrors, FileMode, HumanDuration,
};

pub use self::hardware::{
    BackendKind, GpioBackend, GpioLine, InputsConfig, Level, LockHardware, PcscSettings, Pull,
    RawInputs, RawLock, RawReader, ReaderBackend, ReaderConfig, SerialProtocol, SerialSettings,
    UidFormat, HEADER_GPIOS,
};
pub use self::mqtt::{MqttConfig, MqttTls, RawMqtt, RawMqttTls};
pub use self::raw::{
    LogFormat, RawClock, RawConfig, RawControl, RawDoor, RawFlood, RawKey, RawList, RawLog,
    RawStore, RawTrust, RawVisits,
};
pub use self::secrets::{read_secret, read_secret_in, CREDENTIALS_DIRECTORY};
pub use self::validate::ENTRY_ONLY_PRESENCE_EXPIRY;

use crate::core::card::CardKey;
use crate::core::doorstate::LockType;
use crate::core::list::TrustPolicy;
use crate::core::procedure::ProcedureSettings;

/// Phase two: the validated configuration the daemon runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Site id.
    pub site: String,
    /// Door id.
    pub door: String,
    /// State directory (absolute or relative to the working directory).
    pub state_dir: PathBuf,
    /// List trust rules for this door.
    pub trust: TrustPolicy,
    /// The site's card key.
    pub card_key: CardKey,
    /// Command trust rules (`[trust] command_keys`/`command_threshold`; by default the list's).
    pub command_trust: TrustPolicy,
    /// List inbox directory.
    pub inbox: PathBuf,
    /// List offered at start.
    pub initial_list: Option<PathBuf>,
    /// Inbox scan interval.
    pub poll_interval: Duration,
    /// Lead time of the `list.expiring` warning (zero: none).
    pub list_expiry_warning: Duration,
    /// Files kept in each of `inbox/processed/` and `inbox/rejected/`.
    pub inbox_keep: usize,
    /// Bytes kept in each of `inbox/processed/` and `inbox/rejected/`.
    pub inbox_keep_bytes: u64,
    /// Where the lock relay is.
    pub lock: LockHardware,
    /// Fail-secure or fail-safe.
    pub lock_type: LockType,
    /// Door contact and exit button.
    pub inputs: InputsConfig,
    /// Release time per grant.
    pub unlock_for: Duration,
    /// Door timing and alarms.
    pub door_settings: crate::core::doorstate::DoorSettings,
    /// Readers.
    pub readers: Vec<ReaderConfig>,
    /// Control socket path.
    pub socket: PathBuf,
    /// Control socket mode.
    pub socket_mode: u32,
    /// Control socket group.
    pub socket_group: Option<String>,
    /// Group whose members may capture raw UIDs over the control socket (besides root and the
    /// daemon's own user).
    pub capture_group: Option<String>,
    /// A test bench: a real lock with simulated readers or inputs was allowed on purpose
    /// (`[door] bench`); an alarm at start and a flag in status say so.
    pub bench: bool,
    /// sled cache size in bytes (the floor).
    pub cache_size: u64,
    /// Ceiling in bytes for raising the sled cache to fit the list.
    pub cache_size_max: u64,
    /// Log filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// The MQTT link, if configured.
    pub mqtt: Option<MqttConfig>,
    /// Outbox depth that raises a warning alarm.
    pub outbox_warning: u64,
    /// Outbox depth that raises a critical alarm.
    pub outbox_critical: u64,
    /// Visits, escort, presence, anti-passback, flood and clock rules.
    pub procedure: ProcedureSettings,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_config_text(path)?;
        Config::parse(path, &text)
    }

    /// Parses and validates config text; `path` is used in errors and to resolve relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let raw = parse_raw(path, text).map_err(|e| ConfigErrors(vec![e]))?;
        Config::from_raw(path, text, raw)
    }

    /// Phase two: each section checked in file order (`validate.rs`, `mqtt.rs`), every problem
    /// collected, then the typed config assembled.
    pub fn from_raw(path: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ConfigError {
                file: path.to_path_buf(),
                line: line_of_key(text, key),
                key: key.into(),
                message,
            });
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        validate::validate_ids(&raw, &mut err);
        let trust = validate::validate_trust(&raw.trust, &resolve, &mut err);
        validate::validate_list(&raw.list, &mut err);
        let door_settings = validate::validate_door(&raw.door, &mut err);
        let (lock_hw, inputs) = validate::validate_gpio(&raw.lock, &raw.inputs, &mut err);
        let readers = validate::validate_readers(&raw.readers, &mut err);
        validate::check_real_lock_peers(&raw, &lock_hw, &readers, &mut err);
        validate::validate_store(&raw.store, &mut err);
        let procedure = validate::validate_procedure(&raw, &mut err);
        let mqtt = raw
            .mqtt
            .as_ref()
            .and_then(|m| mqtt::validate_mqtt(m, &raw.site, &raw.door.id, &resolve, &mut err));
        validate::validate_log(&raw.log, &mut err);

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let state_dir = resolve(&raw.state_dir);
        let max_bytes = usize::try_from(raw.list.max_size.0).unwrap_or(usize::MAX);
        Ok(Config {
            path: path.to_path_buf(),
            trust: TrustPolicy {
                keys: trust.keys,
                threshold: raw.trust.threshold,
                site: Some(raw.site.clone()),
                door: Some(raw.door.id.clone()),
                max_bytes,
            },
            command_trust: TrustPolicy {
                keys: trust.command_keys,
                threshold: trust.command_threshold,
                site: Some(raw.site.clone()),
                door: Some(raw.door.id.clone()),
                max_bytes,
            },
            card_key: trust
                .card_key
                .expect("errors returned above when the card key is missing"),
            inbox: raw
                .list
                .inbox
                .as_deref()
                .map(resolve)
                .unwrap_or_else(|| state_dir.join("inbox")),
            initial_list: raw.list.initial.as_deref().map(resolve),
            poll_interval: raw.list.poll_interval.0,
            list_expiry_warning: raw.list.expiry_warning.0,
            inbox_keep: raw.list.inbox_keep,
            inbox_keep_bytes: raw.list.inbox_keep_bytes.0,
            lock: lock_hw,
            lock_type: raw.lock.lock_type,
            inputs,
            unlock_for: door_settings.unlock_for,
            door_settings,
            readers,
            socket: raw
                .control
                .socket
                .as_deref()
                .map(resolve)
                .unwrap_or_else(|| state_dir.join("control.sock")),
            socket_mode: raw.control.mode.0,
            socket_group: raw.control.group,
            capture_group: raw.control.capture_group,
            bench: raw.door.bench,
            cache_size: raw.store.cache_size.0,
            cache_size_max: raw.store.cache_size_max.0,
            outbox_warning: raw.store.outbox_warning,
            outbox_critical: raw.store.outbox_critical,
            mqtt,
            procedure,
            log_level: raw.log.level,
            log_format: raw.log.format,
            site: raw.site,
            door: raw.door.id,
            state_dir,
        })
    }
}

/// The control socket path a config file names, without validating the rest (for `pintuctl`,
/// which may not be allowed to read the door's card key).
pub fn socket_path_from_file(path: &Path) -> Result<PathBuf, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: format!("cannot read config file: {e}"),
    })?;
    let raw = parse_raw(path, &text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    Ok(raw
        .control
        .socket
        .as_deref()
        .map(resolve)
        .unwrap_or_else(|| resolve(&raw.state_dir).join("control.sock")))
}

/// A config file's text; a file that cannot be read is one error naming it.
fn read_config_text(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read config file: {e}"),
        }])
    })
}

/// The lock settings a config file names, validated, without reading any secret: for
/// `pintud --safe-state`, which systemd runs after every stop, when the service's credentials
/// may be gone (and the relay must be driven whatever else is wrong with the file).
pub fn lock_from_file(path: &Path) -> Result<(LockHardware, LockType), ConfigErrors> {
    let text = read_config_text(path)?;
    let raw = parse_raw(path, &text).map_err(|e| ConfigErrors(vec![e]))?;
    let mut errors = Vec::new();
    let (lock, _) = validate::validate_gpio(&raw.lock, &raw.inputs, &mut |key: &str, message| {
        errors.push(ConfigError {
            file: path.to_path_buf(),
            line: line_of_key(&text, key),
            key: key.into(),
            message,
        })
    });
    if errors.is_empty() {
        Ok((lock, raw.lock.lock_type))
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Phase one: TOML → [`RawConfig`], errors with line and key path.
pub fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    parse_toml(path, text)
}
