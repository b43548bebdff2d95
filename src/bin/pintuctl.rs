//! `pintuctl`: the operator's tool (office side) and the door's local control client.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use pintu::core::card::Uid;
use pintu::core::list::{self, Role, TrustPolicy, TrustedKey};
use pintu::door::config::{self, Config};
use pintu::door::control::{self, Reply, Request};
use pintu::door::hw::{pcsc, DoorInput};
use pintu::office::client::{self, OfficeMqtt, OfficeSettings};
use pintu::office::keys;
use pintu::office::register::{
    Enrolled, HolderEdit, LoadedRegister, NewHolder, NewVisit, RevokeInfo, RevokeTarget,
    RevokedCard,
};

/// Pintu operator tool: keys, signed lists, and the door's control socket.
#[derive(Parser, Debug)]
#[command(name = "pintuctl", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Door control socket (default: the one named by --config).
    #[arg(long, global = true, env = "PINTU_SOCKET")]
    socket: Option<PathBuf>,
    /// Door configuration file, used to find the control socket and the trusted keys.
    #[arg(
        long,
        global = true,
        env = "PINTU_CONFIG",
        default_value = "/etc/pintu/pintu.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
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
  pintuctl verify list.signed --config /etc/pintu/pintu.toml
  pintuctl command unlock-once --reason \"vendor visit\" --site dc1 --door a --operator ani \\
      --key keys/kabid-2026.key --out cmd.json          # then: mosquitto_pub -q 1 -t pintu/dc1/a/commands -f cmd.json
  pintuctl tap 04A1B2C3D4E5F6                         # simulated reader
  pintuctl status
  pintuctl who                                        # who is inside now
  pintuctl events -n 50";

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

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an ed25519 signing key pair: ID.key (secret, 0600) and ID.pub.
    Keygen {
        /// Key id, named by signatures and by doors' [[trust.keys]].
        #[arg(long)]
        id: String,
        /// Directory for the key files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Create the site's card key (HMAC key for card UIDs; 0600).
    CardKey {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign the register into a list: bumps the register's version, writes the signed list.
    Sign {
        /// Register file.
        #[arg(long)]
        register: PathBuf,
        /// Signing key file(s); one signature each.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Output signed list.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a signed list: say exactly what is wrong, or print its summary.
    Verify {
        /// Signed list file.
        file: PathBuf,
        /// Trust these public key files instead of the door config's keys.
        #[arg(long = "pubkey")]
        pubkeys: Vec<PathBuf>,
        /// Signatures required (with --pubkey).
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Check the list is newer than this version, as a door holding it would.
        #[arg(long)]
        current_version: Option<u64>,
    },
    /// Make a signed command for doors (docs/commands.md); publish it on the door's commands topic.
    #[command(name = "command")]
    #[allow(clippy::enum_variant_names)]
    SignCommand {
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
    },
    /// Print a card UID's keyed hash (as lists carry it) and its masked form.
    Hash {
        /// Card UID in hex.
        uid: String,
        /// Card key file.
        #[arg(long)]
        card_key: PathBuf,
    },
    /// Same as `card enroll` (kept for scripts).
    #[command(hide = true)]
    Enroll(EnrollArgs),
    /// Cardholders in the register: add, edit, remove.
    #[command(after_help = HOLDER_EXAMPLES)]
    Holder {
        #[command(subcommand)]
        action: HolderAction,
    },
    /// Cards: enroll one for a holder (desk reader or door capture), revoke one or all of a
    /// holder's.
    #[command(after_help = CARD_EXAMPLES)]
    Card {
        #[command(subcommand)]
        action: CardAction,
    },
    /// The visitor-badge pool: add or remove badges.
    #[command(after_help = BADGE_EXAMPLES)]
    Badge {
        #[command(subcommand)]
        action: BadgeAction,
    },
    /// Visits: issue a pool badge for an approved visit, end it (badge back in the pool).
    #[command(after_help = VISIT_EXAMPLES)]
    Visit {
        #[command(subcommand)]
        action: VisitAction,
    },
    /// List the register's holders, badges, visits or revoked cards (a table, or --json).
    List {
        /// What to list.
        what: ListWhat,
        #[command(flatten)]
        reg: RegisterPath,
        /// Visits: ended ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one item of the register in full.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Sign the register and deliver the list: retained on the site's MQTT list topic, and/or
    /// written to --out (e.g. a USB stick for the door's inbox).
    #[command(after_help = PUBLISH_EXAMPLES)]
    Publish {
        #[command(flatten)]
        reg: RegisterPath,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Every door's retained status from MQTT: online, list version, outbox, lock, occupancy.
    #[command(
        after_help = "Examples:\n  pintuctl doors --broker broker.dc1.example --register register.toml\n  pintuctl doors --office office.toml --site diskominfo --json"
    )]
    Doors {
        /// Site id (default: the register's site).
        #[arg(long)]
        site: Option<String>,
        /// Register, for the site id.
        #[arg(long, env = "PINTU_REGISTER", default_value = "register.toml")]
        register: PathBuf,
        #[command(flatten)]
        mqtt: MqttArgs,
        /// How long to collect retained status after subscribing.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        wait: Duration,
        /// Print JSON (the status messages as the doors published them).
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Present a card to a simulated reader on the door.
    Tap {
        /// Card UID in hex.
        uid: String,
        /// Reader name (default: the first entry reader).
        #[arg(long)]
        reader: Option<String>,
        /// Print the reply as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a simulated door input.
    Input {
        /// door-opened, door-closed or exit-button.
        #[arg(value_parser = parse_input)]
        input: DoorInput,
    },
    /// Show the door's status.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Who is inside the room now (the door's presence), in order of entry.
    Who {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the door's recent events.
    Events {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Office service: archive every door's events from the broker (persistent session, stored
    /// before acknowledged, de-duplicated by door and seq); --gaps and --stats read an archive.
    Archive(ArchiveArgs),
    /// The periodic access review: every holder, card and badge, last used, and flags.
    Review(ReviewArgs),
    /// The access report for a period (visits, entries and exits, denials, alarms) as CSV or
    /// printable HTML.
    Report(ReportArgs),
}

/// `card enroll` (and the older `enroll`).
#[derive(Args, Debug)]
struct EnrollArgs {
    /// Register to add the card to.
    #[arg(long, requires = "holder")]
    register: Option<PathBuf>,
    /// Holder id to add the card to (created when --name and the rest are given).
    #[arg(long, requires = "register")]
    holder: Option<String>,
    /// New holder: display name (with --role, --valid-until, --request-ref, --approver).
    #[arg(long)]
    name: Option<String>,
    /// New holder: organisational unit.
    #[arg(long)]
    unit: Option<String>,
    /// New holder: staff, escort or visitor.
    #[arg(long, value_parser = parse_role)]
    role: Option<Role>,
    /// New holder: start of access (default today), e.g. 2026-01-05 or 2026-01-05T08:00:00.
    #[arg(long)]
    valid_from: Option<String>,
    /// New holder: end of access (exclusive), e.g. 2027-01-01.
    #[arg(long)]
    valid_until: Option<String>,
    /// New holder: reference of the approved access request.
    #[arg(long)]
    request_ref: Option<String>,
    /// New holder: who approved the request.
    #[arg(long)]
    approver: Option<String>,
    /// Desk reader: PC/SC reader-name pattern (case-insensitive substring); default any.
    #[arg(long, conflicts_with = "door")]
    pcsc_reader: Option<String>,
    /// Capture the next tap at the door (through its control socket) instead; the tap is
    /// recorded as `card.captured` and does not open the door.
    #[arg(long)]
    door: bool,
    /// With --door: only a tap on this reader (default any of the door's readers).
    #[arg(long, requires = "door")]
    reader: Option<String>,
    /// How long to wait for the card.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "staff" => Ok(Role::Staff),
        "escort" => Ok(Role::Escort),
        "visitor" => Ok(Role::Visitor),
        _ => Err("expected staff, escort or visitor".into()),
    }
}

fn parse_input(s: &str) -> Result<DoorInput, String> {
    match s {
        "door-opened" | "open" => Ok(DoorInput::DoorOpened),
        "door-closed" | "close" => Ok(DoorInput::DoorClosed),
        "exit-button" | "rex" => Ok(DoorInput::ExitButton),
        _ => Err("expected door-opened, door-closed or exit-button".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pintuctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let target = Target {
        socket: cli.socket,
        config: cli.config.clone(),
    };
    match cli.command {
        Command::Keygen { id, dir } => {
            let (secret, public, key) = keys::keygen(&dir, &id)?;
            println!(
                "secret key: {} (mode 0600; keep it at the office, never on a door)",
                secret.display()
            );
            println!("public key: {}", public.display());
            println!(
                "\nAdd to each door's config:\n\n[[trust.keys]]\nid = \"{}\"\npublic_key = \"{}\"",
                key.key_id, key.public_key
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::CardKey { out } => {
            keys::card_keygen(&out)?;
            println!("card key: {} (mode 0600; copy it to each door as trust.card_key_file, mode 0640 root:pintu)", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign {
            register,
            keys: key_paths,
            out,
        } => sign(&register, &key_paths, &out),
        Command::Verify {
            file,
            pubkeys,
            threshold,
            current_version,
        } => verify(&file, &cli.config, &pubkeys, threshold, current_version),
        Command::SignCommand {
            action,
            site,
            doors,
            operator,
            keys: key_paths,
            valid,
            out,
        } => sign_command(
            action,
            site,
            doors,
            operator,
            &key_paths,
            valid,
            out.as_deref(),
        ),
        Command::Hash { uid, card_key } => {
            let uid: Uid = uid.parse().context("card UID")?;
            let key = keys::load_card_key(&card_key)?;
            let hash = key.hash(&uid);
            println!("{}  {}", hash.to_hex(), hash.masked());
            Ok(ExitCode::SUCCESS)
        }
        Command::Enroll(args) => enroll_args(&target, args),
        Command::Holder { action } => holder_command(action),
        Command::Card { action } => card_command(&target, action),
        Command::Badge { action } => badge_command(action),
        Command::Visit { action } => visit_command(action),
        Command::List {
            what,
            reg,
            all,
            json,
        } => list_command(what, &reg.register, all, json),
        Command::Show { what } => show_command(what),
        Command::Publish { reg, publish } => {
            let mut register = LoadedRegister::load(&reg.register)?;
            publish_register(&mut register, &publish)
        }
        Command::Doors {
            site,
            register,
            mqtt,
            wait,
            json,
        } => doors_command(site, &register, &mqtt, wait, json),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "pintuctl",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tap { uid, reader, json } => {
            let reply = ask(&target, &Request::Tap { uid, reader })?;
            let Reply::Tap(t) = reply else {
                return unexpected(reply);
            };
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                let who = t.holder.as_deref().unwrap_or("unknown holder");
                match &t.reason {
                    None if t.decision == "captured" => println!(
                        "{}: CAPTURED {} ({}) for enrollment, not decided, event #{}",
                        t.reader,
                        t.card,
                        who,
                        seq(t.seq)
                    ),
                    None => println!(
                        "{}: GRANT  {} ({}) in {} µs, event #{}",
                        t.reader,
                        t.card,
                        who,
                        t.micros,
                        seq(t.seq)
                    ),
                    Some(r) => println!(
                        "{}: DENY   {} ({}): {r}, in {} µs, event #{}",
                        t.reader,
                        t.card,
                        who,
                        t.micros,
                        seq(t.seq)
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Input { input } => {
            let reply = ask(&target, &Request::Input { input })?;
            let Reply::Input { input } = reply else {
                return unexpected(reply);
            };
            println!("input {input:?} sent");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let reply = ask(&target, &Request::Status)?;
            let Reply::Status(s) = reply else {
                return unexpected(reply);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("site {}  door {}  pintud {}", s.site, s.door, s.version);
            println!("clock      {}", s.now);
            match &s.list {
                Some(l) => println!(
                    "list       version {} ({} entries), expires {}{}, signed by {}",
                    l.version,
                    l.entries,
                    l.expires_at,
                    if l.expired {
                        " — EXPIRED: taps are denied"
                    } else {
                        ""
                    },
                    l.signed_by.join(", ")
                ),
                None => println!(
                    "list       none: every tap is denied until a signed list above version {} arrives",
                    s.highest_list_version
                ),
            }
            if let Some(c) = &s.clock {
                println!(
                    "trust      clock {}{}, NTP {}",
                    if c.trusted {
                        "trusted"
                    } else {
                        "UNTRUSTED (below the trusted-time floor): decisions use "
                    },
                    if c.trusted {
                        String::new()
                    } else {
                        c.effective.to_string()
                    },
                    c.ntp
                );
            }
            println!(
                "lock       {:?}{}",
                s.lock,
                s.lockdown
                    .as_deref()
                    .map(|r| format!(" — LOCKDOWN: only {r} admitted"))
                    .unwrap_or_default()
            );
            println!(
                "inside     {} ({} visitor(s)); `pintuctl who` lists them",
                s.occupancy, s.visitors_inside
            );
            println!("outbox     {} event(s) waiting", s.outbox_depth);
            if s.set_aside > 0 {
                println!(
                    "outbox     ALARM: {} event(s) set aside, not deliverable (see `event.set_aside` events)",
                    s.set_aside
                );
            }
            if let Some(why) = &s.delivery_refused {
                println!("outbox     ALARM: the broker refuses the door's events: {why}");
            }
            for r in &s.readers {
                let since = match (&r.since, &r.detail) {
                    (Some(at), Some(why)) => format!(" since {at}: {}", shown(why)),
                    _ => String::new(),
                };
                println!(
                    "reader     {} ({:?}, {}): {}{since}",
                    shown(&r.name),
                    r.role,
                    r.backend,
                    r.state
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Who { json } => {
            let reply = ask(&target, &Request::Who)?;
            let Reply::Who { occupants } = reply else {
                return unexpected(reply);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&occupants)?);
                return Ok(ExitCode::SUCCESS);
            }
            if occupants.is_empty() {
                println!("nobody inside");
            }
            for o in &occupants {
                let visit = match (&o.visit, &o.escort) {
                    (Some(v), Some(e)) => format!("  visit {v}, escorted by {e}"),
                    (Some(v), None) => format!("  visit {v}"),
                    _ => String::new(),
                };
                println!(
                    "{}  {:<8} {} ({}), card {}{}",
                    o.entered_at, o.role, o.name, o.holder, o.card, visit
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive(args) => archive(args),
        Command::Review(args) => review(args),
        Command::Report(args) => report(args),
        Command::Events { limit, json } => {
            let reply = ask(&target, &Request::Events { limit: Some(limit) })?;
            let Reply::Events { events } = reply else {
                return unexpected(reply);
            };
            for e in events {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    // The fields carry text from outside (file names, reader names, key ids):
                    // escaped, so none can drive the terminal or forge a line.
                    println!(
                        "#{:<6} {}  {:<16} {} {} {} {}",
                        e.seq,
                        e.time,
                        e.kind.as_str(),
                        shown(e.reader.as_deref().unwrap_or("")),
                        shown(e.card.as_deref().unwrap_or("")),
                        shown(e.holder.as_deref().unwrap_or("")),
                        shown(
                            &[e.reason.as_deref(), e.detail.as_deref()]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(": ")
                        )
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Text that came from outside (an event's fields), printed: control and invisible formatting
/// characters shown as `\u{..}` escapes, and cut at [`TEXT_PRINT_MAX`] characters.
fn shown(text: &str) -> String {
    pintu::core::text::bounded(text, TEXT_PRINT_MAX)
}

/// Longest outside text printed in one field (an event's detail is at most 1,024 characters).
const TEXT_PRINT_MAX: usize = 2048;

fn seq(s: Option<u64>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
}

fn unexpected(reply: Reply) -> Result<ExitCode> {
    match reply {
        Reply::Error { message } => bail!("the door refused: {message}"),
        other => bail!("unexpected reply from the door: {other:?}"),
    }
}

/// Which door's control socket to talk to.
struct Target {
    socket: Option<PathBuf>,
    config: PathBuf,
}

fn ask(target: &Target, req: &Request) -> Result<Reply> {
    ask_within(target, req, Duration::from_secs(10))
}

fn ask_within(target: &Target, req: &Request, timeout: Duration) -> Result<Reply> {
    let socket = match &target.socket {
        Some(s) => s.clone(),
        None => config::socket_path_from_file(&target.config)
            .with_context(|| "cannot find the control socket: pass --socket or --config")?,
    };
    Ok(control::request(&socket, req, timeout)?)
}

/// Where `enroll` reads the card.
enum CardFrom {
    /// A PC/SC reader on this computer, by name pattern.
    Desk { pattern: Option<String> },
    /// The next tap at the door, through its control socket.
    Door { reader: Option<String> },
}

/// The new holder described by `enroll`'s options, if any are given (then all required ones must
/// be).
fn new_holder(
    name: Option<String>,
    unit: Option<String>,
    role: Option<Role>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    request_ref: Option<String>,
    approver: Option<String>,
) -> Result<Option<NewHolder>> {
    if name.is_none()
        && unit.is_none()
        && role.is_none()
        && valid_from.is_none()
        && valid_until.is_none()
        && request_ref.is_none()
        && approver.is_none()
    {
        return Ok(None);
    }
    let missing: Vec<&str> = [
        ("--name", name.is_none()),
        ("--role", role.is_none()),
        ("--valid-until", valid_until.is_none()),
        ("--request-ref", request_ref.is_none()),
        ("--approver", approver.is_none()),
    ]
    .into_iter()
    .filter_map(|(flag, absent)| absent.then_some(flag))
    .collect();
    match (name, role, valid_until, request_ref, approver) {
        (Some(name), Some(role), Some(valid_until), Some(request_ref), Some(approver)) => {
            Ok(Some(NewHolder {
                name,
                unit,
                role,
                valid_from,
                valid_until,
                request_ref,
                approver,
            }))
        }
        _ => bail!(
            "a new holder needs --name, --role, --valid-until, --request-ref and --approver (missing: {})",
            missing.join(", ")
        ),
    }
}

fn enroll(
    target: &Target,
    into: Option<(&Path, &str)>,
    new: Option<NewHolder>,
    source: CardFrom,
    timeout: Duration,
) -> Result<ExitCode> {
    // Everything that can be checked is checked before anyone is asked to present a card.
    let mut reg = match into {
        Some((path, holder)) => {
            let reg = LoadedRegister::load(path)?;
            let exists = reg.register.holders.iter().any(|h| h.id == holder);
            match (exists, &new) {
                (false, None) => bail!(
                    "{}: no holder {holder:?}: give --name, --role, --valid-until, --request-ref and --approver to add one",
                    path.display()
                ),
                (true, Some(_)) => bail!(
                    "{}: holder {holder:?} already exists: --name, --role and the other new-holder options are only for a new holder",
                    path.display()
                ),
                _ => {}
            }
            let card_key = keys::load_card_key(&reg.card_key_path())?;
            Some((reg, holder, card_key))
        }
        None if new.is_some() => {
            bail!("--name and the other new-holder options need --register and --holder")
        }
        None => None,
    };

    let uid: Uid =
        match source {
            CardFrom::Desk { pattern } => {
                let tap = pcsc::read_next_card(pattern.as_deref(), timeout, |readers| {
                    eprintln!(
                        "Present the card on {} (waiting up to {})…",
                        readers.join(", "),
                        humantime::format_duration(timeout)
                    );
                })
                .context("reading the card on the desk reader")?;
                eprintln!("card read on {}", tap.pcsc_reader);
                tap.uid
            }
            CardFrom::Door { reader } => {
                eprintln!(
                "Tap the card on the door's {} (waiting up to {}; the door stays locked for it)…",
                reader.as_deref().map_or("readers".to_string(), |r| format!("reader {r:?}")),
                humantime::format_duration(timeout)
            );
                let req = Request::Capture {
                    timeout_ms: Some(timeout.as_millis().try_into().unwrap_or(u64::MAX)),
                    reader,
                };
                let reply = ask_within(target, &req, timeout + Duration::from_secs(10))?;
                let Reply::Captured(c) = reply else {
                    return unexpected(reply);
                };
                eprintln!(
                    "card captured on door reader {} (event #{}{})",
                    c.reader,
                    seq(c.seq),
                    c.holder
                        .as_deref()
                        .map(|h| format!("; the door's list has it for {h}"))
                        .unwrap_or_default()
                );
                c.uid.parse().context("the door sent a bad UID")?
            }
        };

    let Some((reg, holder, card_key)) = reg.as_mut() else {
        println!("{}", uid.to_hex());
        return Ok(ExitCode::SUCCESS);
    };
    let masked = card_key.hash(&uid).masked();
    let change = reg.enroll(holder, &uid, new.as_ref())?;
    if change == Enrolled::AlreadyEnrolled {
        println!(
            "{}: holder {holder} already has card {} ({masked}): nothing changed",
            reg.path.display(),
            uid.to_hex()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // The whole register must still sign (dates, schedules, duplicates) before it is written.
    reg.build_payload(card_key, reg.register.list.version + 1, Timestamp::now())?;
    reg.save()?;
    let h = reg
        .register
        .holders
        .iter()
        .find(|h| h.id == *holder)
        .context("the enrolled holder is missing from the saved register")?;
    match change {
        Enrolled::HolderCreated => println!(
            "{}: new holder {} ({}, {}), valid {} until {}, request {} approved by {}, with card {} ({masked})",
            reg.path.display(),
            h.id,
            h.name,
            h.role.as_str(),
            h.valid_from.0,
            h.valid_until.0,
            h.request_ref,
            h.approver,
            uid.to_hex()
        ),
        _ => println!(
            "{}: card {} ({masked}) added to holder {} ({}, {}), who now has {} card(s)",
            reg.path.display(),
            uid.to_hex(),
            h.id,
            h.name,
            h.role.as_str(),
            h.cards.len()
        ),
    }
    println!("Sign and deliver a new list for the doors to know it (pintuctl sign --register …).");
    Ok(ExitCode::SUCCESS)
}

fn sign_command(
    action: CommandAction,
    site: Option<String>,
    doors: Vec<String>,
    operator: Option<String>,
    key_paths: &[PathBuf],
    valid: Duration,
    out: Option<&Path>,
) -> Result<ExitCode> {
    use pintu::core::command::{self, Action, CommandPayload};
    let site = site.context("--site is required")?;
    let operator = operator.context("--operator is required (who orders the command)")?;
    if doors.is_empty() {
        bail!("--door is required (a door id, or \"*\" for every door of the site)");
    }
    if key_paths.is_empty() {
        bail!("--key is required (the signing key file)");
    }
    let signing_keys = key_paths
        .iter()
        .map(|p| keys::load_signing_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let now = Timestamp::now();
    let window = jiff::SignedDuration::try_from(valid).context("--valid")?;
    let payload = CommandPayload {
        format: command::COMMAND_PAYLOAD_FORMAT,
        site,
        doors,
        id: uuid::Uuid::new_v4(),
        issued_at: now,
        expires_at: now.checked_add(window).context("--valid is too long")?,
        operator,
        command: match action {
            CommandAction::UnlockOnce { reason } => Action::UnlockOnce { reason },
            CommandAction::Lockdown { allow_role } => Action::Lockdown { allow_role },
            CommandAction::ReleaseLockdown => Action::ReleaseLockdown {},
            CommandAction::Capture { reader } => Action::Capture { reader },
            CommandAction::ResetTimeFloor => Action::ResetTimeFloor {},
            CommandAction::ResetListFloor { version } => Action::ResetListFloor { version },
        },
    };
    // Doors refuse these for "*" and with a window over 10 minutes: say so here, not there.
    if payload.command.is_narrow() {
        if payload.doors.iter().any(|d| d == "*") {
            bail!(
                "{} must name each door (--door ID); \"*\" is refused by doors",
                payload.command.name()
            );
        }
        if valid > command::SHORT_COMMAND_MAX_LIFETIME {
            bail!(
                "{} may be valid for at most {}; --valid {} is refused by doors",
                payload.command.name(),
                humantime::format_duration(command::SHORT_COMMAND_MAX_LIFETIME),
                humantime::format_duration(valid)
            );
        }
    }
    let signed = command::sign(&payload, &signing_keys);
    match out {
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
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&signed)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(register: &Path, key_paths: &[PathBuf], out: &Path) -> Result<ExitCode> {
    let mut reg = LoadedRegister::load(register)?;
    let SignedList {
        version,
        payload,
        visits,
        bytes: signed,
        signers,
    } = sign_list(&reg, key_paths)?;
    // Bump first: a version number is never used for two different lists, even if writing the
    // output fails afterwards (a gap in versions is harmless; a reuse is rejected by doors).
    reg.set_version(version)?;
    pintu::util::files::write_atomic(out, &signed, 0o600)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: version {version}, {} entries, {} visit(s), site {}, doors {}, expires {}, signed by {}",
        out.display(),
        payload.entries.len(),
        visits.len(),
        payload.site,
        payload.doors.join(","),
        payload.expires_at,
        signers.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(
    file: &Path,
    config: &Path,
    pubkeys: &[PathBuf],
    threshold: usize,
    current: Option<u64>,
) -> Result<ExitCode> {
    let policy = if pubkeys.is_empty() {
        let cfg = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.trust
    } else {
        let keys = pubkeys
            .iter()
            .map(|p| keys::load_public_key(p).map(|(id, key)| TrustedKey { id, key }))
            .collect::<Result<Vec<_>, _>>()?;
        TrustPolicy {
            keys,
            threshold,
            site: None,
            door: None,
            max_bytes: 1 << 30,
        }
    };
    let bytes = pintu::util::files::read_capped(file, policy.max_bytes)
        .with_context(|| format!("{}", file.display()))?;
    let current = current.map(|version| list::Accepted {
        version,
        payload_digest: None,
    });
    match list::verify(&bytes, &policy, current, Some(Timestamp::now())) {
        Err(why) => {
            println!("{}: REJECTED ({}): {why}", file.display(), why.code());
            Ok(ExitCode::from(1))
        }
        Ok(v) => {
            let p = &v.payload;
            let count = |r: Role| p.entries.iter().filter(|e| e.role == r).count();
            println!("{}: OK", file.display());
            println!("  site        {}", p.site);
            println!("  doors       {}", p.doors.join(", "));
            println!("  version     {}", p.version);
            println!("  issued at   {}", p.issued_at);
            println!("  expires at  {}", p.expires_at);
            println!("  time zone   {}", p.time_zone);
            println!(
                "  entries     {} (staff {}, escort {}, visitor {})",
                p.entries.len(),
                count(Role::Staff),
                count(Role::Escort),
                count(Role::Visitor)
            );
            println!("  signed by   {}", v.meta.signed_by.join(", "));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn enroll_args(target: &Target, a: EnrollArgs) -> Result<ExitCode> {
    let new = new_holder(
        a.name,
        a.unit,
        a.role,
        a.valid_from,
        a.valid_until,
        a.request_ref,
        a.approver,
    )?;
    let source = if a.door {
        CardFrom::Door { reader: a.reader }
    } else {
        CardFrom::Desk {
            pattern: a.pcsc_reader,
        }
    };
    enroll(
        target,
        a.register.as_deref().zip(a.holder.as_deref()),
        new,
        source,
        a.timeout,
    )
}

// ---------------------------------------------------------------------------------------------
// The register: holders, cards, badges, visits, lists (docs/register.md, docs/operator.md)
// ---------------------------------------------------------------------------------------------

const HOLDER_EXAMPLES: &str = "Examples (the register is ./register.toml or $PINTU_REGISTER, else --register):
  pintuctl holder add --id 199001012015011001 --name \"Budi Santoso\" --unit \"Bidang TIK\" \\
      --role escort --valid-until 2027-01-01 --request-ref ND-2026/TIK/014 --approver \"Kabid TIK\"
  pintuctl holder edit 199001012015011001 --valid-until 2028-01-01 \\
      --request-ref ND-2027/TIK/003 --approver \"Kabid TIK\"
  pintuctl holder remove 199001012015011001 --reason \"moved to another office\" --request-ref ND-2026/TIK/031";

const CARD_EXAMPLES: &str = "Examples:
  pintuctl card enroll --register register.toml --holder 199001012015011001
  pintuctl card revoke --card 04A1B2C3D4E5F6 --reason \"card lost\" --request-ref HD-2026/118
  pintuctl card revoke --holder 199001012015011001 --reason \"left the unit\" \\
      --request-ref ND-2026/TIK/020 --publish --key keys/kabid-2026.key --office office.toml";

const BADGE_EXAMPLES: &str = "Examples:
  pintuctl badge add --id VB-01 --card 62E3086CED
  pintuctl badge add --id VB-02                       # read it on the desk reader
  pintuctl badge remove VB-02 --reason \"badge broken\" --request-ref HD-2026/120";

const VISIT_EXAMPLES: &str = "Examples:
  pintuctl visit issue --visitor \"Andi (PT Nusantara Data)\" --badge VB-01 \\
      --from \"2026-11-24 09:00\" --until \"2026-11-24 12:00\" --host 199001012015011001 \\
      --escort 198805052010011002 --request-ref VIS-2026/118 --approver \"Kasi Infra\"
  pintuctl publish --key keys/kabid-2026.key          # the door learns the visit
  pintuctl visit end V-2026-0001                      # badge back in the pool";

const PUBLISH_EXAMPLES: &str = "Examples:
  pintuctl publish --key keys/kabid-2026.key --office office.toml
  pintuctl publish --key keys/kabid-2026.key --broker 10.0.0.5 --mqtt-user office \\
      --mqtt-password-file /etc/pintu/office.password --mqtt-ca /etc/pintu/mqtt-ca.pem
  pintuctl publish --key keys/kabid-2026.key --out /media/usb/list.signed   # no MQTT";

/// `--register`, for the commands that read or edit it.
#[derive(Args, Debug, Clone)]
struct RegisterPath {
    /// Register file (docs/register.md).
    #[arg(long, env = "PINTU_REGISTER", default_value = "register.toml")]
    register: PathBuf,
}

/// Why a card is revoked, and on whose request.
#[derive(Args, Debug, Clone)]
struct RevokeWhy {
    /// Why (lost card, left the unit, end of contract, …).
    #[arg(long)]
    reason: String,
    /// Reference of the removal request.
    #[arg(long)]
    request_ref: String,
    /// Operator recording it (default: $PINTU_OPERATOR, else the login name).
    #[arg(long, env = "PINTU_OPERATOR")]
    by: Option<String>,
}

impl RevokeWhy {
    fn info(self) -> Result<RevokeInfo> {
        let by = match self.by {
            Some(by) => by,
            None => std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .context("give --by (who records the revocation)")?,
        };
        Ok(RevokeInfo {
            reason: self.reason,
            request_ref: self.request_ref,
            by,
            at: Timestamp::now(),
        })
    }
}

/// Where to reach the site broker: an office file and/or flags (flags win).
#[derive(Args, Debug, Clone, Default)]
struct MqttArgs {
    /// Office file with an [mqtt] table (broker, TLS, credentials); see docs/operator.md.
    #[arg(long, env = "PINTU_OFFICE")]
    office: Option<PathBuf>,
    /// MQTT broker host (overrides the office file).
    #[arg(long)]
    broker: Option<String>,
    /// MQTT broker port (default 1883, 8883 with --mqtt-ca).
    #[arg(long)]
    mqtt_port: Option<u16>,
    /// MQTT user name.
    #[arg(long)]
    mqtt_user: Option<String>,
    /// File holding the MQTT password (one line).
    #[arg(long)]
    mqtt_password_file: Option<PathBuf>,
    /// CA certificate of the broker (PEM): connect with TLS.
    #[arg(long)]
    mqtt_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "mqtt_key")]
    mqtt_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, requires = "mqtt_cert")]
    mqtt_key: Option<PathBuf>,
    /// MQTT client id (default pintuctl- and random hex).
    #[arg(long)]
    mqtt_client_id: Option<String>,
    /// First topic level (default pintu, as the doors').
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Bound on connecting and on each acknowledgement.
    #[arg(long, value_parser = humantime::parse_duration)]
    mqtt_timeout: Option<Duration>,
}

impl MqttArgs {
    /// The broker settings, or `None` when neither the office file nor --broker names one.
    fn resolve(&self) -> Result<Option<OfficeMqtt>> {
        let file = match &self.office {
            Some(path) => OfficeSettings::load(path)?,
            None => OfficeSettings::default(),
        };
        let flags = OfficeSettings {
            host: self.broker.clone(),
            port: self.mqtt_port,
            client_id: self.mqtt_client_id.clone(),
            topic_prefix: self.topic_prefix.clone(),
            username: self.mqtt_user.clone(),
            password_file: self.mqtt_password_file.clone(),
            ca_file: self.mqtt_ca.clone(),
            client_cert_file: self.mqtt_cert.clone(),
            client_key_file: self.mqtt_key.clone(),
            timeout: self.mqtt_timeout.map(config::HumanDuration),
            ..Default::default()
        };
        Ok(OfficeMqtt::resolve(file.overlay(flags))?)
    }
}

/// How a list is signed and delivered.
#[derive(Args, Debug, Clone, Default)]
struct PublishArgs {
    /// Signing key file(s); one signature each.
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
    /// Also write the signed list to this file (e.g. on a USB stick, for a door's inbox).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    mqtt: MqttArgs,
}

#[derive(Subcommand, Debug)]
enum HolderAction {
    /// Add a holder after an approved access request; give cards now (--card) or enroll them.
    Add {
        #[command(flatten)]
        reg: RegisterPath,
        /// Holder id (e.g. the NIP), unique.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Organisational unit.
        #[arg(long)]
        unit: Option<String>,
        /// staff, escort or visitor.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Start of access (default today), e.g. 2026-01-05 or "2026-01-05 08:00".
        #[arg(long)]
        valid_from: Option<String>,
        /// End of access (exclusive), e.g. 2027-01-01.
        #[arg(long)]
        valid_until: String,
        /// A door this holder may open (repeat; default every door of the list).
        #[arg(long = "door")]
        doors: Vec<String>,
        /// A card UID in hex (repeat), when known; otherwise `pintuctl card enroll`.
        #[arg(long = "card", value_parser = parse_uid)]
        cards: Vec<Uid>,
        /// Reference of the approved access request.
        #[arg(long)]
        request_ref: String,
        /// Who approved it.
        #[arg(long)]
        approver: String,
    },
    /// Change a holder. A change of role, validity or doors is a new grant: it needs
    /// --request-ref and --approver.
    Edit {
        #[command(flatten)]
        reg: RegisterPath,
        /// Holder id.
        id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// New unit.
        #[arg(long)]
        unit: Option<String>,
        /// New role.
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        /// New start of access.
        #[arg(long)]
        valid_from: Option<String>,
        /// New end of access (exclusive).
        #[arg(long)]
        valid_until: Option<String>,
        /// The doors this holder may open (repeat), replacing the current ones.
        #[arg(long = "door")]
        doors: Vec<String>,
        /// Every door of the list.
        #[arg(long, conflicts_with = "doors")]
        all_doors: bool,
        /// Reference of the request for this change.
        #[arg(long)]
        request_ref: Option<String>,
        /// Who approved this change.
        #[arg(long)]
        approver: Option<String>,
    },
    /// Remove a holder; each of their cards is recorded as revoked.
    Remove {
        #[command(flatten)]
        reg: RegisterPath,
        /// Holder id.
        id: String,
        #[command(flatten)]
        why: RevokeWhy,
    },
}

#[derive(Subcommand, Debug)]
enum CardAction {
    /// Enroll a card: read it on this computer's PC/SC reader (or, with --door, capture the
    /// next tap at the door) and add it to a holder in the register, keeping the file's
    /// comments. Without --register the UID is only printed. Sign and deliver a list afterwards.
    Enroll(EnrollArgs),
    /// Revoke a card (--card) or every card of a holder (--holder): the card leaves the holder
    /// (who stays, for the record) and is recorded in [[revoked]]. With --publish the new list
    /// is signed and delivered at once.
    Revoke {
        #[command(flatten)]
        reg: RegisterPath,
        /// The card's UID in hex (a holder's card or a pool badge).
        #[arg(long, value_parser = parse_uid, required_unless_present = "holder", conflicts_with = "holder")]
        card: Option<Uid>,
        /// Every card of this holder.
        #[arg(long)]
        holder: Option<String>,
        #[command(flatten)]
        why: RevokeWhy,
        /// Sign and deliver the new list now (needs --key, and a broker or --out).
        #[arg(long)]
        publish: bool,
        #[command(flatten)]
        delivery: PublishArgs,
    },
}

#[derive(Subcommand, Debug)]
enum BadgeAction {
    /// Add a visitor badge to the pool (the card from --card, or read on the desk reader).
    Add {
        #[command(flatten)]
        reg: RegisterPath,
        /// Label printed on the badge, e.g. VB-01.
        #[arg(long)]
        id: String,
        /// Its UID in hex (default: read it on the desk PC/SC reader).
        #[arg(long, value_parser = parse_uid)]
        card: Option<Uid>,
        /// Desk reader: PC/SC reader-name pattern.
        #[arg(long)]
        pcsc_reader: Option<String>,
        /// How long to wait for the card on the desk reader.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Take a badge out of the pool (lost, broken); recorded as revoked.
    Remove {
        #[command(flatten)]
        reg: RegisterPath,
        /// Badge id.
        id: String,
        #[command(flatten)]
        why: RevokeWhy,
    },
}

#[derive(Subcommand, Debug)]
enum VisitAction {
    /// Record an approved visit and hand out a badge from the pool for its window.
    Issue {
        #[command(flatten)]
        reg: RegisterPath,
        /// Visit id (default: the next V-YEAR-NNNN).
        #[arg(long)]
        id: Option<String>,
        /// Who visits: name and company (never a national ID number).
        #[arg(long)]
        visitor: String,
        /// Badge id from the pool, e.g. VB-01.
        #[arg(long)]
        badge: String,
        /// Start of the window (default now), e.g. "2026-11-24 09:00" (site time).
        #[arg(long)]
        from: Option<String>,
        /// End of the window, e.g. "2026-11-24 12:00".
        #[arg(long)]
        until: String,
        /// Holder id of the host.
        #[arg(long)]
        host: String,
        /// Holder id expected to escort (staff or escort).
        #[arg(long)]
        escort: Option<String>,
        /// Reference of the visit request.
        #[arg(long)]
        request_ref: String,
        /// Who approved it.
        #[arg(long)]
        approver: String,
    },
    /// End a visit: the badge is back in the pool.
    End {
        #[command(flatten)]
        reg: RegisterPath,
        /// Visit id.
        id: String,
    },
}

/// What `list` lists.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum ListWhat {
    /// Cardholders.
    Holders,
    /// The visitor-badge pool.
    Badges,
    /// Open visits (--all: ended ones too).
    Visits,
    /// Revoked cards.
    Revoked,
}

#[derive(Subcommand, Debug)]
enum ShowWhat {
    /// A holder: fields, cards, revocations, open visits they host or escort.
    Holder {
        /// Holder id.
        id: String,
        #[command(flatten)]
        reg: RegisterPath,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_uid(s: &str) -> Result<Uid, String> {
    s.parse::<Uid>().map_err(|e| e.to_string())
}

/// Checks the whole edited register and writes it (nothing is written on any error).
fn check_and_save(reg: &LoadedRegister) -> Result<()> {
    reg.check()?;
    reg.save()?;
    Ok(())
}

fn holder_command(action: HolderAction) -> Result<ExitCode> {
    match action {
        HolderAction::Add {
            reg,
            id,
            name,
            unit,
            role,
            valid_from,
            valid_until,
            doors,
            cards,
            request_ref,
            approver,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let new = NewHolder {
                name,
                unit,
                role,
                valid_from,
                valid_until,
                request_ref,
                approver,
            };
            let doors = (!doors.is_empty()).then_some(doors.as_slice());
            r.add_holder(&id, &new, &cards, doors)?;
            check_and_save(&r)?;
            let h = r
                .register
                .holders
                .last()
                .context("the new holder is missing")?;
            println!(
                "{}: added holder {} ({}, {}), valid {} until {}, doors {}, {} card(s), request {} approved by {}",
                r.path.display(),
                h.id,
                h.name,
                h.role.as_str(),
                h.valid_from,
                h.valid_until,
                h.doors.as_ref().map_or("all".into(), |d| d.join(",")),
                h.cards.len(),
                h.request_ref,
                h.approver
            );
            if h.cards.is_empty() {
                println!(
                    "Enroll a card: pintuctl card enroll --register {} --holder {}",
                    r.path.display(),
                    h.id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        HolderAction::Edit {
            reg,
            id,
            name,
            unit,
            role,
            valid_from,
            valid_until,
            doors,
            all_doors,
            request_ref,
            approver,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let edit = HolderEdit {
                name,
                unit,
                role,
                valid_from,
                valid_until,
                doors: if all_doors {
                    Some(None)
                } else if doors.is_empty() {
                    None
                } else {
                    Some(Some(doors))
                },
                request_ref,
                approver,
            };
            let changes = r.edit_holder(&id, &edit)?;
            if changes.is_empty() {
                println!("{}: holder {id}: nothing changed", r.path.display());
                return Ok(ExitCode::SUCCESS);
            }
            check_and_save(&r)?;
            println!("{}: holder {id}: {}", r.path.display(), changes.join("; "));
            Ok(ExitCode::SUCCESS)
        }
        HolderAction::Remove { reg, id, why } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let info = why.info()?;
            let cards = r.remove_holder(&id, &info)?;
            check_and_save(&r)?;
            println!(
                "{}: removed holder {id}; {} card(s) recorded as revoked{} ({}, request {})",
                r.path.display(),
                cards.len(),
                card_list(&cards),
                info.reason,
                info.request_ref
            );
            println!("Sign and deliver a new list for the doors to stop admitting them (pintuctl publish).");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn card_list(cards: &[RevokedCard]) -> String {
    if cards.is_empty() {
        return String::new();
    }
    format!(
        ": {}",
        cards
            .iter()
            .map(|c| c.card.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn card_command(target: &Target, action: CardAction) -> Result<ExitCode> {
    match action {
        CardAction::Enroll(args) => enroll_args(target, args),
        CardAction::Revoke {
            reg,
            card,
            holder,
            why,
            publish,
            delivery,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let info = why.info()?;
            let target = match (card, holder) {
                (Some(uid), None) => RevokeTarget::Card(uid),
                (None, Some(h)) => RevokeTarget::Holder(h),
                _ => bail!("give either --card or --holder"),
            };
            // Everything the delivery needs is checked before the register changes.
            let plan = if publish {
                Some(DeliveryPlan::prepare(&r, &delivery)?)
            } else {
                None
            };
            let cards = r.revoke(&target, &info)?;
            r.check()?;
            let owners: Vec<String> = cards
                .iter()
                .map(|c| {
                    format!(
                        "{} ({} {})",
                        c.card,
                        if c.badge { "badge" } else { "holder" },
                        c.owner
                    )
                })
                .collect();
            let what = format!(
                "revoked {} ({}, request {}, by {})",
                owners.join(", "),
                info.reason,
                info.request_ref,
                info.by
            );
            match plan {
                Some(plan) => {
                    let path = r.path.display().to_string();
                    plan.deliver(&mut r)?;
                    println!("{path}: {what}");
                }
                None => {
                    r.save()?;
                    println!("{}: {what}", r.path.display());
                    println!("Sign and deliver a new list for the doors to deny it (pintuctl publish, or --publish next time).");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn badge_command(action: BadgeAction) -> Result<ExitCode> {
    match action {
        BadgeAction::Add {
            reg,
            id,
            card,
            pcsc_reader,
            timeout,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            if r.register.badges.iter().any(|b| b.id == id) {
                bail!("{}: badge {id} is already in the pool", r.path.display());
            }
            let uid = match card {
                Some(uid) => uid,
                None => {
                    let tap = pcsc::read_next_card(pcsc_reader.as_deref(), timeout, |readers| {
                        eprintln!(
                            "Present badge {id} on {} (waiting up to {})…",
                            readers.join(", "),
                            humantime::format_duration(timeout)
                        );
                    })
                    .context("reading the badge on the desk reader")?;
                    tap.uid
                }
            };
            r.add_badge(&id, &uid)?;
            check_and_save(&r)?;
            println!(
                "{}: badge {id} (card {}) added to the pool, which now has {} badge(s)",
                r.path.display(),
                uid.to_hex(),
                r.register.badges.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        BadgeAction::Remove { reg, id, why } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let info = why.info()?;
            let card = r.remove_badge(&id, &info)?;
            check_and_save(&r)?;
            println!(
                "{}: badge {id} (card {}) removed from the pool and recorded as revoked ({}, request {})",
                r.path.display(),
                card.card,
                info.reason,
                info.request_ref
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn visit_command(action: VisitAction) -> Result<ExitCode> {
    match action {
        VisitAction::Issue {
            reg,
            id,
            visitor,
            badge,
            from,
            until,
            host,
            escort,
            request_ref,
            approver,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let now = Timestamp::now();
            let from = match from {
                Some(f) => f,
                None => r.local_time(now),
            };
            let visit = NewVisit {
                id,
                visitor,
                badge,
                from,
                until,
                host,
                escort,
                request_ref,
                approver,
            };
            let id = r.issue_visit(&visit, now)?;
            check_and_save(&r)?;
            println!(
                "{}: visit {id}: {} gets badge {} from {} until {}, host {}{}, request {} approved by {}",
                r.path.display(),
                visit.visitor,
                visit.badge,
                visit.from,
                visit.until,
                visit.host,
                visit
                    .escort
                    .as_deref()
                    .map(|e| format!(", escort {e}"))
                    .unwrap_or_default(),
                visit.request_ref,
                visit.approver
            );
            println!(
                "Sign and deliver a new list for the door to know the visit (pintuctl publish)."
            );
            Ok(ExitCode::SUCCESS)
        }
        VisitAction::End { reg, id } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            let v = r.end_visit(&id, Timestamp::now())?;
            check_and_save(&r)?;
            println!(
                "{}: visit {id} ({}) ended at {}; badge {} is back in the pool",
                r.path.display(),
                v.visitor,
                v.ended_at.as_ref().map_or("?", |e| e.0.as_str()),
                v.badge
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints rows as a table with a header, columns padded to their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn list_command(what: ListWhat, path: &Path, all: bool, json: bool) -> Result<ExitCode> {
    let r = LoadedRegister::load(path)?;
    let now = Timestamp::now();
    let reg = &r.register;
    match what {
        ListWhat::Holders => {
            if json {
                let items: Vec<serde_json::Value> = reg
                    .holders
                    .iter()
                    .map(|h| {
                        let mut v = serde_json::to_value(h)?;
                        v["state"] = r.holder_state(h, now).into();
                        Ok(v)
                    })
                    .collect::<Result<_, serde_json::Error>>()?;
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = reg
                .holders
                .iter()
                .map(|h| {
                    vec![
                        h.id.clone(),
                        h.name.clone(),
                        h.unit.clone(),
                        h.role.as_str().into(),
                        h.cards.len().to_string(),
                        h.valid_from.0.clone(),
                        h.valid_until.0.clone(),
                        r.holder_state(h, now).into(),
                        h.request_ref.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID", "NAME", "UNIT", "ROLE", "CARDS", "FROM", "UNTIL", "STATE", "REQUEST",
                ],
                &rows,
            );
        }
        ListWhat::Badges => {
            if json {
                let items: Vec<serde_json::Value> = reg
                    .badges
                    .iter()
                    .map(|b| {
                        serde_json::json!({
                            "id": b.id,
                            "card": b.card,
                            "visit": r.badge_in_use(&b.id).map(|v| v.id.clone()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = reg
                .badges
                .iter()
                .map(|b| {
                    let state = match r.badge_in_use(&b.id) {
                        Some(v) => {
                            format!("in use: visit {} ({}) until {}", v.id, v.visitor, v.until)
                        }
                        None => "in the pool".into(),
                    };
                    vec![b.id.clone(), b.card.clone(), state]
                })
                .collect();
            print_table(&["BADGE", "CARD", "STATE"], &rows);
        }
        ListWhat::Visits => {
            let visits: Vec<_> = reg.visits.iter().filter(|v| all || v.is_open()).collect();
            if json {
                let items: Vec<serde_json::Value> = visits
                    .iter()
                    .map(|v| {
                        let mut j = serde_json::to_value(v)?;
                        j["state"] = r.visit_state(v, now).into();
                        Ok(j)
                    })
                    .collect::<Result<_, serde_json::Error>>()?;
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = visits
                .iter()
                .map(|v| {
                    let state = match &v.ended_at {
                        Some(at) => format!("ended {at}"),
                        None => r.visit_state(v, now).into(),
                    };
                    vec![
                        v.id.clone(),
                        v.visitor.clone(),
                        v.badge.clone(),
                        v.host.clone(),
                        v.escort.clone().unwrap_or_default(),
                        v.from.0.clone(),
                        v.until.0.clone(),
                        state,
                    ]
                })
                .collect();
            print_table(
                &[
                    "VISIT", "VISITOR", "BADGE", "HOST", "ESCORT", "FROM", "UNTIL", "STATE",
                ],
                &rows,
            );
        }
        ListWhat::Revoked => {
            if json {
                println!("{}", serde_json::to_string_pretty(&reg.revoked)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = reg
                .revoked
                .iter()
                .map(|x| {
                    vec![
                        x.at.0.clone(),
                        x.holder
                            .clone()
                            .or_else(|| x.badge.as_ref().map(|b| format!("badge {b}")))
                            .unwrap_or_default(),
                        x.card.clone(),
                        x.reason.clone(),
                        x.request_ref.clone(),
                        x.by.clone(),
                    ]
                })
                .collect();
            print_table(&["AT", "HOLDER", "CARD", "REASON", "REQUEST", "BY"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_command(what: ShowWhat) -> Result<ExitCode> {
    let ShowWhat::Holder { id, reg, json } = what;
    let r = LoadedRegister::load(&reg.register)?;
    let now = Timestamp::now();
    let h = r
        .register
        .holders
        .iter()
        .find(|h| h.id == id)
        .with_context(|| {
            format!(
                "{}: no holder {id:?} in the register (pintuctl list holders)",
                r.path.display()
            )
        })?;
    let revoked: Vec<_> = r
        .register
        .revoked
        .iter()
        .filter(|x| x.holder.as_deref() == Some(id.as_str()))
        .collect();
    let visits: Vec<_> = r
        .register
        .visits
        .iter()
        .filter(|v| v.is_open() && (v.host == id || v.escort.as_deref() == Some(id.as_str())))
        .collect();
    if json {
        let out = serde_json::json!({
            "holder": h,
            "state": r.holder_state(h, now),
            "revoked": revoked,
            "open_visits": visits,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Masked hashes, as doors' events show them, when the card key is at hand.
    let key = keys::load_card_key(&r.card_key_path()).ok();
    let masked = |card: &str| match (card.parse::<Uid>(), &key) {
        (Ok(uid), Some(k)) => format!("  ({})", k.hash(&uid).masked()),
        _ => String::new(),
    };
    println!("holder      {}", h.id);
    println!("name        {}", h.name);
    println!("unit        {}", h.unit);
    println!("role        {}", h.role.as_str());
    println!("state       {}", r.holder_state(h, now));
    println!("valid       {} until {}", h.valid_from, h.valid_until);
    println!(
        "doors       {}",
        h.doors.as_ref().map_or("all".into(), |d| d.join(", "))
    );
    if !h.schedule.is_empty() {
        println!("schedule    {}", serde_json::to_string(&h.schedule)?);
    }
    println!("request     {} approved by {}", h.request_ref, h.approver);
    if h.cards.is_empty() {
        println!("cards       none");
    }
    for c in &h.cards {
        println!("card        {c}{}", masked(c));
    }
    for x in &revoked {
        println!(
            "revoked     {} at {}: {} (request {}, by {})",
            x.card, x.at, x.reason, x.request_ref, x.by
        );
    }
    for v in &visits {
        println!(
            "visit       {} {} with badge {}, {} until {} ({})",
            v.id,
            v.visitor,
            v.badge,
            v.from,
            v.until,
            if v.host == id { "host" } else { "escort" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A list signed from the register (not yet delivered).
struct SignedList {
    version: u64,
    payload: list::Payload,
    visits: Vec<pintu::core::visit::Visit>,
    bytes: Vec<u8>,
    signers: Vec<String>,
}

/// Signs the register into a list (payload with visits). The register is not written.
fn sign_list(reg: &LoadedRegister, key_paths: &[PathBuf]) -> Result<SignedList> {
    let card_key = keys::load_card_key(&reg.card_key_path())?;
    let signing_keys = key_paths
        .iter()
        .map(|p| keys::load_signing_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let version = reg.register.list.version + 1;
    let (payload, visits) = reg.build_list(&card_key, version, Timestamp::now())?;
    let bytes = list::payload_bytes(&payload, &visits)?;
    let signed = list::sign(&bytes, &signing_keys);
    Ok(SignedList {
        version,
        payload,
        visits,
        bytes: signed,
        signers: signing_keys.into_iter().map(|(id, _)| id).collect(),
    })
}

/// Where a list goes, checked before anything changes.
struct DeliveryPlan {
    keys: Vec<PathBuf>,
    out: Option<PathBuf>,
    mqtt: Option<OfficeMqtt>,
}

impl DeliveryPlan {
    fn prepare(reg: &LoadedRegister, args: &PublishArgs) -> Result<DeliveryPlan> {
        if args.keys.is_empty() {
            bail!("--key is required to sign the list (the approver's signing key)");
        }
        let mqtt = args.mqtt.resolve()?;
        if mqtt.is_none() && args.out.is_none() {
            bail!("nowhere to deliver the list: give --broker (or --office with an [mqtt] table) and/or --out FILE");
        }
        if let Some(out) = &args.out {
            let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                bail!(
                    "{}: directory {} does not exist (is the USB stick mounted?)",
                    out.display(),
                    dir.display()
                );
            }
        }
        // Keys and the card key must load before the register is touched.
        for p in &args.keys {
            keys::load_signing_key(p)?;
        }
        keys::load_card_key(&reg.card_key_path())?;
        Ok(DeliveryPlan {
            keys: args.keys.clone(),
            out: args.out.clone(),
            mqtt,
        })
    }

    /// Signs `reg`, connects to the broker (when one is set), then records the version in the
    /// register (written with whatever else changed) and writes and/or publishes the list. An
    /// unreachable broker changes nothing.
    fn deliver(self, reg: &mut LoadedRegister) -> Result<()> {
        let SignedList {
            version,
            payload,
            visits,
            bytes: signed,
            signers,
        } = sign_list(reg, &self.keys)?;
        let what = format!(
            "version {version}, {} entries, {} visit(s), site {}, expires {}, signed by {}",
            payload.entries.len(),
            visits.len(),
            payload.site,
            payload.expires_at,
            signers.join(", ")
        );
        let record = |reg: &mut LoadedRegister| -> Result<()> {
            // Bump first: a version number is never used for two different lists.
            reg.bump_version(version)?;
            reg.save()?;
            if let Some(out) = &self.out {
                pintu::util::files::write_atomic(out, &signed, 0o600)
                    .with_context(|| format!("writing {}", out.display()))?;
                println!("{}: {what}", out.display());
            }
            Ok(())
        };
        let Some(mqtt) = &self.mqtt else {
            return record(reg);
        };
        let topic = mqtt.site_list_topic(&payload.site);
        let published = client::block_on(async {
            let conn = mqtt
                .connect(signed.len())
                .await
                .context("nothing was changed: deliver the list with --out FILE, or try again")?;
            record(reg)?;
            conn.publish_retained(&topic, signed.clone())
                .await
                .with_context(|| {
                    format!(
                        "the register records version {version}, but the list was not acknowledged: run `pintuctl publish` again"
                    )
                })
        })??;
        println!(
            "published {what} to {topic} on {} (retained, acknowledged in {} ms)",
            mqtt.broker(),
            published.as_millis()
        );
        Ok(())
    }
}

fn publish_register(reg: &mut LoadedRegister, args: &PublishArgs) -> Result<ExitCode> {
    let plan = DeliveryPlan::prepare(reg, args)?;
    plan.deliver(reg)?;
    Ok(ExitCode::SUCCESS)
}

fn doors_command(
    site: Option<String>,
    register: &Path,
    mqtt: &MqttArgs,
    wait: Duration,
    json: bool,
) -> Result<ExitCode> {
    let site = match site {
        Some(s) => s,
        None => LoadedRegister::load(register)
            .map(|r| r.register.site)
            .context("give --site, or --register for the site id")?,
    };
    let mqtt = mqtt
        .resolve()?
        .context("no MQTT broker: give --broker (or --office with an [mqtt] table)")?;
    let filter = mqtt.status_filter(&site);
    let got = client::block_on(mqtt.collect(&filter, wait))??;
    // The latest message per topic wins.
    let mut doors: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    for m in got {
        let door = m
            .topic
            .rsplit('/')
            .nth(1)
            .unwrap_or(m.topic.as_str())
            .to_string();
        let value = serde_json::from_slice(&m.payload).unwrap_or_else(
            |_| serde_json::json!({"state": "unreadable", "raw": String::from_utf8_lossy(&m.payload)}),
        );
        doors.insert(door, value);
    }
    if json {
        let items: Vec<_> = doors.values().collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if doors.is_empty() {
        println!("no door status on {filter} at {}", mqtt.broker());
        return Ok(ExitCode::SUCCESS);
    }
    let field = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = doors
        .iter()
        .map(|(door, s)| {
            vec![
                door.clone(),
                field(&s["state"]),
                field(&s["list"]["version"]),
                field(&s["outbox"]["depth"]),
                field(&s["lock"]),
                field(&s["occupancy"]),
                field(&s["clock"]["trusted"]),
                field(&s["time"]),
            ]
        })
        .collect();
    print_table(
        &[
            "DOOR",
            "STATE",
            "LIST",
            "OUTBOX",
            "LOCK",
            "INSIDE",
            "CLOCK TRUSTED",
            "AS OF",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// archive, review, report (docs/archive.md)
// ---------------------------------------------------------------------------------------------

/// `pintuctl archive`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pintuctl archive --db /var/lib/pintu-archive --broker broker.dc1.example:8883 --site dc1 \\
      --username office --password-file /etc/pintu/archive.password --ca-file /etc/pintu/mqtt-ca.pem
  pintuctl archive --db /var/lib/pintu-archive --gaps
  pintuctl archive --db /var/lib/pintu-archive --stats --json")]
struct ArchiveArgs {
    /// Archive store directory (a sled database; created if missing).
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    db: PathBuf,
    /// Print the missing seq ranges of every door and exit (status 3 if there are any).
    #[arg(long, conflicts_with = "stats")]
    gaps: bool,
    /// Print the archive's counters and per-door ranges and exit.
    #[arg(long)]
    stats: bool,
    /// With --gaps or --stats: print JSON.
    #[arg(long)]
    json: bool,
    /// Broker: HOST or HOST:PORT (port 1883, or 8883 with --ca-file).
    #[arg(long, env = "PINTU_ARCHIVE_BROKER", required_unless_present_any = ["gaps", "stats"])]
    broker: Option<String>,
    /// Site id: the archive subscribes to {prefix}/{site}/+/events.
    #[arg(long, env = "PINTU_ARCHIVE_SITE", required_unless_present_any = ["gaps", "stats"])]
    site: Option<String>,
    /// Topic prefix (the doors' [mqtt] topic_prefix).
    #[arg(long, env = "PINTU_ARCHIVE_PREFIX", default_value = "pintu")]
    prefix: String,
    /// MQTT client id; keep it fixed: the broker queues events for this id while the archive is
    /// down (default pintu-archive-{site}).
    #[arg(long, env = "PINTU_ARCHIVE_CLIENT_ID")]
    client_id: Option<String>,
    /// Broker user name (with --password-file).
    #[arg(long, env = "PINTU_ARCHIVE_USERNAME", requires = "password_file")]
    username: Option<String>,
    /// File holding the broker password (one line).
    #[arg(long, env = "PINTU_ARCHIVE_PASSWORD_FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// TLS: the CA that signed the broker's certificate (PEM).
    #[arg(long, env = "PINTU_ARCHIVE_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Allow plain TCP to the broker (no --ca-file); refused without it.
    #[arg(long, env = "PINTU_ARCHIVE_INSECURE")]
    insecure: bool,
    /// TLS client certificate (PEM), with --client-key-file.
    #[arg(long, env = "PINTU_ARCHIVE_CLIENT_CERT_FILE", requires_all = ["client_key_file", "ca_file"])]
    client_cert_file: Option<PathBuf>,
    /// TLS client key (PEM).
    #[arg(
        long,
        env = "PINTU_ARCHIVE_CLIENT_KEY_FILE",
        requires = "client_cert_file"
    )]
    client_key_file: Option<PathBuf>,
    /// MQTT keep-alive.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    keep_alive: Duration,
    /// First reconnect delay (doubles up to --reconnect-max, with jitter).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    reconnect_min: Duration,
    /// Longest reconnect delay.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    reconnect_max: Duration,
}

/// `pintuctl review`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pintuctl review --register register.toml --db /var/lib/pintu-archive
  pintuctl review --register register.toml --db /var/lib/pintu-archive --csv > review.csv")]
struct ReviewArgs {
    /// Register file.
    #[arg(long)]
    register: PathBuf,
    /// Archive store directory, for last-used dates and dormancy (without it: none).
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    db: Option<PathBuf>,
    /// Dormant: a valid card not used for more than this many days.
    #[arg(long, default_value_t = 90)]
    dormant_days: u32,
    /// Expiring: valid_until within this many days.
    #[arg(long, default_value_t = 30)]
    expiring_days: u32,
    /// Review as of this time instead of now (e.g. 2026-06-30 or 2026-06-30T17:00:00, site time).
    #[arg(long)]
    at: Option<String>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
}

/// Output format of `pintuctl report`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Csv,
    Html,
}

/// `pintuctl report`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pintuctl report --register register.toml --db /var/lib/pintu-archive \\
      --from 2026-05-01 --to 2026-06-01 --format html --out report-2026-05.html
  pintuctl report --register register.toml --db /var/lib/pintu-archive \\
      --from 2026-05-04 --to 2026-05-05 --door server-room --format csv --out day.csv")]
struct ReportArgs {
    /// Archive store directory.
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    db: PathBuf,
    /// Register: the site's time zone and holders' names.
    #[arg(long)]
    register: Option<PathBuf>,
    /// The site's time zone (instead of, or over, the register's), e.g. Asia/Jakarta.
    #[arg(long)]
    time_zone: Option<String>,
    /// Start of the period (inclusive): 2026-05-01 (start of day, site time),
    /// 2026-05-01T08:00:00 (site time) or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// End of the period (exclusive), same forms.
    #[arg(long)]
    to: String,
    /// Only this door.
    #[arg(long)]
    door: Option<String>,
    /// Readers whose grants are exits (repeatable); other readers are entries.
    #[arg(long = "exit-reader", default_value = "exit")]
    exit_readers: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "html")]
    format: ReportFormat,
    /// Output file (default standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn archive(args: ArchiveArgs) -> Result<ExitCode> {
    use pintu::office::archive::{self as arc, ArchiveReader};
    if args.gaps || args.stats {
        let reader = ArchiveReader::open(&args.db)?;
        if args.stats {
            let s = reader.stats()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "site {}: {} events stored, {} received, {} duplicates ignored, {} conflicts, {} rejected",
                    s.site, s.stored, s.received, s.duplicates, s.conflicts, s.rejected
                );
                for d in &s.doors {
                    println!(
                        "  door {}: {} events, seq {}..={}",
                        d.door, d.events, d.first, d.last
                    );
                }
            }
            if s.conflicts > 0 {
                eprintln!(
                    "ALARM: {} conflicting event(s): another event arrived under an archived (door, seq) (kept with the rejected messages)",
                    s.conflicts
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let gaps = reader.gaps()?;
        if args.json {
            for g in &gaps {
                println!("{}", serde_json::to_string(g)?);
            }
        } else if gaps.is_empty() {
            println!("no gaps");
        } else {
            for g in &gaps {
                println!(
                    "door {}: seq {}..={} missing ({} events){}",
                    g.door,
                    g.from,
                    g.to,
                    g.len(),
                    g.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
        }
        return Ok(if gaps.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        });
    }

    let site = args.site.context("--site is required")?;
    let broker = args.broker.context("--broker is required")?;
    // The archive's flags as the shared broker flags (the library resolves and checks them).
    let broker_args = pintu::mqtt::BrokerArgs {
        broker: Some(broker),
        mqtt_user: args.username,
        mqtt_password_file: args.password_file,
        mqtt_ca: args.ca_file,
        mqtt_cert: args.client_cert_file,
        mqtt_key: args.client_key_file,
        mqtt_client_id: args.client_id,
        topic_prefix: Some(args.prefix),
        insecure: args.insecure,
        mqtt_keep_alive: Some(args.keep_alive),
        mqtt_reconnect_min: Some(args.reconnect_min),
        mqtt_reconnect_max: Some(args.reconnect_max),
        ..Default::default()
    };
    let opts =
        arc::ArchiveOptions::from_args(&broker_args, &site, Some(args.db.join(arc::SOCKET_NAME)))?;
    if opts.broker.tls.is_none() {
        eprintln!("warning: plain TCP to the broker (--insecure): events and the broker password cross the network in clear");
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    std::fs::create_dir_all(&args.db)
        .with_context(|| format!("creating the archive directory {}", args.db.display()))?;
    let store = std::sync::Arc::new(arc::Archive::open(&args.db, &site)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stats = runtime.block_on(async move {
        let stop = tokio_util::sync::CancellationToken::new();
        let on_signal = stop.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            on_signal.cancel();
        });
        let task = tokio::spawn(arc::run(store, opts, stop));
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let stats = task.await.context("the archive task failed")??;
        anyhow::Ok(stats)
    })?;
    eprintln!(
        "archive stopped: {} events stored, {} duplicates ignored",
        stats.stored, stats.duplicates
    );
    Ok(ExitCode::SUCCESS)
}

/// A date, local date-time or RFC 3339 time, in `tz`.
fn resolve_time(text: &str, tz: &jiff::tz::TimeZone, flag: &str) -> Result<Timestamp> {
    pintu::office::register::DateSpec(text.to_string())
        .resolve(tz)
        .map_err(|m| anyhow::anyhow!("{flag}: {m}"))
}

fn review(args: ReviewArgs) -> Result<ExitCode> {
    use pintu::office::review::{self as rv, RegisterView};
    let reg = RegisterView::load(&args.register)?;
    let card_key = keys::load_card_key(&reg.card_key_path)?;
    let events = match &args.db {
        Some(db) => pintu::office::archive::ArchiveReader::open(db)?.events(None)?,
        None => Vec::new(),
    };
    let now = match &args.at {
        Some(at) => resolve_time(at, &reg.time_zone, "--at")?,
        None => Timestamp::now(),
    };
    let review = rv::review(
        &reg,
        &card_key,
        &events,
        &rv::ReviewSettings {
            now,
            dormant_days: args.dormant_days,
            expiring_days: args.expiring_days,
        },
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&review)?);
    } else if args.csv {
        print!("{}", review.to_csv());
    } else {
        print!("{}", review.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

fn report(args: ReportArgs) -> Result<ExitCode> {
    use pintu::office::report::{self as rp, ReportSettings};
    let reg = args
        .register
        .as_deref()
        .map(pintu::office::review::RegisterView::load)
        .transpose()?;
    let time_zone = match (&args.time_zone, &reg) {
        (Some(name), _) => jiff::tz::TimeZone::get(name)
            .with_context(|| format!("--time-zone: unknown time zone {name:?}"))?,
        (None, Some(r)) => r.time_zone.clone(),
        (None, None) => {
            bail!("give --register (or --time-zone): report times are in the site's time zone")
        }
    };
    let from = resolve_time(&args.from, &time_zone, "--from")?;
    let to = resolve_time(&args.to, &time_zone, "--to")?;
    if to <= from {
        bail!("--to must be after --from");
    }
    let reader = pintu::office::archive::ArchiveReader::open(&args.db)?;
    let events = reader.events(args.door.as_deref())?;
    let gaps = reader.gaps()?;
    let site = match &reg {
        Some(r) => r.site.clone(),
        None => reader.stats()?.site,
    };
    let names = reg.as_ref().map(|r| r.names()).unwrap_or_default();
    let report = rp::build(
        &events,
        &names,
        &gaps,
        ReportSettings {
            site,
            time_zone,
            from,
            to,
            door: args.door,
            exit_readers: args.exit_readers,
            generated_at: Timestamp::now(),
        },
    );
    let text = match args.format {
        ReportFormat::Csv => report.to_csv(),
        ReportFormat::Html => report.to_html(),
    };
    match &args.out {
        Some(path) => {
            pintu::util::files::write_atomic(path, text.as_bytes(), 0o640)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{}: {} visits, {} entries and exits, {} denials, {} alarms",
                path.display(),
                report.visits.len(),
                report.passages.len(),
                report.denials.len(),
                report.alarms.len()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
