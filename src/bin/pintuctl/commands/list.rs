//! `pintuctl list holders|badges|visits|revoked`: the register as a table, or JSON.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use jiff::Timestamp;

use pintu::office::register::LoadedRegister;

use crate::output::{outln, print_table};
use crate::register_args::RegisterPath;

/// List the register's holders, badges, visits or revoked cards (a table, or --json).
#[derive(Args, Debug)]
pub struct ListArgs {
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

pub fn exec(args: ListArgs) -> Result<ExitCode> {
    let ListArgs {
        what,
        reg,
        all,
        json,
    } = args;
    let r = LoadedRegister::load(&reg.register)?;
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
                outln!("{}", serde_json::to_string_pretty(&items)?);
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
            )?;
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
                outln!("{}", serde_json::to_string_pretty(&items)?);
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
            print_table(&["BADGE", "CARD", "STATE"], &rows)?;
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
                outln!("{}", serde_json::to_string_pretty(&items)?);
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
            )?;
        }
        ListWhat::Revoked => {
            if json {
                outln!("{}", serde_json::to_string_pretty(&reg.revoked)?);
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
            print_table(&["AT", "HOLDER", "CARD", "REASON", "REQUEST", "BY"], &rows)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
