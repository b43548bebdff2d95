//! `pintuctl review`: the periodic access review, from the register and the archive.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use jiff::Timestamp;

use pintu::office::keys;

use crate::output::{outln, write_text};

/// The periodic access review: every holder, card and badge, last used, and flags.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  pintuctl review --register register.toml --db /var/lib/pintu-archive
  pintuctl review --register register.toml --db /var/lib/pintu-archive --csv > review.csv")]
pub struct ReviewArgs {
    /// Register file.
    #[arg(long)]
    register: PathBuf,
    /// Archive store directory, for last-used dates and dormancy (without it: none).
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    db: Option<PathBuf>,
    /// Dormant: a valid card not used for more than this many days.
    #[arg(long, default_value_t = 90)]
    dormant_days: u32,
    /// Expiring: valid_until within this many days.
    #[arg(long, default_value_t = 30)]
    expiring_days: u32,
    /// Review as of this time instead of now (e.g. 2026-06-30 or 2026-06-30T17:00:00, site time).
    #[arg(long)]
    at: Option<String>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
}

pub fn exec(args: ReviewArgs) -> Result<ExitCode> {
    use pintu::office::review::{self as rv, RegisterView};
    let reg = RegisterView::load(&args.register)?;
    let card_key = keys::load_card_key(&reg.card_key_path)?;
    let events = match &args.db {
        Some(db) => pintu::office::archive::ArchiveReader::open(db)?.events(None)?,
        None => Vec::new(),
    };
    let now = match &args.at {
        Some(at) => crate::register_args::resolve_time(at, &reg.time_zone, "--at")?,
        None => Timestamp::now(),
    };
    let review = rv::review(
        &reg,
        &card_key,
        &events,
        &rv::ReviewSettings {
            now,
            dormant_days: args.dormant_days,
            expiring_days: args.expiring_days,
        },
    );
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&review)?);
    } else if args.csv {
        write_text(review.to_csv().as_bytes())?;
    } else {
        write_text(review.to_text().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
