//! `pintuctl card-key`: the site's card key (HMAC key for card UIDs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use pintu::office::keys;

use crate::output::outln;

/// Create the site's card key (HMAC key for card UIDs; 0600).
#[derive(Args, Debug)]
pub struct CardKeyArgs {
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

pub fn exec(args: CardKeyArgs) -> Result<ExitCode> {
    keys::card_keygen(&args.out)?;
    outln!("card key: {} (mode 0600; copy it to each door as trust.card_key_file, mode 0640 root:pintu)", args.out.display());
    Ok(ExitCode::SUCCESS)
}
