//! `pintuctl`: the operator's tool (office side) and the door's local control client.
//!
//! This file is the command tree and the exit: each command's arguments and what it does live
//! in `commands/` (one file per command or family, as cargo's `src/bin/cargo/commands`); the
//! logic they call is the library's (`pintu::office::{register, publish, enroll, commands}`).
//! Exit codes: 0 done (also when standard output is closed early, `| head`), 1 refused or
//! failed, 2 a command-line mistake (clap), 3 `archive --gaps` found gaps.

mod broker_args;
mod commands;
mod door_args;
mod output;
mod register_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::*;
use door_args::DoorDefaults;

/// Pintu operator tool: keys, signed lists, and the door's control socket.
#[derive(Parser, Debug)]
#[command(name = "pintuctl", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    door: DoorDefaults,
    #[command(subcommand)]
    command: Commands,
}

const EXAMPLES: &str = "Examples:
  pintuctl keygen --id kabid-2026 --dir keys/        # signing key pair (office only)
  pintuctl card-key --out keys/card.key              # the site's card key (office + doors)
  export PINTU_REGISTER=register.toml PINTU_OFFICE=office.toml   # or --register / --office
  pintuctl holder add --id 199001012015011001 --name \"Budi Santoso\" --role staff \\
      --valid-until 2027-01-01 --request-ref ND-2026/TIK/014 --approver \"Kabid TIK\"
  pintuctl card enroll --register register.toml --holder 199001012015011001   # desk reader
  pintuctl card enroll --door --reader entry --register register.toml --holder 199001012015011001
  pintuctl visit issue --visitor \"Andi (PT Vendor)\" --badge VB-01 --until \"2026-11-24 12:00\" \\
      --host 199001012015011001 --request-ref VIS-2026/118 --approver \"Kasi Infra\"
  pintuctl visit end V-2026-0001                                   # badge back in the pool
  pintuctl card revoke --holder 199001012015011001 --reason \"left the unit\" \\
      --request-ref ND-2026/TIK/020 --publish --key keys/kabid-2026.key
  pintuctl list holders; pintuctl show holder 199001012015011001 --json
  pintuctl publish --key keys/kabid-2026.key                       # sign + retained on MQTT
  pintuctl publish --key keys/kabid-2026.key --out /media/usb/list.signed
  pintuctl doors                                                   # every door's retained status
  pintuctl sign --register register.toml --key keys/kabid-2026.key --out list.signed
  pintuctl sign --key keys/budi-2026.key payload.json   # offline approval: writes payload.json.sig
  pintuctl verify list.signed --config /etc/pintu/pintu.toml
  pintuctl command unlock-once --reason \"vendor visit\" --site dc1 --door a --operator ani \\
      --key keys/kabid-2026.key --out cmd.json          # then: mosquitto_pub -q 1 -t pintu/dc1/a/commands -f cmd.json
  pintuctl tap 04A1B2C3D4E5F6                         # simulated reader
  pintuctl status
  pintuctl who                                        # who is inside now
  pintuctl events -n 50";

/// The commands, office ones first, then the door-local ones. Each one's help is its
/// arguments' doc comment.
#[derive(Subcommand, Debug)]
enum Commands {
    Keygen(keygen::KeygenArgs),
    CardKey(card_key::CardKeyArgs),
    Sign(sign::SignArgs),
    Verify(verify::VerifyArgs),
    #[command(name = "command")]
    SignCommand(command::CommandArgs),
    Hash(hash::HashArgs),
    /// Same as `card enroll` (kept for scripts).
    #[command(hide = true)]
    Enroll(enroll::EnrollArgs),
    Holder(holder::HolderArgs),
    Card(card::CardArgs),
    Badge(badge::BadgeArgs),
    Visit(visit::VisitArgs),
    List(list::ListArgs),
    Show(show::ShowArgs),
    Publish(publish::PublishCommandArgs),
    Doors(doors::DoorsArgs),
    Completions(completions::CompletionsArgs),
    Tap(tap::TapArgs),
    Input(input::InputArgs),
    Status(status::StatusArgs),
    Who(who::WhoArgs),
    Events(events::EventsArgs),
    Archive(broker_args::ArchiveArgs),
    Review(review::ReviewArgs),
    Report(report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            eprintln!("error: {}", non_utf8_arguments());
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(code) => code,
        // The reader went away (`pintuctl list holders | head -1`): nothing more to say.
        Err(e) if output::is_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pintuctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let door = &cli.door;
    match cli.command {
        Commands::Keygen(args) => keygen::exec(args),
        Commands::CardKey(args) => card_key::exec(args),
        Commands::Sign(args) => sign::exec(args),
        Commands::Verify(args) => verify::exec(args, door),
        Commands::SignCommand(args) => command::exec(args),
        Commands::Hash(args) => hash::exec(args),
        Commands::Enroll(args) => enroll::exec(args, door),
        Commands::Holder(args) => holder::exec(args),
        Commands::Card(args) => card::exec(args, door),
        Commands::Badge(args) => badge::exec(args),
        Commands::Visit(args) => visit::exec(args),
        Commands::List(args) => list::exec(args),
        Commands::Show(args) => show::exec(args),
        Commands::Publish(args) => publish::exec(args),
        Commands::Doors(args) => doors::exec(args),
        Commands::Completions(args) => completions::exec(args),
        Commands::Tap(args) => tap::exec(args, door),
        Commands::Input(args) => input::exec(args, door),
        Commands::Status(args) => status::exec(args, door),
        Commands::Who(args) => who::exec(args, door),
        Commands::Events(args) => events::exec(args, door),
        Commands::Archive(args) => archive::exec(args),
        Commands::Review(args) => review::exec(args),
        Commands::Report(args) => report::exec(args),
    }
}

/// Which arguments are not UTF-8. clap only says that one is; the operator needs to know which
/// (a name pasted from a document in another encoding, a file name from an old disk). Text
/// arguments must be UTF-8; file names may be any bytes, but one that is not is named here too
/// when clap refused the command line.
fn non_utf8_arguments() -> String {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let named: Vec<String> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, arg)| arg.to_str().is_none())
        .map(|(i, arg)| match args[i - 1].to_str() {
            Some(prev) if i > 1 => format!("argument {i} {arg:?} (after {prev})"),
            _ => format!("argument {i} {arg:?}"),
        })
        .collect();
    format!(
        "invalid UTF-8 in {}: text arguments must be UTF-8",
        if named.is_empty() {
            "an argument".to_string()
        } else {
            named.join(", ")
        }
    )
}
