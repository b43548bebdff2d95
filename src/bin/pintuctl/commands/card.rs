//! `pintuctl card enroll|revoke`: a holder's cards.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use pintu::core::card::Uid;
use pintu::office::register::{LoadedRegister, RevokeTarget};

use super::enroll::{self, EnrollArgs};
use super::publish::{self, PublishArgs};
use crate::door_args::DoorDefaults;
use crate::output::outln;
use crate::register_args::{parse_uid, RegisterPath, RevokeWhy};

const CARD_EXAMPLES: &str = "Examples:
  pintuctl card enroll --register register.toml --holder 199001012015011001
  pintuctl card revoke --card 04A1B2C3D4E5F6 --reason \"card lost\" --request-ref HD-2026/118
  pintuctl card revoke --holder 199001012015011001 --reason \"left the unit\" \\
      --request-ref ND-2026/TIK/020 --publish --key keys/kabid-2026.key --office office.toml";

/// Cards: enroll one for a holder (desk reader or door capture), revoke one or all of a
/// holder's.
#[derive(Args, Debug)]
#[command(after_help = CARD_EXAMPLES)]
pub struct CardArgs {
    #[command(subcommand)]
    action: CardAction,
}

#[derive(Subcommand, Debug)]
enum CardAction {
    Enroll(EnrollArgs),
    Revoke(RevokeArgs),
}

/// Revoke a card (--card) or every card of a holder (--holder): the card leaves the holder
/// (who stays, for the record) and is recorded in [[revoked]]. With --publish the new list
/// is signed and delivered at once.
#[derive(Args, Debug)]
struct RevokeArgs {
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
}

pub fn exec(args: CardArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    match args.action {
        CardAction::Enroll(args) => enroll::exec(args, defaults),
        CardAction::Revoke(args) => revoke(args),
    }
}

fn revoke(args: RevokeArgs) -> Result<ExitCode> {
    let RevokeArgs {
        reg,
        card,
        holder,
        why,
        publish,
        delivery,
    } = args;
    let mut r = LoadedRegister::load(&reg.register)?;
    r.refuse_if_imported(
        "card revoke",
        "the console or POST /api/v1/cards/CARD/revoke",
    )?;
    let info = why.info()?;
    let target = match (card, holder) {
        (Some(uid), None) => RevokeTarget::Card(uid),
        (None, Some(h)) => RevokeTarget::Holder(h),
        _ => bail!("give either --card or --holder"),
    };
    // Everything the delivery needs is checked before the register changes.
    let plan = if publish {
        Some(delivery.plan(&r)?)
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
            publish::deliver(plan, &mut r)?;
            outln!("{path}: {what}");
        }
        None => {
            r.save()?;
            outln!("{}: {what}", r.path.display());
            outln!("Sign and deliver a new list for the doors to deny it (pintuctl publish, or --publish next time).");
        }
    }
    Ok(ExitCode::SUCCESS)
}
