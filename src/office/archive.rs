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

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event as MqttEvent, MqttOptions};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::event::{Event, EVENT_SCHEMA};
use crate::mqtt::settings::SettingsError;
use crate::mqtt::{self, topics, BrokerArgs, BrokerSettings};

/// Name of the query socket inside the store directory.
pub const SOCKET_NAME: &str = "archive.sock";
/// Largest event message accepted: what a door publishes at most.
const MAX_EVENT_BYTES: usize = mqtt::EVENT_MAX_BYTES;
/// Most messages made durable with one flush.
const BATCH: usize = 512;

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

/// The fields an event must have to be archived. The rest is kept as received.
#[derive(Deserialize)]
struct Head {
    schema: String,
    id: String,
    seq: u64,
    site: String,
    door: String,
}

/// The archive's sled store.
pub struct Archive {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    meta: sled::Tree,
    rejected: sled::Tree,
}

fn door_prefix(door: &str) -> Vec<u8> {
    let len = u16::try_from(door.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(door.len() + 10);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(door.as_bytes());
    k
}

fn event_key(door: &str, seq: u64) -> Vec<u8> {
    let mut k = door_prefix(door);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Splits an `events` key into door and seq.
fn split_key(key: &[u8]) -> Option<(String, u64)> {
    let len = usize::from(u16::from_be_bytes(key.get(..2)?.try_into().ok()?));
    let door = std::str::from_utf8(key.get(2..2 + len)?).ok()?.to_string();
    let seq = u64::from_be_bytes(key.get(2 + len..2 + len + 8)?.try_into().ok()?);
    Some((door, seq))
}

const COUNTERS: [&str; 5] = ["received", "stored", "duplicates", "conflicts", "rejected"];

impl Archive {
    /// Opens (creating if needed) the archive of `site` in `dir`. Refuses a store of another
    /// site.
    pub fn open(dir: &Path, site: &str) -> Result<Archive, ArchiveError> {
        let archive = Archive::open_dir(dir)?;
        let stored = archive.site()?;
        match stored {
            Some(s) if s != site => {
                return Err(ArchiveError::WrongSite {
                    path: dir.to_path_buf(),
                    stored: s,
                    wanted: site.to_string(),
                })
            }
            Some(_) => {}
            None => {
                archive
                    .meta
                    .insert("site", site.as_bytes())
                    .map_err(|e| archive.err(e))?;
                archive.flush()?;
            }
        }
        Ok(archive)
    }

    /// Opens an existing archive (for reading, when no service holds it).
    pub fn open_existing(dir: &Path) -> Result<Archive, ArchiveError> {
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(ArchiveError::NoArchive(dir.display().to_string()));
        }
        Archive::open_dir(dir)
    }

    fn open_dir(dir: &Path) -> Result<Archive, ArchiveError> {
        let err = |source| ArchiveError::Store {
            path: dir.to_path_buf(),
            source,
        };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 << 20)
            .open()
            .map_err(err)?;
        let events = db.open_tree("events").map_err(err)?;
        let meta = db.open_tree("meta").map_err(err)?;
        let rejected = db.open_tree("rejected").map_err(err)?;
        Ok(Archive {
            path: dir.to_path_buf(),
            db,
            events,
            meta,
            rejected,
        })
    }

    fn err(&self, source: sled::Error) -> ArchiveError {
        ArchiveError::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The site recorded in the store.
    pub fn site(&self) -> Result<Option<String>, ArchiveError> {
        Ok(self
            .meta
            .get("site")
            .map_err(|e| self.err(e))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn bump(&self, counter: &str) -> Result<(), ArchiveError> {
        self.meta
            .update_and_fetch(counter, |old| {
                let n = old
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn counter(&self, counter: &str) -> Result<u64, ArchiveError> {
        Ok(self
            .meta
            .get(counter)
            .map_err(|e| self.err(e))?
            .and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn reject(&self, topic: &str, payload: &[u8], reason: &str) -> Result<Stored, ArchiveError> {
        let id = self.db.generate_id().map_err(|e| self.err(e))?;
        let record = serde_json::json!({
            "at": jiff::Timestamp::now(),
            "topic": topic,
            "reason": reason,
            "payload": String::from_utf8_lossy(&payload[..payload.len().min(MAX_EVENT_BYTES)]),
        });
        self.rejected
            .insert(id.to_be_bytes(), record.to_string().as_bytes())
            .map_err(|e| self.err(e))?;
        self.bump("rejected")?;
        Ok(Stored::Rejected {
            reason: reason.to_string(),
        })
    }

    /// Stores one message received on `topic` (not yet durable: call [`Archive::flush`]).
    /// The topic's door level must match the event's `door`, and the event's site the
    /// archive's site.
    pub fn store(&self, topic: &str, payload: &[u8]) -> Result<Stored, ArchiveError> {
        self.bump("received")?;
        if payload.len() > MAX_EVENT_BYTES {
            return self.reject(topic, payload, "oversize");
        }
        let head: Head = match serde_json::from_slice(payload) {
            Ok(h) => h,
            Err(e) => return self.reject(topic, payload, &format!("malformed: {e}")),
        };
        if head.schema != EVENT_SCHEMA {
            return self.reject(topic, payload, &format!("unknown schema {:?}", head.schema));
        }
        if topics::door_of(topic) != Some(head.door.as_str()) {
            return self.reject(
                topic,
                payload,
                &format!("door {:?} does not match the topic", head.door),
            );
        }
        if let Some(site) = self.site()? {
            if site != head.site {
                return self.reject(
                    topic,
                    payload,
                    &format!("site {:?} is not the archive's {site:?}", head.site),
                );
            }
        }
        let key = event_key(&head.door, head.seq);
        let previous = self
            .events
            .compare_and_swap(&key, None as Option<&[u8]>, Some(payload))
            .map_err(|e| self.err(e))?;
        match previous {
            Ok(()) => {
                self.bump("stored")?;
                Ok(Stored::New {
                    door: head.door,
                    seq: head.seq,
                })
            }
            Err(cas) => {
                // A door republishes an event byte for byte: the same id with other content
                // (or another id) under an archived (door, seq) is a conflict, not a duplicate.
                let same = cas.current.as_deref() == Some(payload);
                if same {
                    self.bump("duplicates")?;
                    Ok(Stored::Duplicate {
                        door: head.door,
                        seq: head.seq,
                    })
                } else {
                    self.bump("conflicts")?;
                    let reason = format!(
                        "conflict: another event (id {}) is archived as {}#{}",
                        head.id, head.door, head.seq
                    );
                    // Counted as a conflict, kept with the rejected messages.
                    let id = self.db.generate_id().map_err(|e| self.err(e))?;
                    let record = serde_json::json!({
                        "at": jiff::Timestamp::now(), "topic": topic, "reason": reason,
                        "payload": String::from_utf8_lossy(payload),
                    });
                    self.rejected
                        .insert(id.to_be_bytes(), record.to_string().as_bytes())
                        .map_err(|e| self.err(e))?;
                    Ok(Stored::Conflict {
                        door: head.door,
                        seq: head.seq,
                    })
                }
            }
        }
    }

    /// Makes everything stored so far durable (one fsync).
    pub fn flush(&self) -> Result<(), ArchiveError> {
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The highest seq archived for each door.
    pub fn highest(&self) -> Result<HashMap<String, u64>, ArchiveError> {
        Ok(self
            .stats()?
            .doors
            .into_iter()
            .map(|d| (d.door, d.last))
            .collect())
    }

    /// Every archived event's JSON, door by door in seq order; only `door`'s with `Some`.
    pub fn raw_events(&self, door: Option<&str>) -> Result<Vec<Vec<u8>>, ArchiveError> {
        let iter = match door {
            Some(d) => self.events.scan_prefix(door_prefix(d)),
            None => self.events.iter(),
        };
        let mut out = Vec::new();
        for item in iter {
            let (_, v) = item.map_err(|e| self.err(e))?;
            out.push(v.to_vec());
        }
        Ok(out)
    }

    /// Every archived event, parsed (see [`parse_events`]).
    pub fn events(&self, door: Option<&str>) -> Result<Vec<Event>, ArchiveError> {
        parse_events(self.raw_events(door)?)
    }

    /// The missing seq ranges of every door, from seq 1 (a door numbers its events from 1).
    pub fn gaps(&self) -> Result<Vec<Gap>, ArchiveError> {
        let mut gaps = Vec::new();
        let mut current: Option<(String, u64)> = None;
        for item in self.events.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let Some((door, seq)) = split_key(&k) else {
                continue;
            };
            let prev = match &current {
                Some((d, s)) if *d == door => *s,
                _ => 0,
            };
            if seq > prev + 1 {
                let note = if prev == 0 {
                    Some("before the first archived event".to_string())
                } else if resumes_seq(&v) {
                    Some("the door lost its store and resumed numbering (store.rebuilt seq_resumed follows)".to_string())
                } else {
                    None
                };
                gaps.push(Gap {
                    door: door.clone(),
                    from: prev + 1,
                    to: seq - 1,
                    note,
                });
            }
            current = Some((door, seq));
        }
        Ok(gaps)
    }

    /// Counters and per-door ranges.
    pub fn stats(&self) -> Result<Stats, ArchiveError> {
        let mut doors: Vec<DoorRange> = Vec::new();
        for item in self.events.iter().keys() {
            let k = item.map_err(|e| self.err(e))?;
            let Some((door, seq)) = split_key(&k) else {
                continue;
            };
            match doors.last_mut() {
                Some(d) if d.door == door => {
                    d.events += 1;
                    d.last = seq;
                }
                _ => doors.push(DoorRange {
                    door,
                    events: 1,
                    first: seq,
                    last: seq,
                }),
            }
        }
        let c = |name| self.counter(name);
        Ok(Stats {
            site: self.site()?.unwrap_or_default(),
            received: c(COUNTERS[0])?,
            stored: c(COUNTERS[1])?,
            duplicates: c(COUNTERS[2])?,
            conflicts: c(COUNTERS[3])?,
            rejected: c(COUNTERS[4])?,
            doors,
        })
    }
}

/// True when `event` is a `store.rebuilt` with reason `seq_resumed`.
fn resumes_seq(event: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct KindReason {
        kind: String,
        #[serde(default)]
        reason: Option<String>,
    }
    serde_json::from_slice::<KindReason>(event)
        .map(|e| e.kind == "store.rebuilt" && e.reason.as_deref() == Some("seq_resumed"))
        .unwrap_or(false)
}

/// Parses archived events. An event that does not parse as schema v1 is an error naming it
/// (the archive only stores messages whose head parsed).
pub fn parse_events(raw: Vec<Vec<u8>>) -> Result<Vec<Event>, ArchiveError> {
    raw.into_iter()
        .map(|bytes| {
            serde_json::from_slice::<Event>(&bytes).map_err(|e| {
                let head: Option<Head> = serde_json::from_slice(&bytes).ok();
                ArchiveError::BadEvent {
                    door: head.as_ref().map(|h| h.door.clone()).unwrap_or_default(),
                    seq: head.map(|h| h.seq).unwrap_or(0),
                    message: e.to_string(),
                }
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading an archive: directly, or through the running service's query socket
// ---------------------------------------------------------------------------------------------

/// A query to the archive service.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Query {
    Events { door: Option<String> },
    Gaps,
    Stats,
}

/// Reads an archive: through the service's query socket when it runs, else from the store.
pub enum ArchiveReader {
    /// The store, opened by this process.
    Store(Archive),
    /// The running service's query socket.
    Socket(PathBuf),
}

impl ArchiveReader {
    /// Opens the archive in `dir`: the service's socket (`dir/archive.sock`) if it answers,
    /// else the store itself.
    pub fn open(dir: &Path) -> Result<ArchiveReader, ArchiveError> {
        let socket = dir.join(SOCKET_NAME);
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(ArchiveReader::Socket(socket));
        }
        Archive::open_existing(dir).map(ArchiveReader::Store)
    }

    fn ask<T: serde::de::DeserializeOwned>(
        socket: &Path,
        query: &Query,
    ) -> Result<Vec<T>, ArchiveError> {
        let err = |message: String| ArchiveError::Socket {
            path: socket.to_path_buf(),
            message,
        };
        let mut stream =
            std::os::unix::net::UnixStream::connect(socket).map_err(|e| err(e.to_string()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| err(e.to_string()))?;
        let mut line = serde_json::to_vec(query).map_err(|e| err(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(|e| err(e.to_string()))?;
        let mut items = Vec::new();
        let mut end = None;
        for l in BufReader::new(stream).lines() {
            let l = l.map_err(|e| err(e.to_string()))?;
            if let Some(rest) = l.strip_prefix("E ") {
                return Err(err(rest.to_string()));
            }
            if let Some(n) = l.strip_prefix("END ") {
                end = n.trim().parse::<usize>().ok();
                break;
            }
            items.push(serde_json::from_str(&l).map_err(|e| err(format!("bad reply: {e}")))?);
        }
        match end {
            Some(n) if n == items.len() => Ok(items),
            _ => Err(err("the reply was cut short".into())),
        }
    }

    /// Every archived event (see [`Archive::events`]).
    pub fn events(&self, door: Option<&str>) -> Result<Vec<Event>, ArchiveError> {
        match self {
            ArchiveReader::Store(a) => a.events(door),
            ArchiveReader::Socket(s) => {
                let raw: Vec<serde_json::Value> = ArchiveReader::ask(
                    s,
                    &Query::Events {
                        door: door.map(str::to_string),
                    },
                )?;
                parse_events(
                    raw.into_iter()
                        .map(|v| serde_json::to_vec(&v).unwrap_or_default())
                        .collect(),
                )
            }
        }
    }

    /// The missing seq ranges (see [`Archive::gaps`]).
    pub fn gaps(&self) -> Result<Vec<Gap>, ArchiveError> {
        match self {
            ArchiveReader::Store(a) => a.gaps(),
            ArchiveReader::Socket(s) => ArchiveReader::ask(s, &Query::Gaps),
        }
    }

    /// Counters and ranges (see [`Archive::stats`]).
    pub fn stats(&self) -> Result<Stats, ArchiveError> {
        match self {
            ArchiveReader::Store(a) => a.stats(),
            ArchiveReader::Socket(s) => ArchiveReader::ask::<Stats>(s, &Query::Stats)?
                .pop()
                .ok_or_else(|| ArchiveError::Socket {
                    path: s.clone(),
                    message: "empty reply".into(),
                }),
        }
    }
}

/// Serves queries on `socket` until `stop`: one JSON query line in, JSON lines out, then
/// `END <count>` (or `E <message>`).
async fn serve_queries(
    archive: Arc<Archive>,
    listener: tokio::net::UnixListener,
    stop: CancellationToken,
) {
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        let Ok((stream, _)) = conn else {
            continue;
        };
        let archive = archive.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(read).take(4096);
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = tokio::task::spawn_blocking(move || answer(&archive, &line)).await;
            let text = match answer {
                Ok(Ok(lines)) => {
                    let n = lines.len();
                    let mut t = lines.join("\n");
                    if n > 0 {
                        t.push('\n');
                    }
                    t.push_str(&format!("END {n}\n"));
                    t
                }
                Ok(Err(e)) => format!("E {}\n", e.replace('\n', " ")),
                Err(e) => format!("E {e}\n"),
            };
            let _ = write.write_all(text.as_bytes()).await;
            let _ = write.shutdown().await;
        });
    }
}

fn answer(archive: &Archive, line: &str) -> Result<Vec<String>, String> {
    let query: Query = serde_json::from_str(line.trim()).map_err(|e| format!("bad query: {e}"))?;
    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }
    match query {
        Query::Events { door } => Ok(archive
            .raw_events(door.as_deref())
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|raw| String::from_utf8_lossy(&raw).replace('\n', " "))
            .collect()),
        Query::Gaps => Ok(archive
            .gaps()
            .map_err(|e| e.to_string())?
            .iter()
            .map(json)
            .collect()),
        Query::Stats => Ok(vec![json(&archive.stats().map_err(|e| e.to_string())?)]),
    }
}

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

/// How the archive connects and where it stores.
#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    /// The broker (the shared settings). Keep the client id fixed (default
    /// `pintu-archive-{site}`): the broker keeps the session and queues events for it.
    pub broker: BrokerSettings,
    /// Site id.
    pub site: String,
    /// The query socket (default `{db}/archive.sock`); `None` serves none.
    pub socket: Option<PathBuf>,
}

impl ArchiveOptions {
    /// The archive of `site` with the broker `args` name (flags over an office file), its query
    /// socket at `socket`. The client id defaults to `pintu-archive-{site}`. Plain TCP is
    /// refused unless `--insecure` is given: events and the broker password would cross the
    /// network in clear.
    pub fn from_args(
        args: &BrokerArgs,
        site: &str,
        socket: Option<PathBuf>,
    ) -> Result<ArchiveOptions, ArchiveError> {
        let draft = args.draft()?;
        let named = draft.host.clone().unwrap_or_default();
        if draft.ca_file.is_none() && !draft.insecure {
            return Err(SettingsError::Settings(format!(
                "--broker {named}: no --ca-file, so events and the broker password would cross the \
                 network in clear; give --ca-file, or --insecure to allow plain TCP"
            ))
            .into());
        }
        let broker = draft
            .resolve(|| format!("pintu-archive-{site}"))?
            .ok_or_else(|| SettingsError::Settings("--broker is required".into()))?;
        Ok(ArchiveOptions {
            broker,
            site: site.to_string(),
            socket,
        })
    }

    /// The events topic filter: `{prefix}/{site}/+/events`.
    pub fn filter(&self) -> String {
        topics::events_filter(&self.broker.topic_prefix, &self.site)
    }

    fn mqtt(&self) -> MqttOptions {
        let mut o = self.broker.options_v5();
        // The broker keeps the subscription and queues events while the archive is away. With
        // MQTT 5 a session lasts only as long as its expiry interval: never expire it.
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(u32::MAX));
        // PUBACK only after the event is flushed to disk.
        o.set_manual_acks(true);
        o.set_max_packet_size(Some((MAX_EVENT_BYTES + 1024) as u32));
        o
    }
}

/// What the connection task tells the writer.
enum ConnMsg {
    Connected {
        generation: u64,
        client: AsyncClient,
        session_present: bool,
    },
    Publish {
        generation: u64,
        publish: Publish,
    },
    SubAck {
        ok: bool,
    },
    Disconnected {
        generation: u64,
        error: String,
    },
}

impl mqtt::ConnectionReport for ConnMsg {
    fn connected(generation: u64, client: AsyncClient, ack: &ConnAck) -> Self {
        ConnMsg::Connected {
            generation,
            client,
            session_present: ack.session_present,
        }
    }

    fn event(generation: u64, event: MqttEvent) -> Option<Self> {
        match event {
            MqttEvent::Incoming(Packet::Publish(publish)) => Some(ConnMsg::Publish {
                generation,
                publish,
            }),
            MqttEvent::Incoming(Packet::SubAck(ack)) => Some(ConnMsg::SubAck {
                ok: ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
            }),
            _ => None,
        }
    }

    fn disconnected(generation: u64, error: String) -> Self {
        ConnMsg::Disconnected { generation, error }
    }
}

/// Binds the query socket (replacing a stale one), mode 0660.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, ArchiveError> {
    let err = |e: std::io::Error| ArchiveError::Socket {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ArchiveError::Socket {
            path: path.to_path_buf(),
            message: "another archive serves this socket".into(),
        });
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(listener)
}

/// Runs the archive until `stop`: connects, subscribes, stores every event durably before
/// acknowledging it, reconnects with backoff, serves queries. Returns the final counters.
pub async fn run(
    archive: Arc<Archive>,
    opts: ArchiveOptions,
    stop: CancellationToken,
) -> Result<Stats, ArchiveError> {
    let filter = opts.filter();
    let serve_stop = CancellationToken::new();
    let server = match &opts.socket {
        Some(path) => {
            let listener = bind_socket(path)?;
            Some(tokio::spawn(serve_queries(
                archive.clone(),
                listener,
                serve_stop.clone(),
            )))
        }
        None => None,
    };
    let mut highest = archive.highest()?;
    let stats = archive.stats()?;
    tracing::info!(
        host = %opts.broker.host, port = opts.broker.port, client_id = %opts.broker.client_id,
        filter = %filter, tls = opts.broker.tls.is_some(), db = %archive.path().display(),
        stored = stats.stored, doors = stats.doors.len(),
        "archive starting"
    );
    if stats.conflicts > 0 {
        tracing::error!(
            conflicts = stats.conflicts,
            "ALARM: {} conflicting event(s) archived: another event arrived under an archived (door, seq); see `pintuctl archive --stats`",
            stats.conflicts
        );
    }
    for g in archive.gaps()? {
        tracing::warn!(door = %g.door, from = g.from, to = g.to, note = g.note.as_deref().unwrap_or(""), "gap in the archive: events {}..={} of door {} are missing", g.from, g.to, g.door);
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_stop = CancellationToken::new();
    // One client and event loop per connection: an acknowledgement can never reach a later
    // connection, where the same packet id could mean another message.
    let conn = tokio::spawn(mqtt::connection_loop::<ConnMsg>(
        opts.mqtt(),
        1024,
        opts.broker.backoff(),
        tx,
        conn_stop.clone(),
    ));
    let mut writer = Writer {
        archive: archive.clone(),
        filter,
        generation: 0,
        client: None,
        highest: &mut highest,
    };
    let result = loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break Ok(()),
            m = rx.recv() => m,
        };
        let Some(first) = first else {
            break Ok(());
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if let Err(e) = writer.handle(batch).await {
            break Err(e);
        }
    };
    // Stop: what has arrived is stored and acknowledged, then a clean disconnect (the session
    // and its queue stay on the broker).
    let mut rest = Vec::new();
    while let Ok(m) = rx.try_recv() {
        rest.push(m);
    }
    if result.is_ok() && !rest.is_empty() {
        writer.handle(rest).await?;
    }
    if let Some(client) = writer.client.take() {
        let _ = client.disconnect().await;
        let generation = writer.generation;
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while let Some(m) = rx.recv().await {
                if matches!(m, ConnMsg::Disconnected { generation: g, .. } if g == generation) {
                    break;
                }
            }
        })
        .await;
    }
    conn_stop.cancel();
    let _ = conn.await;
    serve_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    if let Some(path) = &opts.socket {
        let _ = std::fs::remove_file(path);
    }
    result?;
    archive.flush()?;
    let stats = archive.stats()?;
    tracing::info!(
        stored = stats.stored,
        duplicates = stats.duplicates,
        rejected = stats.rejected,
        "archive stopped"
    );
    Ok(stats)
}

struct Writer<'a> {
    archive: Arc<Archive>,
    filter: String,
    generation: u64,
    client: Option<AsyncClient>,
    highest: &'a mut HashMap<String, u64>,
}

impl Writer<'_> {
    /// Handles a batch of messages in order: stores the events, flushes once, then acknowledges
    /// those that arrived on the live connection.
    async fn handle(&mut self, batch: Vec<ConnMsg>) -> Result<(), ArchiveError> {
        let mut to_ack: Vec<(u64, Publish)> = Vec::new();
        let mut stored_any = false;
        for msg in batch {
            match msg {
                ConnMsg::Connected {
                    generation,
                    client,
                    session_present,
                } => {
                    tracing::info!(session_present, "archive connected to the broker");
                    if !session_present && !self.highest.is_empty() {
                        tracing::warn!(
                            "the broker had no session for this archive (client id changed, \
                             session expired, or a broker restart without persistence): events \
                             published while the archive was away may be missing; see \
                             `pintuctl archive --gaps`"
                        );
                    }
                    self.generation = generation;
                    if let Err(e) = client
                        .subscribe(self.filter.clone(), QoS::AtLeastOnce)
                        .await
                    {
                        tracing::warn!(error = %e, "archive: subscribe request failed");
                    }
                    self.client = Some(client);
                }
                ConnMsg::SubAck { ok } => {
                    if ok {
                        tracing::info!(filter = %self.filter, "archive subscribed");
                    } else {
                        tracing::error!(filter = %self.filter, "the broker refused the subscription: check the archive's ACL (read on {})", self.filter);
                    }
                }
                ConnMsg::Disconnected { generation, error } => {
                    if generation == self.generation {
                        tracing::warn!(%error, "archive lost the broker; reconnecting");
                        self.client = None;
                    }
                }
                ConnMsg::Publish {
                    generation,
                    publish,
                } => {
                    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                    let stored = self.archive.store(&topic, &publish.payload)?;
                    stored_any = true;
                    self.log(&stored, &topic);
                    to_ack.push((generation, publish));
                }
            }
        }
        if stored_any {
            let archive = self.archive.clone();
            tokio::task::spawn_blocking(move || archive.flush())
                .await
                .map_err(|e| ArchiveError::Task(e.to_string()))??;
        }
        if let Some(client) = &self.client {
            for (generation, publish) in to_ack {
                if generation == self.generation {
                    // The event loop task drains the request channel: this never waits long.
                    if client.ack(&publish).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn log(&mut self, stored: &Stored, topic: &str) {
        match stored {
            Stored::New { door, seq } => {
                let high = self.highest.get(door).copied().unwrap_or(0);
                if *seq > high + 1 {
                    tracing::warn!(%door, from = high + 1, to = seq - 1, "gap: events {}..={} of door {door} are missing (received {seq})", high + 1, seq - 1);
                } else if *seq <= high {
                    tracing::info!(%door, seq, "late event fills a gap");
                }
                if *seq > high {
                    self.highest.insert(door.clone(), *seq);
                }
                tracing::debug!(%door, seq, "archived");
            }
            Stored::Duplicate { door, seq } => {
                tracing::debug!(%door, seq, "duplicate ignored")
            }
            Stored::Conflict { door, seq } => tracing::error!(
                %door, seq,
                "ALARM: conflicting event: another event arrived as {door}#{seq}, which holds a different one; kept the first (see the rejected tree). A door never sends this: two doors with the same id, a replaced store, or a forged publish"
            ),
            Stored::Rejected { reason } => {
                tracing::warn!(%topic, %reason, "message not archived")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(door: &str, seq: u64, id: u128, kind: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schema": EVENT_SCHEMA, "id": uuid::Uuid::from_u128(id), "seq": seq,
            "time": "2026-05-04T01:00:00Z", "site": "s", "door": door, "kind": kind,
        }))
        .unwrap_or_default()
    }

    fn topic(door: &str) -> String {
        format!("pintu/s/{door}/events")
    }

    #[test]
    fn keys_sort_by_door_then_seq() {
        assert!(event_key("a", 2) < event_key("a", 10));
        assert!(event_key("a", u64::MAX) < event_key("b", 0));
        assert_eq!(
            split_key(&event_key("door-1", 42)),
            Some(("door-1".into(), 42))
        );
    }

    #[test]
    fn stores_once_counts_duplicates_and_finds_gaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Archive::open(dir.path(), "s").expect("open");
        for (door, seq, id) in [
            ("a", 1, 1),
            ("a", 2, 2),
            ("a", 2, 2),
            ("a", 5, 5),
            ("b", 3, 13),
        ] {
            a.store(&topic(door), &event(door, seq, id, "lock.secured"))
                .expect("store");
        }
        let conflict = a
            .store(&topic("a"), &event("a", 5, 99, "lock.secured"))
            .expect("store");
        assert_eq!(
            conflict,
            Stored::Conflict {
                door: "a".into(),
                seq: 5
            }
        );
        let wrong = a.store(&topic("b"), &event("a", 6, 6, "x")).expect("store");
        assert!(matches!(wrong, Stored::Rejected { .. }), "{wrong:?}");
        let s = a.stats().expect("stats");
        assert_eq!(
            (s.stored, s.duplicates, s.conflicts, s.rejected),
            (4, 1, 1, 1)
        );
        let gaps = a.gaps().expect("gaps");
        assert_eq!(
            gaps.iter()
                .map(|g| (g.door.as_str(), g.from, g.to))
                .collect::<Vec<_>>(),
            vec![("a", 3, 4), ("b", 1, 2)]
        );
        assert_eq!(
            gaps[1].note.as_deref(),
            Some("before the first archived event")
        );
        drop(a);
        assert!(matches!(
            Archive::open(dir.path(), "other"),
            Err(ArchiveError::WrongSite { .. })
        ));
    }

    #[test]
    fn a_seq_resumed_gap_is_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Archive::open(dir.path(), "s").expect("open");
        a.store(&topic("a"), &event("a", 1, 1, "daemon.started"))
            .expect("store");
        let mut resumed: serde_json::Value =
            serde_json::from_slice(&event("a", 10001, 2, "store.rebuilt")).expect("json");
        resumed["reason"] = "seq_resumed".into();
        a.store(&topic("a"), resumed.to_string().as_bytes())
            .expect("store");
        let gaps = a.gaps().expect("gaps");
        assert_eq!((gaps[0].from, gaps[0].to), (2, 10000));
        assert!(gaps[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("seq_resumed"));
    }
}
