//! `pintu-office requests verify`: checks every request's decision signature against the
//! statement rebuilt from the database now, so a decision edited or deleted with plain SQL is
//! found (the audit trail's own check is `audit verify`).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use pintu_office::audit::{self, AuditActor, Entry};
use pintu_office::requests;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every approval and rejection: each must carry its approver's signature over the
    /// statement its request's rows give now. Exit 1 and list every one that does not.
    Verify,
}

pub async fn run(config: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let (settings, key, db) = super::open(config).await?;
    match command {
        Command::Verify => {
            let verdict = requests::verify_all(&db, &settings.workflow)
                .await
                .map_err(|e| anyhow::anyhow!("reading the requests: {e}"))?;
            audit::record_alone(
                &db,
                &key,
                &AuditActor::cli(&super::unix_user()),
                Entry::new("request.verify_signatures", "requests").after(serde_json::json!({
                    "decisions": verdict.decisions,
                    "verified": verdict.verified,
                    "failures": verdict.failures.len(),
                })),
            )
            .await?;
            for f in &verdict.failures {
                println!("FAILED {} step {}: {}", f.reference, f.n, f.problem);
            }
            if verdict.failures.is_empty() {
                println!(
                    "request decisions intact: {} signed decisions verified",
                    verdict.verified
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "request decisions BROKEN: {} of {} decisions fail (and {} stray signatures)",
                    verdict.decisions - verdict.verified,
                    verdict.decisions,
                    verdict.failures.len() - (verdict.decisions - verdict.verified),
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}
