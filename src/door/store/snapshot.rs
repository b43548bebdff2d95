//! What the door's policy keeps across restarts: the procedure's state (who is inside, the
//! unescorted alarm, the trusted-time floor) and the lockdown in force.
//!
//! The procedure is saved by change, in a tree of its own: one record per occupant (keyed by
//! card hash, removed on exit), one for the alarm and one for the floor. A tap writes the record
//! of whoever entered or left, so its cost does not grow with the number inside; the records are
//! durable with the flush the tap's acknowledgement already waits for. At start the records make
//! the snapshot again ([`Store::load_procedure`]). Doors that saved the whole snapshot in one meta
//! key (before this layout) are migrated once at start ([`Store::replace_procedure`]).

use std::sync::atomic::Ordering;

use jiff::Timestamp;

use super::{Store, StoreError};
use crate::core::presence::{Occupant, OccupantChange, PresenceSnapshot, SNAPSHOT_FORMAT};
use crate::core::procedure::{ProcedureChanges, ProcedureSnapshot};

/// The whole procedure snapshot as one JSON value: the layout before records, read only to
/// migrate it.
const META_LEGACY_PROCEDURE: &[u8] = b"procedure";
/// Lockdown in force: the admitted role's name.
const META_LOCKDOWN: &[u8] = b"lockdown";
/// Tree name of the procedure's records.
pub(super) const PROCEDURE_TREE: &str = "procedure";
/// Key prefix of an occupant's record (then the 32-byte card hash); the value is its JSON.
const OCCUPANT_PREFIX: &[u8] = b"o/";
/// The unescorted alarm: one byte, 0 or 1.
const KEY_UNESCORTED: &[u8] = b"unescorted";
/// The trusted-time floor: JSON of `Option<Timestamp>`.
const KEY_FLOOR: &[u8] = b"floor";

/// The procedure's state as found at start.
#[derive(Debug, Default)]
pub struct LoadedProcedure {
    /// The snapshot the records make, `None` when nothing was ever saved.
    pub snapshot: Option<ProcedureSnapshot>,
    /// It came from the old single-key layout: call [`Store::replace_procedure`] to migrate.
    pub legacy: bool,
    /// Records that could not be read (left out; the door starts without them).
    pub damaged: Vec<String>,
}

fn occupant_key(card: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(OCCUPANT_PREFIX.len() + 32);
    key.extend_from_slice(OCCUPANT_PREFIX);
    key.extend_from_slice(card);
    key
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// The procedure's state: the records, or the old single-key snapshot if no record was
    /// written yet.
    pub fn load_procedure(&self) -> Result<LoadedProcedure, StoreError> {
        let mut loaded = LoadedProcedure::default();
        if let Some(bytes) = self.meta.get(META_LEGACY_PROCEDURE)? {
            loaded.legacy = true;
            match serde_json::from_slice::<ProcedureSnapshot>(&bytes) {
                Ok(s) => loaded.snapshot = Some(s),
                Err(e) => loaded.damaged.push(format!("presence snapshot: {e}")),
            }
            return Ok(loaded);
        }
        if self.procedure.is_empty() {
            return Ok(loaded);
        }
        let floor = match self.procedure.get(KEY_FLOOR)? {
            None => None,
            Some(v) => serde_json::from_slice::<Option<Timestamp>>(&v).unwrap_or_else(|e| {
                loaded.damaged.push(format!("time floor: {e}"));
                None
            }),
        };
        let unescorted = self
            .procedure
            .get(KEY_UNESCORTED)?
            .is_some_and(|v| v.as_ref() == [1]);
        let mut occupants = Vec::new();
        for item in self.procedure.scan_prefix(OCCUPANT_PREFIX) {
            let (key, value) = item?;
            match serde_json::from_slice::<Occupant>(&value) {
                Ok(o) if key.as_ref() == occupant_key(&o.card.0) => occupants.push(o),
                Ok(o) => loaded.damaged.push(format!(
                    "occupant record {} is filed under another card",
                    o.card.masked()
                )),
                Err(e) => loaded.damaged.push(format!("occupant record: {e}")),
            }
        }
        loaded.snapshot = Some(ProcedureSnapshot {
            floor,
            presence: PresenceSnapshot {
                format: SNAPSHOT_FORMAT,
                occupants,
                unescorted,
            },
        });
        Ok(loaded)
    }

    /// Saves what changed (`floor`: the floor to save, when it is due); durable with the next
    /// flush, which a tap's acknowledgement waits for. One batch, so a power cut keeps all of
    /// it or none.
    pub fn save_procedure_changes(
        &self,
        changes: &ProcedureChanges,
        floor: Option<Option<Timestamp>>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut written = 0;
        for change in &changes.presence.occupants {
            let key = occupant_key(&change.card().0);
            match change {
                OccupantChange::Upsert(o) => {
                    let value = json(o)?;
                    written += key.len() + value.len();
                    batch.insert(key, value);
                }
                OccupantChange::Remove(_) => {
                    written += key.len();
                    batch.remove(key);
                }
            }
        }
        if let Some(on) = changes.presence.unescorted {
            written += KEY_UNESCORTED.len() + 1;
            batch.insert(KEY_UNESCORTED, &[u8::from(on)][..]);
        }
        if let Some(floor) = floor {
            let value = json(&floor)?;
            written += KEY_FLOOR.len() + value.len();
            batch.insert(KEY_FLOOR, value);
        }
        if written == 0 {
            return Ok(());
        }
        self.procedure.apply_batch(batch)?;
        self.written.fetch_add(written as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces every procedure record with `snapshot` and drops the old single-key snapshot;
    /// durable on return. Used once, to migrate a store written before the records: a power cut
    /// half way leaves the old key, and the next start migrates again.
    pub fn replace_procedure(&self, snapshot: &ProcedureSnapshot) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for key in self.procedure.iter().keys() {
            batch.remove(key?);
        }
        for o in &snapshot.presence.occupants {
            batch.insert(occupant_key(&o.card.0), json(o)?);
        }
        batch.insert(
            KEY_UNESCORTED,
            &[u8::from(snapshot.presence.unescorted)][..],
        );
        batch.insert(KEY_FLOOR, json(&snapshot.floor)?);
        self.procedure.apply_batch(batch)?;
        self.db.flush()?;
        self.meta.remove(META_LEGACY_PROCEDURE)?;
        self.db.flush()?;
        Ok(())
    }

    /// Bytes this store has written for events and the procedure's records since it opened
    /// (keys and values as given to sled): what a tap costs the SD card, before sled's own
    /// framing.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The lockdown in force (its admitted role), if any; survives restarts.
    pub fn lockdown(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(META_LOCKDOWN)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets or clears the lockdown, durably.
    pub fn set_lockdown(&self, role: Option<&str>) -> Result<(), StoreError> {
        match role {
            Some(r) => self.meta.insert(META_LOCKDOWN, r.as_bytes())?,
            None => self.meta.remove(META_LOCKDOWN)?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// Writes the whole procedure snapshot in the old single-key layout, as a door before the
    /// records did, durably: for the migration tests.
    #[doc(hidden)]
    pub fn save_legacy_procedure_snapshot(&self, bytes: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(META_LEGACY_PROCEDURE, bytes)?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
