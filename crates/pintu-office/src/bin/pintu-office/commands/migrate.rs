//! `pintu-office migrate`: applies pending migrations (serve does it too, at start).

use std::path::Path;
use std::process::ExitCode;

use pintu_office::db::Db;

pub async fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let settings = super::settings(config)?;
    let db = Db::connect(&settings.database.url, 1).await?;
    db.migrate().await?;
    let applied = pintu_office::db::MIGRATOR.iter().count();
    println!(
        "database {} is at migration {applied} ({})",
        pintu_office::db::redact(&settings.database.url),
        db.backend().as_str()
    );
    db.close().await;
    Ok(ExitCode::SUCCESS)
}
