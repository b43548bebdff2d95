//! `pintuctl who`: who is inside the room now (door-local).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use pintu::door::control::{Reply, Request};

use crate::door_args::{unexpected, DoorArgs, DoorDefaults};
use crate::output::outln;

/// Who is inside the room now (the door's presence), in order of entry.
#[derive(Args, Debug)]
pub struct WhoArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    door: DoorArgs,
}

pub fn exec(args: WhoArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let WhoArgs { json, door } = args;
    let target = door.target(defaults);
    let reply = target.ask(&Request::Who)?;
    let Reply::Who { occupants } = reply else {
        return unexpected(reply);
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&occupants)?);
        return Ok(ExitCode::SUCCESS);
    }
    if occupants.is_empty() {
        outln!("nobody inside");
    }
    for o in &occupants {
        let visit = match (&o.visit, &o.escort) {
            (Some(v), Some(e)) => format!("  visit {v}, escorted by {e}"),
            (Some(v), None) => format!("  visit {v}"),
            _ => String::new(),
        };
        outln!(
            "{}  {:<8} {} ({}), card {}{}",
            o.entered_at,
            o.role,
            o.name,
            o.holder,
            o.card,
            visit
        );
    }
    Ok(ExitCode::SUCCESS)
}
