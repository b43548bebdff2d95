//! Phase one and two of the config: the TOML as written ([`RawConfig`], strict serde) and its
//! check into [`Settings`](super::Settings).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pintu::mqtt::settings::BrokerDraft;
use pintu::util::toml::{line_of_key, ConfigError, ConfigErrors, HumanDuration};
use pintu_core::workflow::{Chain, ChainConfig};
use serde::Deserialize;

use super::{Database, Security, Server, Settings, Site, TlsFiles};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    server: RawServer,
    database: RawDatabase,
    security: RawSecurity,
    #[serde(default)]
    mqtt: Option<BrokerDraft>,
    site: RawSite,
    #[serde(default)]
    workflow: Option<ChainConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default = "default_listen")]
    listen: String,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    public_origins: Vec<String>,
    #[serde(default)]
    allow_plain_http: bool,
    #[serde(default)]
    instance: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: default_listen(),
            cert_file: None,
            key_file: None,
            public_origins: Vec::new(),
            allow_plain_http: false,
            instance: None,
        }
    }
}

/// This machine's name, made safe for an MQTT client id: each instance of the service sharing
/// a database needs its own (`[server] instance`).
fn default_instance() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let clean: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "office".into()
    } else {
        clean
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    #[serde(default = "default_max_connections")]
    max_connections: u32,
}

fn default_max_connections() -> u32 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    secret_key_file: PathBuf,
    #[serde(default = "default_session_lifetime")]
    session_lifetime: HumanDuration,
    #[serde(default = "default_session_idle")]
    session_idle: HumanDuration,
    #[serde(default = "default_max_failed_logins")]
    max_failed_logins: u32,
    #[serde(default = "default_lockout")]
    lockout: HumanDuration,
    #[serde(default = "default_address_max_failures")]
    address_max_failures: u32,
    #[serde(default = "default_lockout")]
    address_window: HumanDuration,
    #[serde(default = "default_max_failed_logins")]
    max_wrong_passphrases: u32,
    #[serde(default = "default_lockout")]
    passphrase_window: HumanDuration,
}

fn default_session_lifetime() -> HumanDuration {
    HumanDuration(Duration::from_secs(12 * 3600))
}
fn default_session_idle() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 60))
}
fn default_max_failed_logins() -> u32 {
    5
}
fn default_address_max_failures() -> u32 {
    10
}
fn default_lockout() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default = "default_threshold")]
    threshold: usize,
    #[serde(default)]
    card_key_file: Option<PathBuf>,
}

fn default_threshold() -> usize {
    1
}

impl RawConfig {
    /// Phase two: every key checked, relative paths resolved against the file's folder, every
    /// problem reported.
    pub fn validate(self, path: &Path, text: &str) -> Result<Settings, ConfigErrors> {
        let mut errors = Vec::new();
        let mut fail = |key: &str, message: String| {
            errors.push(ConfigError {
                file: path.to_path_buf(),
                line: line_of_key(text, key),
                key: key.to_string(),
                message,
            })
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen = match self.server.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                fail(
                    "server.listen",
                    format!(
                        "expected an address and port like \"127.0.0.1:8080\", found {:?}",
                        self.server.listen
                    ),
                );
                None
            }
        };
        let tls = match (self.server.cert_file, self.server.key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert_file: rel(cert),
                key_file: rel(key),
            }),
            (None, None) => None,
            (Some(_), None) => {
                fail("server.key_file", "cert_file needs key_file".into());
                None
            }
            (None, Some(_)) => {
                fail("server.cert_file", "key_file needs cert_file".into());
                None
            }
        };
        if let Some(addr) = listen {
            if tls.is_none() && !addr.ip().is_loopback() && !self.server.allow_plain_http {
                fail(
                    "server.listen",
                    format!(
                        "{addr} is not a loopback address: give cert_file and key_file for HTTPS, \
                         or set allow_plain_http = true when a reverse proxy on this host ends TLS"
                    ),
                );
            }
        }
        for origin in &self.server.public_origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://"))
                || origin.trim_end_matches('/') != origin
                || origin.matches('/').count() != 2
            {
                fail(
                    "server.public_origins",
                    format!(
                        "expected an origin like \"https://pintu.example.go.id\" (scheme, host, \
                         optional port; no path), found {origin:?}"
                    ),
                );
            }
        }
        let url = self.database.url.trim().to_string();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            fail(
                "database.url",
                format!(
                    "expected \"sqlite:///var/lib/pintu-office/office.db\" or \
                     \"postgres://user@host/db\", found {url:?}"
                ),
            );
        }
        if self.database.max_connections == 0 {
            fail("database.max_connections", "must be at least 1".into());
        }
        for (key, value) in [
            (
                "security.max_failed_logins",
                self.security.max_failed_logins,
            ),
            (
                "security.address_max_failures",
                self.security.address_max_failures,
            ),
            (
                "security.max_wrong_passphrases",
                self.security.max_wrong_passphrases,
            ),
        ] {
            if value == 0 {
                fail(key, "must be at least 1".into());
            }
        }
        for (key, value) in [
            ("security.lockout", self.security.lockout.0),
            ("security.address_window", self.security.address_window.0),
            (
                "security.passphrase_window",
                self.security.passphrase_window.0,
            ),
        ] {
            if value < Duration::from_secs(1) {
                fail(key, "must be at least 1 s".into());
            }
        }
        if self.security.session_idle.0 > self.security.session_lifetime.0 {
            fail(
                "security.session_idle",
                "must not be longer than security.session_lifetime".into(),
            );
        }
        if let Some(id) = &self.site.id {
            if !pintu_core::list::is_identifier(id) {
                fail(
                    "site.id",
                    format!("expected the doors' site id (letters, digits, '-', '_', '.'), found {id:?}"),
                );
            }
        }
        let instance = self
            .server
            .instance
            .clone()
            .unwrap_or_else(default_instance);
        if instance.is_empty()
            || instance.len() > 64
            || !instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            fail(
                "server.instance",
                format!("expected 1 to 64 of a-z, 0-9, '.', '_', '-', found {instance:?}"),
            );
        }
        if self.site.name.trim().is_empty() {
            fail("site.name", "must not be empty".into());
        }
        if !(1..=16).contains(&self.site.threshold) {
            fail(
                "site.threshold",
                format!("expected 1 to 16 signatures, found {}", self.site.threshold),
            );
        }
        let workflow = match self.workflow {
            None => Some(Chain::full()),
            Some(config) => match Chain::from_config(config) {
                Ok(chain) => Some(chain),
                Err(e) => {
                    fail("workflow.steps", e.to_string());
                    None
                }
            },
        };
        let mqtt = self.mqtt.map(|m| BrokerDraft {
            password_file: m.password_file.map(rel),
            ca_file: m.ca_file.map(rel),
            client_cert_file: m.client_cert_file.map(rel),
            client_key_file: m.client_key_file.map(rel),
            ..m
        });
        match (errors.is_empty(), listen, workflow) {
            (true, Some(listen), Some(workflow)) => Ok(Settings {
                file: path.to_path_buf(),
                server: Server {
                    listen,
                    tls,
                    public_origins: self.server.public_origins,
                    allow_plain_http: self.server.allow_plain_http,
                    instance,
                },
                database: Database {
                    url,
                    max_connections: self.database.max_connections,
                },
                security: Security {
                    secret_key_file: rel(self.security.secret_key_file),
                    session_lifetime: self.security.session_lifetime.0,
                    session_idle: self.security.session_idle.0,
                    max_failed_logins: self.security.max_failed_logins,
                    lockout: self.security.lockout.0,
                    address_max_failures: self.security.address_max_failures,
                    address_window: self.security.address_window.0,
                    max_wrong_passphrases: self.security.max_wrong_passphrases,
                    passphrase_window: self.security.passphrase_window.0,
                },
                mqtt,
                site: Site {
                    id: self.site.id,
                    name: self.site.name,
                    threshold: self.site.threshold,
                    card_key_file: self.site.card_key_file.map(rel),
                },
                workflow,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }
}
