//! `pintuctl sign`: the register signed into a list file (no broker).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use jiff::Timestamp;

use pintu::office::publish;
use pintu::office::register::LoadedRegister;

use crate::output::outln;

/// Sign the register into a list: bumps the register's version, writes the signed list.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// Register file.
    #[arg(long)]
    register: PathBuf,
    /// Signing key file(s); one signature each.
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// Output signed list.
    #[arg(long)]
    out: PathBuf,
}

pub fn exec(args: SignArgs) -> Result<ExitCode> {
    let mut reg = LoadedRegister::load(&args.register)?;
    // The output path is checked before the version is raised; the version is recorded before
    // the file is written, as publish does (office::publish).
    let done = publish::sign_to_file(&mut reg, &args.keys, &args.out, Timestamp::now())?;
    let l = &done.list;
    outln!(
        "{}: version {}, {} entries, {} visit(s), site {}, doors {}, expires {}, signed by {}",
        args.out.display(),
        l.version,
        l.payload.entries.len(),
        l.visits.len(),
        l.payload.site,
        l.payload.doors.join(","),
        l.payload.expires_at,
        l.signers.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
