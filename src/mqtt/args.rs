//! The one set of command-line flags for a broker, for every `pintuctl` command that reaches
//! one (publish, doors, command, archive). Flags override an office file's `[mqtt]` table field
//! by field. The names the archive used before (`--ca-file`, `--username`, ...) are aliases, so
//! docs, units and scripts keep working; [`BrokerArgs::with_env_fallback`] reads the archive's
//! old environment variables (`PINTU_ARCHIVE_BROKER`, ...) for flags not given.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::mqtt::settings::{split_host_port, BrokerDraft, SettingsError};
use crate::util::toml::HumanDuration;

/// Where the site broker is and how to reach it: an office file and/or flags (flags win).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerArgs {
    /// Office file with an [mqtt] table (broker, TLS, credentials); see docs/operator.md.
    #[arg(long, env = "PINTU_OFFICE")]
    pub office: Option<PathBuf>,
    /// MQTT broker: HOST or HOST:PORT (overrides the office file).
    #[arg(long, env = "PINTU_BROKER")]
    pub broker: Option<String>,
    /// MQTT broker port (default 1883, 8883 with --mqtt-ca).
    #[arg(long, env = "PINTU_MQTT_PORT")]
    pub mqtt_port: Option<u16>,
    /// MQTT user name.
    #[arg(long, alias = "username", env = "PINTU_MQTT_USER")]
    pub mqtt_user: Option<String>,
    /// File holding the MQTT password (one line).
    #[arg(long, alias = "password-file", env = "PINTU_MQTT_PASSWORD_FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// CA certificate of the broker (PEM): connect with TLS.
    #[arg(long, alias = "ca-file", env = "PINTU_MQTT_CA")]
    pub mqtt_ca: Option<PathBuf>,
    /// Client certificate (PEM), with --mqtt-key.
    #[arg(
        long,
        alias = "client-cert-file",
        env = "PINTU_MQTT_CERT",
        requires = "mqtt_key"
    )]
    pub mqtt_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(
        long,
        alias = "client-key-file",
        env = "PINTU_MQTT_KEY",
        requires = "mqtt_cert"
    )]
    pub mqtt_key: Option<PathBuf>,
    /// MQTT client id (default: the command's, e.g. pintuctl- and random hex; the archive's
    /// pintu-archive-{site}, kept fixed so the broker queues events while it is down).
    #[arg(long, alias = "client-id", env = "PINTU_MQTT_CLIENT_ID")]
    pub mqtt_client_id: Option<String>,
    /// First topic level (default pintu, as the doors').
    #[arg(long, alias = "prefix", env = "PINTU_MQTT_PREFIX")]
    pub topic_prefix: Option<String>,
    /// Allow plain TCP to the broker (no --mqtt-ca) where TLS is otherwise required.
    #[arg(long, env = "PINTU_MQTT_INSECURE")]
    pub insecure: bool,
    /// Bound on connecting and on each acknowledgement (one-shot commands; default 10s).
    #[arg(long, env = "PINTU_MQTT_TIMEOUT", value_parser = humantime::parse_duration)]
    pub mqtt_timeout: Option<Duration>,
    /// MQTT keep-alive (default 30s).
    #[arg(long, alias = "keep-alive", value_parser = humantime::parse_duration)]
    pub mqtt_keep_alive: Option<Duration>,
    /// First reconnect delay of a long-lived client (doubles up to --mqtt-reconnect-max, with
    /// jitter; default 1s).
    #[arg(long, alias = "reconnect-min", value_parser = humantime::parse_duration)]
    pub mqtt_reconnect_min: Option<Duration>,
    /// Longest reconnect delay (default 60s).
    #[arg(long, alias = "reconnect-max", value_parser = humantime::parse_duration)]
    pub mqtt_reconnect_max: Option<Duration>,
}

/// The archive's old environment variables (`systemd/pintu-archive.service`), by the flag they
/// stand for.
const ARCHIVE_ENV: [(&str, &str); 9] = [
    ("broker", "PINTU_ARCHIVE_BROKER"),
    ("prefix", "PINTU_ARCHIVE_PREFIX"),
    ("client_id", "PINTU_ARCHIVE_CLIENT_ID"),
    ("username", "PINTU_ARCHIVE_USERNAME"),
    ("password_file", "PINTU_ARCHIVE_PASSWORD_FILE"),
    ("ca_file", "PINTU_ARCHIVE_CA_FILE"),
    ("insecure", "PINTU_ARCHIVE_INSECURE"),
    ("client_cert_file", "PINTU_ARCHIVE_CLIENT_CERT_FILE"),
    ("client_key_file", "PINTU_ARCHIVE_CLIENT_KEY_FILE"),
];

impl BrokerArgs {
    /// `self` with every flag not given taken from the archive's old environment variables
    /// (`PINTU_ARCHIVE_BROKER`, `PINTU_ARCHIVE_CA_FILE`, ...), when they are set. For
    /// `pintuctl archive`, whose systemd unit is configured with them.
    pub fn with_env_fallback(self) -> BrokerArgs {
        self.with_fallback(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
    }

    fn with_fallback(mut self, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> BrokerArgs {
        let get = |flag: &str| {
            ARCHIVE_ENV
                .iter()
                .find(|(f, _)| *f == flag)
                .and_then(|(_, name)| var(name))
        };
        let text = |flag: &str| get(flag).map(|v| v.to_string_lossy().into_owned());
        self.broker = self.broker.or_else(|| text("broker"));
        self.topic_prefix = self.topic_prefix.or_else(|| text("prefix"));
        self.mqtt_client_id = self.mqtt_client_id.or_else(|| text("client_id"));
        self.mqtt_user = self.mqtt_user.or_else(|| text("username"));
        self.mqtt_password_file = self
            .mqtt_password_file
            .or_else(|| get("password_file").map(PathBuf::from));
        self.mqtt_ca = self.mqtt_ca.or_else(|| get("ca_file").map(PathBuf::from));
        self.mqtt_cert = self
            .mqtt_cert
            .or_else(|| get("client_cert_file").map(PathBuf::from));
        self.mqtt_key = self
            .mqtt_key
            .or_else(|| get("client_key_file").map(PathBuf::from));
        // clap's boolean env form: anything but empty, 0, false, no, off.
        self.insecure = self.insecure
            || text("insecure").is_some_and(|v| {
                !matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "" | "0" | "false" | "no" | "off"
                )
            });
        self
    }

    /// The office file (if any) overlaid with the flags: what to resolve into
    /// [`crate::mqtt::BrokerSettings`] with [`BrokerDraft::resolve`].
    pub fn draft(&self) -> Result<BrokerDraft, SettingsError> {
        let file = match &self.office {
            Some(path) => BrokerDraft::load(path)?,
            None => BrokerDraft::default(),
        };
        let (host, port) = match &self.broker {
            Some(text) => {
                let (host, port) = split_host_port(text).map_err(SettingsError::Settings)?;
                (Some(host), port)
            }
            None => (None, None),
        };
        let flags = BrokerDraft {
            host,
            port: self.mqtt_port.or(port),
            client_id: self.mqtt_client_id.clone(),
            topic_prefix: self.topic_prefix.clone(),
            username: self.mqtt_user.clone(),
            password_file: self.mqtt_password_file.clone(),
            ca_file: self.mqtt_ca.clone(),
            client_cert_file: self.mqtt_cert.clone(),
            client_key_file: self.mqtt_key.clone(),
            timeout: self.mqtt_timeout.map(HumanDuration),
            keep_alive: self.mqtt_keep_alive,
            reconnect_min: self.mqtt_reconnect_min,
            reconnect_max: self.mqtt_reconnect_max,
            insecure: self.insecure,
        };
        Ok(file.overlay(flags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        broker: BrokerArgs,
    }

    fn parse(args: &[&str]) -> BrokerArgs {
        let mut argv = vec!["pintuctl"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").broker
    }

    #[test]
    fn the_archive_flag_names_are_aliases_of_the_mqtt_ones() {
        let old = parse(&[
            "--broker",
            "b:8884",
            "--username",
            "u",
            "--password-file",
            "p",
            "--ca-file",
            "ca",
            "--client-cert-file",
            "c",
            "--client-key-file",
            "k",
            "--client-id",
            "id",
            "--prefix",
            "dc",
            "--keep-alive",
            "5s",
            "--reconnect-min",
            "2s",
            "--reconnect-max",
            "9s",
            "--insecure",
        ]);
        let new = parse(&[
            "--broker",
            "b:8884",
            "--mqtt-user",
            "u",
            "--mqtt-password-file",
            "p",
            "--mqtt-ca",
            "ca",
            "--mqtt-cert",
            "c",
            "--mqtt-key",
            "k",
            "--mqtt-client-id",
            "id",
            "--topic-prefix",
            "dc",
            "--mqtt-keep-alive",
            "5s",
            "--mqtt-reconnect-min",
            "2s",
            "--mqtt-reconnect-max",
            "9s",
            "--insecure",
        ]);
        assert_eq!(old, new);
        let draft = new.draft().expect("draft");
        assert_eq!((draft.host.as_deref(), draft.port), (Some("b"), Some(8884)));
        assert_eq!(draft.keep_alive, Some(Duration::from_secs(5)));
        assert!(draft.insecure);
    }

    #[test]
    fn a_port_flag_wins_over_the_port_in_broker() {
        let d = parse(&["--broker", "b:1", "--mqtt-port", "2"])
            .draft()
            .expect("draft");
        assert_eq!(d.port, Some(2));
        assert!(
            Cli::try_parse_from(["pintuctl", "--mqtt-cert", "c"]).is_err(),
            "a certificate needs its key"
        );
    }

    #[test]
    fn the_archive_environment_fills_flags_not_given() {
        let env = |name: &str| match name {
            "PINTU_ARCHIVE_BROKER" => Some("env-broker".into()),
            "PINTU_ARCHIVE_CA_FILE" => Some("env-ca".into()),
            "PINTU_ARCHIVE_INSECURE" => Some("false".into()),
            _ => None,
        };
        let a = parse(&["--mqtt-ca", "flag-ca"]).with_fallback(env);
        assert_eq!(a.broker.as_deref(), Some("env-broker"));
        assert_eq!(a.mqtt_ca, Some(PathBuf::from("flag-ca")));
        assert!(!a.insecure);
    }
}
