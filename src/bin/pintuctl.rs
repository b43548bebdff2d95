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
use pintu::hw::DoorInput;
use pintu::keys;
use pintu::register::LoadedRegister;

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
  pintuctl tap 04A1B2C3D4E5F6                         # simulated reader
  pintuctl status
  pintuctl events -n 50";

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
    /// Print a card UID's keyed hash (as lists carry it) and its masked form.
    Hash {
        /// Card UID in hex.
        uid: String,
        /// Card key file.
        #[arg(long)]
        card_key: PathBuf,
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
        Command::Hash { uid, card_key } => {
            let uid: Uid = uid.parse().context("card UID")?;
            let key = keys::load_card_key(&card_key)?;
            let hash = key.hash(&uid);
            println!("{}  {}", hash.to_hex(), hash.masked());
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
            println!("lock       {:?}", s.lock);
            println!("outbox     {} event(s) waiting", s.outbox_depth);
            for r in &s.readers {
                println!("reader     {} ({:?}, {})", r.name, r.role, r.backend);
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
    let socket = match &target.socket {
        Some(s) => s.clone(),
        None => config::socket_path_from_file(&target.config)
            .with_context(|| "cannot find the control socket: pass --socket or --config")?,
    };
    Ok(control::request(&socket, req, Duration::from_secs(10))?)
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
