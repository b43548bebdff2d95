//! `pintu-office account create-admin` (the first administrator) and `account reset-password`
//! (the documented recovery for a lost password: whoever has root on the server may set a new
//! one; the account's sessions end, the trail records it).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use pintu_office::audit::AuditActor;
use pintu_office::auth::accounts::{self, NewAccount};
use pintu_office::auth::Role;
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an administrator account (the first one, or another).
    CreateAdmin {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Shown name.
        #[arg(long)]
        name: String,
        /// NIP (18 digits).
        #[arg(long)]
        nip: Option<String>,
        /// Read the password from this file's first line instead of asking (for scripts).
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
    },
    /// Set a new password for an account (lost password); ends its sessions.
    ResetPassword {
        /// Username or NIP.
        login: String,
        /// Read the password from this file's first line instead of asking.
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
    },
}

fn read_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    match file {
        Some(path) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("password file {}", path.display()))?,
            );
            Ok(Zeroizing::new(
                text.lines().next().unwrap_or_default().to_string(),
            ))
        }
        None => {
            let first = Zeroizing::new(rpassword::prompt_password("New password: ")?);
            let again = Zeroizing::new(rpassword::prompt_password("Again: ")?);
            anyhow::ensure!(*first == *again, "the two passwords differ");
            Ok(first)
        }
    }
}

pub async fn run(config: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let (_settings, key, db) = super::open(config).await?;
    let by = AuditActor::cli(&super::unix_user());
    match command {
        Command::CreateAdmin {
            username,
            name,
            nip,
            password_file,
        } => {
            let password = read_password(password_file.as_deref())?;
            let account = accounts::create(
                &db,
                &key,
                &by,
                NewAccount {
                    username,
                    nip,
                    display_name: name,
                    password: password.to_string(),
                    roles: [Role::Administrator].into(),
                },
            )
            .await?;
            println!(
                "created administrator {} ({}). Log in and set up TOTP at once: an \
                 administrator needs it.",
                account.username, account.id
            );
        }
        Command::ResetPassword {
            login,
            password_file,
        } => {
            let creds = accounts::credentials(&db, &login)
                .await?
                .with_context(|| format!("no account with username or NIP {login:?}"))?;
            let password = read_password(password_file.as_deref())?;
            accounts::set_password(&db, &key, &by, &creds.id, &password).await?;
            println!(
                "new password set for {}; the account's sessions ended and its lockout is cleared",
                creds.username
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
