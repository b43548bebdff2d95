//! The hardware sections: the lock relay and door inputs (`[lock]`, `[inputs]`, GPIO lines) and
//! the card readers (`[[reader]]`), as written and as validated.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::core::doorstate::LockType;
use crate::util::toml::HumanDuration;

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
