//! What the door's policy keeps across restarts: the procedure's snapshot (presence, the
//! trusted-time floor) and the lockdown in force.

use super::{Store, StoreError};

/// Presence and the trusted-time floor (the procedure's snapshot, JSON).
const META_PROCEDURE: &[u8] = b"procedure";
/// Lockdown in force: the admitted role's name.
const META_LOCKDOWN: &[u8] = b"lockdown";

impl Store {
    /// The persisted procedure snapshot (who is inside, the time floor), if any.
    pub fn procedure_snapshot(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(META_PROCEDURE)?.map(|v| v.to_vec()))
    }

    /// Stores the procedure snapshot; durable with the next flush (a tap's acknowledgement
    /// waits for it).
    pub fn save_procedure_snapshot(&self, bytes: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(META_PROCEDURE, bytes)?;
        Ok(())
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
}
