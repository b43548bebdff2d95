//! One module per `pintuctl` command (or family of subcommands): its clap arguments and an
//! `exec` that calls the library and prints the result.
//!
//! Office commands work on the register, keys, lists and the broker; door-local commands (tap,
//! input, status, who, events, and `card enroll --door`) talk to a door's control socket and
//! take [`crate::door_args::DoorArgs`].

pub mod archive;
pub mod badge;
pub mod card;
pub mod card_key;
pub mod command;
pub mod completions;
pub mod doors;
pub mod enroll;
pub mod events;
pub mod hash;
pub mod holder;
pub mod input;
pub mod keygen;
pub mod list;
pub mod publish;
pub mod report;
pub mod review;
pub mod show;
pub mod sign;
pub mod status;
pub mod tap;
pub mod verify;
pub mod visit;
pub mod who;
