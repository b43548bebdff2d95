//! `pintud`'s wiring: drives the lock safe, opens the store, assembles the door task and its
//! handle ([`crate::door::runtime`]), offers the start-up lists, then runs the control server,
//! the inbox watcher, the card and input sources, the MQTT link and the watchdog until shutdown.
//!
//! On shutdown (signal or error) the door task secures the lock before anything else; a door
//! task that ends early (a panic: its lock guard secured the door) stops the whole daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::core::doorstate::LockType;
use crate::core::event::{EventDraft, EventKind};
use crate::door::clock::Clock;
use crate::door::config::Config;
use crate::door::control;
use crate::door::hw::sim::{LockRecord, SimLock};
use crate::door::hw::{CardRead, CardSource, DoorInput, DoorInputs, Lock};
use crate::door::link;
use crate::door::runtime::inbox;
use crate::door::runtime::lock::{secure_with_retries, SECURE_ATTEMPTS};
use crate::door::runtime::mailbox::DoorMsg;
use crate::door::runtime::task::{assemble, DoorParts};
use crate::door::store::{Store, StoreError, StoreOptions};

pub use crate::door::runtime::DaemonHandle;

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

    let store_failed = CancellationToken::new();
    let lock_failed = CancellationToken::new();
    let (handle, door) = assemble(DoorParts {
        cfg: cfg.clone(),
        store: store.clone(),
        clock: clock.clone(),
        lock,
        lock_record,
        store_failed: store_failed.clone(),
        lock_failed: lock_failed.clone(),
        ntp: link::ntp_synced,
    })?;

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

    let door_task = tokio::spawn(door.run(shutdown.clone()));
    let control_task = tokio::spawn(control::serve(listener, handle.clone(), shutdown.clone()));
    let inbox_task = tokio::spawn(inbox::watch_inbox(
        cfg.clone(),
        handle.intake().clone(),
        shutdown.clone(),
    ));
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
        .map(|m| tokio::spawn(link::run(handle.clone(), m, mqtt_stop.clone())));
    let watchdog_task = opts
        .watchdog
        .map(|w| tokio::spawn(feed_watchdog(w, handle.door_tx().clone(), shutdown.clone())));

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

async fn stop_mqtt(task: Option<tokio::task::JoinHandle<()>>, stop: &CancellationToken) {
    if let Some(task) = task {
        stop.cancel();
        let _ = task.await;
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

/// A source that gave up is a hardware fault the office must see, not only a log line.
fn fault_event(handle: &DaemonHandle, device: String, e: crate::door::hw::HwError) {
    tracing::error!(device, "{e}: stopped");
    let draft = EventDraft::new(EventKind::HardwareFault)
        .reason(device)
        .detail(e.to_string());
    if let Err(err) = handle.store().append(draft, handle.now()) {
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
    let door_tx = handle.door_tx();
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
