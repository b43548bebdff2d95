//! Daemon configuration: TOML parsed in two phases.
//!
//! Phase one ([`RawConfig`]) is serde with unknown keys rejected and value formats (durations,
//! sizes, modes) checked as they are read. Phase two ([`Config::from_raw`]) checks what spans
//! several keys or touches files (keys decode, threshold fits, the card key file reads) and yields
//! the typed [`Config`] the daemon runs on; nothing downstream re-checks it. Every error names the
//! file, the line and the key: `pintu.toml:12: door.unlock_for: expected a duration like "5s"`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::core::list::{decode_public_key, is_identifier};
pub use crate::util::toml::{
    line_of_key, parse_toml, ByteSize, ConfigError, ConfigErrors, FileMode, HumanDuration,
};

use crate::core::card::CardKey;
use crate::core::doorstate::LockType;
use crate::core::escort::{EscortSettings, RoleSet};
use crate::core::flood::FloodSettings;
use crate::core::list::{Role, TrustPolicy, TrustedKey};
use crate::core::presence::AntiPassback;
use crate::core::procedure::ProcedureSettings;

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
}

impl Default for RawVisits {
    fn default() -> Self {
        RawVisits {
            escort_window: default_escort_window(),
            escort_window_by_role: Default::default(),
            escort_roles: default_escort_roles(),
            anti_passback: AntiPassback::Off,
            overstay_repeat: default_overstay_repeat(),
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

/// `[mqtt]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (default 1883, or 8883 with TLS).
    pub port: Option<u16>,
    /// MQTT client id (default `pintu-{site}-{door}`).
    pub client_id: Option<String>,
    /// First topic level.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Broker user name.
    pub username: Option<String>,
    /// File holding the broker password (one line).
    pub password_file: Option<PathBuf>,
    /// Keep-alive interval.
    #[serde(default = "default_keep_alive")]
    pub keep_alive: HumanDuration,
    /// Status is republished at least this often.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: HumanDuration,
    /// First reconnect delay; doubles (with jitter) up to `reconnect_max`.
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min: HumanDuration,
    /// Longest reconnect delay.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: HumanDuration,
    /// Events published and not yet acknowledged at most.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Longest validity window a signed command may have.
    #[serde(default = "default_command_lifetime")]
    pub command_max_lifetime: HumanDuration,
    /// TLS to the broker.
    pub tls: Option<RawMqttTls>,
    /// Allows plain TCP to the broker (no `[mqtt.tls]`); refused without it (issue 15).
    #[serde(default)]
    pub insecure: bool,
}

/// `[mqtt.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqttTls {
    /// PEM file of the CA that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate (with `client_key_file`) for brokers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

fn default_prefix() -> String {
    "pintu".into()
}

fn default_keep_alive() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}

fn default_heartbeat() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_reconnect_min() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

fn default_reconnect_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_inflight() -> u16 {
    100
}

fn default_command_lifetime() -> HumanDuration {
    HumanDuration(crate::core::command::DEFAULT_MAX_LIFETIME)
}

/// The MQTT link, validated.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id.
    pub client_id: String,
    /// First topic level.
    pub topic_prefix: String,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    /// TLS material (PEM bytes, read when the config is loaded).
    pub tls: Option<MqttTls>,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// Status heartbeat.
    pub heartbeat: Duration,
    /// Reconnect backoff bounds.
    pub reconnect_min: Duration,
    /// Reconnect backoff bounds.
    pub reconnect_max: Duration,
    /// Publish window.
    pub inflight: u16,
    /// Longest command validity window.
    pub command_max_lifetime: Duration,
    /// Plain TCP to the broker, explicitly allowed (`insecure = true` without `[mqtt.tls]`).
    pub insecure: bool,
}

/// TLS material for the broker connection.
#[derive(Clone)]
pub struct MqttTls {
    /// CA certificate(s), PEM.
    pub ca: Vec<u8>,
    /// Client certificate and key, PEM.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for MqttTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("MqttTls")
            .field("ca_bytes", &self.ca.len())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
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

/// GPIO backends (for the lock and for the inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpioBackend {
    /// Simulated: logs and records; inputs come through the control socket.
    Sim,
    /// Raspberry Pi GPIO through `rpi-pal` (the maintained continuation of rppal).
    RpiPal,
    /// Any board's GPIO through the Linux GPIO character device (`gpiocdev`).
    Gpiocdev,
}

/// Which logic level means "active" on a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 3.3 V.
    High,
    /// 0 V.
    Low,
}

/// Pull resistor on the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pull {
    /// Pull-up (contacts switch to ground).
    Up,
    /// Pull-down.
    Down,
    /// None (external resistors).
    None,
}

/// `[lock]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLock {
    /// Backend.
    #[serde(default = "default_gpio_backend")]
    pub backend: GpioBackend,
    /// Lock type: decides what a fault or a stop leaves behind.
    #[serde(default = "default_lock_type", rename = "type")]
    pub lock_type: LockType,
    /// BCM number of the pin driving the relay.
    pub pin: Option<u8>,
    /// Level that energises the relay (default high).
    pub relay_active: Option<Level>,
    /// gpiocdev only: the GPIO chip (default "/dev/gpiochip0").
    pub chip: Option<PathBuf>,
}

impl Default for RawLock {
    fn default() -> Self {
        RawLock {
            backend: default_gpio_backend(),
            lock_type: default_lock_type(),
            pin: None,
            relay_active: None,
            chip: None,
        }
    }
}

fn default_gpio_backend() -> GpioBackend {
    GpioBackend::Sim
}

fn default_lock_type() -> LockType {
    LockType::FailSecure
}

/// `[inputs]`: door contact and exit button.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInputs {
    /// Backend (default sim).
    pub backend: Option<GpioBackend>,
    /// gpiocdev only: the GPIO chip (default "/dev/gpiochip0").
    pub chip: Option<PathBuf>,
    /// BCM pin of the door contact.
    pub contact_pin: Option<u8>,
    /// Level of the contact pin while the door is open (default high: a contact to ground that
    /// is closed while the door is shut, with a pull-up, reads high when the door opens).
    pub contact_open: Option<Level>,
    /// BCM pin of the request-to-exit button.
    pub exit_pin: Option<u8>,
    /// Level of the exit pin while pressed (default low: a button to ground with a pull-up).
    pub exit_pressed: Option<Level>,
    /// Pull resistor (default up).
    pub pull: Option<Pull>,
    /// Debounce time (default "30ms").
    pub debounce: Option<HumanDuration>,
}

/// A GPIO line as validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpioLine {
    /// BCM number (gpiochip line offset on a Pi).
    pub pin: u8,
    /// Level meaning active (relay energised, door open, button pressed).
    pub active: Level,
}

/// Where the lock relay is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockHardware {
    /// Simulated.
    Sim,
    /// rpi-pal.
    RpiPal(GpioLine),
    /// gpiocdev on `chip`.
    Gpiocdev {
        /// Chip device.
        chip: PathBuf,
        /// Relay line.
        line: GpioLine,
    },
}

/// Where the door contact and the exit button are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputsConfig {
    /// Backend.
    pub backend: GpioBackend,
    /// gpiocdev chip.
    pub chip: PathBuf,
    /// Door contact.
    pub contact: Option<GpioLine>,
    /// Exit button.
    pub exit: Option<GpioLine>,
    /// Pull resistor.
    pub pull: Pull,
    /// Debounce.
    pub debounce: Duration,
}

/// BCM GPIOs on the Pi's 40-pin header that Pintu may use (0 and 1 are the HAT ID EEPROM bus).
pub const HEADER_GPIOS: std::ops::RangeInclusive<u8> = 2..=27;

fn default_unlock_for() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// Which side of the door a reader is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderRole {
    /// Outside: taps to enter.
    Entry,
    /// Inside: taps to leave.
    Exit,
}

/// Reader backends as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Taps arrive through the control socket (`pintuctl tap`).
    Sim,
    /// A PC/SC reader (USB, e.g. ACR122U) through pcscd.
    Pcsc,
    /// A serial reader (UART or USB-serial).
    Serial,
}

/// Frame protocols of serial readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SerialProtocol {
    /// EM4100 125 kHz readers such as the RDM6300: STX, 10 hex digits, 2 hex checksum digits, ETX.
    Em4100,
    /// One UID per line (USB-serial and Wiegand-to-serial adapters).
    AsciiLine,
}

/// How an ASCII-line reader writes the UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UidFormat {
    /// Hex digits.
    Hex,
    /// A decimal number (converted to big-endian bytes).
    Decimal,
}

/// `[[reader]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReader {
    /// Name used in events and logs.
    pub name: String,
    /// Entry or exit.
    #[serde(default = "default_role")]
    pub role: ReaderRole,
    /// Backend.
    pub backend: BackendKind,
    /// PC/SC only: pick readers whose name contains this (case-insensitive); default every reader.
    pub pcsc_reader: Option<String>,
    /// Serial only: the device, e.g. `/dev/ttyAMA0` or `/dev/serial/by-id/...`.
    pub port: Option<PathBuf>,
    /// Serial only: baud rate (default 9600).
    pub baud: Option<u32>,
    /// Serial only: frame protocol.
    pub protocol: Option<SerialProtocol>,
    /// Serial ASCII-line only: how the UID is written (default hex).
    pub uid_format: Option<UidFormat>,
    /// Serial only: repeats of the same card within this time are one tap (default "1s").
    pub hold: Option<HumanDuration>,
}

/// Settings of a PC/SC reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcscSettings {
    /// Reader-name pattern (case-insensitive substring); `None` takes every reader.
    pub reader_pattern: Option<String>,
}

/// Settings of a serial reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSettings {
    /// Device path.
    pub port: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Frame protocol.
    pub protocol: SerialProtocol,
    /// UID notation (ASCII-line readers).
    pub uid_format: UidFormat,
    /// De-duplication window for repeated frames.
    pub hold: Duration,
}

/// A reader's backend with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderBackend {
    /// Simulated: fed through the control socket.
    Sim,
    /// PC/SC through pcscd.
    Pcsc(PcscSettings),
    /// Serial port.
    Serial(SerialSettings),
}

impl ReaderBackend {
    /// Short name for status and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ReaderBackend::Sim => "sim",
            ReaderBackend::Pcsc(_) => "pcsc",
            ReaderBackend::Serial(_) => "serial",
        }
    }
}

fn default_role() -> ReaderRole {
    ReaderRole::Entry
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

/// A configured card reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Name.
    pub name: String,
    /// Entry or exit.
    pub role: ReaderRole,
    /// Backend.
    pub backend: ReaderBackend,
}

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

    /// Phase two.
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

        for (key, value) in [("site", &raw.site), ("door.id", &raw.door.id)] {
            if !is_identifier(value) {
                err(key, format!("{value:?} is not a valid id: use letters, digits, '-', '_' or '.' (1-64 chars)"));
            }
        }

        let keys = trusted_keys(&raw.trust.keys, "trust.keys", &[], &mut err);
        if raw.trust.keys.is_empty() {
            err(
                "trust.keys",
                "no trusted public keys: add at least one [[trust.keys]] (see `pintuctl keygen`)"
                    .into(),
            );
        }
        if raw.trust.threshold == 0 {
            err("trust.threshold", "must be at least 1".into());
        } else if raw.trust.threshold > raw.trust.keys.len() && !raw.trust.keys.is_empty() {
            err(
                "trust.threshold",
                format!(
                    "{} signatures required but only {} keys are trusted",
                    raw.trust.threshold,
                    raw.trust.keys.len()
                ),
            );
        }
        // Command-signing keys: their own block, or the list keys. An id may not name two
        // different keys across the two lists (a signature names its key by id).
        let mut command_keys: Vec<TrustedKey> = Vec::new();
        if let Some(raw_keys) = &raw.trust.command_keys {
            if raw_keys.is_empty() {
                err(
                    "trust.command_keys",
                    "is empty: remove it to let the list keys sign commands, or add keys".into(),
                );
            }
            command_keys = trusted_keys(raw_keys, "trust.command_keys", &keys, &mut err);
        }
        let command_threshold =
            raw.trust
                .command_threshold
                .unwrap_or(if raw.trust.command_keys.is_some() {
                    1
                } else {
                    raw.trust.threshold
                });
        let command_key_count = raw
            .trust
            .command_keys
            .as_ref()
            .map_or(raw.trust.keys.len(), Vec::len);
        // Defaulted from `threshold` (no command keys of their own): checked as `threshold`.
        let own = raw.trust.command_threshold.is_some() || raw.trust.command_keys.is_some();
        if own && command_threshold == 0 {
            err("trust.command_threshold", "must be at least 1".into());
        } else if own && command_threshold > command_key_count && command_key_count > 0 {
            err(
                "trust.command_threshold",
                format!(
                    "{command_threshold} signatures required but only {command_key_count} command keys are trusted"
                ),
            );
        }
        let card_key_path = resolve(&raw.trust.card_key_file);
        let card_key = match read_secret(&card_key_path) {
            Ok(bytes) => CardKey::from_hex(&String::from_utf8_lossy(&bytes))
                .map_err(|m| {
                    err(
                        "trust.card_key_file",
                        format!("{}: {m}", card_key_path.display()),
                    )
                })
                .ok(),
            Err(m) => {
                err("trust.card_key_file", m);
                None
            }
        };

        if raw.list.max_size.0 < 1024 {
            err("list.max_size", "must be at least 1KiB".into());
        }
        if raw.list.poll_interval.0 < Duration::from_millis(50) {
            err("list.poll_interval", "must be at least 50ms".into());
        }
        if raw.list.inbox_keep == 0 {
            err("list.inbox_keep", "must be at least 1".into());
        }
        let unlock_for = raw.door.unlock_for.0;
        if unlock_for < Duration::from_millis(100) || unlock_for > Duration::from_secs(600) {
            err("door.unlock_for", "must be between 100ms and 10m".into());
        }
        let (prealarm, alarm) = (raw.door.held_open_prealarm.0, raw.door.held_open_alarm.0);
        if prealarm < Duration::from_secs(1) {
            err("door.held_open_prealarm", "must be at least 1s".into());
        }
        if alarm < prealarm {
            err(
                "door.held_open_alarm",
                "must not be shorter than door.held_open_prealarm".into(),
            );
        }
        let (lock_hw, inputs) = validate_gpio(&raw.lock, &raw.inputs, &mut err);
        let mut readers: Vec<ReaderConfig> = Vec::new();
        for (i, r) in raw.readers.iter().enumerate() {
            if !is_identifier(&r.name) {
                err(
                    &format!("reader[{i}].name"),
                    format!("{:?} is not a valid reader name", r.name),
                );
            } else if readers.iter().any(|o| o.name == r.name) {
                err(
                    &format!("reader[{i}].name"),
                    format!("reader name {:?} is used twice", r.name),
                );
            }
            let key = |field: &str| format!("reader[{i}].{field}");
            let only =
                |field: &str, present: bool, kind: &str, err: &mut dyn FnMut(&str, String)| {
                    if present {
                        err(&key(field), format!("only for {kind} readers"));
                    }
                };
            let serial_keys = [
                ("port", r.port.is_some()),
                ("baud", r.baud.is_some()),
                ("protocol", r.protocol.is_some()),
                ("uid_format", r.uid_format.is_some()),
                ("hold", r.hold.is_some()),
            ];
            let backend = match r.backend {
                BackendKind::Sim | BackendKind::Pcsc => {
                    for (field, present) in serial_keys {
                        only(field, present, "serial", &mut err);
                    }
                    if r.backend == BackendKind::Sim {
                        only("pcsc_reader", r.pcsc_reader.is_some(), "pcsc", &mut err);
                        ReaderBackend::Sim
                    } else {
                        ReaderBackend::Pcsc(PcscSettings {
                            reader_pattern: r.pcsc_reader.clone(),
                        })
                    }
                }
                BackendKind::Serial => {
                    only("pcsc_reader", r.pcsc_reader.is_some(), "pcsc", &mut err);
                    let protocol = r.protocol.unwrap_or_else(|| {
                        err(
                            &key("backend"),
                            "a serial reader needs `protocol` (\"em4100\" or \"ascii-line\")"
                                .into(),
                        );
                        SerialProtocol::Em4100
                    });
                    if protocol == SerialProtocol::Em4100 && r.uid_format.is_some() {
                        err(&key("uid_format"), "only for ascii-line readers".into());
                    }
                    let port = r.port.clone().unwrap_or_else(|| {
                        err(
                            &key("backend"),
                            "a serial reader needs `port` (e.g. \"/dev/ttyAMA0\")".into(),
                        );
                        PathBuf::new()
                    });
                    let baud = r.baud.unwrap_or(9600);
                    if !(300..=4_000_000).contains(&baud) {
                        err(&key("baud"), format!("{baud} is not a usable baud rate"));
                    }
                    let hold = r.hold.map(|h| h.0).unwrap_or(Duration::from_secs(1));
                    if hold > Duration::from_secs(60) {
                        err(&key("hold"), "must be at most 60s".into());
                    }
                    ReaderBackend::Serial(SerialSettings {
                        port,
                        baud,
                        protocol,
                        uid_format: r.uid_format.unwrap_or(UidFormat::Hex),
                        hold,
                    })
                }
            };
            readers.push(ReaderConfig {
                name: r.name.clone(),
                role: r.role,
                backend,
            });
        }
        if readers.is_empty() {
            readers.push(ReaderConfig {
                name: "entry".into(),
                role: ReaderRole::Entry,
                backend: ReaderBackend::Sim,
            });
        }
        check_real_lock_peers(&raw, &lock_hw, &readers, &mut err);
        if raw.store.cache_size.0 < (1 << 20) {
            err("store.cache_size", "must be at least 1MiB".into());
        }
        if raw.store.cache_size_max.0 < raw.store.cache_size.0 {
            err(
                "store.cache_size_max",
                format!(
                    "must be at least store.cache_size ({} bytes); set them equal for a fixed cache",
                    raw.store.cache_size.0
                ),
            );
        }
        if raw.store.outbox_warning == 0 || raw.store.outbox_critical <= raw.store.outbox_warning {
            err(
                "store.outbox_critical",
                "outbox thresholds: need 0 < outbox_warning < outbox_critical".into(),
            );
        }
        let procedure = validate_procedure(&raw, &mut err);
        let mqtt = raw
            .mqtt
            .as_ref()
            .and_then(|m| validate_mqtt(m, &raw.site, &raw.door.id, &resolve, &mut err));
        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            err(
                "log.level",
                format!(
                    "{:?} is not a log filter (try \"info\" or \"pintu=debug\")",
                    raw.log.level
                ),
            );
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let state_dir = resolve(&raw.state_dir);
        Ok(Config {
            path: path.to_path_buf(),
            trust: TrustPolicy {
                keys: keys.clone(),
                threshold: raw.trust.threshold,
                site: Some(raw.site.clone()),
                door: Some(raw.door.id.clone()),
                max_bytes: usize::try_from(raw.list.max_size.0).unwrap_or(usize::MAX),
            },
            command_trust: TrustPolicy {
                keys: if raw.trust.command_keys.is_some() {
                    command_keys
                } else {
                    keys
                },
                threshold: command_threshold,
                site: Some(raw.site.clone()),
                door: Some(raw.door.id.clone()),
                max_bytes: usize::try_from(raw.list.max_size.0).unwrap_or(usize::MAX),
            },
            card_key: card_key.expect("errors returned above when the card key is missing"),
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
            door_settings: crate::core::doorstate::DoorSettings {
                unlock_for,
                relock_on_close: raw.door.relock_on_close,
                held_open_prealarm: prealarm,
                held_open_alarm: alarm,
                relock_grace: Duration::from_secs(1),
            },
            unlock_for,
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
    let (lock, _) = validate_gpio(&raw.lock, &raw.inputs, &mut |key: &str, message| {
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

/// The environment variable systemd sets to the service's credentials directory
/// (`LoadCredential=`).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Reads a secret file (card key, MQTT password, TLS client key). Under systemd the files are
/// root-only and the unit passes each as a credential named after the file
/// (`LoadCredential=card.key:/etc/pintu/card.key`): when `$CREDENTIALS_DIRECTORY` holds a
/// non-empty credential of the path's file name, that is read instead of the path. Elsewhere
/// (a by-hand run, `--check-config` as root) the path is read. docs/install.md, "Secrets".
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let dir = std::env::var_os(CREDENTIALS_DIRECTORY).map(PathBuf::from);
    read_secret_in(path, dir.as_deref())
}

/// [`read_secret`] with the credentials directory given (`None`: not under systemd).
pub fn read_secret_in(path: &Path, credentials: Option<&Path>) -> Result<Vec<u8>, String> {
    let dir = credentials.filter(|d| !d.as_os_str().is_empty());
    let (Some(dir), Some(name)) = (dir, path.file_name()) else {
        return std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    };
    let credential = dir.join(name);
    match std::fs::read(&credential) {
        Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
        // An empty credential holds no secret: the path decides (and its error says why).
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot read credential {}: {e}",
                credential.display()
            ))
        }
    }
    std::fs::read(path).map_err(|e| {
        let name = name.to_string_lossy();
        format!(
            "cannot read {}: {e}; under systemd no credential {name:?} was loaded either \
             ({} has none): keep the file root:root 0600 and give the unit \
             LoadCredential={name}:{} (docs/install.md, \"Secrets\")",
            path.display(),
            dir.display(),
            path.display()
        )
    })
}

/// Checks `[visits]`, `[flood]` and `[clock]` into the procedure's settings.
fn validate_procedure(raw: &RawConfig, err: &mut dyn FnMut(&str, String)) -> ProcedureSettings {
    let v = &raw.visits;
    let within = |d: Duration, lo: Duration, hi: Duration| d >= lo && d <= hi;
    if !within(
        v.escort_window.0,
        Duration::from_secs(1),
        Duration::from_secs(600),
    ) {
        err("visits.escort_window", "must be between 1s and 10m".into());
    }
    if v.escort_roles.is_empty() {
        err(
            "visits.escort_roles",
            "name at least one role (staff, escort)".into(),
        );
    }
    if v.escort_roles.contains(&Role::Visitor) {
        err("visits.escort_roles", "a visitor never escorts".into());
    }
    let mut role_windows = Vec::new();
    for (role, window) in &v.escort_window_by_role {
        if *role == Role::Visitor || !v.escort_roles.contains(role) {
            err(
                "escort_window_by_role",
                format!("{}: only for roles in visits.escort_roles", role.as_str()),
            );
        } else if !within(window.0, Duration::from_secs(1), Duration::from_secs(600)) {
            err(
                "escort_window_by_role",
                format!("{}: must be between 1s and 10m", role.as_str()),
            );
        }
        role_windows.push((*role, window.0));
    }
    role_windows.sort_by_key(|(r, _)| r.as_str());
    if v.overstay_repeat.0 < Duration::from_secs(60) {
        err("visits.overstay_repeat", "must be at least 1m".into());
    }
    let f = &raw.flood;
    if !within(
        f.window.0,
        Duration::from_secs(1),
        Duration::from_secs(3600),
    ) {
        err("flood.window", "must be between 1s and 1h".into());
    }
    if !within(
        f.lockout.0,
        Duration::from_secs(1),
        Duration::from_secs(86_400),
    ) {
        err("flood.lockout", "must be between 1s and 24h".into());
    }
    if raw.clock.tolerance.0 > Duration::from_secs(3600) {
        err("clock.tolerance", "must be at most 1h".into());
    }
    if !within(
        raw.clock.max_ahead_of_signed.0,
        Duration::from_secs(60),
        Duration::from_secs(400 * 86_400),
    ) {
        err(
            "clock.max_ahead_of_signed",
            "must be between 1m and 400days".into(),
        );
    }
    let mut settings = ProcedureSettings::new(raw.door.id.clone());
    settings.escort = EscortSettings {
        window: v.escort_window.0,
        role_windows,
        escort_roles: RoleSet::of(&v.escort_roles),
    };
    settings.anti_passback = v.anti_passback;
    settings.overstay_repeat = v.overstay_repeat.0;
    settings.flood = FloodSettings {
        max_failures: f.max_failures,
        window: f.window.0,
        lockout: f.lockout.0,
        pass_roles: RoleSet::of(&f.pass_roles),
    };
    settings.clock_tolerance = raw.clock.tolerance.0;
    settings.visitors_when_clock_untrusted = raw.clock.visitors_when_untrusted;
    settings.clock_max_ahead = raw.clock.max_ahead_of_signed.0;
    settings
}

/// Checks `[mqtt]` and reads its password and TLS files (so a bad path fails at load, with its key).
fn validate_mqtt(
    m: &RawMqtt,
    site: &str,
    door: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    err: &mut dyn FnMut(&str, String),
) -> Option<MqttConfig> {
    let before = std::cell::Cell::new(0usize);
    let mut fail = |key: &str, message: String| {
        before.set(before.get() + 1);
        err(key, message);
    };
    if m.host.trim().is_empty() {
        fail("mqtt.host", "must not be empty".into());
    }
    if m.port == Some(0) {
        fail("mqtt.port", "must be 1-65535".into());
    }
    let prefix = &m.topic_prefix;
    if prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.ends_with('/')
        || prefix.contains(['+', '#', '\0'])
    {
        fail(
            "mqtt.topic_prefix",
            format!("{prefix:?} is not a usable topic prefix: no wildcards (+ #), no leading or trailing '/'"),
        );
    }
    let read = |key: &str, path: &Path, fail: &mut dyn FnMut(&str, String)| {
        let path = resolve(path);
        std::fs::read(&path)
            .map_err(|e| fail(key, format!("cannot read {}: {e}", path.display())))
            .ok()
    };
    let secret = |key: &str, path: &Path, fail: &mut dyn FnMut(&str, String)| {
        read_secret(&resolve(path)).map_err(|m| fail(key, m)).ok()
    };
    let password = m
        .password_file
        .as_deref()
        .and_then(|p| secret("mqtt.password_file", p, &mut fail))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches(['\r', '\n'])
                .to_string()
        });
    let tls = match &m.tls {
        None => None,
        Some(t) => {
            let ca = read("mqtt.tls.ca_file", &t.ca_file, &mut fail).unwrap_or_default();
            let client = match (&t.client_cert_file, &t.client_key_file) {
                (Some(c), Some(k)) => Some((
                    read("mqtt.tls.client_cert_file", c, &mut fail).unwrap_or_default(),
                    secret("mqtt.tls.client_key_file", k, &mut fail).unwrap_or_default(),
                )),
                (None, None) => None,
                (Some(_), None) => {
                    // Reported at the key that is there, so the error has a line.
                    fail(
                        "mqtt.tls.client_cert_file",
                        "needs client_key_file too".into(),
                    );
                    None
                }
                (None, Some(_)) => {
                    fail(
                        "mqtt.tls.client_key_file",
                        "needs client_cert_file too".into(),
                    );
                    None
                }
            };
            Some(MqttTls { ca, client })
        }
    };
    if password.is_some() && m.username.is_none() {
        fail("mqtt.password_file", "a password needs `username`".into());
    }
    if m.keep_alive.0 < Duration::from_secs(5) || m.keep_alive.0 > Duration::from_secs(3600) {
        fail("mqtt.keep_alive", "must be between 5s and 1h".into());
    }
    if m.heartbeat.0 < Duration::from_secs(5) {
        fail("mqtt.heartbeat", "must be at least 5s".into());
    }
    if m.reconnect_min.0 < Duration::from_millis(100) {
        fail("mqtt.reconnect_min", "must be at least 100ms".into());
    }
    if m.reconnect_max.0 < m.reconnect_min.0 {
        fail(
            "mqtt.reconnect_max",
            "must not be shorter than reconnect_min".into(),
        );
    }
    if m.inflight == 0 || m.inflight > 1000 {
        fail("mqtt.inflight", "must be between 1 and 1000".into());
    }
    let lifetime = m.command_max_lifetime.0;
    if lifetime < Duration::from_secs(10) || lifetime > Duration::from_secs(86_400) {
        fail(
            "mqtt.command_max_lifetime",
            "must be between 10s and 24h".into(),
        );
    }
    if m.tls.is_none() && !m.insecure {
        fail(
            "mqtt.host",
            "no [mqtt.tls]: events, lists and credentials would cross the network in clear; \
             configure [mqtt.tls], or set `insecure = true` in [mqtt] to allow plain TCP"
                .into(),
        );
    }
    if before.get() > 0 {
        return None;
    }
    let client_id = m
        .client_id
        .clone()
        .unwrap_or_else(|| format!("pintu-{site}-{door}"));
    // With TLS the setting changes nothing: the link is not plain TCP.
    let insecure = tls.is_none();
    Some(MqttConfig {
        host: m.host.clone(),
        port: m.port.unwrap_or(if tls.is_some() { 8883 } else { 1883 }),
        client_id,
        topic_prefix: prefix.clone(),
        credentials: m
            .username
            .clone()
            .map(|u| (u, password.unwrap_or_default())),
        tls,
        keep_alive: m.keep_alive.0,
        heartbeat: m.heartbeat.0,
        reconnect_min: m.reconnect_min.0,
        reconnect_max: m.reconnect_max.0,
        inflight: m.inflight,
        command_max_lifetime: lifetime,
        insecure,
    })
}

/// Checks the lock and input pins: on the Pi header, none used twice, keys only where they apply.
fn validate_gpio(
    lock: &RawLock,
    inputs: &RawInputs,
    err: &mut dyn FnMut(&str, String),
) -> (LockHardware, InputsConfig) {
    let mut used: Vec<(u8, &str)> = Vec::new();
    let mut line = |key: &'static str,
                    pin: u8,
                    active: Level,
                    err: &mut dyn FnMut(&str, String)| {
        if !HEADER_GPIOS.contains(&pin) {
            err(
                key,
                format!("GPIO {pin} is not a usable BCM pin on the 40-pin header (use 2 to 27)"),
            );
        } else if let Some((_, other)) = used.iter().find(|(p, _)| *p == pin) {
            err(key, format!("GPIO {pin} is already used by {other}"));
        } else {
            used.push((pin, key));
        }
        GpioLine { pin, active }
    };
    let chip = |c: &Option<PathBuf>| c.clone().unwrap_or_else(|| PathBuf::from("/dev/gpiochip0"));
    let lock_hw = match (lock.backend, lock.pin) {
        (GpioBackend::Sim, pin) => {
            for (key, present) in [
                ("lock.pin", pin.is_some()),
                ("lock.relay_active", lock.relay_active.is_some()),
                ("lock.chip", lock.chip.is_some()),
            ] {
                if present {
                    err(
                        key,
                        "only for a GPIO lock backend (rpi-pal or gpiocdev)".into(),
                    );
                }
            }
            LockHardware::Sim
        }
        (_, None) => {
            err(
                "lock.backend",
                "a GPIO lock needs `pin` (the BCM number driving the relay)".into(),
            );
            LockHardware::Sim
        }
        (backend, Some(pin)) => {
            let l = line(
                "lock.pin",
                pin,
                lock.relay_active.unwrap_or(Level::High),
                err,
            );
            if backend == GpioBackend::RpiPal {
                if lock.chip.is_some() {
                    err("lock.chip", "only for the gpiocdev backend".into());
                }
                LockHardware::RpiPal(l)
            } else {
                LockHardware::Gpiocdev {
                    chip: chip(&lock.chip),
                    line: l,
                }
            }
        }
    };
    let backend = inputs.backend.unwrap_or(GpioBackend::Sim);
    let contact = inputs.contact_pin.map(|p| {
        line(
            "inputs.contact_pin",
            p,
            inputs.contact_open.unwrap_or(Level::High),
            err,
        )
    });
    let exit = inputs.exit_pin.map(|p| {
        line(
            "inputs.exit_pin",
            p,
            inputs.exit_pressed.unwrap_or(Level::Low),
            err,
        )
    });
    if backend == GpioBackend::Sim && (contact.is_some() || exit.is_some()) {
        let key = if contact.is_some() {
            "inputs.contact_pin"
        } else {
            "inputs.exit_pin"
        };
        err(
            key,
            "set, but inputs.backend is sim: set backend = \"rpi-pal\" or \"gpiocdev\"".into(),
        );
    }
    if backend != GpioBackend::Sim && contact.is_none() && exit.is_none() {
        err(
            "inputs.backend",
            "a GPIO input backend needs `contact_pin`, `exit_pin` or both".into(),
        );
    }
    if backend != GpioBackend::Gpiocdev && inputs.chip.is_some() {
        err("inputs.chip", "only for the gpiocdev backend".into());
    }
    let debounce = inputs
        .debounce
        .map(|d| d.0)
        .unwrap_or(Duration::from_millis(30));
    if debounce > Duration::from_secs(1) {
        err("inputs.debounce", "must be at most 1s".into());
    }
    let inputs = InputsConfig {
        backend,
        chip: chip(&inputs.chip),
        contact,
        exit,
        pull: inputs.pull.unwrap_or(Pull::Up),
        debounce,
    };
    (lock_hw, inputs)
}

/// The keys of `[[KEY]]` (`trust.keys` or `trust.command_keys`): each id once, each public key
/// once, and no id or key that `other` (the list keys, for command keys) pairs differently — a
/// signature names its key by id, so one id must mean one key everywhere.
fn trusted_keys(
    raw: &[RawKey],
    key: &str,
    other: &[TrustedKey],
    err: &mut dyn FnMut(&str, String),
) -> Vec<TrustedKey> {
    let mut keys: Vec<TrustedKey> = Vec::new();
    for (i, k) in raw.iter().enumerate() {
        let at = format!("{key}[{i}]");
        if keys.iter().any(|o| o.id == k.id) {
            err(
                &format!("{at}.id"),
                format!("key id {:?} is listed twice", k.id),
            );
            continue;
        }
        match decode_public_key(&k.public_key) {
            Ok(public) if keys.iter().any(|o| o.key == public) => err(
                &format!("{at}.public_key"),
                "this public key is already listed under another id".into(),
            ),
            Ok(public) if other.iter().any(|l| (l.id == k.id) != (l.key == public)) => err(
                &format!("{at}.public_key"),
                format!(
                    "id {:?} or its key is in [[trust.keys]] with a different key or id: use one id per key",
                    k.id
                ),
            ),
            Ok(public) => keys.push(TrustedKey {
                id: k.id.clone(),
                key: public,
            }),
            Err(m) => err(&format!("{at}.public_key"), m),
        }
    }
    keys
}

/// A real lock must not sit next to a simulated reader or simulated inputs: `pintuctl tap` and
/// `pintuctl input exit-button` reach those through the control socket, so the socket would open
/// a real door. Refused unless `[door] bench = true` says this is a test bench.
fn check_real_lock_peers(
    raw: &RawConfig,
    lock: &LockHardware,
    readers: &[ReaderConfig],
    err: &mut dyn FnMut(&str, String),
) {
    if *lock == LockHardware::Sim || raw.door.bench {
        return;
    }
    const WHY: &str = "with a real lock, anyone who can reach the control socket could open the door through it; use a real backend, or set [door] bench = true on a test bench";
    if raw.readers.is_empty() {
        err(
            "lock.backend",
            format!("a real lock needs at least one real [[reader]] (none is configured, so a simulated one would stand in): {WHY}"),
        );
    }
    for (i, r) in raw.readers.iter().enumerate() {
        if readers
            .get(i)
            .is_some_and(|c| c.backend == ReaderBackend::Sim)
        {
            err(
                &format!("reader[{i}].backend"),
                format!(
                    "reader {:?} is simulated next to a real lock: {WHY}",
                    r.name
                ),
            );
        }
    }
    if raw.inputs.backend == Some(GpioBackend::Sim) {
        err(
            "inputs.backend",
            format!("simulated inputs next to a real lock: {WHY} (leave [inputs] out for a door without contact or exit button)"),
        );
    }
}

/// Phase one: TOML → [`RawConfig`], errors with line and key path.
pub fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    parse_toml(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_key_finds_nested_keys() {
        let text = "site = \"a\"\n\n[lock]\nunlock_for = \"5s\"\n\n[[reader]]\nname = \"x\"\n\n[[reader]]\nname = \"y\"\n";
        assert_eq!(line_of_key(text, "site"), Some(1));
        assert_eq!(line_of_key(text, "lock.unlock_for"), Some(4));
        assert_eq!(line_of_key(text, "reader[1].name"), Some(10));
        assert_eq!(line_of_key(text, "nope"), None);
    }

    #[test]
    fn durations_sizes_modes() {
        #[derive(Deserialize)]
        struct T {
            d: HumanDuration,
            s: ByteSize,
            m: FileMode,
        }
        let t: T = toml::from_str("d = \"1500ms\"\ns = \"2MiB\"\nm = \"0640\"").unwrap();
        assert_eq!(t.d.0, Duration::from_millis(1500));
        assert_eq!(t.s.0, 2 << 20);
        assert_eq!(t.m.0, 0o640);
        assert!(toml::from_str::<T>("d = \"5x\"\ns = \"2MiB\"\nm = \"0640\"").is_err());
        assert!(toml::from_str::<T>("d = \"5s\"\ns = \"lots\"\nm = \"0640\"").is_err());
        assert!(toml::from_str::<T>("d = \"5s\"\ns = \"1KiB\"\nm = \"0999\"").is_err());
    }
}
