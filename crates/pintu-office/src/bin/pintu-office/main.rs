//! `pintu-office`: the office service and its administration commands.
//!
//! `pintu-office serve` runs the service; the other commands work on the same database for the
//! administrator at the server's console (first administrator, lost passwords, audit check,
//! migrations). Each command is one file under `commands/`.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The IT office's service for Pintu: requests, approvals, cards, visits, audit, event archive.
#[derive(Debug, Parser)]
#[command(name = "pintu-office", version, about)]
struct Cli {
    /// The config file.
    #[arg(long, short, global = true, default_value = pintu_office::config::DEFAULT_CONFIG, env = "PINTU_OFFICE_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (HTTP API; applies pending migrations first).
    Serve(commands::serve::Args),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create the service's secret key file (once, at installation).
    Init,
    /// Check the configuration and print what it means.
    CheckConfig,
    /// Accounts: the first administrator, a lost password.
    #[command(subcommand)]
    Account(commands::account::Command),
    /// The door-event archive: import today's sled archive.
    #[command(subcommand)]
    Archive(commands::archive::Command),
    /// The audit trail: verify the chain, export it.
    #[command(subcommand)]
    Audit(commands::audit::Command),
    /// Requests: verify every decision's signature.
    #[command(subcommand)]
    Requests(commands::requests::Command),
    /// The register: import today's register.toml, export the database as TOML.
    #[command(subcommand)]
    Register(commands::register::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pintu-office: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(&cli.config, args).await,
            Command::Migrate => commands::migrate::run(&cli.config).await,
            Command::Init => commands::init::run(&cli.config),
            Command::CheckConfig => commands::check_config::run(&cli.config),
            Command::Account(cmd) => commands::account::run(&cli.config, cmd).await,
            Command::Audit(cmd) => commands::audit::run(&cli.config, cmd).await,
            Command::Archive(cmd) => commands::archive::run(&cli.config, cmd).await,
            Command::Register(cmd) => commands::register::run(&cli.config, cmd).await,
            Command::Requests(cmd) => commands::requests::run(&cli.config, cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pintu-office: {}", pintu::util::error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}
