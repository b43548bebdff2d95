//! `pintuctl card enroll` (and the older `pintuctl enroll`): read a card on the desk reader or
//! capture a tap at the door, and add it to a holder in the register (office::enroll).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use jiff::Timestamp;

use pintu::core::card::Uid;
use pintu::core::list::Role;
use pintu::door::control::{Reply, Request};
use pintu::door::hw::pcsc;
use pintu::office::enroll::{EnrollOutcome, Enrollment, NewHolderOptions};

use crate::door_args::{unexpected, DoorArgs, DoorDefaults, Target};
use crate::output::{outln, seq};
use crate::register_args::parse_role;

/// Enroll a card: read it on this computer's PC/SC reader (or, with --door, capture the
/// next tap at the door) and add it to a holder in the register, keeping the file's
/// comments. Without --register the UID is only printed. Sign and deliver a list afterwards.
#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// Register to add the card to.
    #[arg(long, requires = "holder")]
    register: Option<PathBuf>,
    /// Holder id to add the card to (created when --name and the rest are given).
    #[arg(long, requires = "register")]
    holder: Option<String>,
    /// New holder: display name (with --role, --valid-until, --request-ref, --approver).
    #[arg(long)]
    name: Option<String>,
    /// New holder: organisational unit.
    #[arg(long)]
    unit: Option<String>,
    /// New holder: staff, escort or visitor.
    #[arg(long, value_parser = parse_role)]
    role: Option<Role>,
    /// New holder: start of access (default today), e.g. 2026-01-05 or 2026-01-05T08:00:00.
    #[arg(long)]
    valid_from: Option<String>,
    /// New holder: end of access (exclusive), e.g. 2027-01-01.
    #[arg(long)]
    valid_until: Option<String>,
    /// New holder: reference of the approved access request.
    #[arg(long)]
    request_ref: Option<String>,
    /// New holder: who approved the request.
    #[arg(long)]
    approver: Option<String>,
    /// Desk reader: PC/SC reader-name pattern (case-insensitive substring); default any.
    #[arg(long, conflicts_with = "door")]
    pcsc_reader: Option<String>,
    /// Capture the next tap at the door (through its control socket) instead; the tap is
    /// recorded as `card.captured` and does not open the door.
    #[arg(long)]
    door: bool,
    /// With --door: only a tap on this reader (default any of the door's readers).
    #[arg(long, requires = "door")]
    reader: Option<String>,
    /// How long to wait for the card.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// With --door: which door.
    #[command(flatten)]
    at: DoorArgs,
}

pub fn exec(a: EnrollArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let new = NewHolderOptions {
        name: a.name,
        unit: a.unit,
        role: a.role,
        valid_from: a.valid_from,
        valid_until: a.valid_until,
        request_ref: a.request_ref,
        approver: a.approver,
    }
    .new_holder()?;
    // Everything that can be checked is checked before anyone is asked to present a card.
    let into = a.register.as_deref().zip(a.holder.as_deref());
    let enrollment = Enrollment::prepare(into, new)?;
    let uid = if a.door {
        capture_at_door(&a.at.target(defaults), a.reader, a.timeout)?
    } else {
        read_on_desk(a.pcsc_reader.as_deref(), a.timeout)?
    };
    let Some(mut enrollment) = enrollment else {
        outln!("{}", uid.to_hex());
        return Ok(ExitCode::SUCCESS);
    };
    let masked = enrollment.masked(&uid);
    let outcome = enrollment.add(&uid, Timestamp::now())?;
    let path = enrollment.register().path.display();
    let holder = enrollment.holder();
    match outcome {
        EnrollOutcome::AlreadyEnrolled => {
            outln!(
                "{path}: holder {holder} already has card {} ({masked}): nothing changed",
                uid.to_hex()
            );
            return Ok(ExitCode::SUCCESS);
        }
        EnrollOutcome::HolderCreated(h) => outln!(
            "{path}: new holder {} ({}, {}), valid {} until {}, request {} approved by {}, with card {} ({masked})",
            h.id,
            h.name,
            h.role.as_str(),
            h.valid_from.0,
            h.valid_until.0,
            h.request_ref,
            h.approver,
            uid.to_hex()
        ),
        EnrollOutcome::CardAdded(h) => outln!(
            "{path}: card {} ({masked}) added to holder {} ({}, {}), who now has {} card(s)",
            uid.to_hex(),
            h.id,
            h.name,
            h.role.as_str(),
            h.cards.len()
        ),
    }
    outln!("Sign and deliver a new list for the doors to know it (pintuctl sign --register …).");
    Ok(ExitCode::SUCCESS)
}

/// The next card on a PC/SC reader of this computer.
fn read_on_desk(pattern: Option<&str>, timeout: Duration) -> Result<Uid> {
    let tap = pcsc::read_next_card(pattern, timeout, |readers| {
        eprintln!(
            "Present the card on {} (waiting up to {})…",
            readers.join(", "),
            humantime::format_duration(timeout)
        );
    })
    .context("reading the card on the desk reader")?;
    eprintln!("card read on {}", tap.pcsc_reader);
    Ok(tap.uid)
}

/// The next tap at the door, captured through its control socket (the door stays locked).
fn capture_at_door(target: &Target, reader: Option<String>, timeout: Duration) -> Result<Uid> {
    eprintln!(
        "Tap the card on the door's {} (waiting up to {}; the door stays locked for it)…",
        reader
            .as_deref()
            .map_or("readers".to_string(), |r| format!("reader {r:?}")),
        humantime::format_duration(timeout)
    );
    let req = Request::Capture {
        timeout_ms: Some(timeout.as_millis().try_into().unwrap_or(u64::MAX)),
        reader,
    };
    let reply = target.ask_within(&req, timeout + Duration::from_secs(10))?;
    let Reply::Captured(c) = reply else {
        return unexpected(reply);
    };
    eprintln!(
        "card captured on door reader {} (event #{}{})",
        c.reader,
        seq(c.seq),
        c.holder
            .as_deref()
            .map(|h| format!("; the door's list has it for {h}"))
            .unwrap_or_default()
    );
    c.uid.parse().context("the door sent a bad UID")
}
