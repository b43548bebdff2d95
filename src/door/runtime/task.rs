//! The door task: one actor that owns the lock, the door state machine, the procedure and the
//! door's policy state (lockdown, contact, presence). It decides taps and input changes one at a
//! time and never waits on anything slow (no fsync, no network); it publishes what others may
//! read of its state as a [`DoorView`] and answers the handle's [`DoorMsg`]s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::core::doorstate::{DoorEvent, DoorMachine, LockCommand, LockType, Output};
use crate::core::event::{EventDraft, EventKind};
use crate::core::expiry::ExpiryWatch;
use crate::core::list::Role;
use crate::core::procedure::{Procedure, Tap, TapResult, Verdict};
use crate::core::trusted_time::{ClockTrust, NtpState};
use crate::door::clock::Clock;
use crate::door::config::Config;
use crate::door::control::{self, Captured, TapOutcome};
use crate::door::hw::sim::LockRecord;
use crate::door::hw::{CardRead, DoorInput, Lock, LockState};
use crate::door::runtime::handle::DaemonHandle;
use crate::door::runtime::intake::ListIntake;
use crate::door::runtime::lock::{SecuringLock, SECURE_ATTEMPTS};
use crate::door::runtime::mailbox::{DoorMsg, DoorView};
use crate::door::runtime::readers::ReaderWatch;
use crate::door::runtime::recorder::Recorder;
use crate::door::store::{CardLookup, Store, StoreError};

/// What the door needs to run, gathered by the wiring.
pub(crate) struct DoorParts {
    pub cfg: Arc<Config>,
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    /// Already driven to its safe state.
    pub lock: Box<dyn Lock>,
    /// The simulated lock's record, for status.
    pub lock_record: Option<LockRecord>,
    /// Cancelled when the store cannot take an event: pintud stops.
    pub store_failed: CancellationToken,
    /// Cancelled when the lock cannot be secured even after retries: pintud stops for a restart.
    pub lock_failed: CancellationToken,
    /// Whether the kernel's clock is NTP-synchronised (`None`: cannot tell).
    pub ntp: fn() -> Option<bool>,
}

/// The door task and the handle that talks to it. The lockdown in force and the procedure
/// (presence, time floor) are restored from the store.
pub(crate) fn assemble(parts: DoorParts) -> Result<(Arc<DaemonHandle>, DoorTask), StoreError> {
    let DoorParts {
        cfg,
        store,
        clock,
        lock,
        lock_record,
        store_failed,
        lock_failed,
        ntp,
    } = parts;
    let mut procedure = restore_procedure(&cfg, &store, clock.now());
    if let Some(name) = store.lockdown()? {
        tracing::warn!(role = %name, "door is in lockdown (signed command); only this role is admitted");
        procedure.set_lockdown(Some(parse_role(&name).unwrap_or(Role::Staff)));
    }
    let (view_tx, view) = watch::channel(DoorView::at_start(procedure.lockdown()));
    let (door_tx, inbox) = mpsc::channel(256);
    let recorder = Recorder::new(store.clone(), clock.clone(), store_failed);
    let intake = Arc::new(ListIntake::new(cfg.clone(), recorder.clone(), view.clone()));
    let handle = Arc::new(DaemonHandle::new(
        cfg.clone(),
        recorder.clone(),
        door_tx,
        view,
        lock_record,
        intake,
    ));
    let door = DoorTask {
        door: DoorMachine::new(cfg.door_settings),
        readers: ReaderWatch::new(&cfg.readers),
        expiry: ExpiryWatch::new(cfg.list_expiry_warning),
        cfg,
        store,
        clock,
        recorder,
        lock: SecuringLock::new(lock),
        view: view_tx,
        inbox,
        capture: None,
        lock_failed,
        procedure,
        exit_requested: None,
        list_version: None,
        snapshot_saved: None,
        ntp,
    };
    Ok((handle, door))
}

/// A role name as stored for a lockdown.
fn parse_role(name: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// The door task's state.
pub(crate) struct DoorTask {
    cfg: Arc<Config>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    lock: SecuringLock,
    door: DoorMachine,
    /// What the task publishes of its state (lock, lockdown, contact, presence, clock).
    view: watch::Sender<DoorView>,
    /// The handle's and the sources' requests.
    inbox: mpsc::Receiver<DoorMsg>,
    /// A pending enrollment capture.
    capture: Option<CaptureSlot>,
    lock_failed: CancellationToken,
    /// Visits, escort, presence, anti-passback, floods, the clock floor and the lockdown (pure
    /// core).
    procedure: Procedure,
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
    ntp: fn() -> Option<bool>,
}

/// The procedure at start: restored from the store's records (who is inside, the time floor),
/// or fresh. A record that cannot be read is logged and left out; a snapshot that does not
/// restore is logged and dropped: presence then starts empty. A store written before the
/// records (one key holding the whole snapshot) is migrated here, once.
fn restore_procedure(cfg: &Config, store: &Store, wall: Timestamp) -> Procedure {
    let settings = cfg.procedure.clone();
    let mono = now_mono();
    let loaded = match store.load_procedure() {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("cannot read the presence records ({e}); starting with nobody inside");
            return Procedure::new(settings, wall, mono);
        }
    };
    for why in &loaded.damaged {
        tracing::error!("stored presence is damaged ({why}); left out");
    }
    let procedure = match loaded.snapshot {
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
    };
    if loaded.legacy {
        match store.replace_procedure(&procedure.snapshot(mono)) {
            Ok(()) => tracing::info!(
                inside = procedure.presence().count(),
                "presence snapshot migrated to one record per occupant"
            ),
            Err(e) => tracing::error!(
                "cannot migrate the presence snapshot ({e}); retried at the next start"
            ),
        }
    }
    procedure
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

impl CaptureSlot {
    /// Whether the operator is still waiting for it.
    fn live(&self) -> bool {
        !self.reply.is_closed() && Instant::now() < self.deadline
    }
}

impl DoorTask {
    /// Runs until `shutdown` (or until every sender is gone), then leaves the lock in the state
    /// it keeps without pintud.
    pub async fn run(mut self, shutdown: CancellationToken) {
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
                msg = self.inbox.recv() => match msg {
                    None => break,
                    Some(msg) => self.message(msg),
                },
            }
        }
        self.stop();
    }

    /// Answers one request; every reply goes out after the view says what it did.
    fn message(&mut self, msg: DoorMsg) {
        match msg {
            DoorMsg::Tap { read, reply } => {
                let span = tracing::info_span!("tap", reader = %read.reader);
                let outcome = span.in_scope(|| self.tap(read));
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            DoorMsg::Input { input, reply } => {
                self.input(input);
                let _ = reply.send(());
            }
            DoorMsg::Capture {
                reader,
                deadline,
                by,
                reply,
            } => {
                self.arm_capture(CaptureSlot {
                    reader,
                    deadline,
                    by,
                    reply,
                });
            }
            DoorMsg::Ping { reply } => {
                let _ = reply.send(());
            }
            DoorMsg::Who { reply } => {
                let _ = reply.send(self.occupants());
            }
            DoorMsg::CommandTime { issued_at } => {
                self.procedure.observe_command_time(issued_at);
            }
            DoorMsg::ResetTimeFloor { to, reply } => {
                let before = self
                    .procedure
                    .clock_status(self.clock.now(), now_mono(), self.ntp_state())
                    .floor;
                self.procedure.reset_time_floor(to, now_mono());
                self.persist_procedure();
                let _ = reply.send(before);
            }
            DoorMsg::SetLockdown { role, reply } => {
                let before = self.procedure.set_lockdown(role);
                self.view.send_modify(|v| v.lockdown = role);
                let _ = reply.send(before);
            }
            DoorMsg::RemoteRelease { reply } => {
                let outputs = self.door.release(now_mono());
                for event in self.apply(outputs) {
                    self.record(event);
                }
                let _ = reply.send(());
            }
        }
    }

    /// Every way out of the loop ends with the lock in the state it keeps without pintud, and
    /// the last events say which: a fail-secure lock secured, a fail-safe lock released.
    fn stop(&mut self) {
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
                        self.view.send_modify(|v| v.lock = LockState::Released);
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

    /// Decides a tap (the procedure decides, lockdown included), drives the relay, records the
    /// events; the outcome carries the seq of the tap's own event.
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
        let found = CardLookup::of(active.as_deref(), &card);
        let entry = found.entry();
        let direction = read.role;
        let TapResult {
            verdict,
            escort,
            events,
            tap_event,
        } = self.procedure.on_tap(
            active.as_deref().map(|a| &a.meta),
            Tap {
                reader: &read.reader,
                direction,
                card,
                lookup: found.as_lookup(),
                wall,
                mono,
            },
        );
        // The relay is driven first; its event is recorded after the tap's, so the outbox reads
        // "granted, then released".
        let lock_events = match verdict {
            Verdict::Grant => {
                let outputs = self.door.release(mono);
                self.apply(outputs)
            }
            Verdict::Deny(_) | Verdict::AwaitEscort { .. } => Vec::new(),
        };
        let micros = started.elapsed().as_micros() as u64;
        let holder = entry.as_ref().map(|e| e.holder.as_str());
        let reason = match verdict {
            Verdict::Deny(r) => Some(r.as_str()),
            _ => None,
        };
        tracing::info!(
            card = %card.masked(),
            holder = holder.unwrap_or("-"),
            name = entry.as_ref().map(|e| e.name.as_str()).unwrap_or("-"),
            direction = ?direction,
            decision = verdict.as_str(),
            reason = reason.unwrap_or("-"),
            escort = escort.as_deref().unwrap_or("-"),
            micros,
            "tap"
        );
        let mut seq = None;
        for (i, event) in events.into_iter().enumerate() {
            let stored = self.record(event);
            if i == tap_event {
                seq = stored;
            }
        }
        for event in lock_events {
            self.record(event);
        }
        self.persist_procedure();
        TapOutcome {
            reader: read.reader,
            card: card.masked(),
            holder: holder.map(str::to_string),
            decision: verdict.as_str().to_string(),
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

    /// Kernel NTP state for the procedure's clock status.
    fn ntp_state(&self) -> NtpState {
        match (self.ntp)() {
            Some(true) => NtpState::Synchronized,
            Some(false) => NtpState::Unsynchronized,
            None => NtpState::Unknown,
        }
    }

    /// Saves what changed in the procedure (durable with the next flush, which a tap's
    /// acknowledgement waits for), and publishes how many are inside and the clock. Who is
    /// inside is built only when asked ([`DoorMsg::Who`]).
    fn persist_procedure(&mut self) {
        let mono = now_mono();
        // Presence changes are saved at once; the time floor (which moves with every trusted
        // clock reading) at least once a minute, and at once when a signed time moved it.
        let changes = self.procedure.take_changes();
        let floor_due = changes.floor
            || self
                .snapshot_saved
                .is_none_or(|at| mono.duration_since(at) >= Duration::from_secs(60));
        if floor_due {
            self.snapshot_saved = Some(mono);
        }
        if !changes.is_empty() || floor_due {
            let floor = floor_due.then(|| self.procedure.floor_to_persist(mono));
            if let Err(e) = self.store.save_procedure_changes(&changes, floor) {
                tracing::error!("cannot save presence: {e}");
                self.recorder.fail();
            }
        }
        let presence = self.procedure.presence();
        let (occupancy, visitors) = (presence.count(), presence.visitors());
        let clock = self
            .procedure
            .clock_status(self.clock.now(), mono, self.ntp_state());
        let clock = control::ClockInfo {
            trusted: clock.trust == ClockTrust::Trusted,
            floor: clock.floor,
            effective: clock.effective,
            ntp: match clock.ntp {
                NtpState::Synchronized => "synchronized",
                NtpState::Unsynchronized => "unsynchronized",
                NtpState::Unknown => "unknown",
            }
            .to_string(),
        };
        self.view.send_modify(|v| {
            v.occupancy = occupancy;
            v.visitors = visitors;
            v.clock = Some(clock);
        });
    }

    /// Who is inside, for `pintuctl who`: built when asked, not on every change.
    fn occupants(&self) -> Vec<control::Occupant> {
        self.procedure
            .presence()
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
            .collect()
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
            self.view.send_modify(|v| v.contact = Some(open));
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
                self.lock.secure(),
                LockState::Secured,
                EventKind::LockSecured,
            ),
        };
        match result {
            Ok(()) => {
                self.view.send_modify(|v| v.lock = state);
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
        self.recorder.record(draft)
    }
}

/// The monotonic time on tokio's clock (so tests can pause it); never the wall clock.
pub(crate) fn now_mono() -> Instant {
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
