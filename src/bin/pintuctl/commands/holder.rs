//! `pintuctl holder add|edit|remove`: cardholders in the register.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use pintu::core::card::Uid;
use pintu::core::list::Role;
use pintu::office::register::{HolderEdit, LoadedRegister, NewHolder, RevokedCard};

use crate::output::outln;
use crate::register_args::{parse_role, parse_uid, RegisterPath, RevokeWhy};

const HOLDER_EXAMPLES: &str = "Examples (the register is ./register.toml or $PINTU_REGISTER, else --register):
  pintuctl holder add --id 199001012015011001 --name \"Budi Santoso\" --unit \"Bidang TIK\" \\
      --role escort --valid-until 2027-01-01 --request-ref ND-2026/TIK/014 --approver \"Kabid TIK\"
  pintuctl holder edit 199001012015011001 --valid-until 2028-01-01 \\
      --request-ref ND-2027/TIK/003 --approver \"Kabid TIK\"
  pintuctl holder remove 199001012015011001 --reason \"moved to another office\" --request-ref ND-2026/TIK/031";

/// Cardholders in the register: add, edit, remove.
#[derive(Args, Debug)]
#[command(after_help = HOLDER_EXAMPLES)]
pub struct HolderArgs {
    #[command(subcommand)]
    action: HolderAction,
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

/// Checks the whole edited register and writes it (nothing is written on any error).
pub fn check_and_save(reg: &LoadedRegister) -> Result<()> {
    reg.check()?;
    reg.save()?;
    Ok(())
}

pub fn exec(args: HolderArgs) -> Result<ExitCode> {
    match args.action {
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
            r.refuse_if_imported("holder add", "the console or POST /api/v1/holders")?;
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
            outln!(
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
                outln!(
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
            r.refuse_if_imported("holder edit", "the console or PATCH /api/v1/holders/ID")?;
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
                outln!("{}: holder {id}: nothing changed", r.path.display());
                return Ok(ExitCode::SUCCESS);
            }
            check_and_save(&r)?;
            outln!("{}: holder {id}: {}", r.path.display(), changes.join("; "));
            Ok(ExitCode::SUCCESS)
        }
        HolderAction::Remove { reg, id, why } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            r.refuse_if_imported(
                "holder remove",
                "the console or POST /api/v1/holders/ID/revoke",
            )?;
            let info = why.info()?;
            let cards = r.remove_holder(&id, &info)?;
            check_and_save(&r)?;
            outln!(
                "{}: removed holder {id}; {} card(s) recorded as revoked{} ({}, request {})",
                r.path.display(),
                cards.len(),
                card_list(&cards),
                info.reason,
                info.request_ref
            );
            outln!("Sign and deliver a new list for the doors to stop admitting them (pintuctl publish).");
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
