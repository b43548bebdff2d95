//! Phase one of the config: the sections as written, as serde types with unknown keys rejected,
//! and their defaults. The hardware sections live in `hardware.rs`, `[mqtt]` in `mqtt.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::hardware::{RawInputs, RawLock, RawReader};
use super::mqtt::RawMqtt;
use crate::core::list::Role;
use crate::core::presence::AntiPassback;
use crate::util::toml::{ByteSize, FileMode, HumanDuration};

/// Phase one: the file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Site id; lists for other sites are rejected.
    pub site: String,
    /// This door: id and timing.
    pub door: RawDoor,
    /// Where the store, the last good list and the inbox live.
    pub state_dir: PathBuf,
    /// Trusted keys and the card key.
    pub trust: RawTrust,
    /// List intake.
    #[serde(default)]
    pub list: RawList,
    /// Lock hardware.
    #[serde(default, rename = "lock")]
    pub lock: RawLock,
    /// Door contact and exit button.
    #[serde(default)]
    pub inputs: RawInputs,
    /// Card readers.
    #[serde(default, rename = "reader")]
    pub readers: Vec<RawReader>,
    /// Local control socket.
    #[serde(default)]
    pub control: RawControl,
    /// Embedded store.
    #[serde(default)]
    pub store: RawStore,
    /// Logging.
    #[serde(default)]
    pub log: RawLog,
    /// MQTT link to the office system (absent: events stay in the outbox).
    #[serde(default)]
    pub mqtt: Option<RawMqtt>,
    /// Visits, the escort rule, presence and anti-passback.
    #[serde(default)]
    pub visits: RawVisits,
    /// Unknown-card flood lockout.
    #[serde(default)]
    pub flood: RawFlood,
    /// The clock without an RTC.
    #[serde(default)]
    pub clock: RawClock,
}

/// `[visits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVisits {
    /// How far apart a visitor's and an escort's taps may be.
    #[serde(default = "default_escort_window")]
    pub escort_window: HumanDuration,
    /// Per escorting role overrides of `escort_window`.
    #[serde(default)]
    pub escort_window_by_role: std::collections::HashMap<Role, HumanDuration>,
    /// Roles whose cards escort visitors.
    #[serde(default = "default_escort_roles")]
    pub escort_roles: Vec<Role>,
    /// `off`, `soft` (grant and alarm) or `hard` (deny).
    #[serde(default)]
    pub anti_passback: AntiPassback,
    /// How often `visit.overstay` repeats.
    #[serde(default = "default_overstay_repeat")]
    pub overstay_repeat: HumanDuration,
    /// After how long someone recorded inside is dropped from presence (`presence.expired`), or
    /// `"off"`. Unset: `"12h"` on a door without an exit reader, `"off"` on one with.
    #[serde(default)]
    pub presence_expiry: Option<String>,
}

impl Default for RawVisits {
    fn default() -> Self {
        RawVisits {
            escort_window: default_escort_window(),
            escort_window_by_role: Default::default(),
            escort_roles: default_escort_roles(),
            anti_passback: AntiPassback::Off,
            overstay_repeat: default_overstay_repeat(),
            presence_expiry: None,
        }
    }
}

fn default_escort_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_escort_roles() -> Vec<Role> {
    vec![Role::Staff, Role::Escort]
}

fn default_overstay_repeat() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}

/// `[flood]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlood {
    /// Failed taps (unknown or denied) that lock a reader out; 0 turns it off.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// The window they must fall in.
    #[serde(default = "default_flood_window")]
    pub window: HumanDuration,
    /// How long the reader stays locked out.
    #[serde(default = "default_lockout")]
    pub lockout: HumanDuration,
    /// Roles whose valid cards still open during a lockout.
    #[serde(default = "default_escort_roles")]
    pub pass_roles: Vec<Role>,
}

impl Default for RawFlood {
    fn default() -> Self {
        RawFlood {
            max_failures: default_max_failures(),
            window: default_flood_window(),
            lockout: default_lockout(),
            pass_roles: default_escort_roles(),
        }
    }
}

fn default_max_failures() -> u32 {
    5
}

fn default_flood_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_lockout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// `[clock]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClock {
    /// A wall clock this far below the trusted floor still counts as trusted.
    #[serde(default = "default_tolerance")]
    pub tolerance: HumanDuration,
    /// Let visitor badges open while the clock is untrusted.
    #[serde(default)]
    pub visitors_when_untrusted: bool,
    /// How far past the newest signed time a wall-clock reading may raise the trusted floor.
    #[serde(default = "default_max_ahead_of_signed")]
    pub max_ahead_of_signed: HumanDuration,
}

impl Default for RawClock {
    fn default() -> Self {
        RawClock {
            tolerance: default_tolerance(),
            visitors_when_untrusted: false,
            max_ahead_of_signed: default_max_ahead_of_signed(),
        }
    }
}

fn default_max_ahead_of_signed() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}

fn default_tolerance() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// `[trust]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrust {
    /// Signatures needed from distinct trusted keys.
    #[serde(default = "one")]
    pub threshold: usize,
    /// File holding the site's card key (64 hex digits).
    pub card_key_file: PathBuf,
    /// Trusted public keys.
    #[serde(default)]
    pub keys: Vec<RawKey>,
    /// Keys that sign commands (`[[trust.command_keys]]`), so the list keys can stay offline;
    /// absent: the list keys sign commands. The floor resets always need the list keys.
    #[serde(default)]
    pub command_keys: Option<Vec<RawKey>>,
    /// Signatures needed from distinct command keys; default: `threshold` when the list keys
    /// sign commands, else 1.
    #[serde(default)]
    pub command_threshold: Option<usize>,
}

fn one() -> usize {
    1
}

/// `[[trust.keys]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// Key id named by signatures.
    pub id: String,
    /// ed25519 public key, base64 (32 bytes).
    pub public_key: String,
}

/// `[list]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawList {
    /// Drop directory watched for new signed lists; default `<state_dir>/inbox`.
    pub inbox: Option<PathBuf>,
    /// A signed list offered at start (e.g. shipped with the install).
    pub initial: Option<PathBuf>,
    /// Largest signed list accepted.
    #[serde(default = "default_max_size")]
    pub max_size: ByteSize,
    /// How often the inbox is scanned.
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    /// How long before the active list expires `list.expiring` is raised; `"0s"`: never.
    #[serde(default = "default_expiry_warning")]
    pub expiry_warning: HumanDuration,
    /// How many files `inbox/processed/` and `inbox/rejected/` each keep (oldest removed first).
    #[serde(default = "default_inbox_keep")]
    pub inbox_keep: usize,
    /// How many bytes `inbox/processed/` and `inbox/rejected/` each keep (the newest file stays).
    #[serde(default = "default_inbox_keep_bytes")]
    pub inbox_keep_bytes: ByteSize,
}

impl Default for RawList {
    fn default() -> Self {
        RawList {
            inbox: None,
            initial: None,
            max_size: default_max_size(),
            poll_interval: default_poll(),
            expiry_warning: default_expiry_warning(),
            inbox_keep: default_inbox_keep(),
            inbox_keep_bytes: default_inbox_keep_bytes(),
        }
    }
}

fn default_inbox_keep() -> usize {
    100
}

fn default_inbox_keep_bytes() -> ByteSize {
    ByteSize(256 << 20)
}

fn default_expiry_warning() -> HumanDuration {
    HumanDuration(Duration::from_secs(3 * 86_400))
}

fn default_max_size() -> ByteSize {
    ByteSize(64 << 20)
}

fn default_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

/// `[door]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDoor {
    /// This door's id, unique within the site.
    pub id: String,
    /// How long a grant releases the lock.
    #[serde(default = "default_unlock_for")]
    pub unlock_for: HumanDuration,
    /// Secure the lock as soon as the door closes after opening (default true).
    #[serde(default = "yes")]
    pub relock_on_close: bool,
    /// Door open this long: pre-alarm (default "20s").
    #[serde(default = "default_prealarm")]
    pub held_open_prealarm: HumanDuration,
    /// Door open this long: alarm (default "40s").
    #[serde(default = "default_alarm")]
    pub held_open_alarm: HumanDuration,
    /// A test bench: allows a real (GPIO) lock next to simulated readers or inputs, which
    /// anyone who can reach the control socket could use to open the door. Default false;
    /// when set, pintud raises a `door.bench_mode` alarm at start and shows it in status.
    #[serde(default)]
    pub bench: bool,
}

fn yes() -> bool {
    true
}

fn default_prealarm() -> HumanDuration {
    HumanDuration(Duration::from_secs(20))
}

fn default_alarm() -> HumanDuration {
    HumanDuration(Duration::from_secs(40))
}

fn default_unlock_for() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// `[control]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    /// Socket path; default `<state_dir>/control.sock`.
    pub socket: Option<PathBuf>,
    /// Socket file mode.
    #[serde(default = "default_mode")]
    pub mode: FileMode,
    /// Group given access to the socket (operators); default: the daemon's own group.
    pub group: Option<String>,
    /// Group whose members may `capture` (enrollment returns raw card UIDs); root and the
    /// daemon's own user always may. Default: nobody else.
    pub capture_group: Option<String>,
}

impl Default for RawControl {
    fn default() -> Self {
        RawControl {
            socket: None,
            mode: default_mode(),
            group: None,
            capture_group: None,
        }
    }
}

fn default_mode() -> FileMode {
    FileMode(0o660)
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// sled page cache size (sled's own default is 1 GiB: far too much for a Pi).
    #[serde(default = "default_cache")]
    pub cache_size: ByteSize,
    /// Ceiling for raising the cache to fit a large list at start.
    #[serde(default = "default_cache_max")]
    pub cache_size_max: ByteSize,
    /// Outbox depth (events not yet delivered) that raises an `outbox.alarm` warning.
    #[serde(default = "default_outbox_warning")]
    pub outbox_warning: u64,
    /// Outbox depth that raises an `outbox.alarm` critical.
    #[serde(default = "default_outbox_critical")]
    pub outbox_critical: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            cache_size: default_cache(),
            cache_size_max: default_cache_max(),
            outbox_warning: default_outbox_warning(),
            outbox_critical: default_outbox_critical(),
        }
    }
}

fn default_outbox_warning() -> u64 {
    10_000
}

fn default_outbox_critical() -> u64 {
    100_000
}

fn default_cache() -> ByteSize {
    ByteSize(32 << 20)
}

fn default_cache_max() -> ByteSize {
    ByteSize(512 << 20)
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `tracing` filter, e.g. `info` or `pintu=debug`.
    #[serde(default = "default_level")]
    pub level: String,
    /// Text or JSON.
    #[serde(default = "default_format")]
    pub format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: default_level(),
            format: default_format(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

fn default_format() -> LogFormat {
    LogFormat::Text
}
