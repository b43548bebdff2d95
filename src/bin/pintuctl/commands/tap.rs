//! `pintuctl tap`: a card presented to a simulated reader on the door (door-local).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use pintu::door::control::{Reply, Request};

use crate::door_args::{unexpected, DoorArgs, DoorDefaults};
use crate::output::{outln, seq};

/// Present a card to a simulated reader on the door.
#[derive(Args, Debug)]
pub struct TapArgs {
    /// Card UID in hex.
    uid: String,
    /// Reader name (default: the first entry reader).
    #[arg(long)]
    reader: Option<String>,
    /// Print the reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    door: DoorArgs,
}

pub fn exec(args: TapArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let TapArgs {
        uid,
        reader,
        json,
        door,
    } = args;
    let target = door.target(defaults);
    let reply = target.ask(&Request::Tap { uid, reader })?;
    let Reply::Tap(t) = reply else {
        return unexpected(reply);
    };
    if json {
        outln!("{}", serde_json::to_string(&t)?);
    } else {
        let who = t.holder.as_deref().unwrap_or("unknown holder");
        match &t.reason {
            None if t.decision == "captured" => outln!(
                "{}: CAPTURED {} ({}) for enrollment, not decided, event #{}",
                t.reader,
                t.card,
                who,
                seq(t.seq)
            ),
            None => outln!(
                "{}: GRANT  {} ({}) in {} µs, event #{}",
                t.reader,
                t.card,
                who,
                t.micros,
                seq(t.seq)
            ),
            Some(r) => outln!(
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
