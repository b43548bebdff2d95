//! `pintu-office audit verify` and `audit export`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use pintu_office::audit::{self, AuditActor, Entry};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the whole chain; exit 1 and name the first broken row if it was edited.
    Verify,
    /// Write the trail as JSON lines to stdout (recorded in the trail).
    Export {
        /// Only rows after this seq.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

pub async fn run(config: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let (_settings, key, db) = super::open(config).await?;
    match command {
        Command::Verify => {
            let verdict = audit::verify(&db, &key).await?;
            match verdict.problem {
                None => {
                    println!("audit trail intact: {} rows", verdict.rows);
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!("audit trail BROKEN: {problem}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Export { after } => {
            let mut next = after;
            let mut rows = 0usize;
            loop {
                let page = audit::list(&db, next, 1000).await?;
                let Some(last) = page.last() else { break };
                next = last.seq;
                for row in &page {
                    println!("{}", serde_json::to_string(row)?);
                }
                rows += page.len();
            }
            audit::record_alone(
                &db,
                &key,
                &AuditActor::cli(&super::unix_user()),
                Entry::new("audit.export", "audit")
                    .after(serde_json::json!({ "after": after, "rows": rows })),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
