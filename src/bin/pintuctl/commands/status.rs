//! `pintuctl status`: the door's status (door-local).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use pintu::door::control::{Reply, Request};

use crate::door_args::{unexpected, DoorArgs, DoorDefaults};
use crate::output::{outln, shown};

/// Show the door's status.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    door: DoorArgs,
}

pub fn exec(args: StatusArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let StatusArgs { json, door } = args;
    let target = door.target(defaults);
    let reply = target.ask(&Request::Status)?;
    let Reply::Status(s) = reply else {
        return unexpected(reply);
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("site {}  door {}  pintud {}", s.site, s.door, s.version);
    outln!("clock      {}", s.now);
    match &s.list {
        Some(l) => outln!(
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
        None => outln!(
            "list       none: every tap is denied until a signed list above version {} arrives",
            s.highest_list_version
        ),
    }
    if let Some(c) = &s.clock {
        outln!(
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
    outln!(
        "lock       {:?}{}",
        s.lock,
        s.lockdown
            .as_deref()
            .map(|r| format!(" — LOCKDOWN: only {r} admitted"))
            .unwrap_or_default()
    );
    outln!(
        "inside     {} ({} visitor(s)); `pintuctl who` lists them",
        s.occupancy,
        s.visitors_inside
    );
    outln!("outbox     {} event(s) waiting", s.outbox_depth);
    if s.set_aside > 0 {
        outln!(
            "outbox     ALARM: {} event(s) set aside, not deliverable (see `event.set_aside` events)",
            s.set_aside
        );
    }
    if let Some(why) = &s.delivery_refused {
        outln!("outbox     ALARM: the broker refuses the door's events: {why}");
    }
    for r in &s.readers {
        let since = match (&r.since, &r.detail) {
            (Some(at), Some(why)) => format!(" since {at}: {}", shown(why)),
            _ => String::new(),
        };
        outln!(
            "reader     {} ({:?}, {}): {}{since}",
            shown(&r.name),
            r.role,
            r.backend,
            r.state
        );
    }
    Ok(ExitCode::SUCCESS)
}
