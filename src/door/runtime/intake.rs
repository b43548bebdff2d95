//! List intake: verifies and applies signed lists from every source (the inbox, MQTT, the list
//! offered at start) one at a time, and turns each outcome into `list.applied` or
//! `list.rejected`. Blocking (sled, file reads): callers run it on a blocking thread, so a large
//! list never delays a tap.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::core::event::{EventDraft, EventKind};
use crate::core::list::{ListMeta, Rejection};
use crate::core::text::{bounded, TEXT_MAX};
use crate::door::config::Config;
use crate::door::runtime::mailbox::DoorView;
use crate::door::runtime::recorder::Recorder;
use crate::door::store::StoreError;
use crate::util::files;

/// What became of a list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    /// Verified and applied.
    Applied,
    /// Refused (a `list.rejected` event says why).
    Rejected,
    /// Replaced after the inbox scan checked it: left in place for a later scan.
    Changed,
}

/// The door's list intake.
pub(crate) struct ListIntake {
    cfg: Arc<Config>,
    recorder: Recorder,
    /// The door task's view: expiry is checked on the time taps are decided on.
    view: watch::Receiver<DoorView>,
    /// Held while a list is read and applied: lists from the inbox, MQTT and the start go
    /// through one at a time, so at most one list is being read or verified at any moment.
    gate: Mutex<()>,
}

impl ListIntake {
    pub fn new(cfg: Arc<Config>, recorder: Recorder, view: watch::Receiver<DoorView>) -> Self {
        ListIntake {
            cfg,
            recorder,
            view,
            gate: Mutex::new(()),
        }
    }

    /// Verifies and applies a signed list. `at_start`: the list may be the active one again (a
    /// retained MQTT list after every reconnect, the start-up list): that replay is logged, not
    /// raised as a `list.rejected` alarm.
    pub fn apply(
        &self,
        bytes: &[u8],
        source: &str,
        at_start: bool,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        let _one_at_a_time = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_gated(bytes, source, at_start)
    }

    /// Records that a list waiting to be applied was dropped unverified because a newer one
    /// arrived first (`list.rejected`, reason `superseded`).
    pub fn superseded(&self, source: &str) -> Result<(), StoreError> {
        tracing::warn!(
            source,
            "list dropped unverified: a newer list arrived before it was applied"
        );
        self.record_blocking(
            vec![EventDraft::new(EventKind::ListRejected)
                .reason("superseded")
                .detail(format!(
                    "{source}: a newer list arrived before this one was applied; dropped unverified"
                ))],
            self.recorder.now(),
        )
    }

    /// [`ListIntake::apply`] with the gate held.
    fn apply_gated(
        &self,
        bytes: &[u8],
        source: &str,
        at_start: bool,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        let started = Instant::now();
        let store = self.recorder.store();
        // A file name from the inbox or a topic: outside text, bounded before any log or event.
        let source = &bounded(source, TEXT_MAX);
        let now = self.recorder.now();
        // Expiry on the trusted time: a clock set back does not let an expired list in.
        let trusted = self.view.borrow().trusted_now(now);
        let result = match store.verify_and_apply(bytes, &self.cfg.trust, trusted) {
            Ok(result) => result,
            // Disk full or an I/O error on the list file: nothing changed; the door keeps its
            // list and says why.
            Err(e @ StoreError::ListNotStored { .. }) => {
                let message = crate::util::error_chain(&e);
                tracing::error!(source, "list not applied: {message}");
                self.record_blocking(
                    vec![EventDraft::new(EventKind::ListRejected)
                        .reason("write_failed")
                        .detail(format!("{source}: {message}"))],
                    now,
                )?;
                return Err(e);
            }
            // The list file may now be ahead of the active list, and sled is failing: stop
            // with the lock secured; the restart loads whatever the list file holds.
            Err(e) => {
                tracing::error!(
                    source,
                    "the store failed while applying a list: {}; stopping pintud with the lock secured, for systemd to restart it",
                    crate::util::error_chain(&e)
                );
                self.recorder.fail();
                return Err(e);
            }
        };
        if let (true, Err(Rejection::Replay { version })) = (at_start, &result) {
            tracing::info!(
                source,
                version,
                "list offered at start is already the active list"
            );
            return Ok(result);
        }
        let draft = match &result {
            Ok(meta) => {
                tracing::info!(source, version = meta.version, entries = meta.entry_count, signed_by = ?meta.signed_by, ms = started.elapsed().as_millis() as u64, "list applied");
                EventDraft::new(EventKind::ListApplied)
                    .list_version(Some(meta.version))
                    .detail(format!(
                        "{} entries from {source}, signed by {}",
                        meta.entry_count,
                        meta.signed_by.join(", ")
                    ))
            }
            Err(why) => {
                tracing::warn!(
                    source,
                    reason = why.code(),
                    "list rejected: {why}; keeping list version {}",
                    store.highest_version()
                );
                EventDraft::new(EventKind::ListRejected)
                    .reason(why.code())
                    .detail(format!("{source}: {why}"))
            }
        };
        let mut drafts = vec![draft];
        drafts.extend(store.take_notices());
        self.record_blocking(drafts, now)?;
        Ok(result)
    }

    /// Appends `drafts` and flushes them. Failing to record is fatal like any failed append
    /// ([`Recorder`]): pintud stops with the lock secured.
    fn record_blocking(&self, drafts: Vec<EventDraft>, now: Timestamp) -> Result<(), StoreError> {
        let store = self.recorder.store();
        let result = drafts
            .into_iter()
            .try_for_each(|d| store.append(d, now).map(drop))
            .and_then(|()| store.flush_blocking());
        if let Err(e) = &result {
            tracing::error!("cannot record a list event in the outbox: {e}; stopping");
            self.recorder.fail();
        }
        result
    }

    /// Reads and applies one list file. `expect`: the identity the inbox scan checked; the file
    /// is then opened without following a symlink and must still be that very file. Opening
    /// never blocks (a FIFO swapped in is refused, not waited on), and a file whose first bytes
    /// cannot start a signed list is refused before the rest is read.
    pub fn take_file(
        &self,
        path: &Path,
        expect: Option<files::FileId>,
        at_start: bool,
    ) -> Result<Intake, StoreError> {
        use files::{OpenRegularError, ReadCappedError};
        let _one_at_a_time = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let source = path.display().to_string();
        let (reason, detail) = match files::open_regular(path, expect) {
            Err(OpenRegularError::Changed) => {
                tracing::info!(
                    source,
                    "inbox file was replaced after it was checked; it is taken once it holds still"
                );
                return Ok(Intake::Changed);
            }
            Err(e @ OpenRegularError::NotRegular(_)) => ("not_a_file", format!("{source}: {e}")),
            Err(e @ OpenRegularError::Io(_)) => ("unreadable", format!("{source}: {e}")),
            Ok((file, len)) => match files::read_capped_checked(
                file,
                len,
                self.cfg.trust.max_bytes,
                crate::core::list::HEAD_BYTES,
                crate::core::list::check_head,
            ) {
                Ok(Ok(bytes)) => {
                    return match self.apply_gated(&bytes, &source, at_start) {
                        Ok(Ok(_)) => Ok(Intake::Applied),
                        Ok(Err(_)) => Ok(Intake::Rejected),
                        // Reported (`list.rejected`, `write_failed`); the door carries on with
                        // its list.
                        Err(StoreError::ListNotStored { .. }) => Ok(Intake::Rejected),
                        Err(e) => Err(e),
                    };
                }
                Ok(Err(why)) => (why.code(), format!("{source}: {why}")),
                Err(e @ ReadCappedError::TooLarge { .. }) => ("oversize", format!("{source}: {e}")),
                Err(e @ ReadCappedError::Io(_)) => ("unreadable", format!("{source}: {e}")),
            },
        };
        tracing::warn!(source, reason, "list rejected: {detail}");
        self.record_blocking(
            vec![EventDraft::new(EventKind::ListRejected)
                .reason(reason)
                .detail(detail)],
            self.recorder.now(),
        )?;
        Ok(Intake::Rejected)
    }
}
