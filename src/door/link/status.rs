//! The door's retained status message (`{prefix}/{site}/{door}/status`, schema
//! `pintu.status.v1`, `docs/mqtt.md`): its JSON shape, the outbox level, the kernel's NTP state,
//! and which events change what it says.

use rumqttc::v5::mqttbytes::QoS;
use serde::Serialize;

use super::window::Sent;
use super::{publish_packet_size, Link};
use crate::core::event::{EventDraft, EventKind};

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

impl Link {
    pub(super) fn publish_status(&mut self) {
        let message = self.status_message();
        self.publish_retained_status(&message, Sent::Status);
    }

    pub(super) fn publish_retained_status(&mut self, message: &StatusMessage, kind: Sent) {
        let Some(client) = &self.client else { return };
        let bytes = match serde_json::to_vec(message) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("status does not serialize: {e}");
                return;
            }
        };
        if publish_packet_size(self.topics.status.len(), bytes.len()) > self.max_packet {
            // Over the broker's limit rumqttc would drop the connection: skip it, say why.
            tracing::warn!(
                size = bytes.len(),
                max_packet = self.max_packet,
                "status not published: larger than the broker's maximum packet size"
            );
            return;
        }
        match client.try_publish(self.topics.status.clone(), QoS::AtLeastOnce, true, bytes) {
            Ok(()) => self.window.queue_status(kind),
            Err(e) => tracing::warn!("cannot queue the status: {e}"),
        }
    }

    pub(super) fn status_message(&self) -> StatusMessage {
        let cfg = self.handle.config();
        let status = self.handle.status();
        StatusMessage {
            schema: STATUS_SCHEMA,
            state: "online",
            site: status.site.clone(),
            door: status.door.clone(),
            time: Some(status.now),
            online: Some(OnlineStatus {
                version: status.version.clone(),
                list: status.list.as_ref().map(|l| ActiveListStatus {
                    version: l.version,
                    issued_at: l.issued_at,
                    expires_at: l.expires_at,
                    expired: l.expired,
                    entries: l.entries,
                }),
                clock: StatusClock {
                    trusted: status.clock.as_ref().is_none_or(|c| c.trusted),
                    ntp_synced: ntp_synced(),
                },
                occupancy: status.occupancy,
                visitors_inside: status.visitors_inside,
                outbox: StatusOutbox {
                    depth: status.outbox_depth,
                    level: outbox_level(
                        status.outbox_depth,
                        cfg.outbox_warning,
                        cfg.outbox_critical,
                    ),
                    set_aside: status.set_aside,
                    delivery_refused: status.delivery_refused.clone(),
                },
                lock: format!("{:?}", status.lock).to_lowercase(),
                contact: status.contact.clone().unwrap_or_else(|| "unknown".into()),
                lockdown: status
                    .lockdown
                    .clone()
                    .map(|allow_role| StatusLockdown { allow_role }),
                readers: status
                    .readers
                    .iter()
                    .map(|r| StatusReader {
                        name: r.name.clone(),
                        backend: r.backend.clone(),
                        state: r.state.clone(),
                    })
                    .collect(),
                heartbeat_s: self.heartbeat.as_secs(),
                bench: status.bench,
            }),
        }
    }

    /// Raises or clears the outbox alarm when the depth crosses a threshold.
    pub(super) fn check_outbox_level(&mut self) {
        let cfg = self.handle.config();
        let depth = self.handle.store().outbox_depth();
        let level = outbox_level(depth, cfg.outbox_warning, cfg.outbox_critical);
        if level == self.outbox_level {
            return;
        }
        let previous = std::mem::replace(&mut self.outbox_level, level);
        self.status_due = true;
        let draft = match (previous, level) {
            (_, "ok") => {
                tracing::info!(depth, "outbox back below its warning threshold");
                EventDraft::new(EventKind::OutboxAlarmCleared)
                    .detail(format!("{depth} events waiting"))
            }
            // Falling from critical to warning: status says so; no new alarm.
            ("critical", _) => return,
            _ => {
                tracing::warn!(depth, level, "outbox alarm: events are not being delivered");
                EventDraft::new(EventKind::OutboxAlarm)
                    .reason(level)
                    .detail(format!(
                        "{depth} events waiting (warning at {}, critical at {})",
                        cfg.outbox_warning, cfg.outbox_critical
                    ))
            }
        };
        self.handle.record(draft);
    }
}
