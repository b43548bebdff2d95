//! `pintuctl badge add|remove`: the visitor-badge pool.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use pintu::core::card::Uid;
use pintu::door::hw::pcsc;
use pintu::office::register::LoadedRegister;

use super::holder::check_and_save;
use crate::output::outln;
use crate::register_args::{parse_uid, RegisterPath, RevokeWhy};

const BADGE_EXAMPLES: &str = "Examples:
  pintuctl badge add --id VB-01 --card 62E3086CED
  pintuctl badge add --id VB-02                       # read it on the desk reader
  pintuctl badge remove VB-02 --reason \"badge broken\" --request-ref HD-2026/120";

/// The visitor-badge pool: add or remove badges.
#[derive(Args, Debug)]
#[command(after_help = BADGE_EXAMPLES)]
pub struct BadgeArgs {
    #[command(subcommand)]
    action: BadgeAction,
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

pub fn exec(args: BadgeArgs) -> Result<ExitCode> {
    match args.action {
        BadgeAction::Add {
            reg,
            id,
            card,
            pcsc_reader,
            timeout,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            r.refuse_if_imported("badge add", "the console or POST /api/v1/badges")?;
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
            outln!(
                "{}: badge {id} (card {}) added to the pool, which now has {} badge(s)",
                r.path.display(),
                uid.to_hex(),
                r.register.badges.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        BadgeAction::Remove { reg, id, why } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            r.refuse_if_imported(
                "badge remove",
                "the console or POST /api/v1/badges/LABEL/revoke",
            )?;
            let info = why.info()?;
            let card = r.remove_badge(&id, &info)?;
            check_and_save(&r)?;
            outln!(
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
