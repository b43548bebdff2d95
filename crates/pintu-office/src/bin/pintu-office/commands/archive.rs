//! `pintu-office archive import-sled DIR`: brings the events of today's sled archive
//! (`pintuctl archive`, `pintu-archive.service`) into the office database, once, when a site
//! moves to the service. Stop the old archive first: sled allows one process at a time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use pintu_office::audit::AuditActor;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a sled archive (idempotent: events already archived count as duplicates).
    ImportSled {
        /// The sled archive's folder (`pintuctl archive --db DIR`).
        dir: PathBuf,
        /// The doors' site id (default: `[site] id`, or the imported register's site).
        #[arg(long)]
        site: Option<String>,
    },
}

pub async fn run(config: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let (settings, key, db) = super::open(config).await?;
    match command {
        Command::ImportSled { dir, site } => {
            let site = match site.or(settings.site.id.clone()) {
                Some(site) => site,
                None => pintu_office::directory::register::registered_site(&db)
                    .await?
                    .context(
                        "the doors' site is unknown: give --site, set [site] id, or import the \
                         register first",
                    )?,
            };
            let report = pintu_office::archive::import_sled(
                &db,
                &key,
                &AuditActor::cli(&super::unix_user()),
                &site,
                &dir,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
