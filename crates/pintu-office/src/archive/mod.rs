//! The door-event archive inside the office service: every event a door publishes, stored once
//! in the office database, so the console, review and report read it while ingest runs.
//!
//! The ingest ([`run`]) is an MQTT client with a **persistent session** (clean start off, a
//! session that never expires, a fixed client id per instance) and a QoS 1 **shared
//! subscription** `$share/pintu-office/{prefix}/{site}/+/events`: with several instances on one
//! PostgreSQL the broker hands each event to one of them. Acknowledgements are manual: a burst
//! of events is stored in one write transaction and PUBACKed only after it **committed**, so a
//! crash never loses an event the broker thinks delivered; the broker sends the
//! unacknowledged ones again and they are recognised as duplicates by `(door, seq)`.
//!
//! Everything the ingest knows is in the database (`migrations/0006_archive.sql`):
//! `door_events` (the events as received), `ingest_doors` (per door: count, first and highest
//! seq), `ingest_gaps` (missing seq ranges, kept current), `ingest_problems` (conflicts, lost
//! sessions), `ingest_rejected` (messages that are not archivable events), `ingest_counters`,
//! `ingest_instances`. Docs: `docs/archive.md`.
//!
//! - `check`: the checks a message must pass, without I/O;
//! - `store`: one batch in one write transaction ([`store_batch`]);
//! - `ingest`: the MQTT side ([`run`]);
//! - `query`: what review, report and the console read;
//! - `import`: the sled archive of `pintuctl archive` brought in ([`import_sled`]);
//! - [`api`]: the HTTP routes that read it (`/api/v1/archive/…`).

pub mod api;
mod check;
mod import;
mod ingest;
mod query;
mod store;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::db::DbError;

pub use check::{check, digest, Checked};
pub use import::{import_sled, ImportReport};
pub use ingest::{client_id, run, share_filter, SHARE_GROUP};
pub use query::{
    event, events, gaps, problems, rejected, stats, Cursor, EventQuery, Page, MAX_PAGE,
};
pub use store::{store_batch, Message};

/// Largest event message accepted: what a door publishes at most.
pub const MAX_EVENT_BYTES: usize = pintu::mqtt::EVENT_MAX_BYTES;

/// Archive failures.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The instance name cannot be part of an MQTT client id.
    #[error("ingest instance name {0:?}: use 1-64 letters, digits, '.', '_' or '-'")]
    Instance(String),
    /// The sled archive could not be read.
    #[error("importing the sled archive: {0}")]
    Sled(#[from] pintu::office::archive::ArchiveError),
    /// The sled archive belongs to another site.
    #[error("the sled archive {path} belongs to site {stored:?}, not this office's {wanted:?}")]
    WrongSite {
        /// The sled store directory.
        path: String,
        /// The site recorded in it.
        stored: String,
        /// The office's site.
        wanted: String,
    },
    /// A background task failed.
    #[error("archive task failed: {0}")]
    Task(String),
}

impl From<sqlx::Error> for ArchiveError {
    fn from(e: sqlx::Error) -> Self {
        ArchiveError::Db(DbError::Query(e))
    }
}

/// What [`store_batch`] did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A new event.
    New {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: i64,
        /// The gap it opened (`from..=to` missing before it), if any.
        gap: Option<(i64, i64)>,
        /// It arrived late and filled (part of) a gap.
        filled: bool,
    },
    /// The same bytes again under an archived `(door, seq)`: ignored, counted.
    Duplicate {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: i64,
    },
    /// Different bytes under an archived `(door, seq)`: the first is kept, this one goes to
    /// `ingest_problems` with both digests.
    Conflict {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: i64,
    },
    /// Not an archivable event (kept in `ingest_rejected` with the reason).
    Rejected {
        /// Why.
        reason: String,
    },
}

/// A run of missing sequence numbers of one door: `from..=to` were never archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Door id.
    pub door: String,
    /// First missing seq.
    pub from: i64,
    /// Last missing seq.
    pub to: i64,
    /// Why the gap is expected, when the archive can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the ingest found it (Unix ms).
    pub found_at_ms: i64,
}

impl Gap {
    /// How many events are missing.
    pub fn len(&self) -> i64 {
        self.to - self.from + 1
    }

    /// Never true (a gap misses at least one event); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One door's archived range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoorRange {
    /// Door id.
    pub door: String,
    /// Events archived.
    pub events: i64,
    /// Lowest seq archived.
    pub first: i64,
    /// Highest seq archived.
    pub last: i64,
    /// When the ingest last stored an event of it (Unix ms).
    pub last_seen_ms: i64,
}

/// The ingest's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages received.
    pub received: i64,
    /// Events stored (first deliveries).
    pub stored: i64,
    /// Duplicate deliveries ignored.
    pub duplicates: i64,
    /// Different events under an archived `(door, seq)`.
    pub conflicts: i64,
    /// Messages that were not archivable events.
    pub rejected: i64,
}

/// Counters and per-door ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The counters.
    #[serde(flatten)]
    pub counters: Counters,
    /// Per door, by door id.
    pub doors: Vec<DoorRange>,
}

/// One archived event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedEvent {
    /// Door id.
    pub door: String,
    /// Sequence number.
    pub seq: i64,
    /// The event's time (Unix ms).
    pub at_ms: i64,
    /// Event kind.
    pub kind: String,
    /// Holder id.
    pub holder: Option<String>,
    /// Masked card id.
    pub card: Option<String>,
    /// The event's id.
    pub event_id: String,
    /// The event as the door published it (JSON text).
    pub body: String,
    /// When it was stored (Unix ms).
    pub received_at_ms: i64,
}

impl ArchivedEvent {
    /// The event parsed as schema v1 (`None` if the door sent fields this version does not
    /// know: the body is kept as received).
    pub fn parsed(&self) -> Option<pintu::core::event::Event> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Something the ingest found wrong (`ingest_problems`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Row id.
    pub id: String,
    /// `conflict` or `session_lost`.
    pub kind: String,
    /// Door id (conflicts).
    pub door: Option<String>,
    /// Sequence number (conflicts).
    pub seq: Option<i64>,
    /// The topic it came on (conflicts).
    pub topic: Option<String>,
    /// Digest of the archived event (conflicts).
    pub kept_digest: Option<String>,
    /// Digest of the other one (conflicts).
    pub other_digest: Option<String>,
    /// The other one's body (conflicts).
    pub other_body: Option<String>,
    /// In words.
    pub detail: String,
    /// The ingest instance that found it.
    pub instance: String,
    /// When (Unix ms).
    pub found_at_ms: i64,
}

/// A message that was not archived (`ingest_rejected`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedMessage {
    /// Row id.
    pub id: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The topic it came on.
    pub topic: String,
    /// Why it was not archived.
    pub reason: String,
    /// The payload as text.
    pub payload: String,
    /// SHA-256 of the payload bytes, hex.
    pub digest: String,
    /// The ingest instance that received it.
    pub instance: String,
}
