//! One file per `pintu-office` command, and what they share: loading the settings, the key and
//! the database.

pub mod account;
pub mod archive;
pub mod audit;
pub mod check_config;
pub mod init;
pub mod migrate;
pub mod register;
pub mod requests;
pub mod serve;

use std::path::Path;

use anyhow::Context as _;
use pintu_office::config::Settings;
use pintu_office::db::Db;
use pintu_office::secret::ServiceKey;

/// Logs to stderr; `RUST_LOG` filters (default `info`), `PINTU_LOG_FORMAT=json` for JSON lines.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PINTU_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The checked settings of `path`.
pub fn settings(path: &Path) -> anyhow::Result<Settings> {
    Settings::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Settings, service key and the migrated database.
pub async fn open(path: &Path) -> anyhow::Result<(Settings, ServiceKey, Db)> {
    let settings = settings(path)?;
    let key = ServiceKey::load(&settings.security.secret_key_file)?;
    let db = Db::connect(&settings.database.url, settings.database.max_connections).await?;
    db.migrate().await.context("database migrations")?;
    Ok((settings, key, db))
}

/// The Unix user running a command, for the audit trail (`cli:<user>`).
pub fn unix_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{uid}"))
}
