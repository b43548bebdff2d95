//! Signed commands, format v1: what the office may tell a door to do over MQTT, and the door's gate.
//!
//! A command travels in the same envelope shape as a list (payload bytes in base64 plus ed25519
//! signatures by trusted keys) under its own format string and signing context, so a signature
//! over a list can never pass as one over a command, and the reverse. Every command carries a
//! unique id (the nonce) and a short validity window: the door carries out each id at most once
//! and refuses one outside its window, so a command retained on the broker, re-delivered after a
//! reconnect or replayed by an attacker never fires twice. `docs/commands.md` is the reference.
//!
//! Windows are checked against the door's **trusted** time (never below the trusted-time floor),
//! so setting the door's clock back does not reopen an expired command; only a
//! `reset_time_floor`, whose purpose is to repair a floor in doubt, is checked against the wall
//! clock (and its id is never forgotten). Commands may be signed by their own keys (`[trust]
//! command_keys`), so the list keys can stay offline; the two reset commands, which lower what
//! protects the door from old lists and replays, always need the list keys' threshold.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::list::{self, Rejection, TrustPolicy, ALL_DOORS};
use super::text::{bounded, bounded_list, quoted, TEXT_MAX};

/// The envelope's `format` string.
pub const COMMAND_ENVELOPE_FORMAT: &str = "pintu.signed-command.v1";
/// The payload's `format` number.
pub const COMMAND_PAYLOAD_FORMAT: u32 = 1;
/// Domain separation from lists and anything else the same keys sign.
pub const COMMAND_SIGNING_CONTEXT: &[u8] = b"pintu signed command v1\0";
/// Largest command envelope accepted (commands are small; anything bigger is an attack or a bug).
pub const COMMAND_MAX_BYTES: usize = 16 * 1024;
/// Default longest validity window (`expires_at - issued_at`) a door accepts.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(600);
/// Clock skew tolerated on `issued_at` (the office's clock may be slightly ahead of the door's).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Longest window an `unlock_once` or a reset may have, whatever `command_max_lifetime` says:
/// a captured one is useless to an attacker soon after.
pub const SHORT_COMMAND_MAX_LIFETIME: Duration = Duration::from_secs(600);

/// What the door is told to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Release the lock once, as for a granted tap.
    UnlockOnce {
        /// Why (recorded in the event; required).
        reason: String,
    },
    /// Deny every tap except cards of `allow_role` until released.
    Lockdown {
        /// The role still admitted (e.g. `"staff"`); its holders still need a valid entry.
        allow_role: list::Role,
    },
    /// End a lockdown.
    ReleaseLockdown {},
    /// Capture the next tap (on `reader`, or any) for enrollment instead of deciding it.
    Capture {
        /// Only taps on this reader.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    /// Set the trusted-time floor to this command's `issued_at` (down as well as up): the way
    /// out of a floor pushed into the future. Needs the list keys' threshold; its window is
    /// checked against the wall clock; its id is remembered for good.
    ResetTimeFloor {},
    /// Set the list rollback floor to `version` (down as well as up): the next list must be
    /// above it. The way out of a list signed with a stolen key at an absurd version. Needs the
    /// list keys' threshold (the keys still trusted).
    ResetListFloor {
        /// The new floor.
        version: u64,
    },
}

impl Action {
    /// The wire name of the command type.
    pub fn name(&self) -> &'static str {
        match self {
            Action::UnlockOnce { .. } => "unlock_once",
            Action::Lockdown { .. } => "lockdown",
            Action::ReleaseLockdown {} => "release_lockdown",
            Action::Capture { .. } => "capture",
            Action::ResetTimeFloor {} => "reset_time_floor",
            Action::ResetListFloor { .. } => "reset_list_floor",
        }
    }

    /// Whether this is one of the floor resets (list keys required, never for `"*"`).
    pub fn is_reset(&self) -> bool {
        matches!(
            self,
            Action::ResetTimeFloor {} | Action::ResetListFloor { .. }
        )
    }

    /// Whether it must name this door (no `"*"`) and keep a window of at most
    /// [`SHORT_COMMAND_MAX_LIFETIME`].
    pub fn is_narrow(&self) -> bool {
        self.is_reset() || matches!(self, Action::UnlockOnce { .. })
    }
}

/// The signed part of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandPayload {
    /// Always [`COMMAND_PAYLOAD_FORMAT`].
    pub format: u32,
    /// Site id; must be the door's.
    pub site: String,
    /// Doors it is for; `"*"` is every door of the site.
    pub doors: Vec<String>,
    /// Unique id: the nonce. A door carries out each id at most once.
    pub id: Uuid,
    /// When it was signed.
    pub issued_at: Timestamp,
    /// After this it is refused.
    pub expires_at: Timestamp,
    /// Who ordered it (recorded in the event).
    pub operator: String,
    /// What to do.
    pub command: Action,
}

/// The door's limits for commands.
#[derive(Debug, Clone)]
pub struct CommandPolicy {
    /// Command-signing keys and threshold (`[trust] command_keys`, by default the list keys);
    /// its `site`/`door` are checked.
    pub trust: TrustPolicy,
    /// Longest accepted validity window.
    pub max_lifetime: Duration,
    /// The list keys and threshold (`[trust] keys`), which the floor resets need; `None`: the
    /// same as `trust`.
    pub list_trust: Option<TrustPolicy>,
}

/// The two clocks a command is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandClocks {
    /// The door's trusted time (never below the trusted-time floor): every window but a
    /// `reset_time_floor`'s.
    pub trusted: Timestamp,
    /// The wall clock as read: a `reset_time_floor`'s window (the floor is what is in doubt).
    pub wall: Timestamp,
}

/// A command that passed [`verify`].
#[derive(Debug, Clone)]
pub struct VerifiedCommand {
    /// Its content.
    pub payload: CommandPayload,
    /// Key ids that signed it.
    pub signed_by: Vec<String>,
}

/// Why a command was refused. Nothing happens at the door in any case but the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandRejection {
    /// Larger than [`COMMAND_MAX_BYTES`] (checked before parsing).
    #[error("command is {size} bytes, over the {max}-byte cap")]
    Oversize {
        /// Size seen.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Not a well-formed envelope or payload.
    #[error("malformed command: {}", bounded(.0, TEXT_MAX))]
    Malformed(String),
    /// A format this door does not know.
    #[error("unknown command format {}", bounded(.0, TEXT_MAX))]
    UnknownFormat(String),
    /// No signature at all.
    #[error("command carries no signature")]
    MissingSignature,
    /// Signed by a key the door does not trust.
    #[error("command is signed by unknown key {}", quoted(.0))]
    UnknownKey(String),
    /// A signature does not verify.
    #[error("command signature by key {} is invalid", quoted(.0))]
    BadSignature(String),
    /// Too few distinct trusted keys signed.
    #[error("command has {valid} valid signature(s) from distinct trusted keys; {needed} needed")]
    ThresholdNotMet {
        /// Distinct valid keys.
        valid: usize,
        /// Threshold.
        needed: usize,
    },
    /// For another site.
    #[error(
        "command is for site {}, this door belongs to {}",
        quoted(command),
        quoted(expected)
    )]
    WrongSite {
        /// Site named by the command.
        command: String,
        /// This door's site.
        expected: String,
    },
    /// Not for this door.
    #[error(
        "command is for doors {}, not for {}",
        bounded_list(doors),
        quoted(door)
    )]
    WrongDoor {
        /// This door.
        door: String,
        /// Doors named.
        doors: Vec<String>,
    },
    /// Signed in the future (beyond the tolerated skew).
    #[error("command is issued at {issued_at}, later than the door's clock allows")]
    NotYetValid {
        /// Its `issued_at`.
        issued_at: Timestamp,
    },
    /// Past its `expires_at`.
    #[error("command expired at {expires_at}")]
    Expired {
        /// Its `expires_at`.
        expires_at: Timestamp,
    },
    /// Valid for longer than the door allows.
    #[error("command is valid for {lifetime_s} s; this door accepts at most {max_s} s")]
    LifetimeTooLong {
        /// Its window in seconds.
        lifetime_s: i64,
        /// The door's limit in seconds.
        max_s: u64,
    },
    /// This id was already carried out (or refused after verifying).
    #[error("command {0} was already received: replay refused")]
    Replayed(Uuid),
    /// An `unlock_once` or a reset for `"*"`: it must name the door.
    #[error("{action} must name this door; \"*\" (every door) is refused")]
    DoorNotNamed {
        /// The command type.
        action: &'static str,
    },
    /// A floor reset without the list keys' threshold (command keys alone cannot lower a floor).
    #[error("{action} has {valid} valid signature(s) from distinct list keys ([trust] keys); {needed} needed")]
    ResetThresholdNotMet {
        /// The command type.
        action: &'static str,
        /// Distinct valid list keys.
        valid: usize,
        /// The list threshold.
        needed: usize,
    },
}

impl CommandRejection {
    /// Stable machine-readable reason for `command.rejected` events.
    pub fn code(&self) -> &'static str {
        match self {
            CommandRejection::Oversize { .. } => "oversize",
            CommandRejection::Malformed(_) => "malformed",
            CommandRejection::UnknownFormat(_) => "unknown_format",
            CommandRejection::MissingSignature => "missing_signature",
            CommandRejection::UnknownKey(_) => "unknown_key",
            CommandRejection::BadSignature(_) => "bad_signature",
            CommandRejection::ThresholdNotMet { .. } => "threshold_not_met",
            CommandRejection::WrongSite { .. } => "wrong_site",
            CommandRejection::WrongDoor { .. } => "wrong_door",
            CommandRejection::NotYetValid { .. } => "not_yet_valid",
            CommandRejection::Expired { .. } => "expired",
            CommandRejection::LifetimeTooLong { .. } => "lifetime_too_long",
            CommandRejection::Replayed(_) => "replayed",
            CommandRejection::DoorNotNamed { .. } => "door_not_named",
            CommandRejection::ResetThresholdNotMet { .. } => "reset_threshold_not_met",
        }
    }
}

impl From<Rejection> for CommandRejection {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Oversize { size, max } => CommandRejection::Oversize { size, max },
            Rejection::UnknownFormat(m) => CommandRejection::UnknownFormat(m),
            Rejection::MissingSignature => CommandRejection::MissingSignature,
            Rejection::UnknownKey(k) => CommandRejection::UnknownKey(k),
            Rejection::BadSignature(k) => CommandRejection::BadSignature(k),
            Rejection::ThresholdNotMet { valid, needed } => {
                CommandRejection::ThresholdNotMet { valid, needed }
            }
            // The envelope check yields nothing else; anything else is a malformed command.
            other => CommandRejection::Malformed(other.to_string()),
        }
    }
}

/// Signs a command payload with each key; returns the envelope's JSON bytes (office side).
pub fn sign(payload: &CommandPayload, keys: &[(String, SigningKey)]) -> Vec<u8> {
    let bytes = serde_json::to_vec(payload).expect("a command payload serializes");
    list::sign_envelope(
        COMMAND_ENVELOPE_FORMAT,
        COMMAND_SIGNING_CONTEXT,
        &bytes,
        keys,
    )
}

/// Verifies a signed command against the door's policy, with one clock for both windows (see
/// [`verify_at`]).
pub fn verify(
    bytes: &[u8],
    policy: &CommandPolicy,
    now: Timestamp,
) -> Result<VerifiedCommand, CommandRejection> {
    verify_at(
        bytes,
        policy,
        CommandClocks {
            trusted: now,
            wall: now,
        },
    )
}

/// Verifies a signed command against the door's policy and clocks. The replay check (has this
/// id been seen?) needs the door's memory and is the caller's, after this passes.
///
/// Checks, in order: size, envelope and signatures by trusted keys (command or list keys, before
/// the payload is parsed), payload, the threshold of the keys the action needs, site, door
/// (`unlock_once` and resets must name it), validity window (at most
/// [`SHORT_COMMAND_MAX_LIFETIME`] for those) against the trusted time (the wall clock for
/// `reset_time_floor`).
pub fn verify_at(
    bytes: &[u8],
    policy: &CommandPolicy,
    clocks: CommandClocks,
) -> Result<VerifiedCommand, CommandRejection> {
    if bytes.len() > COMMAND_MAX_BYTES {
        return Err(CommandRejection::Oversize {
            size: bytes.len(),
            max: COMMAND_MAX_BYTES,
        });
    }
    let list_trust = policy.list_trust.as_ref().unwrap_or(&policy.trust);
    // Every signature must be by a key trusted for commands or for lists; which of them count
    // depends on the action, known only once the payload is parsed.
    let mut any = policy.trust.clone();
    for k in &list_trust.keys {
        if !any.keys.iter().any(|c| c.id == k.id && c.key == k.key) {
            any.keys.push(k.clone());
        }
    }
    any.threshold = policy.trust.threshold.min(list_trust.threshold).max(1);
    let (payload_bytes, signed_by) = list::verify_envelope(
        bytes,
        &any,
        COMMAND_ENVELOPE_FORMAT,
        COMMAND_SIGNING_CONTEXT,
    )?;
    let payload = parse_payload(&payload_bytes)?;
    let action = payload.command.name();
    let (needed_from, reset) = if payload.command.is_reset() {
        (list_trust, true)
    } else {
        (&policy.trust, false)
    };
    let valid = distinct_keys_of(needed_from, &any, &signed_by);
    if valid < needed_from.threshold {
        return Err(if reset {
            CommandRejection::ResetThresholdNotMet {
                action,
                valid,
                needed: needed_from.threshold,
            }
        } else {
            CommandRejection::ThresholdNotMet {
                valid,
                needed: needed_from.threshold,
            }
        });
    }
    let signed_by: Vec<String> = signed_by
        .into_iter()
        .filter(|id| {
            any.keys
                .iter()
                .find(|k| &k.id == id)
                .is_some_and(|k| needed_from.keys.iter().any(|w| w.key == k.key))
        })
        .collect();
    if let Some(site) = &policy.trust.site {
        if &payload.site != site {
            return Err(CommandRejection::WrongSite {
                command: payload.site,
                expected: site.clone(),
            });
        }
    }
    if let Some(door) = &policy.trust.door {
        if !payload.doors.iter().any(|d| d == door || d == ALL_DOORS) {
            return Err(CommandRejection::WrongDoor {
                door: door.clone(),
                doors: payload.doors,
            });
        }
    }
    let narrow = payload.command.is_narrow();
    if narrow && payload.doors.iter().any(|d| d == ALL_DOORS) {
        return Err(CommandRejection::DoorNotNamed { action });
    }
    let max = if narrow {
        policy.max_lifetime.min(SHORT_COMMAND_MAX_LIFETIME)
    } else {
        policy.max_lifetime
    };
    let lifetime_s = payload.expires_at.as_second() - payload.issued_at.as_second();
    if lifetime_s > max.as_secs() as i64 {
        return Err(CommandRejection::LifetimeTooLong {
            lifetime_s,
            max_s: max.as_secs(),
        });
    }
    let now = match payload.command {
        Action::ResetTimeFloor {} => clocks.wall,
        _ => clocks.trusted,
    };
    let skew = jiff::SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
    if payload.issued_at > now.saturating_add(skew).unwrap_or(now) {
        return Err(CommandRejection::NotYetValid {
            issued_at: payload.issued_at,
        });
    }
    if payload.expires_at <= now {
        return Err(CommandRejection::Expired {
            expires_at: payload.expires_at,
        });
    }
    Ok(VerifiedCommand { payload, signed_by })
}

/// How many distinct keys of `wanted` signed (`signed_by`: ids that verified under `any`).
fn distinct_keys_of(wanted: &TrustPolicy, any: &TrustPolicy, signed_by: &[String]) -> usize {
    let mut seen: Vec<[u8; 32]> = Vec::new();
    for id in signed_by {
        let Some(k) = any.keys.iter().find(|k| &k.id == id) else {
            continue;
        };
        let bytes = k.key.to_bytes();
        if wanted.keys.iter().any(|w| w.key == k.key) && !seen.contains(&bytes) {
            seen.push(bytes);
        }
    }
    seen.len()
}

fn parse_payload(bytes: &[u8]) -> Result<CommandPayload, CommandRejection> {
    #[derive(Deserialize)]
    struct FormatOnly {
        format: serde_json::Value,
    }
    let peek: FormatOnly = serde_json::from_slice(bytes).map_err(|e| {
        CommandRejection::Malformed(format!(
            "payload is not a JSON object with a \"format\" field: {e}"
        ))
    })?;
    if peek.format.as_u64() != Some(u64::from(COMMAND_PAYLOAD_FORMAT)) {
        return Err(CommandRejection::UnknownFormat(format!(
            "payload format {} (expected {COMMAND_PAYLOAD_FORMAT})",
            peek.format
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let payload: CommandPayload = serde_path_to_error::deserialize(de).map_err(|e| {
        CommandRejection::Malformed(format!("payload at {}: {}", e.path(), e.inner()))
    })?;
    if payload.expires_at <= payload.issued_at {
        return Err(CommandRejection::Malformed(
            "expires_at must be after issued_at".into(),
        ));
    }
    if payload.operator.trim().is_empty() {
        return Err(CommandRejection::Malformed("operator is empty".into()));
    }
    if payload.doors.is_empty() {
        return Err(CommandRejection::Malformed("doors is empty".into()));
    }
    if let Action::UnlockOnce { reason } = &payload.command {
        if reason.trim().is_empty() {
            return Err(CommandRejection::Malformed(
                "unlock_once needs a reason".into(),
            ));
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests;
