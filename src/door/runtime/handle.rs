//! [`DaemonHandle`]: what the control server, the MQTT link and the wiring call to reach the
//! door. It asks the door task (a message, and a oneshot reply where the caller waits) and reads
//! the view the task publishes; it holds none of the door's state itself.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::card::Uid;
use crate::core::command::{Action, VerifiedCommand};
use crate::core::event::{EventDraft, EventKind};
use crate::core::list::{ListMeta, Rejection, Role};
use crate::core::text::{bounded, TEXT_MAX};
use crate::door::config::{Config, ReaderBackend};
use crate::door::control::{Captured, TapOutcome, CAPTURE_DEFAULT, CAPTURE_MAX};
use crate::door::hw::sim::LockRecord;
use crate::door::hw::CardRead;
use crate::door::runtime::intake::{Intake, ListIntake};
use crate::door::runtime::mailbox::{DoorMsg, DoorView};
use crate::door::runtime::recorder::Recorder;
use crate::door::store::{Store, StoreError};

/// The door as the rest of pintud sees it: shared by the control server, the MQTT link, the
/// card and input sources and the inbox watcher.
pub struct DaemonHandle {
    pub(super) cfg: Arc<Config>,
    pub(super) recorder: Recorder,
    pub(super) door_tx: mpsc::Sender<DoorMsg>,
    /// What the door task last published (lock, lockdown, contact, presence, clock).
    pub(super) view: watch::Receiver<DoorView>,
    pub(super) lock_record: Option<LockRecord>,
    pub(super) started_at: Timestamp,
    intake: Arc<ListIntake>,
}

impl DaemonHandle {
    pub(crate) fn new(
        cfg: Arc<Config>,
        recorder: Recorder,
        door_tx: mpsc::Sender<DoorMsg>,
        view: watch::Receiver<DoorView>,
        lock_record: Option<LockRecord>,
        intake: Arc<ListIntake>,
    ) -> Self {
        let started_at = recorder.now();
        DaemonHandle {
            cfg,
            recorder,
            door_tx,
            view,
            lock_record,
            started_at,
            intake,
        }
    }

    /// The door task's mailbox (the card and input sources, the watchdog probe).
    pub(crate) fn door_tx(&self) -> &mpsc::Sender<DoorMsg> {
        &self.door_tx
    }

    /// The list intake (the inbox watcher).
    pub(crate) fn intake(&self) -> &Arc<ListIntake> {
        &self.intake
    }

    /// The daemon's configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The door's store.
    pub fn store(&self) -> &Arc<Store> {
        self.recorder.store()
    }

    /// The door's wall-clock time.
    pub fn now(&self) -> Timestamp {
        self.recorder.now()
    }

    /// The time commands are checked against: the wall clock, or the trusted time the door
    /// task last saw (at most a second old) if that is later (the clock is behind the floor).
    pub fn trusted_now(&self) -> Timestamp {
        self.view.borrow().trusted_now(self.recorder.now())
    }

    /// The trusted-time floor as the door task last saw it (command ids are kept until their
    /// window is below it).
    pub fn time_floor(&self) -> Option<Timestamp> {
        self.view.borrow().clock.as_ref().and_then(|c| c.floor)
    }

    /// Appends an event to the outbox (durable with the next flush); its seq, if it was stored.
    /// An event that cannot be stored stops pintud with the lock secured.
    pub fn record(&self, draft: EventDraft) -> Option<u64> {
        self.recorder.record(draft)
    }

    /// Makes the outbox durable. A failed flush is fatal like a failed append: pintud stops
    /// with the lock secured.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.recorder.flush().await
    }

    /// Carries out a verified signed command whose id was recorded as seen.
    pub async fn execute_command(self: &Arc<Self>, cmd: VerifiedCommand) {
        let p = &cmd.payload;
        let what = p.command.name();
        let accepted = |detail: String| {
            EventDraft::new(EventKind::CommandAccepted)
                .reason(what)
                .detail(format!(
                    "{detail} (command {}, by {}, signed by {})",
                    p.id,
                    p.operator,
                    cmd.signed_by.join(", ")
                ))
        };
        tracing::info!(command = what, id = %p.id, operator = %bounded(&p.operator, TEXT_MAX), "signed command accepted");
        // Signed by the office: its time bounds how far clock readings may raise the floor.
        let _ = self
            .door_tx
            .send(DoorMsg::CommandTime {
                issued_at: p.issued_at,
            })
            .await;
        match &p.command {
            Action::UnlockOnce { reason } => {
                self.record(accepted(format!("unlock once: {reason}")));
                let (reply, done) = oneshot::channel();
                if self
                    .door_tx
                    .send(DoorMsg::RemoteRelease { reply })
                    .await
                    .is_err()
                    || done.await.is_err()
                {
                    tracing::error!("the door task has stopped; unlock not carried out");
                }
            }
            Action::Lockdown { allow_role } => {
                let role = *allow_role;
                if let Err((_, e)) = self.set_lockdown(Some(role)).await {
                    tracing::error!("cannot record the lockdown: {e}");
                }
                self.record(accepted(format!(
                    "lockdown: only {} admitted",
                    role.as_str()
                )));
                self.record(
                    EventDraft::new(EventKind::LockdownStarted)
                        .reason(role.as_str())
                        .detail(format!("ordered by {}", p.operator)),
                );
            }
            Action::ReleaseLockdown {} => {
                let was = match self.set_lockdown(None).await {
                    Ok(was) => was,
                    Err((was, e)) => {
                        tracing::error!("cannot record the end of the lockdown: {e}");
                        was
                    }
                };
                match was {
                    Some(_) => {
                        self.record(accepted("lockdown released".into()));
                        self.record(
                            EventDraft::new(EventKind::LockdownEnded)
                                .detail(format!("released by {}", p.operator)),
                        );
                    }
                    None => {
                        self.record(accepted(
                            "release lockdown: no lockdown was in force".into(),
                        ));
                    }
                }
            }
            Action::Capture { reader } => {
                self.record(accepted(format!(
                    "capture the next tap on {}",
                    reader.as_deref().unwrap_or("any reader")
                )));
                let h = self.clone();
                let reader = reader.clone();
                tokio::spawn(async move {
                    match h.capture(CAPTURE_DEFAULT, reader).await {
                        Ok(c) => tracing::info!(card = %c.card, "capture ordered over MQTT done"),
                        Err(e) => tracing::warn!("capture ordered over MQTT: {e}"),
                    }
                });
            }
            Action::ResetTimeFloor {} => {
                let (reply, done) = oneshot::channel();
                let sent = self
                    .door_tx
                    .send(DoorMsg::ResetTimeFloor {
                        to: p.issued_at,
                        reply,
                    })
                    .await;
                match (sent, done.await) {
                    (Ok(()), Ok(before)) => {
                        let before = before.map_or("none".to_string(), |t| t.to_string());
                        tracing::warn!(%before, to = %p.issued_at, "trusted-time floor reset by a signed command");
                        self.record(accepted(format!(
                            "trusted-time floor reset from {before} to {}",
                            p.issued_at
                        )));
                    }
                    _ => tracing::error!("the door task has stopped; time floor not reset"),
                }
            }
            Action::ResetListFloor { version } => {
                let store = self.recorder.store().clone();
                let version = *version;
                match tokio::task::spawn_blocking(move || store.reset_list_floor(version)).await {
                    Ok(Ok(before)) => {
                        tracing::warn!(
                            before,
                            version,
                            "list rollback floor reset by a signed command"
                        );
                        self.record(accepted(format!(
                            "list rollback floor reset from {before} to {version}: the next list must be above {version}"
                        )));
                    }
                    Ok(Err(e)) => {
                        tracing::error!("cannot reset the list rollback floor: {e}");
                        self.recorder.fail();
                    }
                    Err(e) => tracing::error!("list floor reset task failed: {e}"),
                }
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!("command events not durable: {e}");
        }
    }

    /// Sets (`Some(role)`) or clears the lockdown: the door task decides taps with it at once,
    /// and the store keeps it across restarts. `Ok`: the lockdown in force before; `Err` also
    /// carries it, with why the store did not take the change.
    async fn set_lockdown(
        &self,
        role: Option<Role>,
    ) -> Result<Option<Role>, (Option<Role>, StoreError)> {
        let (reply, done) = oneshot::channel();
        let before = match self
            .door_tx
            .send(DoorMsg::SetLockdown { role, reply })
            .await
        {
            Ok(()) => done.await.ok(),
            Err(_) => None,
        };
        let before = before.unwrap_or_else(|| {
            tracing::error!(
                "the door task has stopped; the lockdown change applies from the next start"
            );
            self.view.borrow().lockdown
        });
        let store = self.recorder.store().clone();
        match tokio::task::spawn_blocking(move || store.set_lockdown(role.map(Role::as_str))).await
        {
            Ok(Ok(())) => Ok(before),
            Ok(Err(e)) => Err((before, e)),
            Err(e) => Err((before, StoreError::Corrupt(format!("lockdown task: {e}")))),
        }
    }

    /// Verifies and applies a list that may be the active one again (a retained MQTT list after
    /// every reconnect, the start-up list): that replay is logged, not raised as an alarm.
    /// Blocking: call from a blocking thread.
    pub fn apply_list_from(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        self.intake.apply(bytes, source, true)
    }

    /// Records that a list waiting to be applied was dropped unverified because a newer one
    /// arrived first (`list.rejected`, reason `superseded`; blocking: call from a blocking
    /// thread).
    pub fn list_superseded(&self, source: &str) -> Result<(), StoreError> {
        self.intake.superseded(source)
    }

    /// Verifies and applies a signed list (blocking: call from a blocking thread). Emits
    /// `list.applied` or `list.rejected`.
    pub fn apply_list(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        self.intake.apply(bytes, source, false)
    }

    /// Reads a list file (size-capped before reading, its first bytes checked before reading on)
    /// and applies it; failures become events. For `list.initial` and `pintud --list`.
    pub fn apply_list_file(&self, path: &Path, at_start: bool) -> Result<bool, StoreError> {
        Ok(self.intake.take_file(path, None, at_start)? == Intake::Applied)
    }

    /// Enrollment: the door captures the next tap (on `reader`, or any reader) within `timeout`
    /// instead of deciding it, and returns its UID once the `card.captured` event is durable. The
    /// door stays secure meanwhile; after the timeout taps are decided again.
    pub async fn capture(
        &self,
        timeout: Duration,
        reader: Option<String>,
    ) -> Result<Captured, String> {
        self.capture_by(timeout, reader, "a signed capture command".into())
            .await
    }

    /// [`DaemonHandle::capture`] for `by` (who asked, recorded in `card.captured`).
    pub async fn capture_by(
        &self,
        timeout: Duration,
        reader: Option<String>,
        by: String,
    ) -> Result<Captured, String> {
        if timeout.is_zero() || timeout > CAPTURE_MAX {
            return Err(format!(
                "capture timeout must be between 1ms and {}",
                humantime::format_duration(CAPTURE_MAX)
            ));
        }
        if let Some(name) = &reader {
            if !self.cfg.readers.iter().any(|r| &r.name == name) {
                return Err(format!(
                    "no reader named {} (configured: {})",
                    crate::core::text::quoted(name),
                    self.reader_names()
                ));
            }
        }
        let where_ = reader
            .as_ref()
            .map_or_else(|| "any reader".into(), |r| format!("reader {r:?}"));
        let (tx, rx) = oneshot::channel();
        self.door_tx
            .send(DoorMsg::Capture {
                reader,
                deadline: Instant::now() + timeout,
                by,
                reply: tx,
            })
            .await
            .map_err(|_| "the door task has stopped")?;
        let captured = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err("the door task dropped the capture".into()),
            Err(_) => {
                tracing::info!("capture on {where_} timed out; taps are decided again");
                return Err(format!(
                    "no card was tapped on {where_} within {}; the door decides taps again",
                    humantime::format_duration(timeout)
                ));
            }
        };
        self.flush()
            .await
            .map_err(|e| format!("card captured but its event is not durable: {e}"))?;
        Ok(captured)
    }

    /// Presents a card to a simulated reader and waits for the decision and its durable event.
    pub async fn tap(&self, uid: &str, reader: Option<&str>) -> Result<TapOutcome, String> {
        let uid: Uid = uid.parse().map_err(|e| format!("{e}"))?;
        let reader = match reader {
            Some(name) => self
                .cfg
                .readers
                .iter()
                .find(|r| r.name == name)
                .ok_or_else(|| {
                    format!(
                        "no reader named {} (configured: {})",
                        crate::core::text::quoted(name),
                        self.reader_names()
                    )
                })?,
            None => self
                .cfg
                .readers
                .iter()
                .find(|r| r.role == crate::core::procedure::Direction::Entry)
                .or(self.cfg.readers.first())
                .ok_or("no readers configured")?,
        };
        if reader.backend != ReaderBackend::Sim {
            return Err(format!(
                "reader {:?} is not simulated: tap a real card",
                reader.name
            ));
        }
        if self.drives_real_lock() {
            return Err("this door drives a real lock: simulated taps are refused (only a test bench with [door] bench = true takes them)".into());
        }
        let read = CardRead {
            reader: reader.name.clone(),
            role: reader.role,
            uid,
            at: Instant::now(),
        };
        let (tx, rx) = oneshot::channel();
        self.door_tx
            .send(DoorMsg::Tap {
                read,
                reply: Some(tx),
            })
            .await
            .map_err(|_| "the door task has stopped")?;
        let outcome = rx.await.map_err(|_| "the door task dropped the tap")?;
        if outcome.seq.is_none() {
            return Err(format!(
                "tap decided ({}) but its event could not be stored: is the state disk full?",
                outcome.decision
            ));
        }
        // The tap is acknowledged only once its event survives a power cut.
        self.flush()
            .await
            .map_err(|e| format!("tap decided but its event is not durable: {e}"))?;
        Ok(outcome)
    }
}
