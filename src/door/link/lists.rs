//! Lists from the broker: the one-slot hand-over from the link task to the list intake, which
//! verifies and applies them one at a time off the async threads.

use std::collections::HashSet;
use std::sync::Arc;

use crate::door::runtime::DaemonHandle;

/// The one list from the broker waiting for [`list_intake`]: the newest wins. Lists can be up to
/// `list.max_size` (64 MiB by default), so a queue of them could exhaust the door's memory; with
/// one slot, at most one list waits while another is verified. A list replaced before it was
/// applied is recorded as `list.rejected` with reason `superseded` (a retained one comes again
/// with the next connection).
#[derive(Default)]
pub(super) struct ListSlot {
    state: std::sync::Mutex<SlotState>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct SlotState {
    /// The waiting list: its topic and bytes.
    next: Option<(String, bytes::Bytes)>,
    /// Topics of lists replaced while waiting, not yet recorded (bounded).
    superseded: Vec<String>,
    /// The link is gone: no more lists come.
    closed: bool,
}

/// How many superseded lists are recorded one by one between two applies; more are only logged.
const SUPERSEDED_RECORDED: usize = 16;

impl ListSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a list in the slot, replacing (and reporting) one that still waits.
    pub(super) fn offer(&self, topic: String, bytes: bytes::Bytes) {
        if bytes.is_empty() {
            // An empty retained message clears the topic; nothing to apply.
            return;
        }
        tracing::debug!(%topic, bytes = bytes.len(), "list received");
        let mut st = self.lock();
        if let Some((old, _)) = st.next.replace((topic, bytes)) {
            tracing::warn!(topic = %old, "a newer list arrived before this one was applied; it is dropped unverified");
            if st.superseded.len() < SUPERSEDED_RECORDED {
                st.superseded.push(old);
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    /// No more lists: the intake ends once the slot is empty.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }
}

/// Applies lists from the broker one at a time on a blocking thread. Retained lists come again
/// on every reconnect: bytes already judged since start are skipped silently.
pub(super) async fn list_intake(handle: Arc<DaemonHandle>, slot: Arc<ListSlot>) {
    let mut judged: HashSet<[u8; 32]> = HashSet::new();
    loop {
        let (next, superseded, closed) = {
            let mut st = slot.lock();
            (
                st.next.take(),
                std::mem::take(&mut st.superseded),
                st.closed,
            )
        };
        if !superseded.is_empty() {
            let h = handle.clone();
            let recorded = tokio::task::spawn_blocking(move || {
                superseded
                    .iter()
                    .try_for_each(|topic| h.list_superseded(&format!("mqtt:{topic}")))
            })
            .await;
            if let Ok(Err(e)) = recorded {
                tracing::error!("cannot record a superseded list: {e}");
            }
        }
        let Some((topic, bytes)) = next else {
            if closed {
                return;
            }
            slot.wake.notified().await;
            continue;
        };
        let digest = crate::core::list::digest(&bytes);
        if !judged.insert(digest) {
            continue;
        }
        let h = handle.clone();
        let source = format!("mqtt:{topic}");
        let result = tokio::task::spawn_blocking(move || h.apply_list_from(&bytes, &source)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(
                    "cannot apply a list from MQTT: {}",
                    crate::util::error_chain(&e)
                );
                // Not judged (the list file could not be written, say): the retained list
                // comes again with the next connection and is tried again.
                judged.remove(&digest);
            }
            Err(e) => tracing::error!("list intake task failed: {e}"),
        }
    }
}
