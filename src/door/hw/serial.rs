//! Serial card readers (a UART such as the Pi's `/dev/serial0`, or a USB-serial adapter) through
//! tokio-serial, 8N1 at the configured baud rate. Bytes go to the pure frame parsers of
//! [`crate::core::frames`]; each new card becomes a [`CardRead`]. Wiring and configuration:
//! `docs/readers-serial.md`.
//!
//! - **De-duplication**: readers like the RDM6300 repeat the frame while a card stays in the
//!   field; a [`HoldFilter`] makes those repeats one tap (the hold restarts with every repeat).
//! - **Recovery**: when the port cannot be opened, or a read fails (EIO when a USB adapter is
//!   unplugged) or ends (0 bytes: the far end hung up), the port is closed and reopened with
//!   exponential backoff (100 ms doubling to 5 s, with jitter), for as long as the daemon runs.
//!   Each change of state is logged once, not every retry.
//! - **Cancellation**: every wait (read, send, backoff) also waits on `shutdown`. Opening is not
//!   awaited: it uses `O_NONBLOCK` and only issues `open` and termios calls.
//! - **Logs** carry the reader name and counts, never a UID: only the daemon logs taps, with the
//!   masked keyed hash. Discarded frames are logged at debug level one by one, and summed up at
//!   info/warn level at most every [`SUMMARY_AFTER`].

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_serial::{
    DataBits, FlowControl, Parity, SerialPortBuilderExt as _, SerialStream, StopBits,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{CardRead, CardSource, SourceFuture};
use crate::core::frames::{
    AsciiLineParser, Em4100Parser, Frame, FrameParser, FrameStats, HoldFilter, LineNotation,
};
use crate::core::procedure::Direction;
use crate::door::config::{SerialProtocol, SerialSettings, UidFormat};

/// First reopen delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reopen delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Discarded frames are summed up in one log line this long after the first of a batch.
pub const SUMMARY_AFTER: Duration = Duration::from_secs(10);

/// A serial card reader.
pub struct SerialReader {
    name: String,
    role: Direction,
    settings: SerialSettings,
}

impl SerialReader {
    /// A reader named `name` with `settings`.
    pub fn new(name: String, role: Direction, settings: SerialSettings) -> Self {
        SerialReader {
            name,
            role,
            settings,
        }
    }
}

impl CardSource for SerialReader {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        self: Box<Self>,
        reads: mpsc::Sender<CardRead>,
        shutdown: CancellationToken,
    ) -> SourceFuture {
        let span = tracing::info_span!("serial", reader = %self.name);
        Box::pin(
            async move {
                self.run_until(reads, shutdown).await;
                Ok(())
            }
            .instrument(span),
        )
    }
}

/// Why a port was given up.
#[derive(Debug, thiserror::Error)]
enum PortLost {
    /// A read failed (EIO when a USB adapter is unplugged).
    #[error("read failed: {0}")]
    Read(std::io::Error),
    /// A read returned 0 bytes: the far end hung up.
    #[error("end of file (the device hung up)")]
    Eof,
}

/// How the read loop ended.
enum Ended {
    /// Shutdown, or the daemon stopped taking reads.
    Stopped,
    /// The port failed; reopen it.
    Lost {
        why: PortLost,
        /// Whether any byte arrived since it was opened.
        had_data: bool,
    },
}

impl SerialReader {
    /// Opens, reads and reopens until `shutdown` (or until the daemon drops `reads`).
    async fn run_until(self, reads: mpsc::Sender<CardRead>, shutdown: CancellationToken) {
        let port = self.settings.port.display().to_string();
        let mut parser = match self.settings.protocol {
            SerialProtocol::Em4100 => FrameParser::Em4100(Em4100Parser::new()),
            SerialProtocol::AsciiLine => {
                FrameParser::AsciiLine(AsciiLineParser::new(match self.settings.uid_format {
                    UidFormat::Hex => LineNotation::Hex,
                    UidFormat::Decimal => LineNotation::Decimal,
                }))
            }
        };
        let mut taps = TapFilter {
            hold: HoldFilter::new(self.settings.hold),
            summary: Summary::default(),
        };
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        // The open error last reported, so a port that stays away is logged once.
        let mut reported: Option<String> = None;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let stream = match self.open() {
                Ok(stream) => stream,
                Err(e) => {
                    let message = e.to_string();
                    let delay = backoff.next_delay();
                    super::health::report(&self.name, false, format!("{port}: {message}"));
                    if reported.as_deref() != Some(message.as_str()) {
                        tracing::warn!(
                            port,
                            "cannot open the serial port: {message}; retrying with backoff (up to every {}s) until it appears",
                            BACKOFF_MAX.as_secs()
                        );
                        reported = Some(message);
                    } else {
                        tracing::debug!(
                            port,
                            delay_ms = delay.as_millis() as u64,
                            "serial port still unavailable: {message}"
                        );
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            reported = None;
            super::health::report(&self.name, true, port.to_string());
            tracing::info!(
                port,
                baud = self.settings.baud,
                protocol = ?self.settings.protocol,
                hold_ms = self.settings.hold.as_millis() as u64,
                "serial port open"
            );
            let ended = self
                .read_until_lost(stream, &mut parser, &mut taps, &reads, &shutdown)
                .await;
            parser.reset();
            taps.summary.flush(parser.stats());
            match ended {
                Ended::Stopped => return,
                Ended::Lost { why, had_data } => {
                    // A port that delivered data was healthy: start the backoff again. One that
                    // fails right after every open keeps backing off.
                    if had_data {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    super::health::report(&self.name, false, format!("{port}: lost: {why}"));
                    tracing::warn!(port, "serial port lost: {why}; reopening with backoff");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Opens the port 8N1, exclusively (TIOCEXCL and flock), without waiting.
    fn open(&self) -> Result<SerialStream, tokio_serial::Error> {
        tokio_serial::new(self.settings.port.to_string_lossy(), self.settings.baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .exclusive(true)
            .open_native_async()
    }

    async fn read_until_lost(
        &self,
        mut stream: SerialStream,
        parser: &mut FrameParser,
        taps: &mut TapFilter,
        reads: &mpsc::Sender<CardRead>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let mut buf = [0u8; 256];
        let mut had_data = false;
        let mut cards = Vec::new();
        loop {
            let summary_due = taps.summary.due;
            let n = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ended::Stopped,
                _ = sleep_until(summary_due), if summary_due.is_some() => {
                    taps.summary.flush(parser.stats());
                    continue;
                }
                read = stream.read(&mut buf) => match read {
                    Ok(0) => return Ended::Lost { why: PortLost::Eof, had_data },
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Ended::Lost { why: PortLost::Read(e), had_data },
                },
            };
            had_data = true;
            let at = Instant::now();
            parser.feed(&buf[..n], |frame| match frame {
                Frame::Card(uid) => {
                    if taps.hold.is_new_tap(&uid, at) {
                        cards.push(uid);
                    } else {
                        tracing::trace!("repeat of the card in the field: not a new tap");
                    }
                }
                Frame::Rejected(why) => {
                    tracing::debug!(reason = why.as_str(), "serial frame discarded");
                }
            });
            taps.summary.note(parser.stats(), at);
            for uid in cards.drain(..) {
                let read = CardRead {
                    reader: self.name.clone(),
                    role: self.role,
                    uid,
                    at,
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return Ended::Stopped,
                    sent = reads.send(read) => if sent.is_err() {
                        return Ended::Stopped;
                    },
                }
            }
        }
    }
}

/// What turns frames into taps: the hold filter, and the discarded-frame log.
struct TapFilter {
    hold: HoldFilter,
    summary: Summary,
}

/// Sums up discarded frames: one log line per batch, [`SUMMARY_AFTER`] after its first discard.
#[derive(Default)]
struct Summary {
    /// Counters at the last summary.
    logged: FrameStats,
    /// When the pending batch is logged.
    due: Option<Instant>,
}

impl Summary {
    /// Starts a batch if something new was discarded.
    fn note(&mut self, stats: FrameStats, now: Instant) {
        if self.due.is_none() && stats.discarded() > self.logged.discarded() {
            self.due = Some(now + SUMMARY_AFTER);
        }
    }

    /// Logs the pending batch, if any.
    fn flush(&mut self, stats: FrameStats) {
        if stats.discarded() == self.logged.discarded() {
            self.due = None;
            return;
        }
        let bad_checksums = stats.bad_checksums - self.logged.bad_checksums;
        let bad_frames = stats.bad_frames - self.logged.bad_frames;
        let garbage_bytes = stats.garbage_bytes - self.logged.garbage_bytes;
        let totals = format!(
            "since start: {} cards, {} bad checksums, {} bad frames, {} garbage bytes",
            stats.cards, stats.bad_checksums, stats.bad_frames, stats.garbage_bytes
        );
        if bad_checksums + bad_frames > 0 {
            // Bad frames mean noise on the line, a card pulled away mid-read, or the wrong
            // protocol or baud rate in the config.
            tracing::warn!(
                bad_checksums,
                bad_frames,
                garbage_bytes,
                "serial reader sent bad frames (check wiring, baud rate and protocol); {totals}"
            );
        } else {
            tracing::info!(
                garbage_bytes,
                "serial reader sent bytes outside frames; {totals}"
            );
        }
        self.logged = stats;
        self.due = None;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Exponential backoff with jitter: each delay is drawn from the upper half of the current step
/// (so readers that lost the same USB hub do not retry in lock step); the step doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Starts at `min`, doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            step: min,
        }
    }

    /// The next delay, between half the current step and the step.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        let half = step / 2;
        let fraction = f64::from(getrandom::u32().unwrap_or(u32::MAX)) / f64::from(u32::MAX);
        half + half.mul_f64(fraction)
    }

    /// Back to the first step.
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        let mut steps = Vec::new();
        for _ in 0..10 {
            steps.push(b.step);
            let d = b.next_delay();
            let step = *steps.last().unwrap();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} outside [{:?}, {step:?}]",
                step / 2
            );
        }
        let ms: Vec<u128> = steps.iter().map(|s| s.as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.step, BACKOFF_MIN);
    }

    #[test]
    fn summary_waits_for_a_batch() {
        let t0 = Instant::now();
        let mut s = Summary::default();
        let clean = FrameStats {
            cards: 3,
            ..FrameStats::default()
        };
        s.note(clean, t0);
        assert_eq!(s.due, None);
        let noisy = FrameStats {
            bad_checksums: 1,
            ..clean
        };
        s.note(noisy, t0);
        assert_eq!(s.due, Some(t0 + SUMMARY_AFTER));
        // More discards in the same batch do not move the deadline.
        let noisier = FrameStats {
            garbage_bytes: 9,
            ..noisy
        };
        s.note(noisier, t0 + Duration::from_secs(1));
        assert_eq!(s.due, Some(t0 + SUMMARY_AFTER));
        s.flush(noisier);
        assert_eq!((s.due, s.logged), (None, noisier));
        s.note(noisier, t0 + Duration::from_secs(2));
        assert_eq!(s.due, None);
    }
}
