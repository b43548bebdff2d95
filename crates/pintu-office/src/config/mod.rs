//! The service's configuration, `/etc/pintu-office/office.toml`, read in two phases like the door's:
//! [`raw`] parses the TOML strictly (unknown keys refused, every error naming file, line and key),
//! [`Settings::load`] then checks what the keys mean together and reads the files they name, and
//! reports every problem it finds at once.

mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pintu::mqtt::settings::{BrokerDraft, SettingsError};
use pintu::mqtt::BrokerSettings;
use pintu::util::toml::{ConfigError, ConfigErrors};
use pintu_core::workflow::Chain;

pub use raw::RawConfig;

/// The default place of the config file.
pub const DEFAULT_CONFIG: &str = "/etc/pintu-office/office.toml";

/// Checked settings of the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file they came from (relative paths in it are taken relative to its folder).
    pub file: PathBuf,
    /// HTTP(S) listener.
    pub server: Server,
    /// Database connection.
    pub database: Database,
    /// Sessions, logins and the service's secret key.
    pub security: Security,
    /// The broker the doors use (`None`: no MQTT; lists are exported as files only).
    pub mqtt: Option<BrokerDraft>,
    /// The site: its name and the doors' signature threshold.
    pub site: Site,
    /// The SOP's chain of steps and their time standards (`[workflow]`; the full chain when
    /// absent).
    pub workflow: Chain,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct Server {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// TLS certificate chain and key (PEM); `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The origins browsers use to reach the service (`https://pintu.example.go.id`): state
    /// changes from any other `Origin` are refused.
    pub public_origins: Vec<String>,
    /// Plain HTTP on an address that is not loopback (`allow_plain_http = true`): for a site
    /// whose TLS ends at a reverse proxy on the same host.
    pub allow_plain_http: bool,
    /// This instance's name (default: the host name): its MQTT client id for the event
    /// ingest. Each instance sharing a database needs its own.
    pub instance: String,
}

/// PEM files of the HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
}

/// `[database]`.
#[derive(Debug, Clone)]
pub struct Database {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

/// `[security]`.
#[derive(Debug, Clone)]
pub struct Security {
    /// The service's secret key file (32 random bytes, hex; root-only): encrypts card UIDs at
    /// rest and keys the audit chain.
    pub secret_key_file: PathBuf,
    /// A session ends this long after login.
    pub session_lifetime: Duration,
    /// … or this long after its last request.
    pub session_idle: Duration,
    /// Failed logins in a row before an account is locked.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    pub lockout: Duration,
    /// Failed logins from one client address within [`Security::address_window`] before that
    /// address is throttled (answered 429 with `Retry-After`).
    pub address_max_failures: u32,
    /// The window failed logins per address are counted in.
    pub address_window: Duration,
    /// Wrong signing passphrases an approver may give within [`Security::passphrase_window`]
    /// before signing is refused for a while.
    pub max_wrong_passphrases: u32,
    /// The window wrong passphrases are counted in.
    pub passphrase_window: Duration,
}

/// `[site]`.
#[derive(Debug, Clone)]
pub struct Site {
    /// The doors' site id (`site` in their pintu.toml; the MQTT topics' second level). When
    /// unset, the site of the imported register.
    pub id: Option<String>,
    /// Shown on pages and forms.
    pub name: String,
    /// Distinct approver signatures a list (or door command) needs: the doors' `trust.threshold`.
    pub threshold: usize,
    /// The site's card key file (what the doors hash card UIDs with; root-only, like
    /// `pintuctl`'s `card.key`): needed to import a register and to enrol cards.
    pub card_key_file: Option<PathBuf>,
}

impl Settings {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::from_text(path, &text)
    }

    /// Checks the text of a config file named `path`.
    pub fn from_text(path: &Path, text: &str) -> Result<Settings, ConfigErrors> {
        let raw: RawConfig =
            pintu::util::toml::parse_toml(path, text).map_err(|e| ConfigErrors(vec![e]))?;
        raw.validate(path, text)
    }

    /// Whether the listener may serve plain HTTP: on a loopback address, or when the config
    /// says so explicitly.
    pub fn plain_http_allowed(&self) -> bool {
        self.server.listen.ip().is_loopback() || self.server.allow_plain_http
    }

    /// The broker settings, files read; `None` when no `[mqtt]` host is set.
    pub fn broker(&self) -> Result<Option<BrokerSettings>, SettingsError> {
        match &self.mqtt {
            Some(draft) => draft
                .clone()
                .resolve(|| format!("pintu-office-{}", uuid::Uuid::new_v4().simple())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
