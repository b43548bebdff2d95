//! The door's retained status message (`{prefix}/{site}/{door}/status`, schema
//! `pintu.status.v1`, `docs/mqtt.md`): its JSON shape, the outbox level, the kernel's NTP state,
//! and which events change what it says.

use serde::Serialize;

/// Schema id of the status messages.
pub const STATUS_SCHEMA: &str = "pintu.status.v1";

/// The retained status message.
#[derive(Debug, Serialize)]
pub struct StatusMessage {
    /// [`STATUS_SCHEMA`].
    pub schema: &'static str,
    /// `online` or `offline`.
    pub state: &'static str,
    /// Site id.
    pub site: String,
    /// Door id.
    pub door: String,
    /// When it was published (absent in the last will, which the broker sends later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<jiff::Timestamp>,
    /// The rest, only when online.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineStatus>,
}

/// Status fields of a running door.
#[derive(Debug, Serialize)]
pub struct OnlineStatus {
    /// pintud version.
    pub version: String,
    /// The active list, if any.
    pub list: Option<ActiveListStatus>,
    /// Wall-clock trust.
    pub clock: StatusClock,
    /// People inside (presence).
    pub occupancy: usize,
    /// Visitors inside.
    pub visitors_inside: usize,
    /// Events not yet delivered.
    pub outbox: StatusOutbox,
    /// `secured` or `released`.
    pub lock: String,
    /// Door contact: `open`, `closed` or `unknown`.
    pub contact: String,
    /// The lockdown in force, if any.
    pub lockdown: Option<StatusLockdown>,
    /// Configured readers.
    pub readers: Vec<StatusReader>,
    /// Seconds between status messages at most.
    pub heartbeat_s: u64,
    /// A test bench (`[door] bench = true`): the control socket can open this door's real lock.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bench: bool,
}

/// The active list as status reports it (version, validity, size).
#[derive(Debug, Serialize)]
pub struct ActiveListStatus {
    /// Version.
    pub version: u64,
    /// Signed at.
    pub issued_at: jiff::Timestamp,
    /// Expires at.
    pub expires_at: jiff::Timestamp,
    /// Whether it has expired (every tap is denied).
    pub expired: bool,
    /// Entries.
    pub entries: usize,
}

/// Clock state in status.
#[derive(Debug, Serialize)]
pub struct StatusClock {
    /// Whether the wall clock is trusted.
    pub trusted: bool,
    /// NTP synchronisation as the kernel reports it, when known.
    pub ntp_synced: Option<bool>,
}

/// Outbox state in status.
#[derive(Debug, Serialize)]
pub struct StatusOutbox {
    /// Events waiting.
    pub depth: u64,
    /// `ok`, `warning` or `critical` against the configured thresholds.
    pub level: &'static str,
    /// Events set aside (not deliverable on their own, kept in the door's store).
    pub set_aside: u64,
    /// Why the broker refuses the door's events, while it does (`null` otherwise).
    pub delivery_refused: Option<String>,
}

/// A lockdown in status.
#[derive(Debug, Serialize)]
pub struct StatusLockdown {
    /// The role still admitted.
    pub allow_role: String,
}

/// A reader in status.
#[derive(Debug, Serialize)]
pub struct StatusReader {
    /// Name.
    pub name: String,
    /// Backend.
    pub backend: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
}

/// The outbox depth level against the thresholds.
pub fn outbox_level(depth: u64, warning: u64, critical: u64) -> &'static str {
    if depth >= critical {
        "critical"
    } else if depth >= warning {
        "warning"
    } else {
        "ok"
    }
}

/// Whether the kernel's clock is NTP-synchronised (`adjtimex` does not report `TIME_ERROR`).
pub fn ntp_synced() -> Option<bool> {
    // SAFETY: with `modes == 0`, adjtimex only reads the kernel's clock state into `tx`, a
    // zero-initialised plain C struct owned by this frame.
    let state = unsafe {
        let mut tx: nix::libc::timex = std::mem::zeroed();
        nix::libc::adjtimex(&mut tx)
    };
    if state < 0 {
        return None;
    }
    Some(state != nix::libc::TIME_ERROR)
}

/// Events whose kind changes what status says.
pub fn status_relevant(event_json: &[u8]) -> bool {
    const KINDS: [&[u8]; 9] = [
        b"\"kind\":\"lock.",
        b"\"kind\":\"reader.",
        b"\"kind\":\"list.",
        b"\"kind\":\"lockdown.",
        b"\"kind\":\"outbox.",
        b"\"kind\":\"door.",
        b"\"kind\":\"hardware.",
        b"\"kind\":\"store.",
        b"\"kind\":\"daemon.",
    ];
    KINDS
        .iter()
        .any(|k| event_json.windows(k.len()).any(|w| w == *k))
}

/// Just the kind of a stored event.
#[derive(serde::Deserialize)]
pub struct KindOnly {
    /// The event kind, e.g. `lock.secured`.
    pub kind: String,
}
