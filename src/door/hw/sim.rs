//! Simulated hardware: a lock that logs and records every change, and scripted card and input
//! sources for tests. On the demo door, card reads and door inputs for simulated readers arrive
//! through the control socket (`pintuctl tap`, `pintuctl input`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CardRead, CardSource, DoorInput, DoorInputs, HwError, Lock, LockState, SourceFuture};
use crate::core::card::Uid;
use crate::core::procedure::Direction;

/// How many lock changes the simulated lock remembers.
pub const HISTORY_LEN: usize = 256;

/// One recorded lock change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LockChange {
    /// When.
    pub at: Timestamp,
    /// New state.
    pub state: LockState,
}

/// The simulated lock's shared record, readable while the lock is in use.
#[derive(Debug, Clone, Default)]
pub struct LockRecord(Arc<Mutex<Vec<LockChange>>>);

impl LockRecord {
    /// Recorded changes, oldest first.
    pub fn changes(&self) -> Vec<LockChange> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current state (secured before any change).
    pub fn state(&self) -> LockState {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map(|c| c.state)
            .unwrap_or(LockState::Secured)
    }

    fn push(&self, state: LockState) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() == HISTORY_LEN {
            v.remove(0);
        }
        v.push(LockChange {
            at: Timestamp::now(),
            state,
        });
    }
}

/// A lock relay that only logs and records.
#[derive(Debug, Default)]
pub struct SimLock {
    record: LockRecord,
}

impl SimLock {
    /// A new simulated lock.
    pub fn new() -> Self {
        SimLock::default()
    }

    /// A handle on its record.
    pub fn record(&self) -> LockRecord {
        self.record.clone()
    }
}

impl Lock for SimLock {
    fn release(&mut self) -> Result<(), HwError> {
        tracing::info!(target: "pintu::relay", "relay: lock RELEASED (simulated)");
        self.record.push(LockState::Released);
        Ok(())
    }

    fn secure(&mut self) -> Result<(), HwError> {
        tracing::info!(target: "pintu::relay", "relay: lock secured (simulated)");
        self.record.push(LockState::Secured);
        Ok(())
    }
}

/// A card source that presents a fixed list of cards, `gap` apart, then idles until shutdown.
#[derive(Debug, Clone)]
pub struct ScriptedCards {
    /// Reader name.
    pub name: String,
    /// Reader role.
    pub role: Direction,
    /// Cards, in order.
    pub uids: Vec<Uid>,
    /// Pause before each card.
    pub gap: Duration,
}

impl CardSource for ScriptedCards {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        self: Box<Self>,
        reads: mpsc::Sender<CardRead>,
        shutdown: CancellationToken,
    ) -> SourceFuture {
        Box::pin(async move {
            for uid in self.uids {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.gap) => {}
                }
                let read = CardRead {
                    reader: self.name.clone(),
                    role: self.role,
                    uid,
                    at: Instant::now(),
                };
                if reads.send(read).await.is_err() {
                    return Ok(());
                }
            }
            shutdown.cancelled().await;
            Ok(())
        })
    }
}

/// Door inputs that play a fixed list of changes, `gap` apart.
#[derive(Debug, Clone)]
pub struct ScriptedInputs {
    /// Changes, in order.
    pub changes: Vec<DoorInput>,
    /// Pause before each change.
    pub gap: Duration,
}

impl DoorInputs for ScriptedInputs {
    fn run(
        self: Box<Self>,
        inputs: mpsc::Sender<DoorInput>,
        shutdown: CancellationToken,
    ) -> SourceFuture {
        Box::pin(async move {
            for change in self.changes {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.gap) => {}
                }
                if inputs.send(change).await.is_err() {
                    return Ok(());
                }
            }
            shutdown.cancelled().await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_changes_in_order() {
        let mut lock = SimLock::new();
        let rec = lock.record();
        assert_eq!(rec.state(), LockState::Secured);
        lock.release().unwrap();
        lock.secure().unwrap();
        let states: Vec<_> = rec.changes().iter().map(|c| c.state).collect();
        assert_eq!(states, vec![LockState::Released, LockState::Secured]);
        for _ in 0..HISTORY_LEN {
            lock.secure().unwrap();
        }
        assert_eq!(rec.changes().len(), HISTORY_LEN);
    }
}
