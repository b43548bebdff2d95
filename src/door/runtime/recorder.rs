//! Appending events to the outbox from the runtime, where failing to record is fatal.
//!
//! An event that cannot be stored (disk full, I/O error) stops pintud: sled keeps failing after
//! such an error, and a door that decides without recording would carry on half working, so the
//! recorder cancels `failed`, the wiring stops the daemon with the lock secured, and systemd
//! restarts it.

use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::core::event::EventDraft;
use crate::door::clock::Clock;
use crate::door::store::{Store, StoreError};

/// The store, the clock that stamps events, and the token that stops pintud when the store fails.
#[derive(Clone)]
pub(crate) struct Recorder {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    failed: CancellationToken,
}

impl Recorder {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>, failed: CancellationToken) -> Self {
        Recorder {
            store,
            clock,
            failed,
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The door's wall-clock time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Stops pintud (the store failed in a way the caller has logged).
    pub fn fail(&self) {
        self.failed.cancel();
    }

    /// Appends an event (in memory; durable with the next flush); its seq, if it was stored.
    pub fn record(&self, draft: EventDraft) -> Option<u64> {
        match self.store.append(draft, self.clock.now()) {
            Ok(event) => Some(event.seq),
            Err(e) => {
                tracing::error!("cannot append event to the outbox: {e}; stopping");
                self.failed.cancel();
                None
            }
        }
    }

    /// Makes the outbox durable. A failed flush is fatal like a failed append.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let result = self.store.flush().await;
        if let Err(e) = &result {
            tracing::error!("cannot flush the outbox: {e}; stopping");
            self.failed.cancel();
        }
        result
    }
}
