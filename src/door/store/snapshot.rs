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

#[cfg(test)]
mod tests {
    use super::super::testing::Door;

    #[test]
    fn the_procedure_snapshot_round_trips_and_survives_a_flushed_restart() {
        let door = Door::new();
        let bytes = br#"{"inside":["h1"],"time_floor":"2026-12-07T10:00:00Z"}"#;
        {
            let (store, _) = door.open();
            assert_eq!(store.procedure_snapshot().expect("read"), None);
            store.save_procedure_snapshot(b"older").expect("save");
            store.save_procedure_snapshot(bytes).expect("save");
            assert_eq!(
                store.procedure_snapshot().expect("read").as_deref(),
                Some(&bytes[..])
            );
            store.flush_blocking().expect("flush");
        }
        let (store, _) = door.open();
        assert_eq!(
            store.procedure_snapshot().expect("read").as_deref(),
            Some(&bytes[..])
        );
    }

    #[test]
    fn the_lockdown_is_set_cleared_and_durable_on_return() {
        let door = Door::new();
        {
            let (store, _) = door.open();
            assert_eq!(store.lockdown().expect("read"), None);
            store.set_lockdown(Some("staff")).expect("set");
        }
        {
            let (store, _) = door.open();
            assert_eq!(store.lockdown().expect("read").as_deref(), Some("staff"));
            store.set_lockdown(None).expect("clear");
        }
        let (store, _) = door.open();
        assert_eq!(store.lockdown().expect("read"), None);
    }
}
