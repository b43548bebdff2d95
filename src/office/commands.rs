//! Signed commands for doors (`pintuctl command …`, docs/commands.md): the order an operator
//! gives, checked as doors will check it, made into a signed [`CommandPayload`].
//!
//! Doors refuse a narrow command (the floor resets) addressed to `"*"` or valid for longer than
//! [`command::SHORT_COMMAND_MAX_LIFETIME`]; [`sign_command`] refuses them here, where the
//! operator can still fix the command, not at the door.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use uuid::Uuid;

use crate::core::command::{self, Action, CommandPayload};
use crate::office::keys::{self, KeyError};

/// Why a command was not signed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No site.
    #[error("--site is required")]
    NoSite,
    /// No operator.
    #[error("--operator is required (who orders the command)")]
    NoOperator,
    /// No door.
    #[error("--door is required (a door id, or \"*\" for every door of the site)")]
    NoDoor,
    /// No signing key.
    #[error("--key is required (the signing key file)")]
    NoKey,
    /// A signing key cannot be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The validity window does not fit a timestamp.
    #[error("--valid is too long")]
    TooLong,
    /// A narrow command for every door.
    #[error("{0} must name each door (--door ID); \"*\" is refused by doors")]
    EveryDoor(&'static str),
    /// A narrow command valid for longer than doors accept.
    #[error("{name} may be valid for at most {}; --valid {} is refused by doors", humantime::format_duration(*.max), humantime::format_duration(*.valid))]
    WindowTooLong {
        /// The command.
        name: &'static str,
        /// The longest window doors accept for it.
        max: Duration,
        /// The window asked for.
        valid: Duration,
    },
}

/// An operator's order, as given on the command line.
#[derive(Debug, Clone)]
pub struct CommandOrder {
    /// What to do.
    pub action: Action,
    /// Site id.
    pub site: Option<String>,
    /// Door ids; `"*"` is every door of the site.
    pub doors: Vec<String>,
    /// Who orders it.
    pub operator: Option<String>,
    /// Signing key files; one signature each.
    pub keys: Vec<PathBuf>,
    /// Validity window from the signing time.
    pub valid: Duration,
}

/// Checks `order` and signs it as command `id`, issued at `now`: the payload and the signed
/// envelope doors read.
pub fn sign_command(
    order: CommandOrder,
    id: Uuid,
    now: Timestamp,
) -> Result<(CommandPayload, Vec<u8>), CommandError> {
    let site = order.site.ok_or(CommandError::NoSite)?;
    let operator = order.operator.ok_or(CommandError::NoOperator)?;
    if order.doors.is_empty() {
        return Err(CommandError::NoDoor);
    }
    if order.keys.is_empty() {
        return Err(CommandError::NoKey);
    }
    let signing_keys = order
        .keys
        .iter()
        .map(|p| keys::load_signing_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let window = jiff::SignedDuration::try_from(order.valid).map_err(|_| CommandError::TooLong)?;
    let payload = CommandPayload {
        format: command::COMMAND_PAYLOAD_FORMAT,
        site,
        doors: order.doors,
        id,
        issued_at: now,
        expires_at: now.checked_add(window).map_err(|_| CommandError::TooLong)?,
        operator,
        command: order.action,
    };
    if payload.command.is_narrow() {
        if payload.doors.iter().any(|d| d == "*") {
            return Err(CommandError::EveryDoor(payload.command.name()));
        }
        if order.valid > command::SHORT_COMMAND_MAX_LIFETIME {
            return Err(CommandError::WindowTooLong {
                name: payload.command.name(),
                max: command::SHORT_COMMAND_MAX_LIFETIME,
                valid: order.valid,
            });
        }
    }
    let signed = command::sign(&payload, &signing_keys);
    Ok((payload, signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(dir: &std::path::Path, action: Action) -> CommandOrder {
        CommandOrder {
            action,
            site: Some("dc1".into()),
            doors: vec!["a".into()],
            operator: Some("ani".into()),
            keys: vec![dir.join("k1.key")],
            valid: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_command_is_signed_for_its_window() {
        let dir = tempfile::tempdir().unwrap();
        keys::keygen(dir.path(), "k1").unwrap();
        let now = Timestamp::now();
        let id = Uuid::new_v4();
        let reason = "vendor visit".to_string();
        let (payload, signed) =
            sign_command(order(dir.path(), Action::UnlockOnce { reason }), id, now).unwrap();
        assert_eq!((payload.id, payload.issued_at), (id, now));
        assert_eq!(
            payload.expires_at,
            now + jiff::SignedDuration::from_secs(300)
        );
        assert_eq!(payload.command.name(), "unlock_once");
        let text = String::from_utf8(signed).unwrap();
        assert!(text.contains("k1"), "{text}");
    }

    #[test]
    fn what_doors_refuse_is_refused_here() {
        let dir = tempfile::tempdir().unwrap();
        keys::keygen(dir.path(), "k1").unwrap();
        let now = Timestamp::now();
        let reset = || order(dir.path(), Action::ResetTimeFloor {});
        let mut o = reset();
        o.doors = vec!["*".into()];
        let e = sign_command(o, Uuid::new_v4(), now).unwrap_err();
        assert!(matches!(e, CommandError::EveryDoor(_)), "{e}");
        let mut o = reset();
        o.valid = Duration::from_secs(3600);
        let e = sign_command(o, Uuid::new_v4(), now).unwrap_err();
        assert!(
            e.to_string().contains("--valid 1h is refused by doors"),
            "{e}"
        );
        for (change, expected) in [
            (
                (|o: &mut CommandOrder| o.site = None) as fn(&mut CommandOrder),
                "--site",
            ),
            (|o| o.operator = None, "--operator"),
            (|o| o.doors.clear(), "--door"),
            (|o| o.keys.clear(), "--key"),
        ] {
            let mut o = reset();
            change(&mut o);
            let e = sign_command(o, Uuid::new_v4(), now).unwrap_err();
            assert!(e.to_string().starts_with(expected), "{e}");
        }
    }
}
