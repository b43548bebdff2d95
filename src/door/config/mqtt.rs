//! The `[mqtt]` section: the door's link to the broker, as written (phase one) and as validated
//! (phase two). The broker keys and their checks are the shared [`crate::mqtt::settings`] (the
//! office and the archive resolve into the same [`BrokerSettings`]); the door-only keys (status
//! heartbeat, publish window, command lifetime) are checked here.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::secrets::read_secret;
use crate::mqtt::settings::{
    default_keep_alive, default_prefix, default_reconnect_max, default_reconnect_min,
    DoorBrokerKeys,
};
use crate::mqtt::BrokerSettings;
use crate::util::toml::HumanDuration;

/// `[mqtt.tls]` (the shared raw form).
pub use crate::mqtt::settings::RawTls as RawMqttTls;
/// TLS material for the broker connection (the shared one).
pub use crate::mqtt::Tls as MqttTls;

/// `[mqtt]`: the broker keys ([`RawMqtt::broker`]) and the door-only keys in one table, so that
/// unknown keys are refused and errors have their line.
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
    /// Status is republished at least this often (door only).
    #[serde(default = "default_heartbeat")]
    pub heartbeat: HumanDuration,
    /// First reconnect delay; doubles (with jitter) up to `reconnect_max`.
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min: HumanDuration,
    /// Longest reconnect delay.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: HumanDuration,
    /// Events published and not yet acknowledged at most (door only).
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Longest validity window a signed command may have (door only).
    #[serde(default = "default_command_lifetime")]
    pub command_max_lifetime: HumanDuration,
    /// TLS to the broker.
    pub tls: Option<RawMqttTls>,
    /// Allows plain TCP to the broker (no `[mqtt.tls]`); refused without it (issue 15).
    #[serde(default)]
    pub insecure: bool,
}

impl RawMqtt {
    /// The broker keys, for the shared checks.
    pub fn broker(&self) -> DoorBrokerKeys<'_> {
        DoorBrokerKeys {
            host: &self.host,
            port: self.port,
            client_id: self.client_id.as_deref(),
            topic_prefix: &self.topic_prefix,
            username: self.username.as_deref(),
            password_file: self.password_file.as_deref(),
            keep_alive: self.keep_alive.0,
            reconnect_min: self.reconnect_min.0,
            reconnect_max: self.reconnect_max.0,
            tls: self.tls.as_ref(),
            insecure: self.insecure,
        }
    }
}

fn default_heartbeat() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_inflight() -> u16 {
    100
}

fn default_command_lifetime() -> HumanDuration {
    HumanDuration(crate::core::command::DEFAULT_MAX_LIFETIME)
}

/// The MQTT link, validated: the broker settings (read through, e.g. `cfg.host`) and the
/// door-only settings.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Where the broker is and how to reach it (shared with the office).
    pub broker: BrokerSettings,
    /// Status heartbeat.
    pub heartbeat: Duration,
    /// Publish window.
    pub inflight: u16,
    /// Longest command validity window.
    pub command_max_lifetime: Duration,
}

impl Deref for MqttConfig {
    type Target = BrokerSettings;

    fn deref(&self) -> &BrokerSettings {
        &self.broker
    }
}

/// Checks `[mqtt]` and reads its password and TLS files (so a bad path fails at load, with its key).
pub(super) fn validate_mqtt(
    m: &RawMqtt,
    site: &str,
    door: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    err: &mut dyn FnMut(&str, String),
) -> Option<MqttConfig> {
    let read = |path: &Path, secret: bool| {
        let path = resolve(path);
        if secret {
            read_secret(&path)
        } else {
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
    };
    let broker = m
        .broker()
        .validate(format!("pintu-{site}-{door}"), &read, &mut *err);
    let mut failed = false;
    let mut fail = |key: &str, message: String| {
        failed = true;
        err(key, message);
    };
    if m.heartbeat.0 < Duration::from_secs(5) {
        fail("mqtt.heartbeat", "must be at least 5s".into());
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
    if failed {
        return None;
    }
    Some(MqttConfig {
        broker: broker?,
        heartbeat: m.heartbeat.0,
        inflight: m.inflight,
        command_max_lifetime: lifetime,
    })
}
