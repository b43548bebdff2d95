//! The archive's sled store: events keyed by (door, seq), de-duplicated as they arrive, with
//! counters, per-door ranges and gaps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ArchiveError, DoorRange, Gap, RejectedRecord, Stats, Stored, MAX_EVENT_BYTES};
use crate::core::event::{Event, EVENT_SCHEMA};
use crate::mqtt::topics;

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

    /// Every archived event as `(door, seq, JSON as received)`, door by door in seq order, read
    /// lazily (the office service imports a whole store through it).
    pub fn iter_raw(
        &self,
    ) -> impl Iterator<Item = Result<(String, u64, Vec<u8>), ArchiveError>> + '_ {
        self.events.iter().filter_map(move |item| match item {
            Err(e) => Some(Err(self.err(e))),
            Ok((k, v)) => split_key(&k).map(|(door, seq)| Ok((door, seq, v.to_vec()))),
        })
    }

    /// Every kept rejected message and conflict (the `rejected` tree), oldest first, read
    /// lazily (the office service imports them with the events). A record that is not what
    /// this archive writes is returned as an error naming its key, and the rest still read.
    pub fn iter_rejected(&self) -> impl Iterator<Item = Result<RejectedRecord, ArchiveError>> + '_ {
        self.rejected.iter().map(move |item| {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let key = k
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or_default();
            serde_json::from_slice::<RejectedRecord>(&v).map_err(|e| {
                ArchiveError::Corrupt(format!(
                    "rejected record {key} in {}: {e}",
                    self.path.display()
                ))
            })
        })
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
