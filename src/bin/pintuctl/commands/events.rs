//! `pintuctl events`: the door's recent events (door-local).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use pintu::door::control::{Reply, Request};

use crate::door_args::{unexpected, DoorArgs, DoorDefaults};
use crate::output::{outln, shown};

/// Show the door's recent events.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// How many.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    door: DoorArgs,
}

pub fn exec(args: EventsArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let EventsArgs { limit, json, door } = args;
    let target = door.target(defaults);
    let reply = target.ask(&Request::Events { limit: Some(limit) })?;
    let Reply::Events { events } = reply else {
        return unexpected(reply);
    };
    for e in events {
        if json {
            outln!("{}", serde_json::to_string(&e)?);
        } else {
            // The fields carry text from outside (file names, reader names, key ids):
            // escaped, so none can drive the terminal or forge a line.
            outln!(
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
