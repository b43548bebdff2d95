//! The office's event archive (`pintuctl archive`): every door's events, stored durably and
//! de-duplicated by `(door, seq)`, with gap detection.
//!
//! The archive is an MQTT client with a **persistent session** (clean session off, fixed client
//! id) and a QoS 1 subscription to `{prefix}/{site}/+/events`, so the broker queues events while
//! it is down. Acknowledgements are manual: a PUBACK goes out only after the event is flushed to
//! the sled store, so a crash never loses an event the broker thinks delivered (the broker sends
//! the unacknowledged ones again, and they are recognised as duplicates).
//!
//! Layout of the store (`--db DIR`, a sled database):
//! - tree `events`: key `[len u16 BE][door][seq u64 BE]` → the event's JSON exactly as received;
//!   a door's events sort by `seq`.
//! - tree `meta`: the site the archive belongs to and counters (received, stored, duplicates,
//!   conflicts, rejected).
//! - tree `rejected`: messages that could not be archived (not JSON, wrong schema, door or site
//!   not matching the topic, a different event under an archived `(door, seq)`), for inspection.
//!
//! sled allows one process at a time, so while the service runs, `pintuctl archive --gaps`,
//! `review` and `report` read through a small query socket the service serves next to its store
//! ([`ArchiveReader`]). Docs: `docs/archive.md`.
//!
//! - `store`: the sled store ([`Archive`]): storing, de-duplicating, gaps, counters;
//! - `query`: reading it, directly or through the service's query socket ([`ArchiveReader`]);
//! - `service`: the MQTT side ([`run`], [`ArchiveOptions`]).

mod query;
mod service;
mod store;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mqtt::settings::SettingsError;

pub use query::ArchiveReader;
pub use service::{run, ArchiveOptions};
pub use store::{parse_events, Archive};

/// Name of the query socket inside the store directory.
pub const SOCKET_NAME: &str = "archive.sock";
/// Largest event message accepted: what a door publishes at most.
const MAX_EVENT_BYTES: usize = crate::mqtt::EVENT_MAX_BYTES;

/// Archive failures.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The sled store could not be opened or written.
    #[error("archive store {path}: {source}")]
    Store {
        /// The store directory.
        path: PathBuf,
        /// The cause.
        source: sled::Error,
    },
    /// The store directory holds no archive.
    #[error("{0}: no archive here (start `pintuctl archive --db {0} --broker … --site …` first)")]
    NoArchive(String),
    /// The store belongs to another site.
    #[error("archive store {path} belongs to site {stored:?}, not {wanted:?}: use another --db")]
    WrongSite {
        /// The store directory.
        path: PathBuf,
        /// The site recorded in the store.
        stored: String,
        /// The site asked for.
        wanted: String,
    },
    /// The broker settings (flags, office file, files they name) are wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The query socket failed.
    #[error("archive query socket {path}: {message}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A background task of the archive failed.
    #[error("archive task failed: {0}")]
    Task(String),
    /// A stored event could not be decoded.
    #[error("archive store: event {door}#{seq} does not parse: {message}")]
    BadEvent {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: u64,
        /// The parser's message.
        message: String,
    },
    /// A record of the `rejected` tree is not what the archive writes.
    #[error("archive store: {0}")]
    Corrupt(String),
}

/// A message the archive kept in its `rejected` tree: not an archivable event, or a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// When it arrived.
    pub at: jiff::Timestamp,
    /// The topic it came on.
    pub topic: String,
    /// Why it was not archived.
    pub reason: String,
    /// The payload as text (bytes that are not UTF-8 replaced).
    pub payload: String,
}

/// What [`Archive::store`] did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A new event. `after` is the highest seq archived for the door before it, if any.
    New {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: u64,
    },
    /// The same event again (same `(door, seq)` and same `id`): ignored.
    Duplicate {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: u64,
    },
    /// A different event under an archived `(door, seq)`: the first one is kept, this one goes
    /// to the `rejected` tree.
    Conflict {
        /// Door id.
        door: String,
        /// Sequence number.
        seq: u64,
    },
    /// Not an archivable event (kept in the `rejected` tree with the reason).
    Rejected {
        /// Why.
        reason: String,
    },
}

/// A run of missing sequence numbers of one door: `from..=to` were never archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Door id.
    pub door: String,
    /// First missing seq.
    pub from: u64,
    /// Last missing seq.
    pub to: u64,
    /// Why the gap is expected, when the archive can tell: the event after it is a
    /// `store.rebuilt` with reason `seq_resumed` (the door lost its store and resumed numbering
    /// at its reservation, docs/events.md), or the gap is before the first archived event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Gap {
    /// How many events are missing.
    pub fn len(&self) -> u64 {
        self.to - self.from + 1
    }

    /// Never true (a gap misses at least one event); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One door's archived range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorRange {
    /// Door id.
    pub door: String,
    /// Events archived.
    pub events: u64,
    /// Lowest seq archived.
    pub first: u64,
    /// Highest seq archived.
    pub last: u64,
}

/// Counters and ranges of an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The site.
    pub site: String,
    /// Messages received.
    pub received: u64,
    /// Events stored (first deliveries).
    pub stored: u64,
    /// Duplicate deliveries ignored.
    pub duplicates: u64,
    /// Different events under an archived `(door, seq)`.
    pub conflicts: u64,
    /// Messages that were not archivable events.
    pub rejected: u64,
    /// Per door.
    pub doors: Vec<DoorRange>,
}
