//! `pintu-office init`: creates the service's secret key file named by the config (mode 0600),
//! once. It never replaces an existing key: every sealed card UID and the audit chain depend on
//! it.

use std::path::Path;
use std::process::ExitCode;

use pintu_office::secret::ServiceKey;

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let settings = super::settings(config)?;
    let path = &settings.security.secret_key_file;
    ServiceKey::create(path)?;
    println!(
        "created the service key {} (mode 0600). Back it up with the database: without it, \
         sealed card UIDs cannot be read and the audit trail cannot be verified.",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
