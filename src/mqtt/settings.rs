//! Broker settings, defined once: [`BrokerSettings`] (where the broker is, who we are to it, TLS,
//! keep-alive and reconnect bounds) with one [`Tls`], for the door's link, `pintud
//! --report-failure`, the office client and the archive.
//!
//! Two raw forms lead to it, both checked here:
//! - the door's `[mqtt]` table ([`DoorBrokerKeys`], borrowed from the door's raw config, which
//!   also holds the door-only keys), checked by [`DoorBrokerKeys::validate`] with errors that
//!   name the key (`mqtt.tls.client_cert_file: needs client_key_file too`);
//! - the office's form ([`BrokerDraft`]): an office file's `[mqtt]` table overlaid field by
//!   field with [`crate::mqtt::BrokerArgs`] flags, resolved by [`BrokerDraft::resolve`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::{TlsConfiguration, Transport};
use serde::Deserialize;

use crate::mqtt::connection::install_crypto_provider;
use crate::util::toml::{parse_toml, ConfigError, HumanDuration};

/// Port of plain MQTT.
pub const PLAIN_PORT: u16 = 1883;
/// Port of MQTT over TLS.
pub const TLS_PORT: u16 = 8883;
/// Default first topic level, the same for doors and office.
pub const DEFAULT_PREFIX: &str = "pintu";

/// How to reach the site broker, resolved: files read, defaults applied.
#[derive(Clone)]
pub struct BrokerSettings {
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
    /// TLS material (PEM bytes, read when the settings were resolved).
    pub tls: Option<Tls>,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// Reconnect backoff bounds (long-lived clients: the link, the archive).
    pub reconnect_min: Duration,
    /// Reconnect backoff bounds.
    pub reconnect_max: Duration,
    /// Plain TCP to the broker, explicitly allowed (`insecure = true` / `--insecure` without
    /// TLS). Always false with TLS.
    pub insecure: bool,
}

/// TLS material for the broker connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    /// CA certificate(s) that signed the broker's certificate, PEM.
    pub ca: Vec<u8>,
    /// Client certificate and key, PEM.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Tls")
            .field("ca_bytes", &self.ca.len())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

impl Tls {
    /// rumqttc's transport for this material (rustls with the ring provider).
    pub fn transport(&self) -> Transport {
        install_crypto_provider();
        Transport::tls_with_config(TlsConfiguration::Simple {
            ca: self.ca.clone(),
            alpn: None,
            client_auth: self.client.clone(),
        })
    }
}

/// The default port: 8883 with TLS, 1883 without.
pub fn default_port(tls: bool) -> u16 {
    if tls {
        TLS_PORT
    } else {
        PLAIN_PORT
    }
}

impl fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password (settings end up in logs and panics).
        f.debug_struct("BrokerSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .field("keep_alive", &self.keep_alive)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl BrokerSettings {
    /// `host:port`, for messages.
    pub fn broker(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A reconnect backoff within the settings' bounds.
    pub fn backoff(&self) -> crate::mqtt::Backoff {
        crate::mqtt::Backoff::new(self.reconnect_min, self.reconnect_max)
    }

    /// MQTT 5 options (the door's link, the archive): client id, broker, keep-alive,
    /// credentials, TLS. Session and packet limits are the caller's.
    pub fn options_v5(&self) -> rumqttc::v5::MqttOptions {
        let mut opts =
            rumqttc::v5::MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        opts.set_keep_alive(self.keep_alive);
        if let Some((user, password)) = &self.credentials {
            opts.set_credentials(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            opts.set_transport(tls.transport());
        }
        opts
    }

    /// MQTT 3.1.1 options (the office's one-shot client), as [`BrokerSettings::options_v5`].
    pub fn options_v4(&self) -> rumqttc::MqttOptions {
        let mut opts =
            rumqttc::MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        opts.set_keep_alive(self.keep_alive);
        if let Some((user, password)) = &self.credentials {
            opts.set_credentials(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            opts.set_transport(tls.transport());
        }
        opts
    }
}

// ---------------------------------------------------------------------------------------------
// The door's `[mqtt]` table
// ---------------------------------------------------------------------------------------------

/// `[mqtt.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file of the CA that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate (with `client_key_file`) for brokers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

/// Default of `[mqtt] topic_prefix`.
pub fn default_prefix() -> String {
    DEFAULT_PREFIX.into()
}

/// Default of `[mqtt] keep_alive`.
pub fn default_keep_alive() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}

/// Default of `[mqtt] reconnect_min`.
pub fn default_reconnect_min() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

/// Default of `[mqtt] reconnect_max`.
pub fn default_reconnect_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// The broker keys of the door's `[mqtt]` table, borrowed from the door's raw config. (That
/// table is one serde struct with the door-only keys too: TOML's unknown-key check and line
/// numbers need the whole table in one struct.)
#[derive(Debug)]
pub struct DoorBrokerKeys<'a> {
    /// `host`.
    pub host: &'a str,
    /// `port`.
    pub port: Option<u16>,
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `topic_prefix`.
    pub topic_prefix: &'a str,
    /// `username`.
    pub username: Option<&'a str>,
    /// `password_file`.
    pub password_file: Option<&'a Path>,
    /// `keep_alive`.
    pub keep_alive: Duration,
    /// `reconnect_min`.
    pub reconnect_min: Duration,
    /// `reconnect_max`.
    pub reconnect_max: Duration,
    /// `[mqtt.tls]`.
    pub tls: Option<&'a RawTls>,
    /// `insecure`.
    pub insecure: bool,
}

/// How the door reads the files its `[mqtt]` table names: `(path, secret)` to the bytes, or the
/// message for the key that named the file. Secrets may come from systemd credentials; paths
/// are relative to the config file.
pub type ReadFile<'a> = dyn Fn(&Path, bool) -> Result<Vec<u8>, String> + 'a;

impl DoorBrokerKeys<'_> {
    /// Checks the keys and reads the password and TLS files (so a bad path fails at load, with
    /// its key). Every problem goes to `err` as (dotted key, message); `None` if there was any.
    /// `default_client_id` applies when `client_id` is not set.
    pub fn validate(
        &self,
        default_client_id: String,
        read: &ReadFile<'_>,
        err: &mut dyn FnMut(&str, String),
    ) -> Option<BrokerSettings> {
        let mut failed = false;
        let mut fail = |key: &str, message: String| {
            failed = true;
            err(key, message);
        };
        if self.host.trim().is_empty() {
            fail("mqtt.host", "must not be empty".into());
        }
        if self.port == Some(0) {
            fail("mqtt.port", "must be 1-65535".into());
        }
        let prefix = self.topic_prefix;
        if !usable_prefix(prefix) {
            fail(
                "mqtt.topic_prefix",
                format!("{prefix:?} is not a usable topic prefix: no wildcards (+ #), no leading or trailing '/'"),
            );
        }
        let file = |key: &str, path: &Path, secret: bool, fail: &mut dyn FnMut(&str, String)| {
            read(path, secret).map_err(|m| fail(key, m)).ok()
        };
        let password = self
            .password_file
            .and_then(|p| file("mqtt.password_file", p, true, &mut fail))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            });
        let tls = match self.tls {
            None => None,
            Some(t) => {
                let ca = file("mqtt.tls.ca_file", &t.ca_file, false, &mut fail).unwrap_or_default();
                let client = match (&t.client_cert_file, &t.client_key_file) {
                    (Some(c), Some(k)) => Some((
                        file("mqtt.tls.client_cert_file", c, false, &mut fail).unwrap_or_default(),
                        file("mqtt.tls.client_key_file", k, true, &mut fail).unwrap_or_default(),
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
                Some(Tls { ca, client })
            }
        };
        if password.is_some() && self.username.is_none() {
            fail("mqtt.password_file", "a password needs `username`".into());
        }
        if self.keep_alive < Duration::from_secs(5) || self.keep_alive > Duration::from_secs(3600) {
            fail("mqtt.keep_alive", "must be between 5s and 1h".into());
        }
        if self.reconnect_min < Duration::from_millis(100) {
            fail("mqtt.reconnect_min", "must be at least 100ms".into());
        }
        if self.reconnect_max < self.reconnect_min {
            fail(
                "mqtt.reconnect_max",
                "must not be shorter than reconnect_min".into(),
            );
        }
        if self.tls.is_none() && !self.insecure {
            fail(
                "mqtt.host",
                "no [mqtt.tls]: events, lists and credentials would cross the network in clear; \
                 configure [mqtt.tls], or set `insecure = true` in [mqtt] to allow plain TCP"
                    .into(),
            );
        }
        if failed {
            return None;
        }
        Some(BrokerSettings {
            host: self.host.to_string(),
            port: self.port.unwrap_or(default_port(tls.is_some())),
            client_id: self.client_id.map_or(default_client_id, str::to_string),
            topic_prefix: prefix.to_string(),
            credentials: self
                .username
                .map(|u| (u.to_string(), password.unwrap_or_default())),
            // With TLS the setting changes nothing: the link is not plain TCP.
            insecure: tls.is_none(),
            tls,
            keep_alive: self.keep_alive,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
        })
    }
}

/// A topic prefix both wings can build topics and filters on: no wildcards, no empty level at
/// either end.
pub fn usable_prefix(prefix: &str) -> bool {
    !(prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.ends_with('/')
        || prefix.contains(['+', '#', '\0']))
}

// ---------------------------------------------------------------------------------------------
// The office's form: an office file's [mqtt] table overlaid with flags
// ---------------------------------------------------------------------------------------------

/// Office-side settings failures; each names the broker setting or file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A problem in the office file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file named by the settings could not be read.
    #[error("{what} {path}: {source}")]
    Io {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Settings that do not fit together.
    #[error("{0}")]
    Settings(String),
}

/// A broker as the office names it: the `[mqtt]` table of an office file (TOML, see
/// `docs/operator.md`) or the flags of [`crate::mqtt::BrokerArgs`]; every field optional so that
/// flags can override the file field by field ([`BrokerDraft::overlay`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerDraft {
    /// Broker host name or address.
    pub host: Option<String>,
    /// Port (default 1883, or 8883 with TLS).
    pub port: Option<u16>,
    /// Client id (default: the caller's, e.g. `pintuctl-` and random hex).
    pub client_id: Option<String>,
    /// First topic level (default `pintu`, as the doors').
    pub topic_prefix: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// File holding the password (one line).
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) of the broker: turns TLS on.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    pub client_cert_file: Option<PathBuf>,
    /// Client key (PEM).
    pub client_key_file: Option<PathBuf>,
    /// Bound on connecting, publishing, subscribing (default 10 s).
    pub timeout: Option<HumanDuration>,
    /// Keep-alive (flags only; default 30 s).
    #[serde(skip)]
    pub keep_alive: Option<Duration>,
    /// First reconnect delay (flags only; default 1 s).
    #[serde(skip)]
    pub reconnect_min: Option<Duration>,
    /// Longest reconnect delay (flags only; default 60 s).
    #[serde(skip)]
    pub reconnect_max: Option<Duration>,
    /// Plain TCP allowed without TLS (flags only).
    #[serde(skip)]
    pub insecure: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficeFile {
    #[serde(default)]
    mqtt: BrokerDraft,
}

/// The office's keep-alive when no flag sets one.
pub const OFFICE_KEEP_ALIVE: Duration = Duration::from_secs(30);

impl BrokerDraft {
    /// Reads the `[mqtt]` table of an office file; relative paths in it are taken relative to
    /// the file.
    pub fn load(path: &Path) -> Result<BrokerDraft, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Io {
            what: "office file",
            path: path.to_path_buf(),
            source,
        })?;
        let file: OfficeFile = parse_toml(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: Option<PathBuf>| p.map(|p| if p.is_absolute() { p } else { base.join(p) });
        let m = file.mqtt;
        Ok(BrokerDraft {
            password_file: rel(m.password_file),
            ca_file: rel(m.ca_file),
            client_cert_file: rel(m.client_cert_file),
            client_key_file: rel(m.client_key_file),
            ..m
        })
    }

    /// `self` with every field that `over` sets replaced by it (flags over the file).
    pub fn overlay(self, over: BrokerDraft) -> BrokerDraft {
        BrokerDraft {
            host: over.host.or(self.host),
            port: over.port.or(self.port),
            client_id: over.client_id.or(self.client_id),
            topic_prefix: over.topic_prefix.or(self.topic_prefix),
            username: over.username.or(self.username),
            password_file: over.password_file.or(self.password_file),
            ca_file: over.ca_file.or(self.ca_file),
            client_cert_file: over.client_cert_file.or(self.client_cert_file),
            client_key_file: over.client_key_file.or(self.client_key_file),
            timeout: over.timeout.or(self.timeout),
            keep_alive: over.keep_alive.or(self.keep_alive),
            reconnect_min: over.reconnect_min.or(self.reconnect_min),
            reconnect_max: over.reconnect_max.or(self.reconnect_max),
            insecure: over.insecure || self.insecure,
        }
    }

    /// Reads the files named and applies defaults (`default_client_id` when no client id is
    /// set); `None` when no broker host is set.
    pub fn resolve(
        self,
        default_client_id: impl FnOnce() -> String,
    ) -> Result<Option<BrokerSettings>, SettingsError> {
        let Some(host) = self.host.filter(|h| !h.trim().is_empty()) else {
            return Ok(None);
        };
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| SettingsError::Io {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        let credentials = match (self.username, self.password_file) {
            (Some(user), Some(file)) => {
                let text = read("password file", &file)?;
                let password = String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                Some((user, password))
            }
            (Some(user), None) => Some((user, String::new())),
            (None, Some(_)) => {
                return Err(SettingsError::Settings(
                    "an MQTT password file needs a user name (username / --mqtt-user)".into(),
                ))
            }
            (None, None) => None,
        };
        let client = match (self.client_cert_file, self.client_key_file) {
            (Some(cert), Some(key)) => Some((
                read("client certificate", &cert)?,
                read("client key", &key)?,
            )),
            (None, None) => None,
            _ => {
                return Err(SettingsError::Settings(
                    "a client certificate needs its key, and a key its certificate".into(),
                ))
            }
        };
        let tls = match self.ca_file {
            Some(ca) => Some(Tls {
                ca: read("CA certificate", &ca)?,
                client,
            }),
            None if client.is_some() => {
                return Err(SettingsError::Settings(
                    "a client certificate needs TLS: give the broker's CA file too".into(),
                ))
            }
            None => None,
        };
        let topic_prefix = self.topic_prefix.unwrap_or_else(default_prefix);
        let reconnect_min = self.reconnect_min.unwrap_or(default_reconnect_min().0);
        Ok(Some(BrokerSettings {
            host,
            port: self.port.unwrap_or(default_port(tls.is_some())),
            client_id: self.client_id.unwrap_or_else(default_client_id),
            topic_prefix,
            credentials,
            insecure: self.insecure && tls.is_none(),
            tls,
            keep_alive: self.keep_alive.unwrap_or(OFFICE_KEEP_ALIVE),
            reconnect_min,
            reconnect_max: self
                .reconnect_max
                .unwrap_or(default_reconnect_max().0)
                .max(reconnect_min),
        }))
    }
}

/// `host` or `host:port` (an IPv6 address in brackets, or bare without a port): the host and
/// the port, if one is given. The error names the bad port.
pub fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port = port
                .parse()
                .map_err(|_| format!("--broker {text:?}: bad port {port:?}"))?;
            Ok((host.to_string(), Some(port)))
        }
        _ => Ok((text.trim_matches(['[', ']']).to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(tls: Option<&RawTls>) -> DoorBrokerKeys<'_> {
        DoorBrokerKeys {
            host: "broker.example",
            port: None,
            client_id: None,
            topic_prefix: "pintu",
            username: None,
            password_file: None,
            keep_alive: Duration::from_secs(15),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            tls,
            insecure: false,
        }
    }

    fn validate(k: &DoorBrokerKeys<'_>) -> Result<BrokerSettings, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let read = |p: &Path, _: bool| Ok(p.to_string_lossy().as_bytes().to_vec());
        k.validate("door-id".into(), &read, &mut |k, m| {
            errors.push((k.to_string(), m))
        })
        .ok_or(errors)
    }

    #[test]
    fn the_door_table_needs_tls_or_insecure_and_defaults_the_port() {
        let errors = validate(&keys(None)).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "mqtt.host");
        assert!(errors[0].1.contains("set `insecure = true`"));
        let plain = validate(&DoorBrokerKeys {
            insecure: true,
            ..keys(None)
        })
        .unwrap();
        assert_eq!((plain.port, plain.insecure), (1883, true));
        assert_eq!(plain.client_id, "door-id");
        let tls = RawTls {
            ca_file: "ca.pem".into(),
            client_cert_file: Some("c.pem".into()),
            client_key_file: None,
        };
        let errors = validate(&keys(Some(&tls))).unwrap_err();
        assert_eq!(
            errors,
            vec![(
                "mqtt.tls.client_cert_file".to_string(),
                "needs client_key_file too".to_string()
            )]
        );
        let tls = RawTls {
            client_cert_file: None,
            ..tls
        };
        let s = validate(&DoorBrokerKeys {
            insecure: true,
            ..keys(Some(&tls))
        })
        .unwrap();
        let mut with_password = s.clone();
        with_password.credentials = Some(("door".into(), "s3cret".into()));
        let shown = format!("{with_password:?}");
        assert!(
            shown.contains("door") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!((s.port, s.insecure), (8883, false));
        assert_eq!(s.tls.map(|t| t.ca), Some(b"ca.pem".to_vec()));
    }

    #[test]
    fn office_flags_override_the_file_and_defaults_apply() {
        let file = BrokerDraft {
            host: Some("broker.office".into()),
            port: Some(1884),
            topic_prefix: Some("dc".into()),
            ..Default::default()
        };
        let flags = BrokerDraft {
            port: Some(2000),
            ..Default::default()
        };
        let s = file
            .overlay(flags)
            .resolve(|| "id".into())
            .unwrap()
            .unwrap();
        assert_eq!(s.broker(), "broker.office:2000");
        assert_eq!(
            (s.client_id.as_str(), s.topic_prefix.as_str()),
            ("id", "dc")
        );
        assert_eq!(s.keep_alive, OFFICE_KEEP_ALIVE);
        assert!(!s.insecure);
        assert!(BrokerDraft::default()
            .resolve(String::new)
            .unwrap()
            .is_none());
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("b:1884"), Ok(("b".into(), Some(1884))));
        assert_eq!(split_host_port("b"), Ok(("b".into(), None)));
        assert_eq!(split_host_port("[::1]"), Ok(("::1".into(), None)));
        assert!(split_host_port("b:x")
            .unwrap_err()
            .contains("bad port \"x\""));
    }
}
