//! Command ids already received, kept with their expiry so a signed command replayed (by the
//! broker, or by an attacker holding a copy) is carried out at most once.

use jiff::Timestamp;
use uuid::Uuid;

use super::{Store, StoreError};

impl Store {
    /// Records a command id before the command is carried out; `false` if it was seen before.
    /// Durable on return, so a crash right after cannot let the same command fire again.
    ///
    /// An id is kept while its command's window is not below the trusted-time floor `floor`
    /// (such a command is refused as expired anyway); `forever` ids (the floor resets, checked
    /// against the wall clock) are never forgotten. Newer commands do not make older ids go.
    pub fn remember_command(
        &self,
        id: Uuid,
        expires_at: Timestamp,
        floor: Option<Timestamp>,
        forever: bool,
    ) -> Result<bool, StoreError> {
        let keep_until = if forever {
            i64::MAX
        } else {
            expires_at.as_second()
        };
        let fresh = self
            .commands_seen
            .compare_and_swap(
                id.as_bytes(),
                None::<&[u8]>,
                Some(&keep_until.to_be_bytes()[..]),
            )?
            .is_ok();
        if fresh {
            if let Some(floor) = floor {
                let horizon = floor.as_second();
                for item in self.commands_seen.iter() {
                    let (k, v) = item?;
                    let exp = v
                        .as_ref()
                        .try_into()
                        .map(i64::from_be_bytes)
                        .unwrap_or(i64::MAX);
                    if exp < horizon {
                        self.commands_seen.remove(k)?;
                    }
                }
            }
            self.db.flush()?;
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Door;
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("timestamp")
    }

    fn ids(store: &Store) -> usize {
        store.commands_seen.len()
    }

    #[test]
    fn an_id_is_fresh_once_even_across_a_restart() {
        let door = Door::new();
        let id = Uuid::from_u128(7);
        {
            let (store, _) = door.open();
            assert!(store
                .remember_command(id, at(60), None, false)
                .expect("first"));
            assert!(!store
                .remember_command(id, at(60), None, false)
                .expect("replay"));
            // A replay with another expiry or as `forever` is still a replay.
            assert!(!store
                .remember_command(id, at(999), None, true)
                .expect("replay"));
        }
        let (store, _) = door.open();
        assert!(
            !store
                .remember_command(id, at(60), None, false)
                .expect("after restart"),
            "durable on return"
        );
    }

    #[test]
    fn ids_are_pruned_only_below_the_floor_and_only_when_a_new_one_lands() {
        let door = Door::new();
        let (store, _) = door.open();
        let (short, long, forever) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        store
            .remember_command(short, at(10), None, false)
            .expect("short");
        store
            .remember_command(long, at(1000), None, false)
            .expect("long");
        store
            .remember_command(forever, at(10), None, true)
            .expect("forever");
        // Without a floor nothing is pruned, however old.
        store
            .remember_command(Uuid::from_u128(4), at(20), None, false)
            .expect("no floor");
        assert_eq!(ids(&store), 4);
        // A replay with a floor prunes nothing: only a fresh id triggers the sweep.
        store
            .remember_command(long, at(1000), Some(at(500)), false)
            .expect("replay");
        assert_eq!(ids(&store), 4);
        store
            .remember_command(Uuid::from_u128(5), at(2000), Some(at(500)), false)
            .expect("fresh");
        // `short` (10) and the fourth (20) are below 500; `long` and the reset stay.
        assert_eq!(ids(&store), 3);
        assert!(store
            .remember_command(short, at(10), None, false)
            .expect("forgotten"));
        assert!(!store
            .remember_command(forever, at(10), Some(at(i64::from(u32::MAX))), true)
            .expect("kept"));
    }

    #[test]
    fn the_window_end_itself_is_still_kept() {
        let door = Door::new();
        let (store, _) = door.open();
        let id = Uuid::from_u128(1);
        store
            .remember_command(id, at(100), None, false)
            .expect("id");
        store
            .remember_command(Uuid::from_u128(2), at(200), Some(at(100)), false)
            .expect("fresh");
        assert!(
            !store
                .remember_command(id, at(100), None, false)
                .expect("replay"),
            "a window ending at the floor is not below it"
        );
    }
}
