//! PC/SC card readers through pcscd: USB contactless readers such as the ACR122U and ACR1252U.
//!
//! [`Watcher`] is the blocking core, shared by the door ([`PcscReader`]) and by `pintuctl enroll`
//! ([`read_next_card`]): it follows the readers whose name matches a pattern with
//! `SCardGetStatusChange` (no polling loop of our own: each call waits at most about a second for
//! pcscd to report a change, so cancellation is seen), including the `\\?PnP?\Notification`
//! pseudo-reader so readers plugged in or out are noticed. When a card arrives on a reader it reads
//! the UID with GET DATA (`FF CA 00 00 00`, answered with the UID and `90 00`): connect shared,
//! transmit, disconnect leaving the card.
//!
//! One presentation is one tap: a card held on the reader is reported once, until pcscd sees it
//! removed (the reader's event counter tells a quick remove-and-replace from a card left in place).
//! A card already on a reader when the watcher first sees that reader (daemon start, reader
//! plugged in, pcscd restarted) is not a tap: it must be lifted and presented again. Enrollment
//! asks for the opposite ([`Watcher::count_cards_already_present`]).
//!
//! Recovery: any PC/SC error other than a timeout drops the context and the reader list, and the
//! next call starts over with a fresh context. This matters: after pcscd restarts, a pcsc-lite
//! context stays dead even though `SCardIsValidContext` still calls it valid. [`PcscReader`] runs
//! the watcher on a dedicated thread, retries with a capped backoff, and replaces the thread when a
//! PC/SC call hangs (ACR122U readers on a Pi are known for USB timeouts). State changes (pcscd
//! down or back, readers appearing or vanishing) are logged once each. UIDs are never logged.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{CardRead, CardSource, SourceFuture};
use crate::core::card::{Uid, UidError};
use crate::core::procedure::Direction;
use crate::core::text::bounded;
use crate::door::config::PcscSettings;

/// GET DATA, UID (PC/SC part 3 pseudo-APDU for contactless readers).
pub const GET_UID: [u8; 5] = [0xFF, 0xCA, 0x00, 0x00, 0x00];

/// How long one `SCardGetStatusChange` waits before returning to check for cancellation.
pub const POLL_WAIT: Duration = Duration::from_secs(1);

/// A PC/SC call that has not returned after this long is abandoned with its thread and context.
pub const STALL_LIMIT: Duration = Duration::from_secs(15);

/// Retry delays after an error: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(2));

/// Attempts at reading one presented card before giving up on that presentation.
const READ_ATTEMPTS: usize = 3;

/// Without plug-and-play notifications, how often the reader list is read again.
const RELIST_EVERY: Duration = Duration::from_secs(5);

/// PC/SC failures.
#[derive(Debug, thiserror::Error)]
pub enum PcscError {
    /// A PC/SC call failed.
    #[error("{op}: {source}")]
    Call {
        /// What was being done.
        op: &'static str,
        /// pcsc-lite's error.
        source: pcsc::Error,
    },
    /// No card arrived in time (enrollment).
    #[error("no card was presented within {}", humantime::format_duration(*.0))]
    NoCard(Duration),
    /// No reader matched the pattern in time (enrollment).
    #[error("no PC/SC reader {wanted} (readers present: {present})")]
    NoReader {
        /// The pattern, as words.
        wanted: String,
        /// Readers pcscd knows.
        present: String,
    },
}

impl PcscError {
    fn call(op: &'static str, source: pcsc::Error) -> Self {
        PcscError::Call { op, source }
    }

    /// Whether pcscd itself is unreachable (not running, or restarted under us).
    pub fn is_service_down(&self) -> bool {
        matches!(
            self,
            PcscError::Call {
                source: pcsc::Error::NoService
                    | pcsc::Error::ServiceStopped
                    | pcsc::Error::CommError,
                ..
            }
        )
    }
}

/// Why a presented card yielded no UID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidReadError {
    /// The answer is shorter than a status word.
    #[error("answer of {0} bytes is too short for a status word")]
    Short(usize),
    /// The card or reader refused GET DATA.
    #[error("GET DATA refused with status word {0:02X}{1:02X}")]
    Status(u8, u8),
    /// The UID itself is unusable.
    #[error("bad UID: {0}")]
    Uid(#[from] UidError),
}

/// Parses the answer to [`GET_UID`]: the UID followed by the status word `90 00`.
pub fn parse_uid_response(answer: &[u8]) -> Result<Uid, UidReadError> {
    let Some((data, sw)) = answer.len().checked_sub(2).map(|n| answer.split_at(n)) else {
        return Err(UidReadError::Short(answer.len()));
    };
    if sw != [0x90, 0x00] {
        return Err(UidReadError::Status(sw[0], sw[1]));
    }
    Ok(Uid::from_bytes(data)?)
}

/// A card presented on a reader.
#[derive(Debug, Clone)]
pub struct Tap {
    /// The PC/SC reader's name, e.g. `ACS ACR122U PICC Interface 00 00`.
    pub pcsc_reader: String,
    /// The card's UID.
    pub uid: Uid,
}

/// Shared between a watcher's thread and whoever supervises it: the call in progress (to spot a
/// hung one) and the live context (to cancel a wait at shutdown).
#[derive(Default)]
pub struct CallMonitor {
    busy_since: Mutex<Option<Instant>>,
    context: Mutex<Option<Context>>,
}

impl CallMonitor {
    /// How long the PC/SC call in progress has been running, if one is.
    pub fn busy_for(&self) -> Option<Duration> {
        lock(&self.busy_since).map(|t| t.elapsed())
    }

    /// Interrupts a `SCardGetStatusChange` in progress (it returns `Cancelled`).
    pub fn cancel(&self) {
        if let Some(ctx) = lock(&self.context).as_ref() {
            let _ = ctx.cancel();
        }
    }

    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        *lock(&self.busy_since) = Some(Instant::now());
        let out = f();
        *lock(&self.busy_since) = None;
        out
    }

    fn set_context(&self, ctx: Option<Context>) {
        *lock(&self.context) = ctx;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the watcher knows of the card on one reader.
#[derive(Debug, Clone, Copy)]
struct Presence {
    present: bool,
    /// pcscd's per-reader count of insertions and removals.
    events: u32,
}

/// Follows the matching readers and reports each card presentation once. Blocking; see the
/// module documentation.
pub struct Watcher {
    /// Lower-case name pattern; `None` takes every reader.
    pattern: Option<String>,
    count_present_at_start: bool,
    ctx: Option<Context>,
    /// Reader states passed to `SCardGetStatusChange`; the first is the PnP pseudo-reader when
    /// `pnp` is set.
    states: Vec<ReaderState>,
    pnp: bool,
    /// Last known presence per reader; `None` until the reader's first report (its baseline).
    cards: HashMap<CString, Presence>,
    /// The reader list must be read again before the next wait.
    relist: bool,
    listed_at: Instant,
    /// Whether a status round has completed (for `count_present_at_start`).
    started: bool,
    /// Matching readers, kept across context resets so changes are logged once.
    known: BTreeSet<String>,
    /// Logged "no matching reader" already.
    warned_none: bool,
    monitor: Arc<CallMonitor>,
}

impl Watcher {
    /// A watcher of the readers whose name contains `pattern` (case-insensitive), or of all.
    pub fn new(pattern: Option<&str>) -> Self {
        Watcher {
            pattern: pattern.map(str::to_lowercase),
            count_present_at_start: false,
            ctx: None,
            states: Vec::new(),
            pnp: true,
            cards: HashMap::new(),
            relist: true,
            listed_at: Instant::now(),
            started: false,
            known: BTreeSet::new(),
            warned_none: false,
            monitor: Arc::default(),
        }
    }

    /// Also report a card lying on a reader when the watcher starts (enrollment: the operator may
    /// put the card down first).
    pub fn count_cards_already_present(mut self) -> Self {
        self.count_present_at_start = true;
        self
    }

    /// The handle its supervisor uses to spot a hung call or cancel a wait.
    pub fn monitor(&self) -> Arc<CallMonitor> {
        self.monitor.clone()
    }

    /// The matching readers currently present.
    pub fn readers(&self) -> impl Iterator<Item = &str> {
        self.known.iter().map(String::as_str)
    }

    fn matches(&self, name: &str) -> bool {
        match &self.pattern {
            None => true,
            Some(p) => name.to_lowercase().contains(p.as_str()),
        }
    }

    /// Forgets the context and the readers' states: the next call starts over.
    fn reset(&mut self) {
        self.ctx = None;
        self.monitor.set_context(None);
        self.states.clear();
        self.cards.clear();
        self.relist = true;
    }

    fn context(&mut self) -> Result<Context, PcscError> {
        if let Some(ctx) = &self.ctx {
            return Ok(ctx.clone());
        }
        let ctx = self
            .monitor
            .timed(|| Context::establish(Scope::System))
            .map_err(|e| PcscError::call("connecting to pcscd", e))?;
        self.ctx = Some(ctx.clone());
        self.monitor.set_context(Some(ctx.clone()));
        self.relist = true;
        Ok(ctx)
    }

    /// Reads the reader list and rebuilds the states to wait on, keeping known readers' states.
    fn list_readers(&mut self, ctx: &Context) -> Result<(), PcscError> {
        let names = self
            .monitor
            .timed(|| ctx.list_readers_owned())
            .map_err(|e| PcscError::call("listing readers", e))?;
        self.listed_at = Instant::now();
        self.relist = false;
        let wanted: Vec<CString> = names
            .into_iter()
            .filter(|n| self.matches(&n.to_string_lossy()))
            .collect();
        // Keep the PnP entry and the states of readers still present; add new ones as unaware.
        let mut old: Vec<ReaderState> = std::mem::take(&mut self.states);
        if self.pnp {
            let pnp = match old.first().filter(|s| s.name() == pcsc::PNP_NOTIFICATION()) {
                Some(_) => old.remove(0),
                None => ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE),
            };
            self.states.push(pnp);
        }
        for name in &wanted {
            match old.iter().position(|s| s.name() == name.as_c_str()) {
                Some(i) => self.states.push(old.swap_remove(i)),
                None => self
                    .states
                    .push(ReaderState::new(name.clone(), State::UNAWARE)),
            }
        }
        self.cards.retain(|name, _| wanted.contains(name));

        // Reader names come from the device (USB descriptors through pcscd): bounded for the log.
        let now: BTreeSet<String> = wanted
            .iter()
            .map(|n| bounded(&n.to_string_lossy(), 128))
            .collect();
        for gone in self.known.difference(&now) {
            tracing::warn!(pcsc_reader = %gone, "PC/SC reader vanished");
        }
        for new in now.difference(&self.known) {
            tracing::info!(pcsc_reader = %new, "PC/SC reader present");
        }
        if now.is_empty() && (!self.warned_none || !self.known.is_empty()) {
            tracing::warn!(
                pattern = self.pattern.as_deref().unwrap_or("*"),
                "no PC/SC reader matches; waiting for one to be plugged in"
            );
            self.warned_none = true;
        }
        self.known = now;
        Ok(())
    }

    /// Waits up to `wait` for changes and returns the cards newly presented (often none).
    /// On an error the context is dropped; call again (after a pause) to start over.
    pub fn poll(&mut self, wait: Duration) -> Result<Vec<Tap>, PcscError> {
        let result = self.poll_inner(wait);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn poll_inner(&mut self, wait: Duration) -> Result<Vec<Tap>, PcscError> {
        let ctx = self.context()?;
        if self.relist || (!self.pnp && self.listed_at.elapsed() >= RELIST_EVERY) {
            self.list_readers(&ctx)?;
        }
        for state in &mut self.states {
            state.sync_current_state();
        }
        let states = &mut self.states;
        match self.monitor.timed(|| ctx.get_status_change(wait, states)) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => {
                self.started = true;
                return Ok(Vec::new());
            }
            Err(pcsc::Error::Cancelled) => return Ok(Vec::new()),
            Err(e) => return Err(PcscError::call("waiting for card events", e)),
        }
        let mut arrived = Vec::new();
        for (i, state) in self.states.iter().enumerate() {
            let ev = state.event_state();
            if self.pnp && i == 0 {
                if ev.intersects(State::UNKNOWN | State::IGNORE) {
                    tracing::debug!("no plug-and-play notifications: reading the reader list every {RELIST_EVERY:?}");
                    self.pnp = false;
                    self.relist = true;
                } else if ev.contains(State::CHANGED) {
                    self.relist = true;
                }
                continue;
            }
            if ev.intersects(State::UNKNOWN | State::IGNORE | State::UNAVAILABLE) {
                self.relist = true;
                continue;
            }
            let now = Presence {
                present: ev.contains(State::PRESENT),
                events: state.event_count(),
            };
            let name = state.name().to_owned();
            let before = self.cards.insert(name.clone(), now);
            let at_start = self.count_present_at_start && !self.started;
            let new_card = is_new_presentation(before, now, at_start);
            if new_card {
                if ev.contains(State::MUTE) {
                    tracing::info!(pcsc_reader = %bounded(&name.to_string_lossy(), 128), "card does not answer (mute): present it again");
                } else {
                    arrived.push(name);
                }
            }
        }
        self.started = true;
        let mut taps = Vec::new();
        for name in arrived {
            if let Some(uid) = self.read_uid(&ctx, &name) {
                taps.push(Tap {
                    pcsc_reader: name.to_string_lossy().into_owned(),
                    uid,
                });
            }
        }
        Ok(taps)
    }

    /// Reads the UID of the card on `reader`, retrying transient failures. `None` when the card
    /// left or could not be read (logged, without the UID).
    fn read_uid(&self, ctx: &Context, reader: &CStr) -> Option<Uid> {
        let name = bounded(&reader.to_string_lossy(), 128);
        for attempt in 1..=READ_ATTEMPTS {
            match self.monitor.timed(|| transmit_get_uid(ctx, reader)) {
                Ok(answer) => {
                    return match parse_uid_response(&answer) {
                        Ok(uid) => Some(uid),
                        Err(e) => {
                            tracing::warn!(pcsc_reader = %name, "card read failed: {e}");
                            None
                        }
                    };
                }
                Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => {
                    tracing::debug!(pcsc_reader = %name, "card left before it could be read");
                    return None;
                }
                Err(e) if attempt < READ_ATTEMPTS => {
                    tracing::debug!(pcsc_reader = %name, attempt, "card read failed: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    tracing::warn!(pcsc_reader = %name, "card read failed after {READ_ATTEMPTS} attempts: {e}");
                }
            }
        }
        None
    }
}

/// Whether a reader's report `now` is a card newly presented, given the previous report
/// (`None`: the reader's first, its baseline). A card is new when it was absent before, or when
/// pcscd's event counter moved (lifted and replaced between two reports). A card already there
/// at the baseline counts only when `count_at_baseline` (enrollment at start).
fn is_new_presentation(before: Option<Presence>, now: Presence, count_at_baseline: bool) -> bool {
    match before {
        None => now.present && count_at_baseline,
        Some(before) => now.present && (!before.present || before.events != now.events),
    }
}

/// Connect shared, GET DATA, disconnect leaving the card: the raw answer.
fn transmit_get_uid(ctx: &Context, reader: &CStr) -> Result<Vec<u8>, pcsc::Error> {
    let card = ctx.connect(reader, ShareMode::Shared, Protocols::ANY)?;
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
    let answer = card.transmit(&GET_UID, &mut buf).map(<[u8]>::to_vec);
    let _ = card.disconnect(Disposition::LeaveCard);
    answer
}

/// Waits for the next card on a reader matching `pattern` (a card already lying on it counts),
/// for `pintuctl enroll`. `waiting` is called once with the matching readers when there are some.
/// Fails at once when pcscd cannot be reached; otherwise retries until `timeout`.
pub fn read_next_card(
    pattern: Option<&str>,
    timeout: Duration,
    mut waiting: impl FnMut(&[String]),
) -> Result<Tap, PcscError> {
    let deadline = Instant::now() + timeout;
    let mut watcher = Watcher::new(pattern).count_cards_already_present();
    let mut announced = false;
    let mut last_error = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match watcher.poll(left.min(POLL_WAIT)) {
            Ok(taps) => {
                if let Some(tap) = taps.into_iter().next() {
                    return Ok(tap);
                }
                if !announced && watcher.readers().next().is_some() {
                    waiting(&watcher.readers().map(str::to_string).collect::<Vec<_>>());
                    announced = true;
                }
                last_error = None;
            }
            Err(e) if !announced && e.is_service_down() => return Err(e),
            Err(e) => {
                last_error = Some(e);
                std::thread::sleep(BACKOFF.0.min(left));
            }
        }
    }
    if let Some(e) = last_error {
        return Err(e);
    }
    if !announced {
        let present = Context::establish(Scope::System)
            .and_then(|c| c.list_readers_owned())
            .map(|names| {
                names
                    .iter()
                    .map(|n| format!("{:?}", n.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        return Err(PcscError::NoReader {
            wanted: match pattern {
                Some(p) => format!("matches {p:?}"),
                None => "is plugged in".into(),
            },
            present: if present.is_empty() {
                "none".into()
            } else {
                present
            },
        });
    }
    Err(PcscError::NoCard(timeout))
}

/// A door's PC/SC reader: the readers matching the configured pattern, as one card source.
pub struct PcscReader {
    name: String,
    role: Direction,
    settings: PcscSettings,
}

impl PcscReader {
    /// A reader named `name` (as in the config) with `settings`.
    pub fn new(name: String, role: Direction, settings: PcscSettings) -> Self {
        PcscReader {
            name,
            role,
            settings,
        }
    }
}

impl CardSource for PcscReader {
    fn name(&self) -> &str {
        &self.name
    }

    /// Supervises a watcher thread: forwards its taps, replaces it when a call hangs for
    /// [`STALL_LIMIT`] or the thread dies, and cancels its wait at shutdown. Never gives up.
    fn run(
        self: Box<Self>,
        reads: mpsc::Sender<CardRead>,
        shutdown: CancellationToken,
    ) -> SourceFuture {
        let PcscReader {
            name,
            role,
            settings,
        } = *self;
        let span = tracing::info_span!("pcsc", reader = %name);
        let thread_span = span.clone();
        let supervise = async move {
            loop {
                // A std thread, not spawn_blocking: a call hung in pcsc-lite must not keep the
                // runtime (and so pintud) from exiting.
                let watcher = Watcher::new(settings.reader_pattern.as_deref());
                let monitor = watcher.monitor();
                let stop = shutdown.child_token();
                let (tx, mut rx) = mpsc::channel::<Tap>(16);
                let thread = {
                    let (stop, span) = (stop.clone(), thread_span.clone());
                    let reader = name.clone();
                    std::thread::Builder::new()
                        .name(format!("pcsc-{name}"))
                        .spawn(move || span.in_scope(|| watch(watcher, tx, stop, &reader)))
                };
                if let Err(e) = thread {
                    tracing::error!("cannot start the PC/SC thread: {e}; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(BACKOFF.1) => continue,
                    }
                }
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            monitor.cancel();
                            return Ok(());
                        }
                        tap = rx.recv() => match tap {
                            Some(tap) => {
                                let read = CardRead {
                                    reader: name.clone(),
                                    role,
                                    uid: tap.uid,
                                    at: Instant::now(),
                                };
                                if reads.send(read).await.is_err() {
                                    stop.cancel();
                                    return Ok(());
                                }
                            }
                            None => {
                                tracing::error!("PC/SC thread ended unexpectedly; starting a new one");
                                break;
                            }
                        },
                        _ = tick.tick() => {
                            if let Some(busy) = monitor.busy_for().filter(|d| *d >= STALL_LIMIT) {
                                tracing::error!("a PC/SC call has not returned for {}s (reader or pcscd hung); abandoning it and starting over", busy.as_secs());
                                stop.cancel();
                                monitor.cancel();
                                break;
                            }
                        }
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(BACKOFF.0) => {}
                }
            }
        };
        Box::pin(supervise.instrument(span))
    }
}

/// The watcher thread: polls until `stop`, sends taps, logs pcscd going and coming once each,
/// and backs off after errors.
fn watch(mut watcher: Watcher, taps: mpsc::Sender<Tap>, stop: CancellationToken, reader: &str) {
    let mut delay = BACKOFF.0;
    let mut down = false;
    while !stop.is_cancelled() {
        match watcher.poll(POLL_WAIT) {
            Ok(arrived) => {
                if down {
                    tracing::info!("PC/SC is available again");
                    down = false;
                }
                match watcher.known.iter().next() {
                    Some(first) => super::health::report(reader, true, first.clone()),
                    None => super::health::report(reader, false, "no PC/SC reader matches"),
                }
                delay = BACKOFF.0;
                for tap in arrived {
                    if taps.blocking_send(tap).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if !down {
                    let hint = if e.is_service_down() {
                        " (is pcscd running?)"
                    } else {
                        ""
                    };
                    super::health::report(reader, false, format!("PC/SC unavailable: {e}"));
                    tracing::warn!("PC/SC unavailable: {e}{hint}; retrying");
                    down = true;
                } else {
                    tracing::debug!("PC/SC still unavailable: {e}");
                }
                let until = Instant::now() + delay;
                while Instant::now() < until && !stop.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                delay = (delay * 2).min(BACKOFF.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_response_needs_90_00() {
        let uid = parse_uid_response(&[0x04, 0xA1, 0xB2, 0xC3, 0x90, 0x00]).unwrap();
        assert_eq!(uid.to_hex(), "04A1B2C3");
        assert_eq!(
            parse_uid_response(&[0x6A, 0x81]).unwrap_err(),
            UidReadError::Status(0x6A, 0x81)
        );
        assert_eq!(
            parse_uid_response(&[0x04, 0x63, 0x00]).unwrap_err(),
            UidReadError::Status(0x63, 0x00)
        );
        assert_eq!(
            parse_uid_response(&[0x90]).unwrap_err(),
            UidReadError::Short(1)
        );
        assert_eq!(
            parse_uid_response(&[0x90, 0x00]).unwrap_err(),
            UidReadError::Uid(UidError::Empty)
        );
        assert!(matches!(
            parse_uid_response(&[0u8; 19]).unwrap_err(),
            UidReadError::Status(0, 0)
        ));
        let mut long = vec![1u8; 17];
        long.extend([0x90, 0x00]);
        assert_eq!(
            parse_uid_response(&long).unwrap_err(),
            UidReadError::Uid(UidError::TooLong(17))
        );
    }

    #[test]
    fn one_presentation_is_one_tap() {
        let p = |present, events| Presence { present, events };
        // Baseline: a card already there is not a tap (except at enrollment's start).
        assert!(!is_new_presentation(None, p(true, 1), false));
        assert!(is_new_presentation(None, p(true, 1), true));
        assert!(!is_new_presentation(None, p(false, 0), true));
        // Arrives; stays; leaves.
        assert!(is_new_presentation(Some(p(false, 0)), p(true, 1), false));
        assert!(!is_new_presentation(Some(p(true, 1)), p(true, 1), false));
        assert!(!is_new_presentation(Some(p(true, 1)), p(false, 2), false));
        // Lifted and replaced between two reports: the counter moved.
        assert!(is_new_presentation(Some(p(true, 1)), p(true, 3), false));
    }

    #[test]
    fn pattern_is_a_case_insensitive_substring() {
        let w = Watcher::new(Some("ACR122"));
        assert!(w.matches("ACS ACR122U PICC Interface 00 00"));
        assert!(w.matches("acs acr122u"));
        assert!(!w.matches("Virtual PCD 00 00"));
        assert!(Watcher::new(None).matches("anything"));
    }
}
