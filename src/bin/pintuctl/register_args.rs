//! Flags shared by the commands that read or edit the register: where it is, why cards are
//! revoked, and the parsers of roles, card UIDs and register times.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use jiff::Timestamp;

use pintu::core::card::Uid;
use pintu::core::list::Role;
use pintu::office::register::RevokeInfo;

/// `--register`, for the commands that read or edit it.
#[derive(Args, Debug, Clone)]
pub struct RegisterPath {
    /// Register file (docs/register.md).
    #[arg(long, env = "PINTU_REGISTER", default_value = "register.toml")]
    pub register: PathBuf,
}

/// Why a card is revoked, and on whose request.
#[derive(Args, Debug, Clone)]
pub struct RevokeWhy {
    /// Why (lost card, left the unit, end of contract, …).
    #[arg(long)]
    pub reason: String,
    /// Reference of the removal request.
    #[arg(long)]
    pub request_ref: String,
    /// Operator recording it (default: $PINTU_OPERATOR, else the login name).
    #[arg(long, env = "PINTU_OPERATOR")]
    pub by: Option<String>,
}

impl RevokeWhy {
    /// The revocation record, at now; the operator defaults to the login name.
    pub fn info(self) -> Result<RevokeInfo> {
        let login = || {
            ["USER", "LOGNAME"]
                .into_iter()
                .filter_map(|var| std::env::var(var).ok())
                .find(|name| !name.trim().is_empty())
        };
        let by = match self.by.or_else(login) {
            Some(by) => by,
            // systemd services and cron jobs have no USER or LOGNAME.
            None => bail!(
                "say who revokes with --by NAME (or PINTU_OPERATOR=NAME): there is no login \
                 name to record (USER and LOGNAME are not set)"
            ),
        };
        Ok(RevokeInfo {
            reason: self.reason,
            request_ref: self.request_ref,
            by,
            at: Timestamp::now(),
        })
    }
}

/// A date, local date-time or RFC 3339 time, in `tz`.
pub fn resolve_time(text: &str, tz: &jiff::tz::TimeZone, flag: &str) -> Result<Timestamp> {
    pintu::office::register::DateSpec(text.to_string())
        .resolve(tz)
        .map_err(|m| anyhow::anyhow!("{flag}: {m}"))
}

/// `--role`: staff, escort or visitor.
pub fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "staff" => Ok(Role::Staff),
        "escort" => Ok(Role::Escort),
        "visitor" => Ok(Role::Visitor),
        _ => Err("expected staff, escort or visitor".into()),
    }
}

/// A card UID in hex.
pub fn parse_uid(s: &str) -> Result<Uid, String> {
    s.parse::<Uid>().map_err(|e| e.to_string())
}
