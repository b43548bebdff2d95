//! The `[mqtt]` section: the door's link to the broker, as written (phase one) and as validated
//! (phase two), with the password and TLS files read at load so a bad path fails with its key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::secrets::read_secret;
use crate::util::toml::HumanDuration;

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

/// Checks `[mqtt]` and reads its password and TLS files (so a bad path fails at load, with its key).
pub(super) fn validate_mqtt(
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
