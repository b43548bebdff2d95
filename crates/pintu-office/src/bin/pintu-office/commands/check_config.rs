//! `pintu-office check-config`: checks the config and says what it means.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let s = super::settings(config)?;
    let scheme = if s.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("{}: ok", config.display());
    println!(
        "  site: {} (lists need {} signature(s))",
        s.site.name, s.site.threshold
    );
    println!("  listen: {scheme}://{}", s.server.listen);
    println!("  database: {}", pintu_office::db::redact(&s.database.url));
    match &s.mqtt {
        Some(m) if m.host.is_some() => {
            println!("  broker: {}", m.host.as_deref().unwrap_or_default())
        }
        _ => println!("  broker: none (lists are exported as files)"),
    }
    Ok(ExitCode::SUCCESS)
}
