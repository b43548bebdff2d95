//! The broker flags of the office commands that reach the site broker: [`MqttArgs`] (publish,
//! doors, `card revoke --publish`) and the archive's own set ([`ArchiveArgs`]).
//!
//! Kept apart, flag for flag as they were, so that one shared set of broker flags can replace
//! both in one place.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use pintu::office::client::{OfficeError, OfficeMqtt, OfficeSettings};
use pintu::util::toml::HumanDuration;

/// Where to reach the site broker: an office file and/or flags (flags win).
#[derive(Args, Debug, Clone, Default)]
pub struct MqttArgs {
    /// Office file with an [mqtt] table (broker, TLS, credentials); see docs/operator.md.
    #[arg(long, env = "PINTU_OFFICE")]
    office: Option<PathBuf>,
    /// MQTT broker host (overrides the office file).
    #[arg(long)]
    broker: Option<String>,
    /// MQTT broker port (default 1883, 8883 with --mqtt-ca).
    #[arg(long)]
    mqtt_port: Option<u16>,
    /// MQTT user name.
    #[arg(long)]
    mqtt_user: Option<String>,
    /// File holding the MQTT password (one line).
    #[arg(long)]
    mqtt_password_file: Option<PathBuf>,
    /// CA certificate of the broker (PEM): connect with TLS.
    #[arg(long)]
    mqtt_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "mqtt_key")]
    mqtt_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, requires = "mqtt_cert")]
    mqtt_key: Option<PathBuf>,
    /// MQTT client id (default pintuctl- and random hex).
    #[arg(long)]
    mqtt_client_id: Option<String>,
    /// First topic level (default pintu, as the doors').
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Bound on connecting and on each acknowledgement.
    #[arg(long, value_parser = humantime::parse_duration)]
    mqtt_timeout: Option<Duration>,
}

impl MqttArgs {
    /// The broker settings, or `None` when neither the office file nor --broker names one.
    pub fn resolve(&self) -> Result<Option<OfficeMqtt>, OfficeError> {
        let file = match &self.office {
            Some(path) => OfficeSettings::load(path)?,
            None => OfficeSettings::default(),
        };
        let flags = OfficeSettings {
            host: self.broker.clone(),
            port: self.mqtt_port,
            client_id: self.mqtt_client_id.clone(),
            topic_prefix: self.topic_prefix.clone(),
            username: self.mqtt_user.clone(),
            password_file: self.mqtt_password_file.clone(),
            ca_file: self.mqtt_ca.clone(),
            client_cert_file: self.mqtt_cert.clone(),
            client_key_file: self.mqtt_key.clone(),
            timeout: self.mqtt_timeout.map(HumanDuration),
        };
        file.overlay(flags).resolve()
    }
}

/// Office service: archive every door's events from the broker (persistent session, stored
/// before acknowledged, de-duplicated by door and seq); --gaps and --stats read an archive.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pintuctl archive --db /var/lib/pintu-archive --broker broker.dc1.example:8883 --site dc1 \\
      --username office --password-file /etc/pintu/archive.password --ca-file /etc/pintu/mqtt-ca.pem
  pintuctl archive --db /var/lib/pintu-archive --gaps
  pintuctl archive --db /var/lib/pintu-archive --stats --json")]
pub struct ArchiveArgs {
    /// Archive store directory (a sled database; created if missing).
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    pub db: PathBuf,
    /// Print the missing seq ranges of every door and exit (status 3 if there are any).
    #[arg(long, conflicts_with = "stats")]
    pub gaps: bool,
    /// Print the archive's counters and per-door ranges and exit.
    #[arg(long)]
    pub stats: bool,
    /// With --gaps or --stats: print JSON.
    #[arg(long)]
    pub json: bool,
    /// Broker: HOST or HOST:PORT (port 1883, or 8883 with --ca-file).
    #[arg(long, env = "PINTU_ARCHIVE_BROKER", required_unless_present_any = ["gaps", "stats"])]
    pub broker: Option<String>,
    /// Site id: the archive subscribes to {prefix}/{site}/+/events.
    #[arg(long, env = "PINTU_ARCHIVE_SITE", required_unless_present_any = ["gaps", "stats"])]
    pub site: Option<String>,
    /// Topic prefix (the doors' [mqtt] topic_prefix).
    #[arg(long, env = "PINTU_ARCHIVE_PREFIX", default_value = "pintu")]
    pub prefix: String,
    /// MQTT client id; keep it fixed: the broker queues events for this id while the archive is
    /// down (default pintu-archive-{site}).
    #[arg(long, env = "PINTU_ARCHIVE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Broker user name (with --password-file).
    #[arg(long, env = "PINTU_ARCHIVE_USERNAME", requires = "password_file")]
    pub username: Option<String>,
    /// File holding the broker password (one line).
    #[arg(long, env = "PINTU_ARCHIVE_PASSWORD_FILE", requires = "username")]
    pub password_file: Option<PathBuf>,
    /// TLS: the CA that signed the broker's certificate (PEM).
    #[arg(long, env = "PINTU_ARCHIVE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Allow plain TCP to the broker (no --ca-file); refused without it.
    #[arg(long, env = "PINTU_ARCHIVE_INSECURE")]
    pub insecure: bool,
    /// TLS client certificate (PEM), with --client-key-file.
    #[arg(long, env = "PINTU_ARCHIVE_CLIENT_CERT_FILE", requires_all = ["client_key_file", "ca_file"])]
    pub client_cert_file: Option<PathBuf>,
    /// TLS client key (PEM).
    #[arg(
        long,
        env = "PINTU_ARCHIVE_CLIENT_KEY_FILE",
        requires = "client_cert_file"
    )]
    pub client_key_file: Option<PathBuf>,
    /// MQTT keep-alive.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub keep_alive: Duration,
    /// First reconnect delay (doubles up to --reconnect-max, with jitter).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub reconnect_max: Duration,
}

/// `host` or `host:port`.
pub fn broker_address(text: &str, tls: bool) -> Result<(String, u16)> {
    let default = if tls { 8883 } else { 1883 };
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port = port
                .parse()
                .with_context(|| format!("--broker {text:?}: bad port {port:?}"))?;
            Ok((host.to_string(), port))
        }
        _ => Ok((text.trim_matches(['[', ']']).to_string(), default)),
    }
}
