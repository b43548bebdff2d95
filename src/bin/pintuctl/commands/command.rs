//! `pintuctl command …`: a signed command for doors (docs/commands.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jiff::Timestamp;

use pintu::core::command::Action;
use pintu::core::list::Role;
use pintu::office::commands::{self, CommandOrder};

use crate::register_args::parse_role;

/// Make a signed command for doors (docs/commands.md); publish it on the door's commands topic.
#[derive(Args, Debug)]
pub struct CommandArgs {
    #[command(subcommand)]
    action: CommandAction,
    /// Site id.
    #[arg(long, global = true)]
    site: Option<String>,
    /// Door id(s); "*" for every door of the site.
    #[arg(long = "door", global = true)]
    doors: Vec<String>,
    /// Who orders it (recorded in the door's event).
    #[arg(long, global = true)]
    operator: Option<String>,
    /// Signing key file(s); one signature each.
    #[arg(long = "key", global = true)]
    keys: Vec<PathBuf>,
    /// Validity window from now (doors accept at most their command_max_lifetime, default 10m).
    #[arg(long, global = true, default_value = "5m", value_parser = humantime::parse_duration)]
    valid: Duration,
    /// Write the signed command here (default: standard output).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
}

/// What a signed command tells a door to do.
#[derive(Subcommand, Debug)]
enum CommandAction {
    /// Release the lock once, as for a granted tap.
    UnlockOnce {
        /// Why (recorded in the event).
        #[arg(long)]
        reason: String,
    },
    /// Deny every tap except valid cards of one role, until released.
    Lockdown {
        /// The role still admitted: staff, escort or visitor.
        #[arg(long, value_parser = parse_role)]
        allow_role: Role,
    },
    /// End a lockdown.
    ReleaseLockdown,
    /// Capture the next tap for enrollment instead of deciding it.
    Capture {
        /// Only taps on this reader.
        #[arg(long)]
        reader: Option<String>,
    },
    /// Set the door's trusted-time floor to now (the signing time), down as well as up: the
    /// recovery when a wrong clock or list pushed it into the future. Sign with the list keys
    /// (k of [trust] threshold); name the door, not "*".
    ResetTimeFloor,
    /// Set the door's list rollback floor to VERSION (the next list must be above it): the
    /// recovery from a list signed with a stolen key at an absurd version. Sign with the list
    /// keys still trusted (k of [trust] threshold); name the door, not "*".
    ResetListFloor {
        /// The new floor: the version the door's next list must be above.
        #[arg(long)]
        version: u64,
    },
}

impl From<CommandAction> for Action {
    fn from(action: CommandAction) -> Action {
        match action {
            CommandAction::UnlockOnce { reason } => Action::UnlockOnce { reason },
            CommandAction::Lockdown { allow_role } => Action::Lockdown { allow_role },
            CommandAction::ReleaseLockdown => Action::ReleaseLockdown {},
            CommandAction::Capture { reader } => Action::Capture { reader },
            CommandAction::ResetTimeFloor => Action::ResetTimeFloor {},
            CommandAction::ResetListFloor { version } => Action::ResetListFloor { version },
        }
    }
}

pub fn exec(args: CommandArgs) -> Result<ExitCode> {
    let order = CommandOrder {
        action: args.action.into(),
        site: args.site,
        doors: args.doors,
        operator: args.operator,
        keys: args.keys,
        valid: args.valid,
    };
    let (payload, signed) = commands::sign_command(order, uuid::Uuid::new_v4(), Timestamp::now())?;
    match &args.out {
        Some(path) => {
            pintu::util::files::write_atomic(path, &signed, 0o600)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{}: {} for {} at {}, id {}, valid until {}",
                path.display(),
                payload.command.name(),
                payload.doors.join(","),
                payload.site,
                payload.id,
                payload.expires_at
            );
        }
        None => crate::output::write_text(&signed)?,
    }
    Ok(ExitCode::SUCCESS)
}
