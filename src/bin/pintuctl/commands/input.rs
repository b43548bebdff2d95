//! `pintuctl input`: a simulated door input changed (door-local).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use pintu::door::control::{Reply, Request};
use pintu::door::hw::DoorInput;

use crate::door_args::{unexpected, DoorArgs, DoorDefaults};
use crate::output::outln;

/// Change a simulated door input.
#[derive(Args, Debug)]
pub struct InputArgs {
    /// door-opened, door-closed or exit-button.
    #[arg(value_parser = parse_input)]
    input: DoorInput,
    #[command(flatten)]
    door: DoorArgs,
}

fn parse_input(s: &str) -> Result<DoorInput, String> {
    match s {
        "door-opened" | "open" => Ok(DoorInput::DoorOpened),
        "door-closed" | "close" => Ok(DoorInput::DoorClosed),
        "exit-button" | "rex" => Ok(DoorInput::ExitButton),
        _ => Err("expected door-opened, door-closed or exit-button".into()),
    }
}

pub fn exec(args: InputArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let InputArgs { input, door } = args;
    let target = door.target(defaults);
    let reply = target.ask(&Request::Input { input })?;
    let Reply::Input { input } = reply else {
        return unexpected(reply);
    };
    outln!("input {input:?} sent");
    Ok(ExitCode::SUCCESS)
}
