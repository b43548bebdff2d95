//! `pintuctl`: the operator's tool (office side) and the door's local control client.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use jiff::Timestamp;

use pintu::config::{self, Config};
use pintu::control::{self, Reply, Request};
use pintu::core::card::Uid;
use pintu::core::list::{self, Role, TrustPolicy, TrustedKey};
use pintu::hw::{pcsc, DoorInput};
use pintu::keys;
use pintu::register::{Enrolled, LoadedRegister, NewHolder};

/// Pintu operator tool: keys, signed lists, and the door's control socket.
#[derive(Parser, Debug)]
#[command(version, about, after_help = EXAMPLES)]
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
  pintuctl sign --register register.toml --key keys/kabid-2026.key --out list.signed
  pintuctl verify list.signed --config /etc/pintu/pintu.toml
  pintuctl enroll --register register.toml --holder 199001012015011001   # desk PC/SC reader
  pintuctl enroll --door --reader entry --register register.toml --holder 199001012015011001
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
    /// Enroll a card: read it on this computer's PC/SC reader (or, with --door, capture the next
    /// tap at the door) and add it to a holder in the register, keeping the file's comments.
    /// Without --register the UID is only printed. Sign and deliver a list afterwards.
    Enroll {
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
        Command::Enroll {
            register,
            holder,
            name,
            unit,
            role,
            valid_from,
            valid_until,
            request_ref,
            approver,
            pcsc_reader,
            door,
            reader,
            timeout,
        } => {
            let new = new_holder(
                name,
                unit,
                role,
                valid_from,
                valid_until,
                request_ref,
                approver,
            )?;
            let source = if door {
                CardFrom::Door { reader }
            } else {
                CardFrom::Desk {
                    pattern: pcsc_reader,
                }
            };
            enroll(
                &target,
                register.as_deref().zip(holder.as_deref()),
                new,
                source,
                timeout,
            )
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
                None => {
                    println!("list       none: every tap is denied until a signed list arrives")
                }
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
            for r in &s.readers {
                println!("reader     {} ({:?}, {})", r.name, r.role, r.backend);
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
        Command::Events { limit, json } => {
            let reply = ask(&target, &Request::Events { limit: Some(limit) })?;
            let Reply::Events { events } = reply else {
                return unexpected(reply);
            };
            for e in events {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!(
                        "#{:<6} {}  {:<16} {} {} {} {}",
                        e.seq,
                        e.time,
                        e.kind.as_str(),
                        e.reader.as_deref().unwrap_or(""),
                        e.card.as_deref().unwrap_or(""),
                        e.holder.as_deref().unwrap_or(""),
                        [e.reason.as_deref(), e.detail.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(": ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

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
        },
    };
    let signed = command::sign(&payload, &signing_keys);
    match out {
        Some(path) => {
            pintu::fsutil::write_atomic(path, &signed, 0o644)
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
    let card_key = keys::load_card_key(&reg.card_key_path())?;
    let signing_keys = key_paths
        .iter()
        .map(|p| keys::load_signing_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let version = reg.register.list.version + 1;
    let payload = reg.build_payload(&card_key, version, Timestamp::now())?;
    let payload_bytes = serde_json::to_vec(&payload)?;
    let signed = list::sign(&payload_bytes, &signing_keys);
    // Bump first: a version number is never used for two different lists, even if writing the
    // output fails afterwards (a gap in versions is harmless; a reuse is rejected by doors).
    reg.set_version(version)?;
    pintu::fsutil::write_atomic(out, &signed, 0o644)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: version {version}, {} entries, site {}, doors {}, expires {}, signed by {}",
        out.display(),
        payload.entries.len(),
        payload.site,
        payload.doors.join(","),
        payload.expires_at,
        signing_keys
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
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
    let bytes = pintu::fsutil::read_capped(file, policy.max_bytes)
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
