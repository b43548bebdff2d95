//! The pure decision core: no I/O, no async, no dependency on hardware, network or storage.
//!
//! Everything here takes its inputs (taps, list bytes, times) as arguments and returns decisions,
//! lock commands and event drafts, so it can be tested exhaustively.

pub mod card;
pub mod command;
pub mod decision;
pub mod doorstate;
pub mod escort;
pub mod event;
pub mod expiry;
pub mod flood;
pub mod frames;
pub mod list;
pub mod presence;
pub mod procedure;
pub mod schedule;
pub mod text;
pub mod trusted_time;
pub mod visit;
pub mod workflow;
