//! `pintud`'s door runtime: the pieces [`crate::door::daemon`] wires together around the pure
//! core. Nothing here imports the control server or the MQTT link; they reach the door through
//! the [`DaemonHandle`].
//!
//! - `task`: the **door task**, one actor owning the lock, the relock timer,
//!   the procedure and the door's policy state (lockdown, contact, presence). It decides taps
//!   and input changes one at a time and never waits on anything slow (no fsync, no network).
//! - `mailbox`: what the handle asks the door task, and the view the task publishes.
//! - [`handle`]: the [`DaemonHandle`] API: signed commands, captures, simulated taps, lists;
//!   `answer` answers the control socket's requests with it.
//! - `intake`: verifies and applies lists one at a time on a blocking thread, so a large list
//!   never delays a tap; `inbox` watches the list inbox and feeds it.
//! - `recorder`: appends events; failing to record stops pintud with the lock secured.
//! - `lock`: the lock as the door task holds it (secured with retries, and on a panic).
//! - `readers`: reader health changes as `reader.down` / `reader.up` events.

mod answer;
pub mod handle;
pub(crate) mod inbox;
pub(crate) mod intake;
pub(crate) mod lock;
pub(crate) mod mailbox;
pub(crate) mod readers;
pub(crate) mod recorder;
pub(crate) mod task;
#[cfg(test)]
mod tests;

pub use handle::DaemonHandle;
