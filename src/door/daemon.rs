//! `pintud`'s runtime: wires the store, the lock, the control socket and the list inbox around
//! the pure core.
//!
//! Tasks:
//! - the **door task** owns the lock and the relock timer; it decides taps and input changes one
//!   at a time and never waits on anything slow (no fsync, no network);
//! - the **list intake** verifies and applies lists from the inbox or the start-up path on a
//!   blocking thread, so a large list never delays a tap;
//! - the **control server** answers `pintuctl` and, for a tap, replies only once the tap's event
//!   is durable.
//!
//! On shutdown (signal or error) the door task secures the lock before anything else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::core::card::Uid;
use crate::core::command::{Action, VerifiedCommand};
use crate::core::decision::{Decision, DenyReason};
use crate::core::doorstate::{DoorEvent, DoorMachine, LockCommand, LockType, Output};
use crate::core::event::{EventDraft, EventKind};
use crate::core::expiry::ExpiryWatch;
use crate::core::list::{ListMeta, Rejection, Role};
use crate::core::procedure::{
    Direction, Lookup, Procedure, ProcedureSnapshot, Tap, Verdict as ProcedureAction,
};
use crate::core::text::{bounded, TEXT_MAX};
use crate::core::trusted_time::{ClockTrust, NtpState};
use crate::door::clock::Clock;
use crate::door::config::{Config, ReaderBackend, ReaderRole};
use crate::door::control::{
    self, Captured, ListStatus, Peer, ReaderStatus, Reply, Request, Status, TapOutcome,
    CAPTURE_DEFAULT, CAPTURE_MAX,
};
use crate::door::hw::sim::{LockRecord, SimLock};
use crate::door::hw::{CardRead, CardSource, DoorInput, DoorInputs, Lock, LockState};
use crate::door::store::{Store, StoreError, StoreOptions};
use crate::util::files;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened or rebuilt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The control socket could not be bound.
    #[error("control socket {path}")]
    Socket {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The lock could not be driven to its safe state at start.
    #[error(transparent)]
    Lock(#[from] crate::door::hw::HwError),
    /// A task failed.
    #[error("{0}")]
    Task(String),
}

enum DoorMsg {
    /// Health probe for the watchdog: answered only if the door task's loop is turning.
    Ping { reply: oneshot::Sender<()> },
    Tap {
        read: CardRead,
        reply: Option<oneshot::Sender<TapOutcome>>,
    },
    Input {
        input: DoorInput,
        reply: oneshot::Sender<()>,
    },
    /// A signed `unlock_once` command: release as for a grant (its event is already recorded).
    RemoteUnlock { reply: oneshot::Sender<()> },
    /// A verified command's `issued_at` (the office's clock): a basis for how far clock readings
    /// may raise the trusted-time floor.
    CommandTime { issued_at: Timestamp },
    /// A signed `reset_time_floor`: the floor becomes `to`; replies with the floor before.
    ResetTimeFloor {
        to: Timestamp,
        reply: oneshot::Sender<Option<Timestamp>>,
    },
    /// Enrollment: the next tap (on `reader`, or any) before `deadline` is captured, not decided.
    Capture {
        reader: Option<String>,
        deadline: Instant,
        by: String,
        reply: oneshot::Sender<Result<Captured, String>>,
    },
}

/// Shared by the control server and the intake tasks.
pub struct DaemonHandle {
    cfg: Arc<Config>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    door_tx: mpsc::Sender<DoorMsg>,
    lock_state: Arc<Mutex<LockState>>,
    lock_record: Option<LockRecord>,
    started_at: Timestamp,
    /// The role still admitted during a lockdown (signed command); persisted in the store.
    lockdown: Arc<Mutex<Option<Role>>>,
    /// Door contact as last reported (`true` = open); `None` until an input says.
    contact: Arc<Mutex<Option<bool>>>,
    /// Cancelled when the store cannot take an event: pintud stops (see [`append_or_fail`]).
    store_failed: CancellationToken,
    /// Who is inside and the clock, as the door task last saw them.
    presence: Arc<Mutex<PresenceView>>,
    /// Held while a list is read and applied: lists from the inbox, MQTT and the start go
    /// through one at a time, so at most one list is being read or verified at any moment.
    list_gate: Mutex<()>,
}

/// What the door task publishes of its procedure state for status and `pintuctl who`.
#[derive(Debug, Default, Clone)]
struct PresenceView {
    occupants: Vec<control::Occupant>,
    visitors: usize,
    clock: Option<control::ClockInfo>,
}

impl DaemonHandle {
    /// The daemon's configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The door's store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The door's wall-clock time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The time commands are checked against: the wall clock, or the trusted time the door
    /// task last saw (at most a second old) if that is later (the clock is behind the floor).
    pub fn trusted_now(&self) -> Timestamp {
        let wall = self.clock.now();
        self.presence_view()
            .clock
            .map_or(wall, |c| c.effective.max(wall))
    }

    /// The trusted-time floor as the door task last saw it (command ids are kept until their
    /// window is below it).
    pub fn time_floor(&self) -> Option<Timestamp> {
        self.presence_view().clock.and_then(|c| c.floor)
    }

    /// Appends an event to the outbox (durable with the next flush); its seq, if it was stored.
    pub fn record(&self, draft: EventDraft) -> Option<u64> {
        append_or_fail(&self.store, &*self.clock, &self.store_failed, draft)
    }

    /// Makes the outbox durable. A failed flush is fatal like a failed append
    /// ([`append_or_fail`]): pintud stops with the lock secured.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let result = self.store.flush().await;
        if let Err(e) = &result {
            tracing::error!("cannot flush the outbox: {e}; stopping");
            self.store_failed.cancel();
        }
        result
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
                    .send(DoorMsg::RemoteUnlock { reply })
                    .await
                    .is_err()
                    || done.await.is_err()
                {
                    tracing::error!("the door task has stopped; unlock not carried out");
                }
            }
            Action::Lockdown { allow_role } => {
                let role = *allow_role;
                if let Err(e) = self.set_lockdown(Some(role)).await {
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
                let was = *self.lockdown.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = self.set_lockdown(None).await {
                    tracing::error!("cannot record the end of the lockdown: {e}");
                }
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
                let store = self.store.clone();
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
                        self.store_failed.cancel();
                    }
                    Err(e) => tracing::error!("list floor reset task failed: {e}"),
                }
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!("command events not durable: {e}");
        }
    }

    async fn set_lockdown(&self, role: Option<Role>) -> Result<(), StoreError> {
        *self.lockdown.lock().unwrap_or_else(|e| e.into_inner()) = role;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.set_lockdown(role.map(Role::as_str)))
            .await
            .map_err(|e| StoreError::Corrupt(format!("lockdown task: {e}")))?
    }

    /// Verifies and applies a list that may be the active one again (a retained MQTT list after
    /// every reconnect, the start-up list): that replay is logged, not raised as an alarm.
    pub fn apply_list_from(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        let _one_at_a_time = self.list_gate.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_list_inner(bytes, source, true)
    }

    /// Records that a list waiting to be applied was dropped unverified because a newer one
    /// arrived first (`list.rejected`, reason `superseded`; blocking: call from a blocking
    /// thread).
    pub fn list_superseded(&self, source: &str) -> Result<(), StoreError> {
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
            self.clock.now(),
        )
    }

    /// Answers one control request from `peer` (the socket client's credentials).
    pub async fn handle(&self, req: Request, peer: Option<Peer>) -> Reply {
        match req {
            Request::Tap { uid, reader } => match self.tap(&uid, reader.as_deref()).await {
                Ok(outcome) => Reply::Tap(outcome),
                Err(message) => Reply::Error { message },
            },
            Request::Input { input } => {
                // With real inputs wired, a simulated exit button would be a way round the door;
                // with a real lock, so would any simulated input (unless this is a test bench).
                if self.cfg.inputs.backend != crate::door::config::GpioBackend::Sim {
                    return Reply::Error {
                        message: "this door has real inputs: simulated inputs are refused".into(),
                    };
                }
                if self.drives_real_lock() {
                    return Reply::Error {
                        message: "this door drives a real lock: simulated inputs are refused (only a test bench with [door] bench = true takes them)".into(),
                    };
                }
                let (tx, rx) = oneshot::channel();
                if self
                    .door_tx
                    .send(DoorMsg::Input { input, reply: tx })
                    .await
                    .is_err()
                    || rx.await.is_err()
                {
                    return Reply::Error {
                        message: "the door task has stopped".into(),
                    };
                }
                match self.flush().await {
                    Ok(()) => Reply::Input { input },
                    Err(e) => Reply::Error {
                        message: format!("input handled but its event is not durable: {e}"),
                    },
                }
            }
            Request::Status => Reply::Status(Box::new(self.status())),
            Request::Who => Reply::Who {
                occupants: self.presence_view().occupants,
            },
            Request::Events { limit } => {
                match self.store.recent_events(limit.unwrap_or(20).min(1000)) {
                    Ok(events) => Reply::Events { events },
                    Err(e) => Reply::Error {
                        message: e.to_string(),
                    },
                }
            }
            Request::Capture { timeout_ms, reader } => {
                let by = match self.may_capture(peer) {
                    Ok(by) => by,
                    Err(message) => {
                        tracing::warn!(?peer, "capture refused: {message}");
                        self.record(
                            EventDraft::new(EventKind::ControlRefused)
                                .reason("capture_not_permitted")
                                .detail(format!(
                                    "capture over the control socket by {}",
                                    describe_peer(peer)
                                )),
                        );
                        let _ = self.flush().await;
                        return Reply::Error { message };
                    }
                };
                let timeout = timeout_ms.map_or(CAPTURE_DEFAULT, Duration::from_millis);
                match self.capture_by(timeout, reader, by).await {
                    Ok(captured) => Reply::Captured(captured),
                    Err(message) => Reply::Error { message },
                }
            }
        }
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
                .find(|r| r.role == ReaderRole::Entry)
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

    /// Whether the control socket's simulated taps and inputs would reach a real relay: a GPIO
    /// lock (or one injected by the embedder) on a door that is not a declared test bench.
    fn drives_real_lock(&self) -> bool {
        self.cfg.lock != crate::door::config::LockHardware::Sim && !self.cfg.bench
    }

    /// Who may capture raw UIDs: root, pintud's own user, and members of
    /// `[control] capture_group`. `Ok` carries who it is, for the `card.captured` event.
    fn may_capture(&self, peer: Option<Peer>) -> Result<String, String> {
        let Some(peer) = peer else {
            return Err("capture refused: the client's credentials are unknown".into());
        };
        let who = describe_peer(Some(peer));
        if peer.uid == 0 || peer.uid == nix::unistd::geteuid().as_raw() {
            return Ok(who);
        }
        if let Some(group) = &self.cfg.capture_group {
            if peer_in_group(peer, group) {
                return Ok(who);
            }
        }
        Err(format!(
            "capture returns raw card UIDs: only root, the pintud user and members of [control] capture_group ({}) may capture; {who} may not",
            self.cfg.capture_group.as_deref().unwrap_or("not set")
        ))
    }

    fn reader_names(&self) -> String {
        self.cfg
            .readers
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn presence_view(&self) -> PresenceView {
        self.presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Current status.
    pub fn status(&self) -> Status {
        let now = self.clock.now();
        let view = self.presence_view();
        // Expiry on the time taps are decided on (the trusted-time floor when the clock is
        // behind it), as the door task's `list.expired` alarm does.
        let decided_at = view.clock.as_ref().map_or(now, |c| c.effective.max(now));
        Status {
            occupancy: view.occupants.len(),
            visitors_inside: view.visitors,
            clock: view.clock,
            site: self.cfg.site.clone(),
            door: self.cfg.door.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            now,
            list: self.store.active().map(|a| ListStatus {
                version: a.meta.version,
                issued_at: a.meta.issued_at,
                expires_at: a.meta.expires_at,
                expired: decided_at >= a.meta.expires_at,
                entries: a.meta.entry_count,
                signed_by: a.meta.signed_by.clone(),
                sha256: hex::encode(a.meta.payload_digest),
            }),
            highest_list_version: self.store.highest_version(),
            lock: *self.lock_state.lock().unwrap_or_else(|e| e.into_inner()),
            lock_changes: self
                .lock_record
                .as_ref()
                .map(|r| r.changes())
                .unwrap_or_default(),
            outbox_depth: self.store.outbox_depth(),
            set_aside: self.store.set_aside_count(),
            delivery_refused: self.store.delivery_refused(),
            lockdown: self
                .lockdown
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|r| r.as_str().to_string()),
            contact: self
                .contact
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|open| if open { "open" } else { "closed" }.to_string()),
            readers: self
                .cfg
                .readers
                .iter()
                .map(|r| {
                    let health = crate::door::hw::health::get(&r.name);
                    let state = match (&r.backend, &health) {
                        (ReaderBackend::Sim, _) => "up",
                        (_, Some(h)) if h.up => "up",
                        (_, Some(_)) => "down",
                        (_, None) => "unknown",
                    };
                    ReaderStatus {
                        name: r.name.clone(),
                        role: r.role,
                        backend: r.backend.name().to_string(),
                        state: state.to_string(),
                        since: health.as_ref().map(|h| h.since),
                        detail: health.map(|h| h.detail),
                    }
                })
                .collect(),
            bench: self.cfg.bench,
        }
    }

    /// Verifies and applies a signed list (blocking: call from a blocking thread). Emits
    /// `list.applied` or `list.rejected`.
    pub fn apply_list(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        let _one_at_a_time = self.list_gate.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_list_inner(bytes, source, false)
    }

    /// `at_start`: the list offered at every start (`list.initial`, `--list`) is usually the one
    /// already active; that replay is logged, not raised as a `list.rejected` alarm.
    fn apply_list_inner(
        &self,
        bytes: &[u8],
        source: &str,
        at_start: bool,
    ) -> Result<Result<ListMeta, Rejection>, StoreError> {
        let started = Instant::now();
        // A file name from the inbox or a topic: outside text, bounded before any log or event.
        let source = &bounded(source, TEXT_MAX);
        let now = self.clock.now();
        // Expiry on the trusted time: a clock set back does not let an expired list in.
        let trusted = self.trusted_now();
        let result = match self.store.verify_and_apply(bytes, &self.cfg.trust, trusted) {
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
                self.store_failed.cancel();
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
                    self.store.highest_version()
                );
                EventDraft::new(EventKind::ListRejected)
                    .reason(why.code())
                    .detail(format!("{source}: {why}"))
            }
        };
        let mut drafts = vec![draft];
        drafts.extend(self.store.take_notices());
        self.record_blocking(drafts, now)?;
        Ok(result)
    }

    /// Appends `drafts` and flushes them (blocking: call from a blocking thread). Failing to
    /// record is fatal like any failed append ([`append_or_fail`]): pintud stops with the lock
    /// secured.
    fn record_blocking(&self, drafts: Vec<EventDraft>, now: Timestamp) -> Result<(), StoreError> {
        let result = drafts
            .into_iter()
            .try_for_each(|d| self.store.append(d, now).map(drop))
            .and_then(|()| self.store.flush_blocking());
        if let Err(e) = &result {
            tracing::error!("cannot record a list event in the outbox: {e}; stopping");
            self.store_failed.cancel();
        }
        result
    }

    /// Reads a list file (size-capped before reading, its first bytes checked before reading on)
    /// and applies it; failures become events. For `list.initial` and `pintud --list`.
    pub fn apply_list_file(&self, path: &Path, at_start: bool) -> Result<bool, StoreError> {
        Ok(self.take_list_file(path, None, at_start)? == Intake::Applied)
    }

    /// Reads and applies one list file. `expect`: the identity the inbox scan checked; the file
    /// is then opened without following a symlink and must still be that very file. Opening
    /// never blocks (a FIFO swapped in is refused, not waited on), and a file whose first bytes
    /// cannot start a signed list is refused before the rest is read.
    fn take_list_file(
        &self,
        path: &Path,
        expect: Option<files::FileId>,
        at_start: bool,
    ) -> Result<Intake, StoreError> {
        use files::{OpenRegularError, ReadCappedError};
        let _one_at_a_time = self.list_gate.lock().unwrap_or_else(|e| e.into_inner());
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
                    return match self.apply_list_inner(&bytes, &source, at_start) {
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
            self.clock.now(),
        )?;
        Ok(Intake::Rejected)
    }
}

/// What became of a list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intake {
    /// Verified and applied.
    Applied,
    /// Refused (a `list.rejected` event says why).
    Rejected,
    /// Replaced after the inbox scan checked it: left in place for a later scan.
    Changed,
}

/// Options beyond the config file.
#[derive(Default)]
pub struct RunOptions {
    /// A signed list to offer at start (`pintud --list`), after the config's `list.initial`.
    pub list: Option<PathBuf>,
    /// Card readers besides the simulated ones (which are fed through the control socket).
    pub card_sources: Vec<Box<dyn CardSource>>,
    /// Door input sources (contact, exit button).
    pub door_inputs: Vec<Box<dyn DoorInputs>>,
    /// A lock to use instead of the configured one (tests, embedding).
    pub lock: Option<Box<dyn Lock>>,
    /// Watchdog pings (systemd's `WatchdogSec=`): sent only while the door task answers.
    pub watchdog: Option<Watchdog>,
}

/// How to keep a watchdog fed.
pub struct Watchdog {
    /// The watchdog's timeout; pings go out every half of it.
    pub period: Duration,
    /// Sends one ping (`WATCHDOG=1` for systemd).
    pub ping: Box<dyn Fn() + Send + Sync>,
}

/// Runs the door until `shutdown` is cancelled. `ready` is called once the door serves taps.
pub async fn run(
    cfg: Config,
    opts: RunOptions,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    ready: impl FnOnce(),
) -> Result<(), DaemonError> {
    let cfg = Arc::new(cfg);
    // The lock is driven safe before anything else can fail or take time.
    let injected = opts.lock;
    let (mut lock, lock_record): (Box<dyn Lock>, Option<LockRecord>) = match injected
        .map(Ok)
        .or_else(|| crate::door::hw::gpio::open_lock(&cfg.lock, cfg.lock_type))
    {
        None => {
            let sim = SimLock::new();
            let record = sim.record();
            (Box::new(sim), Some(record))
        }
        Some(Ok(lock)) => (lock, None),
        // Nothing was driven: the wiring holds the relay de-energised.
        Some(Err(e)) => return Err(DaemonError::Lock(e)),
    };
    secure_with_retries(lock.as_mut())?;

    let store_opts = StoreOptions::for_config(&cfg);
    let policy = cfg.trust.clone();
    let (store, report) = tokio::task::spawn_blocking(move || Store::open(&store_opts, &policy))
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))??;
    let store = Arc::new(store);
    for draft in report.events {
        store.append(draft, clock.now())?;
    }
    store.append(
        EventDraft::new(EventKind::DaemonStarted)
            .list_version(store.active().map(|a| a.meta.version))
            .detail(format!("pintud {} started", env!("CARGO_PKG_VERSION"))),
        clock.now(),
    )?;
    if cfg.bench {
        tracing::warn!("[door] bench = true: a real lock next to simulated readers or inputs; the control socket can open this door");
        store.append(
            EventDraft::new(EventKind::DoorBenchMode)
                .reason("bench")
                .detail("test bench ([door] bench = true): simulated readers or inputs next to a real lock; the control socket can open this door"),
            clock.now(),
        )?;
    }

    let (door_tx, door_rx) = mpsc::channel(256);
    let lock_state = Arc::new(Mutex::new(LockState::Secured));
    let contact = Arc::new(Mutex::new(None));
    let store_failed = CancellationToken::new();
    let lock_failed = CancellationToken::new();
    let presence_view = Arc::new(Mutex::new(PresenceView::default()));
    let procedure = restore_procedure(&cfg, &store, clock.now());
    let lockdown = Arc::new(Mutex::new(match store.lockdown()? {
        None => None,
        Some(name) => {
            let role = parse_role(&name);
            tracing::warn!(role = %name, "door is in lockdown (signed command); only this role is admitted");
            Some(role.unwrap_or(Role::Staff))
        }
    }));
    let handle = Arc::new(DaemonHandle {
        cfg: cfg.clone(),
        store: store.clone(),
        clock: clock.clone(),
        door_tx,
        lock_state: lock_state.clone(),
        lock_record,
        started_at: clock.now(),
        lockdown: lockdown.clone(),
        contact: contact.clone(),
        store_failed: store_failed.clone(),
        presence: presence_view.clone(),
        list_gate: Mutex::new(()),
    });

    // Lists offered at start go through the same gate as any other.
    for path in cfg.initial_list.iter().chain(opts.list.iter()) {
        let h = handle.clone();
        let path = path.clone();
        tokio::task::spawn_blocking(move || h.apply_list_file(&path, true))
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))??;
    }
    store.flush().await?;

    let listener = control::bind(&cfg.socket, cfg.socket_mode, cfg.socket_group.as_deref())
        .map_err(|source| DaemonError::Socket {
            path: cfg.socket.clone(),
            source,
        })?;

    let door = DoorTask {
        cfg: cfg.clone(),
        store: store.clone(),
        clock: clock.clone(),
        lock: SecuringLock(lock),
        lock_state,
        door: DoorMachine::new(cfg.door_settings),
        capture: None,
        lockdown,
        contact,
        store_failed: store_failed.clone(),
        lock_failed: lock_failed.clone(),
        procedure,
        presence_view,
        exit_requested: None,
        list_version: None,
        snapshot_saved: None,
        readers: ReaderWatch::new(&cfg.readers),
        expiry: ExpiryWatch::new(cfg.list_expiry_warning),
    };
    let door_task = tokio::spawn(door.run(door_rx, shutdown.clone()));
    let control_task = tokio::spawn(control::serve(listener, handle.clone(), shutdown.clone()));
    let inbox_task = tokio::spawn(watch_inbox(handle.clone(), shutdown.clone()));
    // Real readers from the config, then any the caller passed in (tests, embedding).
    let mut card_sources = crate::door::hw::configured_sources(&cfg.readers);
    card_sources.extend(opts.card_sources);
    let mut door_inputs = opts.door_inputs;
    door_inputs.extend(crate::door::hw::gpio::inputs(&cfg.inputs));
    let source_tasks = spawn_sources(card_sources, door_inputs, &handle, &shutdown);
    let mqtt_stop = CancellationToken::new();
    let mqtt_task = cfg
        .mqtt
        .clone()
        .map(|m| tokio::spawn(crate::door::link::run(handle.clone(), m, mqtt_stop.clone())));
    let watchdog_task = opts
        .watchdog
        .map(|w| tokio::spawn(feed_watchdog(w, handle.door_tx.clone(), shutdown.clone())));

    tracing::info!(
        site = %cfg.site,
        door = %cfg.door,
        socket = %cfg.socket.display(),
        inbox = %cfg.inbox.display(),
        list_version = store.active().map(|a| a.meta.version),
        "pintud ready"
    );
    ready();

    // The door task only ends at shutdown; if it ends before (a panic: its lock guard secured
    // the door), stop everything and exit non-zero so systemd restarts a whole daemon.
    let mut door_task = door_task;
    let door_result = tokio::select! {
        // Shutdown first: a door task that ended because of it has not ended early.
        biased;
        _ = shutdown.cancelled() => door_task.await,
        _ = store_failed.cancelled() => {
            tracing::error!("the store cannot record events (disk full or I/O error): stopping pintud with the lock secured, for systemd to restart it");
            shutdown.cancel();
            door_task.await
        }
        _ = lock_failed.cancelled() => {
            tracing::error!("the lock cannot be secured: stopping pintud for systemd to restart it (ExecStopPost drives the relay de-energised)");
            shutdown.cancel();
            door_task.await
        }
        early = &mut door_task => {
            tracing::error!("the door task stopped unexpectedly; stopping pintud");
            shutdown.cancel();
            let _ = control_task.await;
            let _ = inbox_task.await;
            let _ = std::fs::remove_file(&cfg.socket);
            store.flush().await?;
            stop_mqtt(mqtt_task, &mqtt_stop).await;
            return Err(DaemonError::Task(match early {
                Err(e) => format!("door task failed: {e}"),
                Ok(()) => "door task ended before shutdown".into(),
            }));
        }
    };
    let _ = control_task.await;
    let _ = inbox_task.await;
    for task in source_tasks {
        let _ = task.await;
    }
    if let Some(task) = watchdog_task {
        let _ = task.await;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    store.flush().await?;
    // Last: the final events (lock secured, stopping) go out before the offline status.
    stop_mqtt(mqtt_task, &mqtt_stop).await;
    door_result.map_err(|e| DaemonError::Task(format!("door task failed: {e}")))?;
    if store_failed.is_cancelled() {
        return Err(DaemonError::Task(
            "stopped because the store could not record events (disk full or I/O error); the lock is secured".into(),
        ));
    }
    if lock_failed.is_cancelled() {
        return Err(DaemonError::Task(format!(
            "stopped because the lock could not be secured after {SECURE_ATTEMPTS} attempts (hardware.fault); the relay is left de-energised"
        )));
    }
    match cfg.lock_type {
        LockType::FailSecure => tracing::info!("pintud stopped; lock secured"),
        LockType::FailSafe => {
            tracing::warn!("pintud stopped; the fail-safe lock is released (de-energised) until pintud runs again")
        }
    }
    Ok(())
}

/// A control-socket client for logs and events: `uid 1000 (ani)`.
fn describe_peer(peer: Option<Peer>) -> String {
    match peer {
        None => "an unknown client".into(),
        Some(p) => match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(p.uid)) {
            Ok(Some(user)) => format!("uid {} ({})", p.uid, bounded(&user.name, 64)),
            _ => format!("uid {}", p.uid),
        },
    }
}

/// Whether `peer` belongs to `group`: its primary group, or a supplementary one from the user
/// database (`getgrouplist`; the socket's peer credentials carry only uid and gid).
fn peer_in_group(peer: Peer, group: &str) -> bool {
    let Ok(Some(group)) = nix::unistd::Group::from_name(group) else {
        tracing::warn!(
            group,
            "[control] capture_group names no group on this system"
        );
        return false;
    };
    if peer.gid == group.gid.as_raw() {
        return true;
    }
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid).is_ok_and(|groups| groups.contains(&group.gid))
}

/// Appends an event. An event that cannot be stored (disk full, I/O error) is fatal: sled keeps
/// failing after such an error, and a door that decides without recording would carry on half
/// working, so pintud stops with the lock secured and systemd restarts it.
fn append_or_fail(
    store: &Store,
    clock: &dyn Clock,
    failed: &CancellationToken,
    draft: EventDraft,
) -> Option<u64> {
    match store.append(draft, clock.now()) {
        Ok(event) => Some(event.seq),
        Err(e) => {
            tracing::error!("cannot append event to the outbox: {e}; stopping");
            failed.cancel();
            None
        }
    }
}

async fn stop_mqtt(task: Option<tokio::task::JoinHandle<()>>, stop: &CancellationToken) {
    if let Some(task) = task {
        stop.cancel();
        let _ = task.await;
    }
}

/// A role name as stored for a lockdown.
fn parse_role(name: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

struct DoorTask {
    cfg: Arc<Config>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    lock: SecuringLock,
    lock_state: Arc<Mutex<LockState>>,
    door: DoorMachine,
    /// A pending enrollment capture.
    capture: Option<CaptureSlot>,
    /// The role still admitted during a lockdown.
    lockdown: Arc<Mutex<Option<Role>>>,
    /// Door contact for status.
    contact: Arc<Mutex<Option<bool>>>,
    store_failed: CancellationToken,
    /// Cancelled when the lock cannot be secured even after retries: pintud stops for a restart.
    lock_failed: CancellationToken,
    /// Visits, escort, presence, anti-passback, floods and the clock floor (pure core).
    procedure: Procedure,
    presence_view: Arc<Mutex<PresenceView>>,
    /// When the exit button was last pressed: a door opening soon after is someone leaving.
    exit_requested: Option<Instant>,
    /// The list version the procedure was last told about.
    list_version: Option<u64>,
    /// When the procedure snapshot was last saved.
    snapshot_saved: Option<Instant>,
    /// Reader health changes, reported as `reader.down` / `reader.up`.
    readers: ReaderWatch,
    /// `list.expiring` / `list.expired` for the active list (freeze attack).
    expiry: ExpiryWatch,
}

/// The procedure at start: restored from the store's snapshot (who is inside, the time floor),
/// or fresh. A snapshot that cannot be read is logged and dropped: presence then starts empty.
fn restore_procedure(cfg: &Config, store: &Store, wall: Timestamp) -> Procedure {
    let settings = cfg.procedure.clone();
    let mono = now_mono();
    let snapshot = match store.procedure_snapshot() {
        Ok(Some(bytes)) => match serde_json::from_slice::<ProcedureSnapshot>(&bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(
                    "stored presence snapshot is damaged ({e}); starting with nobody inside"
                );
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::error!("cannot read the presence snapshot ({e}); starting with nobody inside");
            None
        }
    };
    match snapshot {
        None => Procedure::new(settings, wall, mono),
        Some(snap) => match Procedure::restore(settings.clone(), snap, wall, mono) {
            Ok(p) => {
                tracing::info!(inside = p.presence().count(), "presence restored");
                p
            }
            Err(e) => {
                tracing::error!(
                    "presence snapshot does not restore ({e}); starting with nobody inside"
                );
                Procedure::new(settings, wall, mono)
            }
        },
    }
}

/// Kernel NTP state for the procedure's clock status.
fn ntp_state() -> NtpState {
    match crate::door::link::ntp_synced() {
        Some(true) => NtpState::Synchronized,
        Some(false) => NtpState::Unsynchronized,
        None => NtpState::Unknown,
    }
}

/// Turns the reader health changes of [`crate::door::hw::health`] into `reader.down` and `reader.up`
/// events, so the office sees an unplugged reader (or pcscd gone) when it happens, and each time
/// it happens, not only in the next status.
struct ReaderWatch {
    /// The next health change to look at.
    cursor: u64,
    /// This door's readers that have a card source (serial, PC/SC), and whether each was last
    /// reported up. Assumed up until one says otherwise: a reader that opens at start raises
    /// nothing, one that cannot raises `reader.down`.
    up: HashMap<String, bool>,
}

impl ReaderWatch {
    /// Watches `readers` for changes reported from now on.
    fn new(readers: &[crate::door::config::ReaderConfig]) -> Self {
        ReaderWatch {
            cursor: crate::door::hw::health::cursor(),
            up: readers
                .iter()
                .filter(|r| r.backend != ReaderBackend::Sim)
                .map(|r| (r.name.clone(), true))
                .collect(),
        }
    }

    /// The events for the changes since the last call, in the order they happened.
    fn events(&mut self) -> Vec<EventDraft> {
        let (changes, next) = crate::door::hw::health::changes_since(self.cursor);
        self.cursor = next;
        let mut events = Vec::new();
        for change in changes {
            let Some(was_up) = self.up.get_mut(&change.reader) else {
                continue;
            };
            if *was_up == change.health.up {
                continue;
            }
            *was_up = change.health.up;
            // The source has logged the change already (once, with its cause).
            let kind = if change.health.up {
                EventKind::ReaderUp
            } else {
                EventKind::ReaderDown
            };
            events.push(
                EventDraft::new(kind)
                    .reader(change.reader)
                    .detail(change.health.detail),
            );
        }
        events
    }
}

/// An operator waiting for the next tap (`pintuctl enroll --door`).
struct CaptureSlot {
    /// Only taps on this reader; `None` takes any.
    reader: Option<String>,
    /// After this the slot is void (the operator's request has timed out).
    deadline: Instant,
    /// Who asked (a socket user, a signed command), for the `card.captured` event.
    by: String,
    reply: oneshot::Sender<Result<Captured, String>>,
}

impl DoorTask {
    async fn run(mut self, mut rx: mpsc::Receiver<DoorMsg>, shutdown: CancellationToken) {
        self.sync_procedure();
        self.persist_procedure();
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.door.next_deadline();
            let procedure_deadline = self.procedure.next_deadline();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let outputs = self.door.tick(now_mono());
                    for event in self.apply(outputs) {
                        self.record(event);
                    }
                }
                _ = sleep_until(procedure_deadline), if procedure_deadline.is_some() => {
                    self.procedure_tick();
                }
                // Once a second (the first at once): a wall-clock step is noticed, a new list's
                // floor is taken, the active list's expiry is watched.
                _ = housekeeping.tick() => {
                    self.check_readers();
                    self.procedure_tick();
                    self.check_list_expiry();
                }
                msg = rx.recv() => match msg {
                    None => break,
                    Some(DoorMsg::Tap { read, reply }) => {
                        let span = tracing::info_span!("tap", reader = %read.reader);
                        let outcome = span.in_scope(|| self.tap(read));
                        if let Some(reply) = reply {
                            let _ = reply.send(outcome);
                        }
                    }
                    Some(DoorMsg::Input { input, reply }) => {
                        self.input(input);
                        let _ = reply.send(());
                    }
                    Some(DoorMsg::Capture { reader, deadline, by, reply }) => {
                        self.arm_capture(CaptureSlot { reader, deadline, by, reply });
                    }
                    Some(DoorMsg::Ping { reply }) => {
                        let _ = reply.send(());
                    }
                    Some(DoorMsg::CommandTime { issued_at }) => {
                        self.procedure.observe_command_time(issued_at);
                    }
                    Some(DoorMsg::ResetTimeFloor { to, reply }) => {
                        let before = self.procedure.clock_status(self.clock.now(), now_mono(), ntp_state()).floor;
                        self.procedure.reset_time_floor(to, now_mono());
                        self.persist_procedure();
                        let _ = reply.send(before);
                    }
                    Some(DoorMsg::RemoteUnlock { reply }) => {
                        let outputs = self.door.release(now_mono());
                        for event in self.apply(outputs) {
                            self.record(event);
                        }
                        let _ = reply.send(());
                    }
                },
            }
        }
        // Every way out of the loop ends with the lock in the state it keeps without pintud,
        // and the last events say which: a fail-secure lock secured, a fail-safe lock released.
        match self.cfg.lock_type {
            LockType::FailSecure => {
                let outputs = self.door.secure(now_mono());
                for event in self.apply(outputs) {
                    self.record(event);
                }
                let stopping = EventDraft::new(EventKind::DaemonStopping);
                self.record(if self.lock_failed.is_cancelled() {
                    stopping
                        .reason("lock_fault")
                        .detail("the lock could not be secured: pintud stops for a restart")
                } else {
                    stopping
                        .reason("secured")
                        .detail("lock secured for shutdown")
                });
            }
            LockType::FailSafe => {
                // A maglock holds only while energised. Once pintud exits the relay is
                // de-energised (here, by the relay's drop and by ExecStopPost), so the door is
                // open: say so rather than "secured".
                let released = match self.lock.release() {
                    Ok(()) => {
                        *self.lock_state.lock().unwrap_or_else(|e| e.into_inner()) =
                            LockState::Released;
                        EventDraft::new(EventKind::LockReleased)
                            .reason("shutdown")
                            .detail("fail-safe lock de-energised: the door is unlocked while pintud is stopped")
                    }
                    Err(e) => EventDraft::new(EventKind::HardwareFault)
                        .reason("lock")
                        .detail(format!(
                            "{e} (de-energising the fail-safe lock for shutdown)"
                        )),
                };
                self.record(released);
                self.record(
                    EventDraft::new(EventKind::DaemonStopping)
                        .reason("released")
                        .detail("fail-safe lock released for shutdown: the door is unlocked until pintud runs again"),
                );
            }
        }
    }

    /// Arms a capture, unless a live one is pending (then the new request is refused).
    fn arm_capture(&mut self, slot: CaptureSlot) {
        if self.capture.as_ref().is_some_and(CaptureSlot::live) {
            let _ = slot.reply.send(Err(
                "another capture is already waiting for a tap on this door".into(),
            ));
            return;
        }
        tracing::info!(
            reader = slot.reader.as_deref().unwrap_or("any"),
            "capture armed: the next tap is captured for enrollment, not decided"
        );
        self.capture = Some(slot);
    }

    /// Takes the pending capture if it is live and wants a tap on `reader`; drops a stale one.
    fn take_capture(&mut self, reader: &str) -> Option<CaptureSlot> {
        if !self.capture.as_ref()?.live() {
            self.capture = None;
            return None;
        }
        let wanted = self.capture.as_ref()?.reader.as_deref();
        if wanted.is_some_and(|r| r != reader) {
            return None;
        }
        self.capture.take()
    }

    /// A tap during a capture: recorded as `card.captured`, never decided, the lock untouched.
    fn capture_tap(&mut self, read: CardRead, slot: CaptureSlot) -> TapOutcome {
        let card = self.cfg.card_key.hash(&read.uid);
        let holder = self
            .store
            .active()
            .and_then(|list| list.lookup(&card).ok().flatten())
            .map(|e| e.holder);
        tracing::info!(card = %card.masked(), holder = holder.as_deref().unwrap_or("-"), "card captured for enrollment (not decided)");
        let seq = self.record(EventDraft {
            reader: Some(read.reader.clone()),
            holder: holder.clone(),
            card: Some(card.masked()),
            detail: Some(format!(
                "captured for enrollment by {}; not decided",
                slot.by
            )),
            ..EventDraft::new(EventKind::CardCaptured)
        });
        let _ = slot.reply.send(Ok(Captured {
            reader: read.reader.clone(),
            uid: read.uid.to_hex(),
            card: card.masked(),
            holder: holder.clone(),
            seq,
        }));
        TapOutcome {
            reader: read.reader,
            card: card.masked(),
            holder,
            decision: "captured".into(),
            reason: None,
            micros: read.at.elapsed().as_micros() as u64,
            seq,
        }
    }

    fn tap(&mut self, read: CardRead) -> TapOutcome {
        // A reader that just came back says so before its first tap.
        self.check_readers();
        if let Some(slot) = self.take_capture(&read.reader) {
            return self.capture_tap(read, slot);
        }
        let started = read.at;
        let card = self.cfg.card_key.hash(&read.uid);
        let wall = self.clock.now();
        let mono = now_mono();
        self.sync_procedure();
        let active = self.store.active();
        let (entry, lookup_failed) = match active.as_deref() {
            None => (None, false),
            Some(list) => match list.lookup(&card) {
                Ok(entry) => (entry, false),
                Err(e) => {
                    tracing::error!("list lookup failed: {e}; denying");
                    (None, true)
                }
            },
        };
        let direction = match read.role {
            ReaderRole::Entry => Direction::Entry,
            ReaderRole::Exit => Direction::Exit,
        };
        let list_version = active.as_ref().map(|a| a.meta.version);
        // A lockdown (signed command) keeps every other role out; leaving is never refused.
        let lockdown = *self.lockdown.lock().unwrap_or_else(|e| e.into_inner());
        let locked_out = direction == Direction::Entry
            && matches!((lockdown, entry.as_ref()), (Some(allowed), Some(e)) if e.role != allowed);
        let (action, escort, events) = if locked_out {
            let decision = Decision::Deny(DenyReason::Lockdown);
            let event = EventDraft::tap(
                decision,
                &read.reader,
                entry.as_ref().map(|e| e.holder.as_str()),
                card.masked(),
                list_version,
            );
            (
                ProcedureAction::Deny(DenyReason::Lockdown),
                None,
                vec![event],
            )
        } else {
            let lookup = match (&entry, lookup_failed) {
                (_, true) => Lookup::Failed,
                (Some(e), false) => Lookup::Found(e),
                (None, false) => Lookup::NotFound,
            };
            let result = self.procedure.on_tap(
                active.as_deref().map(|a| &a.meta),
                Tap {
                    reader: &read.reader,
                    direction,
                    card,
                    lookup,
                    wall,
                    mono,
                },
            );
            (result.verdict, result.escort, result.events)
        };
        // The relay is driven first; its event is recorded after the tap's, so the outbox reads
        // "granted, then released".
        let lock_events = match action {
            ProcedureAction::Grant => {
                let outputs = self.door.release(mono);
                self.apply(outputs)
            }
            ProcedureAction::Deny(_) | ProcedureAction::AwaitEscort { .. } => Vec::new(),
        };
        let micros = started.elapsed().as_micros() as u64;
        let holder = entry.as_ref().map(|e| e.holder.as_str());
        let reason = match action {
            ProcedureAction::Deny(r) => Some(r.as_str()),
            _ => None,
        };
        tracing::info!(
            card = %card.masked(),
            holder = holder.unwrap_or("-"),
            name = entry.as_ref().map(|e| e.name.as_str()).unwrap_or("-"),
            direction = ?direction,
            decision = action.as_str(),
            reason = reason.unwrap_or("-"),
            escort = escort.as_deref().unwrap_or("-"),
            micros,
            "tap"
        );
        let masked = card.masked();
        let mut seq = None;
        for event in events {
            let is_this_tap = event.reader.as_deref() == Some(read.reader.as_str())
                && event.card.as_deref() == Some(masked.as_str())
                && matches!(
                    event.kind,
                    EventKind::AccessGranted | EventKind::AccessDenied | EventKind::EscortAwaited
                );
            let stored = self.record(event);
            if is_this_tap && seq.is_none() {
                seq = stored;
            }
        }
        for event in lock_events {
            self.record(event);
        }
        self.persist_procedure();
        TapOutcome {
            reader: read.reader,
            card: masked,
            holder: holder.map(str::to_string),
            decision: action.as_str().to_string(),
            reason: reason.map(str::to_string),
            micros,
            seq,
        }
    }

    /// Tells the procedure about a newly active list (its `issued_at` raises the time floor,
    /// its visits replace the old ones).
    fn sync_procedure(&mut self) {
        if let Some(active) = self.store.active() {
            if self.list_version != Some(active.meta.version) {
                self.list_version = Some(active.meta.version);
                self.procedure.on_list_applied(&active.meta, now_mono());
            }
        }
    }

    /// Raises `list.expiring` / `list.expired` when due, on the time taps are decided on.
    fn check_list_expiry(&mut self) {
        let active = self.store.active();
        let now = self.procedure.now(self.clock.now(), now_mono()).at;
        if let Some(event) = self.expiry.check(active.as_deref().map(|a| &a.meta), now) {
            match event.kind {
                EventKind::ListExpired => tracing::error!(
                    version = event.list_version,
                    "the active list has expired: every tap is denied until a new list arrives"
                ),
                _ => tracing::warn!(
                    version = event.list_version,
                    "the active list expires soon: deliver a new list"
                ),
            }
            self.record(event);
        }
    }

    /// Records `reader.down` / `reader.up` for reader health changes since the last look.
    fn check_readers(&mut self) {
        for event in self.readers.events() {
            self.record(event);
        }
    }

    /// Escort timeouts, overstays, lockouts ending, clock trust: whatever is due.
    fn procedure_tick(&mut self) {
        self.sync_procedure();
        let events = self.procedure.on_tick(self.clock.now(), now_mono());
        for event in events {
            self.record(event);
        }
        self.persist_procedure();
    }

    /// Saves the procedure's snapshot when it changed (durable with the next flush, which a
    /// tap's acknowledgement waits for), and refreshes what status and `pintuctl who` show.
    fn persist_procedure(&mut self) {
        let mono = now_mono();
        // Presence changes are saved at once; the time floor (which moves with every trusted
        // clock reading) at least once a minute.
        let floor_due = self
            .snapshot_saved
            .is_none_or(|at| mono.duration_since(at) >= Duration::from_secs(60));
        if self.procedure.take_dirty() || floor_due {
            self.snapshot_saved = Some(mono);
            match serde_json::to_vec(&self.procedure.snapshot(mono)) {
                Ok(bytes) => {
                    if let Err(e) = self.store.save_procedure_snapshot(&bytes) {
                        tracing::error!("cannot save presence: {e}");
                        self.store_failed.cancel();
                    }
                }
                Err(e) => tracing::error!("presence snapshot does not serialize: {e}"),
            }
        }
        let presence = self.procedure.presence();
        let occupants: Vec<control::Occupant> = presence
            .occupants()
            .iter()
            .map(|o| control::Occupant {
                holder: o.holder.clone(),
                name: o.name.clone(),
                role: o.role.as_str().to_string(),
                card: o.card.masked(),
                entered_at: o.entered_at,
                visit: o.visit.as_ref().map(|v| v.id.clone()),
                escort: o.escort.clone(),
            })
            .collect();
        let visitors = presence
            .occupants()
            .iter()
            .filter(|o| o.role == Role::Visitor)
            .count();
        let clock = self
            .procedure
            .clock_status(self.clock.now(), mono, ntp_state());
        let view = PresenceView {
            occupants,
            visitors,
            clock: Some(control::ClockInfo {
                trusted: clock.trust == ClockTrust::Trusted,
                floor: clock.floor,
                effective: clock.effective,
                ntp: match clock.ntp {
                    NtpState::Synchronized => "synchronized",
                    NtpState::Unsynchronized => "unsynchronized",
                    NtpState::Unknown => "unknown",
                }
                .to_string(),
            }),
        };
        *self.presence_view.lock().unwrap_or_else(|e| e.into_inner()) = view;
    }

    fn input(&mut self, input: DoorInput) {
        tracing::info!(?input, "door input");
        let now = now_mono();
        let open = match input {
            DoorInput::DoorOpened => Some(true),
            DoorInput::DoorClosed => Some(false),
            DoorInput::ExitButton => None,
        };
        if let Some(open) = open {
            *self.contact.lock().unwrap_or_else(|e| e.into_inner()) = Some(open);
        }
        let mut events = match input {
            DoorInput::DoorOpened => {
                let outputs = self.door.contact_opened(now);
                self.apply(outputs)
            }
            DoorInput::DoorClosed => {
                let outputs = self.door.contact_closed(now);
                self.apply(outputs)
            }
            DoorInput::ExitButton => {
                self.exit_requested = Some(now);
                let outputs = self.door.release(now);
                let mut events = vec![EventDraft::new(EventKind::ExitRequested)];
                events.extend(self.apply(outputs));
                events
            }
        };
        // The exit button and then the door opening: someone left (presence, visit records).
        if input == DoorInput::DoorOpened {
            let requested = self.exit_requested.take();
            if requested.is_some_and(|at| now.duration_since(at) <= self.cfg.unlock_for) {
                events.extend(self.procedure.on_exit_passage(self.clock.now(), now));
            }
        }
        for event in events {
            self.record(event);
        }
        self.persist_procedure();
    }

    /// Carries out the state machine's outputs: drives the relay at once, and returns the events
    /// to record (in order) once the caller has recorded its own.
    fn apply(&mut self, outputs: Vec<Output>) -> Vec<EventDraft> {
        outputs
            .into_iter()
            .map(|output| match output {
                Output::Lock(cmd) => self.drive(cmd),
                Output::Event(event) => door_event(event),
            })
            .collect()
    }

    /// Drives the relay and returns the event to record. A relay fault becomes a
    /// `hardware.fault` event, and the timer treats the door as secured (the safe assumption).
    fn drive(&mut self, cmd: LockCommand) -> EventDraft {
        let (result, state, kind) = match cmd {
            LockCommand::Release => (
                self.lock.release(),
                LockState::Released,
                EventKind::LockReleased,
            ),
            LockCommand::Secure => (
                secure_with_retries(&mut *self.lock.0),
                LockState::Secured,
                EventKind::LockSecured,
            ),
        };
        match result {
            Ok(()) => {
                *self.lock_state.lock().unwrap_or_else(|e| e.into_inner()) = state;
                EventDraft::new(kind)
            }
            Err(e) if cmd == LockCommand::Secure => {
                // Retried already: a lock that cannot be secured is not left to chance. pintud
                // stops; systemd's ExecStopPost drives the relay de-energised and restarts it.
                tracing::error!("relay fault: cannot secure the lock after {SECURE_ATTEMPTS} attempts: {e}; stopping pintud for a restart");
                let _ = self.door.secure(now_mono());
                self.lock_failed.cancel();
                EventDraft::new(EventKind::HardwareFault)
                    .reason("lock")
                    .detail(format!("cannot secure the lock after {SECURE_ATTEMPTS} attempts: {e}; pintud stops for a restart"))
            }
            Err(e) => {
                tracing::error!("relay fault: {e}");
                // Treat the door as secured (the safe assumption); the outputs are moot.
                let _ = self.door.secure(now_mono());
                EventDraft::new(EventKind::HardwareFault)
                    .reason("lock")
                    .detail(e.to_string())
            }
        }
    }

    /// Appends an event; the outbox write is in memory, made durable by the next flush.
    fn record(&self, draft: EventDraft) -> Option<u64> {
        append_or_fail(&self.store, &*self.clock, &self.store_failed, draft)
    }
}

impl CaptureSlot {
    /// Whether the operator is still waiting for it.
    fn live(&self) -> bool {
        !self.reply.is_closed() && Instant::now() < self.deadline
    }
}

/// Pings the watchdog every half period, but only after the door task answered a probe: a stalled
/// tap loop stops the pings, systemd kills pintud, and `ExecStopPost` drives the relay safe.
async fn feed_watchdog(
    watchdog: Watchdog,
    door_tx: mpsc::Sender<DoorMsg>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(watchdog.period / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let probe = async {
            let (reply, answered) = oneshot::channel();
            door_tx.send(DoorMsg::Ping { reply }).await.ok()?;
            answered.await.ok()
        };
        match tokio::time::timeout(watchdog.period / 4, probe).await {
            Ok(Some(())) => {
                if !healthy {
                    tracing::info!("the door task answers again: watchdog pings resume");
                }
                healthy = true;
                (watchdog.ping)();
            }
            _ => {
                if healthy {
                    tracing::error!("the door task does not answer: withholding watchdog pings");
                }
                healthy = false;
            }
        }
    }
}

/// The monotonic time on tokio's clock (so tests can pause it); never the wall clock.
fn now_mono() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The outbox event for a door state-machine event.
fn door_event(event: DoorEvent) -> EventDraft {
    match event {
        DoorEvent::Opened { authorised: true } => {
            EventDraft::new(EventKind::DoorOpened).reason("authorised")
        }
        DoorEvent::Opened { authorised: false } => {
            EventDraft::new(EventKind::DoorOpened).reason("forced")
        }
        DoorEvent::Closed => EventDraft::new(EventKind::DoorClosed),
        DoorEvent::ForcedOpen => EventDraft::new(EventKind::DoorForcedOpen)
            .detail("the door opened while locked and no exit was requested"),
        DoorEvent::ForcedOpenCleared => EventDraft::new(EventKind::DoorForcedOpenCleared),
        DoorEvent::HeldOpenPrealarm => EventDraft::new(EventKind::DoorHeldOpen).reason("prealarm"),
        DoorEvent::HeldOpenAlarm => EventDraft::new(EventKind::DoorHeldOpen).reason("alarm"),
        DoorEvent::HeldOpenCleared => EventDraft::new(EventKind::DoorHeldOpenCleared),
    }
}

/// A source that gave up is a hardware fault the office must see, not only a log line.
fn fault_event(handle: &DaemonHandle, device: String, e: crate::door::hw::HwError) {
    tracing::error!(device, "{e}: stopped");
    let draft = EventDraft::new(EventKind::HardwareFault)
        .reason(device)
        .detail(e.to_string());
    if let Err(err) = handle.store.append(draft, handle.clock.now()) {
        tracing::error!("cannot record the hardware fault: {err}");
    }
}

/// Starts each source as a task, plus a forwarder per kind into the door task.
fn spawn_sources(
    cards: Vec<Box<dyn CardSource>>,
    inputs: Vec<Box<dyn DoorInputs>>,
    handle: &Arc<DaemonHandle>,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let door_tx = &handle.door_tx;
    let mut tasks = Vec::new();
    let (reads_tx, mut reads_rx) = mpsc::channel::<CardRead>(64);
    let (inputs_tx, mut inputs_rx) = mpsc::channel::<DoorInput>(64);
    for source in cards {
        let name = source.name().to_string();
        let fut = source.run(reads_tx.clone(), shutdown.clone());
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = fut.await {
                fault_event(&h, format!("reader:{name}"), e);
            }
        }));
    }
    for source in inputs {
        let fut = source.run(inputs_tx.clone(), shutdown.clone());
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = fut.await {
                fault_event(&h, "inputs".into(), e);
            }
        }));
    }
    // The forwarders end when every source has dropped its sender.
    drop((reads_tx, inputs_tx));
    let tx = door_tx.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(read) = reads_rx.recv().await {
            if tx.send(DoorMsg::Tap { read, reply: None }).await.is_err() {
                return;
            }
        }
    }));
    let tx = door_tx.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(input) = inputs_rx.recv().await {
            let (reply, _) = oneshot::channel();
            if tx.send(DoorMsg::Input { input, reply }).await.is_err() {
                return;
            }
        }
    }));
    tasks
}

/// How many times securing the lock is tried before pintud gives up and stops for a restart.
const SECURE_ATTEMPTS: u32 = 3;

/// Secures `lock`, trying [`SECURE_ATTEMPTS`] times a few milliseconds apart: a relay driver
/// that fails once (a GPIO ioctl interrupted, a busy line) should not leave the door open. The
/// pause blocks the door task briefly, which is acceptable on this fault path only.
fn secure_with_retries(lock: &mut dyn Lock) -> Result<(), crate::door::hw::HwError> {
    let mut attempt = 1;
    loop {
        match lock.secure() {
            Ok(()) => return Ok(()),
            Err(e) if attempt < SECURE_ATTEMPTS => {
                tracing::warn!(attempt, "securing the lock failed: {e}; trying again");
                std::thread::sleep(Duration::from_millis(20));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Owns the lock for the door task and secures it when dropped, so a panic unwinding through the
/// door task still leaves the door locked. (After SIGKILL or power loss only the wiring can.)
struct SecuringLock(Box<dyn Lock>);

impl SecuringLock {
    fn release(&mut self) -> Result<(), crate::door::hw::HwError> {
        self.0.release()
    }
}

impl Drop for SecuringLock {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.secure();
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Watches the inbox directory for signed lists (USB stick copy, scp). A file is taken once its
/// size and modification time held still for one scan, so a copy in progress is never read; it is
/// then moved to `processed/` or `rejected/` with a time prefix, and those two keep at most
/// `list.inbox_keep` files and `list.inbox_keep_bytes` bytes each (oldest removed first).
async fn watch_inbox(handle: Arc<DaemonHandle>, shutdown: CancellationToken) {
    let inbox = handle.cfg.inbox.clone();
    // Operators in the daemon's group may drop lists (they are signed); only pintud moves them.
    // Sticky: an operator cannot rename or delete a file another one dropped (swap it for a
    // symlink, say); pintud, the directory's owner, still can.
    for (dir, mode) in [
        (inbox.clone(), 0o1770),
        (inbox.join("processed"), 0o750),
        (inbox.join("rejected"), 0o750),
    ] {
        if let Err(e) = files::create_dir_with_mode(&dir, mode) {
            tracing::error!(inbox = %dir.display(), "cannot create the list inbox: {e}; lists can only arrive at start");
            return;
        }
    }
    secure_inbox_dir(&inbox);
    let mut scanner = InboxScanner::default();
    let mut interval = tokio::time::interval(handle.cfg.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let ready = scanner.scan(&inbox);
        for (path, stamp) in ready {
            let h = handle.clone();
            let p = path.clone();
            let id = stamp.id;
            let taken = tokio::task::spawn_blocking(move || h.take_list_file(&p, Some(id), false))
                .instrument(tracing::info_span!("inbox", file = %path.display()))
                .await;
            let accepted = match taken {
                Ok(Ok(Intake::Applied)) => true,
                Ok(Ok(Intake::Rejected)) => false,
                // Not the file the scan checked: the next scans look at it afresh.
                Ok(Ok(Intake::Changed)) => continue,
                Ok(Err(e)) => {
                    tracing::error!("store error while applying {}: {e}", path.display());
                    false
                }
                Err(e) => {
                    tracing::error!("list intake task failed: {e}");
                    false
                }
            };
            let dest_dir = inbox.join(if accepted { "processed" } else { "rejected" });
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = dest_dir.join(format!(
                "{}-{name}",
                Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
            ));
            if let Err(e) = std::fs::rename(&path, &dest) {
                tracing::warn!(
                    "cannot move {} to {}: {e}; it is ignored until it changes",
                    path.display(),
                    dest.display()
                );
                scanner.stuck.insert(path, stamp);
                continue;
            }
            let (keep, keep_bytes) = (handle.cfg.inbox_keep, handle.cfg.inbox_keep_bytes);
            match files::prune_dir(&dest_dir, keep, keep_bytes) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    dir = %dest_dir.display(),
                    removed = n,
                    "pruned the oldest inbox files (list.inbox_keep = {keep}, list.inbox_keep_bytes = {keep_bytes})"
                ),
                Err(e) => tracing::warn!(dir = %dest_dir.display(), "cannot prune: {e}"),
            }
        }
    }
}

/// Sets the sticky bit on an inbox pintud owns, and takes away write access for others; an
/// inbox it does not own (a mounted USB stick, a directory root set up) is left as it is, with a
/// warning when it lacks the sticky bit while others than its owner may write to it.
fn secure_inbox_dir(inbox: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = match std::fs::metadata(inbox) {
        Ok(md) => md,
        Err(e) => {
            tracing::warn!(inbox = %inbox.display(), "cannot examine the list inbox: {e}");
            return;
        }
    };
    let mode = md.mode() & 0o7777;
    let wanted = (mode | 0o1000) & !0o002;
    if mode == wanted {
        return;
    }
    if md.uid() == nix::unistd::geteuid().as_raw() {
        match std::fs::set_permissions(inbox, std::fs::Permissions::from_mode(wanted)) {
            Ok(()) => tracing::info!(
                inbox = %inbox.display(),
                "list inbox mode set to {wanted:04o} (was {mode:04o}): sticky, not writable by others"
            ),
            Err(e) => tracing::warn!(
                inbox = %inbox.display(),
                "cannot set the list inbox's mode to {wanted:04o} (is {mode:04o}): {e}"
            ),
        }
    } else if mode & 0o022 != 0 {
        tracing::warn!(
            inbox = %inbox.display(),
            "the list inbox (mode {mode:04o}) is writable by others than its owner but not sticky: one writer can swap another's file; see docs/access-list.md"
        );
    }
}

/// A file as the inbox scan saw it: size and modification time (a copy in progress changes
/// them) and identity (the file opened later must be this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
    id: files::FileId,
}

/// Inbox scanning state between scans.
#[derive(Default)]
struct InboxScanner {
    /// Files seen in the previous scan.
    pending: HashMap<PathBuf, Stamp>,
    /// Files handled but not movable (read-only medium): skipped until they change.
    stuck: HashMap<PathBuf, Stamp>,
}

impl InboxScanner {
    /// One scan: returns files whose size and mtime are unchanged since the previous scan.
    fn scan(&mut self, inbox: &Path) -> Vec<(PathBuf, Stamp)> {
        let mut ready = Vec::new();
        let mut seen = HashMap::new();
        let entries = match std::fs::read_dir(inbox) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(inbox = %inbox.display(), "cannot read the list inbox: {e}");
                return ready;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Hidden and partial files are copies in progress (scp, rsync, our own temp files).
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
                continue;
            }
            // lstat: a symlink is never followed. Directories hold the archives (`processed/`,
            // `rejected/`); anything else that is not a regular file (a symlink, a FIFO) is
            // handed to the intake like a file, which refuses it by name (`not_a_file`) instead
            // of leaving it unexplained in the inbox.
            let Ok(md) = entry.metadata() else { continue };
            if md.is_dir() {
                continue;
            }
            let stamp = Stamp {
                len: md.len(),
                modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                id: files::FileId::of(&md),
            };
            let path = entry.path();
            if self.stuck.get(&path) == Some(&stamp) {
                continue;
            }
            if self.pending.get(&path) == Some(&stamp) {
                ready.push((path, stamp));
            } else {
                seen.insert(path, stamp);
            }
        }
        self.pending = seen;
        ready.sort_by(|a, b| a.0.cmp(&b.0));
        ready
    }
}
