//! `pintuctl hash`: a card UID's keyed hash, as lists carry it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use pintu::core::card::Uid;
use pintu::office::keys;

use crate::output::outln;

/// Print a card UID's keyed hash (as lists carry it) and its masked form.
#[derive(Args, Debug)]
pub struct HashArgs {
    /// Card UID in hex.
    uid: String,
    /// Card key file.
    #[arg(long)]
    card_key: PathBuf,
}

pub fn exec(args: HashArgs) -> Result<ExitCode> {
    let uid: Uid = args.uid.parse().context("card UID")?;
    let key = keys::load_card_key(&args.card_key)?;
    let hash = key.hash(&uid);
    outln!("{}  {}", hash.to_hex(), hash.masked());
    Ok(ExitCode::SUCCESS)
}
