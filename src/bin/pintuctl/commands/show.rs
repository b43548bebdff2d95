//! `pintuctl show holder ID`: one item of the register in full.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jiff::Timestamp;

use pintu::core::card::Uid;
use pintu::office::keys;
use pintu::office::register::LoadedRegister;

use crate::output::outln;
use crate::register_args::RegisterPath;

/// Show one item of the register in full.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(subcommand)]
    what: ShowWhat,
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

pub fn exec(args: ShowArgs) -> Result<ExitCode> {
    let ShowWhat::Holder { id, reg, json } = args.what;
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
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Masked hashes, as doors' events show them, when the card key is at hand.
    let key = keys::load_card_key(&r.card_key_path()).ok();
    let masked = |card: &str| match (card.parse::<Uid>(), &key) {
        (Ok(uid), Some(k)) => format!("  ({})", k.hash(&uid).masked()),
        _ => String::new(),
    };
    outln!("holder      {}", h.id);
    outln!("name        {}", h.name);
    outln!("unit        {}", h.unit);
    outln!("role        {}", h.role.as_str());
    outln!("state       {}", r.holder_state(h, now));
    outln!("valid       {} until {}", h.valid_from, h.valid_until);
    outln!(
        "doors       {}",
        h.doors.as_ref().map_or("all".into(), |d| d.join(", "))
    );
    if !h.schedule.is_empty() {
        outln!("schedule    {}", serde_json::to_string(&h.schedule)?);
    }
    outln!("request     {} approved by {}", h.request_ref, h.approver);
    if h.cards.is_empty() {
        outln!("cards       none");
    }
    for c in &h.cards {
        outln!("card        {c}{}", masked(c));
    }
    for x in &revoked {
        outln!(
            "revoked     {} at {}: {} (request {}, by {})",
            x.card,
            x.at,
            x.reason,
            x.request_ref,
            x.by
        );
    }
    for v in &visits {
        outln!(
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
