//! Phase two of the config, one function per section: each checks what spans several keys or
//! touches files and reports every problem through `err(key, message)`, so one load lists all
//! of a file's errors. `Config::from_raw` (in `mod.rs`) calls them in file order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::hardware::{
    BackendKind, GpioBackend, GpioLine, InputsConfig, Level, LockHardware, PcscSettings, Pull,
    RawInputs, RawLock, RawReader, ReaderBackend, ReaderConfig, SerialProtocol, SerialSettings,
    UidFormat, HEADER_GPIOS,
};
use super::raw::{RawConfig, RawDoor, RawKey, RawList, RawLog, RawStore, RawTrust};
use super::secrets::read_secret;
use crate::core::card::CardKey;
use crate::core::doorstate::DoorSettings;
use crate::core::escort::{EscortSettings, RoleSet};
use crate::core::flood::FloodSettings;
use crate::core::list::{decode_public_key, is_identifier, Role, TrustedKey};
use crate::core::procedure::{Direction, ProcedureSettings};

/// `[trust]` as validated: the keys of the list and command trust rules and the card key.
pub(super) struct Trust {
    /// Keys that sign lists.
    pub(super) keys: Vec<TrustedKey>,
    /// Keys that sign commands: `[[trust.command_keys]]`, or the list keys when absent.
    pub(super) command_keys: Vec<TrustedKey>,
    /// Signatures needed on a command.
    pub(super) command_threshold: usize,
    /// The site's card key (`None` only when an error was reported).
    pub(super) card_key: Option<CardKey>,
}

/// The site and door ids.
pub(super) fn validate_ids(raw: &RawConfig, err: &mut dyn FnMut(&str, String)) {
    for (key, value) in [("site", &raw.site), ("door.id", &raw.door.id)] {
        if !is_identifier(value) {
            err(key, format!("{value:?} is not a valid id: use letters, digits, '-', '_' or '.' (1-64 chars)"));
        }
    }
}

/// `[trust]`: list keys and threshold, command keys and threshold, and the card key file.
pub(super) fn validate_trust(
    trust: &RawTrust,
    resolve: &dyn Fn(&Path) -> PathBuf,
    err: &mut dyn FnMut(&str, String),
) -> Trust {
    let keys = trusted_keys(&trust.keys, "trust.keys", &[], err);
    if trust.keys.is_empty() {
        err(
            "trust.keys",
            "no trusted public keys: add at least one [[trust.keys]] (see `pintuctl keygen`)"
                .into(),
        );
    }
    if trust.threshold == 0 {
        err("trust.threshold", "must be at least 1".into());
    } else if trust.threshold > trust.keys.len() && !trust.keys.is_empty() {
        err(
            "trust.threshold",
            format!(
                "{} signatures required but only {} keys are trusted",
                trust.threshold,
                trust.keys.len()
            ),
        );
    }
    // Command-signing keys: their own block, or the list keys. An id may not name two
    // different keys across the two lists (a signature names its key by id).
    let mut command_keys: Vec<TrustedKey> = Vec::new();
    if let Some(raw_keys) = &trust.command_keys {
        if raw_keys.is_empty() {
            err(
                "trust.command_keys",
                "is empty: remove it to let the list keys sign commands, or add keys".into(),
            );
        }
        command_keys = trusted_keys(raw_keys, "trust.command_keys", &keys, err);
    }
    let command_threshold = trust
        .command_threshold
        .unwrap_or(if trust.command_keys.is_some() {
            1
        } else {
            trust.threshold
        });
    let command_key_count = trust
        .command_keys
        .as_ref()
        .map_or(trust.keys.len(), Vec::len);
    // Defaulted from `threshold` (no command keys of their own): checked as `threshold`.
    let own = trust.command_threshold.is_some() || trust.command_keys.is_some();
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
    let card_key_path = resolve(&trust.card_key_file);
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
    let command_keys = if trust.command_keys.is_some() {
        command_keys
    } else {
        keys.clone()
    };
    Trust {
        keys,
        command_keys,
        command_threshold,
        card_key,
    }
}

/// `[list]`: size, poll interval and inbox retention bounds.
pub(super) fn validate_list(list: &RawList, err: &mut dyn FnMut(&str, String)) {
    if list.max_size.0 < 1024 {
        err("list.max_size", "must be at least 1KiB".into());
    }
    if list.poll_interval.0 < Duration::from_millis(50) {
        err("list.poll_interval", "must be at least 50ms".into());
    }
    if list.inbox_keep == 0 {
        err("list.inbox_keep", "must be at least 1".into());
    }
}

/// `[door]`: release time and held-open alarms, into the door state machine's settings.
pub(super) fn validate_door(door: &RawDoor, err: &mut dyn FnMut(&str, String)) -> DoorSettings {
    let unlock_for = door.unlock_for.0;
    if unlock_for < Duration::from_millis(100) || unlock_for > Duration::from_secs(600) {
        err("door.unlock_for", "must be between 100ms and 10m".into());
    }
    let (prealarm, alarm) = (door.held_open_prealarm.0, door.held_open_alarm.0);
    if prealarm < Duration::from_secs(1) {
        err("door.held_open_prealarm", "must be at least 1s".into());
    }
    if alarm < prealarm {
        err(
            "door.held_open_alarm",
            "must not be shorter than door.held_open_prealarm".into(),
        );
    }
    DoorSettings {
        unlock_for,
        relock_on_close: door.relock_on_close,
        held_open_prealarm: prealarm,
        held_open_alarm: alarm,
        relock_grace: Duration::from_secs(1),
    }
}

/// `[[reader]]`: names unique, each backend's keys only on that backend; none configured means
/// one simulated entry reader.
pub(super) fn validate_readers(
    raw: &[RawReader],
    err: &mut dyn FnMut(&str, String),
) -> Vec<ReaderConfig> {
    let mut readers: Vec<ReaderConfig> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
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
        let only = |field: &str, present: bool, kind: &str, err: &mut dyn FnMut(&str, String)| {
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
                    only(field, present, "serial", &mut *err);
                }
                if r.backend == BackendKind::Sim {
                    only("pcsc_reader", r.pcsc_reader.is_some(), "pcsc", &mut *err);
                    ReaderBackend::Sim
                } else {
                    ReaderBackend::Pcsc(PcscSettings {
                        reader_pattern: r.pcsc_reader.clone(),
                    })
                }
            }
            BackendKind::Serial => {
                only("pcsc_reader", r.pcsc_reader.is_some(), "pcsc", &mut *err);
                let protocol = r.protocol.unwrap_or_else(|| {
                    err(
                        &key("backend"),
                        "a serial reader needs `protocol` (\"em4100\" or \"ascii-line\")".into(),
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
            role: Direction::Entry,
            backend: ReaderBackend::Sim,
        });
    }
    readers
}

/// `[store]`: cache bounds and outbox alarm thresholds.
pub(super) fn validate_store(store: &RawStore, err: &mut dyn FnMut(&str, String)) {
    if store.cache_size.0 < (1 << 20) {
        err("store.cache_size", "must be at least 1MiB".into());
    }
    if store.cache_size_max.0 < store.cache_size.0 {
        err(
            "store.cache_size_max",
            format!(
                "must be at least store.cache_size ({} bytes); set them equal for a fixed cache",
                store.cache_size.0
            ),
        );
    }
    if store.outbox_warning == 0 || store.outbox_critical <= store.outbox_warning {
        err(
            "store.outbox_critical",
            "outbox thresholds: need 0 < outbox_warning < outbox_critical".into(),
        );
    }
}

/// `[log]`: the level must be a `tracing` filter.
pub(super) fn validate_log(log: &RawLog, err: &mut dyn FnMut(&str, String)) {
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        err(
            "log.level",
            format!(
                "{:?} is not a log filter (try \"info\" or \"pintu=debug\")",
                log.level
            ),
        );
    }
}

/// Checks `[visits]`, `[flood]` and `[clock]` into the procedure's settings.
pub(super) fn validate_procedure(
    raw: &RawConfig,
    err: &mut dyn FnMut(&str, String),
) -> ProcedureSettings {
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
    let presence_expiry = presence_expiry(raw, err);
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
    settings.presence_expiry = presence_expiry;
    settings
}

/// `[visits] presence_expiry`: a duration between 1m and 30days, or `"off"`. Unset, a door
/// without an exit reader expires presence after [`ENTRY_ONLY_PRESENCE_EXPIRY`] (it never sees
/// anyone leave, bar the exit button with one person inside), a door with one keeps it.
fn presence_expiry(raw: &RawConfig, err: &mut dyn FnMut(&str, String)) -> Option<Duration> {
    let Some(text) = raw.visits.presence_expiry.as_deref() else {
        let exit_reader = raw.readers.iter().any(|r| r.role == Direction::Exit);
        return (!exit_reader).then_some(ENTRY_ONLY_PRESENCE_EXPIRY);
    };
    if text == "off" {
        return None;
    }
    match humantime::parse_duration(text) {
        Ok(d) if (Duration::from_secs(60)..=Duration::from_secs(30 * 86_400)).contains(&d) => {
            Some(d)
        }
        Ok(_) => {
            err(
                "visits.presence_expiry",
                "must be between 1m and 30days, or \"off\"".into(),
            );
            None
        }
        Err(_) => {
            err(
                "visits.presence_expiry",
                format!("expected a duration like \"12h\", or \"off\"; found {text:?}"),
            );
            None
        }
    }
}

/// Presence expiry on a door without an exit reader when the config does not say: longer than
/// a working day, short enough that yesterday's people are not counted inside today.
pub const ENTRY_ONLY_PRESENCE_EXPIRY: Duration = Duration::from_secs(12 * 3600);

/// Checks the lock and input pins: on the Pi header, none used twice, keys only where they apply.
pub(super) fn validate_gpio(
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
pub(super) fn check_real_lock_peers(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one section's check and returns its value with the keys it complained about.
    fn check<T>(f: impl FnOnce(&mut dyn FnMut(&str, String)) -> T) -> (T, Vec<String>) {
        let mut keys = Vec::new();
        let value = f(&mut |key: &str, _message: String| keys.push(key.to_string()));
        (value, keys)
    }

    fn raw<T: serde::de::DeserializeOwned>(text: &str) -> T {
        toml::from_str(text).expect("section")
    }

    #[test]
    fn every_problem_of_a_section_is_reported_in_order() {
        let list: RawList = raw("max_size = \"512B\"\npoll_interval = \"10ms\"\ninbox_keep = 0");
        let ((), keys) = check(|err| validate_list(&list, err));
        assert_eq!(
            keys,
            ["list.max_size", "list.poll_interval", "list.inbox_keep"]
        );
        let ((), keys) = check(|err| validate_list(&raw::<RawList>(""), err));
        assert!(keys.is_empty(), "the defaults are valid: {keys:?}");
    }

    #[test]
    fn door_timing_becomes_the_door_state_machines_settings() {
        let door: RawDoor = raw("id = \"d\"\nunlock_for = \"3s\"\nrelock_on_close = false");
        let (settings, keys) = check(|err| validate_door(&door, err));
        assert!(keys.is_empty(), "{keys:?}");
        assert_eq!(settings.unlock_for, Duration::from_secs(3));
        assert!(!settings.relock_on_close);
        assert_eq!(
            (settings.held_open_prealarm, settings.held_open_alarm),
            (Duration::from_secs(20), Duration::from_secs(40))
        );
        let door: RawDoor = raw(
            "id = \"d\"\nunlock_for = \"50ms\"\nheld_open_prealarm = \"30s\"\nheld_open_alarm = \"10s\"",
        );
        let (_, keys) = check(|err| validate_door(&door, err));
        assert_eq!(keys, ["door.unlock_for", "door.held_open_alarm"]);
    }

    #[test]
    fn no_reader_means_one_simulated_entry_reader() {
        let (readers, keys) = check(|err| validate_readers(&[], err));
        assert!(keys.is_empty());
        assert_eq!(
            readers,
            [ReaderConfig {
                name: "entry".into(),
                role: Direction::Entry,
                backend: ReaderBackend::Sim,
            }]
        );
    }

    #[test]
    fn reader_settings_default_and_are_checked_per_backend() {
        let uart: RawReader = raw(
            "name = \"uart\"\nrole = \"exit\"\nbackend = \"serial\"\nport = \"/dev/ttyAMA0\"\nprotocol = \"em4100\"",
        );
        let (readers, keys) = check(|err| validate_readers(&[uart], err));
        assert!(keys.is_empty(), "{keys:?}");
        assert_eq!(readers[0].role, Direction::Exit);
        let ReaderBackend::Serial(s) = &readers[0].backend else {
            panic!("serial: {:?}", readers[0].backend);
        };
        assert_eq!(
            (s.baud, s.hold, s.uid_format),
            (9600, Duration::from_secs(1), UidFormat::Hex)
        );
        let bad = [
            raw::<RawReader>("name = \"a\"\nbackend = \"sim\"\nbaud = 9600"),
            raw::<RawReader>("name = \"a\"\nbackend = \"pcsc\""),
            raw::<RawReader>("name = \"b\"\nbackend = \"serial\"\nbaud = 1"),
        ];
        let (_, keys) = check(|err| validate_readers(&bad, err));
        assert_eq!(
            keys,
            [
                "reader[0].baud",
                "reader[1].name",
                "reader[2].backend",
                "reader[2].backend",
                "reader[2].baud",
            ]
        );
    }

    #[test]
    fn command_keys_default_to_the_list_keys_and_their_threshold() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("card.key"), "11".repeat(32)).expect("card key");
        let resolve = |p: &Path| dir.path().join(p);
        let key = |seed: u8| {
            use base64::Engine as _;
            let public = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
            base64::engine::general_purpose::STANDARD.encode(public.to_bytes())
        };
        let text = format!(
            "threshold = 2\ncard_key_file = \"card.key\"\n[[keys]]\nid = \"a\"\npublic_key = \"{}\"\n[[keys]]\nid = \"b\"\npublic_key = \"{}\"\n",
            key(1),
            key(2)
        );
        let (trust, keys) = check(|err| validate_trust(&raw(&text), &resolve, err));
        assert!(keys.is_empty(), "{keys:?}");
        assert_eq!(trust.keys.len(), 2);
        let ids = |keys: &[TrustedKey]| {
            keys.iter()
                .map(|k| (k.id.clone(), k.key))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&trust.command_keys), ids(&trust.keys));
        assert_eq!(trust.command_threshold, 2);
        assert!(trust.card_key.is_some());

        let own = format!(
            "{text}[[command_keys]]\nid = \"c\"\npublic_key = \"{}\"\n",
            key(3)
        );
        let (trust, keys) = check(|err| validate_trust(&raw(&own), &resolve, err));
        assert!(keys.is_empty(), "{keys:?}");
        assert_eq!(
            trust
                .command_keys
                .iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(
            trust.command_threshold, 1,
            "own command keys: one signature"
        );

        let missing = text.replace("card.key", "none.key");
        let (trust, keys) = check(|err| validate_trust(&raw(&missing), &resolve, err));
        assert_eq!(keys, ["trust.card_key_file"]);
        assert!(trust.card_key.is_none());
    }
}
