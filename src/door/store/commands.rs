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
