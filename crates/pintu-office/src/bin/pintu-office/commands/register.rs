//! `pintu-office register import FILE` and `register export`: today's `register.toml` into the
//! database (once, when a site moves to the office service; again only to restore a backup) and
//! the database out as the same TOML (backup, git). Both are audited.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use pintu::office::register::LoadedRegister;
use pintu_office::audit::AuditActor;
use pintu_office::directory::{self, register};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a register.toml: adds what the database lacks, keeps what it has (reporting each
    /// difference), refuses a malformed file whole. Then marks the file `imported_into`, so
    /// pintuctl no longer writes it.
    Import {
        /// The register file.
        file: PathBuf,
        /// Do not write the `imported_into` marker into the file.
        #[arg(long)]
        no_mark: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the register as TOML (raw card UIDs included: keep it like the old register).
    Export {
        /// Write to this file (mode 0600) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn run(config: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let (settings, key, db) = super::open(config).await?;
    let actor = AuditActor::cli(&super::unix_user());
    match command {
        Command::Import {
            file,
            no_mark,
            json,
        } => {
            let card_key = directory::load_card_key(settings.site.card_key_file.as_deref())?;
            let reg = LoadedRegister::load(&file)?;
            let report = register::import(&db, &key, &card_key, &actor, &reg).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("imported {} into site {}:", file.display(), report.site);
                for (what, c) in [
                    ("doors", report.doors),
                    ("holders", report.holders),
                    ("cards", report.cards),
                    ("badges", report.badges),
                    ("visits", report.visits),
                    ("revocations", report.revocations),
                ] {
                    println!(
                        "  {what:<12} {} added, {} already there, {} skipped",
                        c.added, c.unchanged, c.skipped
                    );
                }
                for why in &report.skipped {
                    println!("  skipped: {why}");
                }
            }
            if !no_mark {
                let marked =
                    register::mark_file(&file, &reg.text, &report.site).with_context(|| {
                        format!(
                            "the import is done, but {} could not be marked: add the line \
                             imported_into = {:?} at its top by hand",
                            file.display(),
                            register::marker(&report.site)
                        )
                    })?;
                if marked {
                    eprintln!(
                        "{} is marked imported_into: pintuctl only reads it from now on",
                        file.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { output } => {
            let text = register::export(&db, &key, &actor).await?;
            match output {
                None => print!("{text}"),
                Some(path) => {
                    pintu::util::files::write_atomic(&path, text.as_bytes(), 0o600)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
