//! Hardware edges, one small trait each (after embedded-hal): the lock relay ([`Lock`]), card
//! readers ([`CardSource`]) and the door's inputs ([`DoorInputs`]). Real backends (GPIO, PC/SC,
//! serial) plug in behind these; [`sim`] holds the simulated and scripted ones used by the demo
//! and the tests.

pub mod gpio;
pub mod health;
pub mod pcsc;
pub mod serial;
pub mod sim;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use serde::Serialize;

use crate::core::card::Uid;
use crate::core::procedure::Direction;
use crate::door::config::{ReaderBackend, ReaderConfig};

/// What kind of hardware fault happened, for generic handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwErrorKind {
    /// The device is gone (unplugged, port vanished).
    Disconnected,
    /// The device did not answer in time.
    Timeout,
    /// Anything else.
    Other,
}

/// A hardware operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{device}: {message}")]
pub struct HwError {
    /// Which device (reader name, `lock`).
    pub device: String,
    /// Kind, for generic handling.
    pub kind: HwErrorKind,
    /// What happened.
    pub message: String,
}

/// The lock's two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    /// Locked: the safe state.
    Secured,
    /// Released for a grant or an exit request.
    Released,
}

/// The lock relay. Every operation is fallible; [`Lock::secure`] must be safe to call repeatedly.
pub trait Lock: Send {
    /// Releases the lock.
    fn release(&mut self) -> Result<(), HwError>;
    /// Returns to the safe, locked state.
    fn secure(&mut self) -> Result<(), HwError>;
}

/// One card read, as a reader reports it.
#[derive(Debug, Clone)]
pub struct CardRead {
    /// Reader name from the config.
    pub reader: String,
    /// Entry or exit side.
    pub role: Direction,
    /// The UID read.
    pub uid: Uid,
    /// When it was read (monotonic).
    pub at: Instant,
}

/// Changes on the door's inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorInput {
    /// Door contact: the door opened.
    DoorOpened,
    /// Door contact: the door closed.
    DoorClosed,
    /// Request-to-exit button pressed.
    ExitButton,
}

/// What a source's `run` returns: it ends at shutdown (`Ok`) or when the device cannot go on.
pub type SourceFuture = Pin<Box<dyn Future<Output = Result<(), HwError>> + Send>>;

/// A card reader. It runs as its own task and sends every read; de-duplication of a card held
/// in the field is the source's job (a held card is one tap).
pub trait CardSource: Send {
    /// Reader name, as in the config.
    fn name(&self) -> &str;
    /// Runs until `shutdown`, sending each read to `reads`.
    fn run(
        self: Box<Self>,
        reads: mpsc::Sender<CardRead>,
        shutdown: CancellationToken,
    ) -> SourceFuture;
}

/// The door contact and the request-to-exit button. Runs as its own task and sends debounced
/// changes.
pub trait DoorInputs: Send {
    /// Runs until `shutdown`, sending each change to `inputs`.
    fn run(
        self: Box<Self>,
        inputs: mpsc::Sender<DoorInput>,
        shutdown: CancellationToken,
    ) -> SourceFuture;
}

/// The card sources of the configured readers. Simulated readers have none: their taps arrive
/// through the control socket.
pub fn configured_sources(readers: &[ReaderConfig]) -> Vec<Box<dyn CardSource>> {
    readers
        .iter()
        .filter_map(|r| -> Option<Box<dyn CardSource>> {
            match &r.backend {
                ReaderBackend::Sim => None,
                ReaderBackend::Pcsc(settings) => Some(Box::new(pcsc::PcscReader::new(
                    r.name.clone(),
                    r.role,
                    settings.clone(),
                ))),
                ReaderBackend::Serial(settings) => Some(Box::new(serial::SerialReader::new(
                    r.name.clone(),
                    r.role,
                    settings.clone(),
                ))),
            }
        })
        .collect()
}
