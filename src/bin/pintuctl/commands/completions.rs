//! `pintuctl completions SHELL`: a shell completion script.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, CommandFactory};

use crate::output::write_text;

/// Print a shell completion script: bash, zsh, fish, elvish or powershell.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

pub fn exec(args: CompletionsArgs) -> Result<ExitCode> {
    // clap_complete panics when its writer fails: generate into memory, then write it out
    // (a closed pipe ends quietly).
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut crate::Cli::command(),
        "pintuctl",
        &mut script,
    );
    write_text(&script)?;
    Ok(ExitCode::SUCCESS)
}
