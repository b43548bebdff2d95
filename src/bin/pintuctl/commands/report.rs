//! `pintuctl report`: the access report for a period, as CSV or printable HTML.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use jiff::Timestamp;

use crate::output::write_text;

/// Output format of `pintuctl report`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Csv,
    Html,
}

/// The access report for a period (visits, entries and exits, denials, alarms) as CSV or
/// printable HTML.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  pintuctl report --register register.toml --db /var/lib/pintu-archive \\
      --from 2026-05-01 --to 2026-06-01 --format html --out report-2026-05.html
  pintuctl report --register register.toml --db /var/lib/pintu-archive \\
      --from 2026-05-04 --to 2026-05-05 --door server-room --format csv --out day.csv")]
pub struct ReportArgs {
    /// Archive store directory.
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    db: PathBuf,
    /// Register: the site's time zone and holders' names.
    #[arg(long)]
    register: Option<PathBuf>,
    /// The site's time zone (instead of, or over, the register's), e.g. Asia/Jakarta.
    #[arg(long)]
    time_zone: Option<String>,
    /// Start of the period (inclusive): 2026-05-01 (start of day, site time),
    /// 2026-05-01T08:00:00 (site time) or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// End of the period (exclusive), same forms.
    #[arg(long)]
    to: String,
    /// Only this door.
    #[arg(long)]
    door: Option<String>,
    /// Readers whose grants are exits (repeatable); other readers are entries.
    #[arg(long = "exit-reader", default_value = "exit")]
    exit_readers: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "html")]
    format: ReportFormat,
    /// Output file (default standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn exec(args: ReportArgs) -> Result<ExitCode> {
    use pintu::office::report::{self as rp, ReportSettings};
    let reg = args
        .register
        .as_deref()
        .map(pintu::office::review::RegisterView::load)
        .transpose()?;
    let time_zone = match (&args.time_zone, &reg) {
        (Some(name), _) => jiff::tz::TimeZone::get(name)
            .with_context(|| format!("--time-zone: unknown time zone {name:?}"))?,
        (None, Some(r)) => r.time_zone.clone(),
        (None, None) => {
            bail!("give --register (or --time-zone): report times are in the site's time zone")
        }
    };
    let from = crate::register_args::resolve_time(&args.from, &time_zone, "--from")?;
    let to = crate::register_args::resolve_time(&args.to, &time_zone, "--to")?;
    if to <= from {
        bail!("--to must be after --from");
    }
    let reader = pintu::office::archive::ArchiveReader::open(&args.db)?;
    let events = reader.events(args.door.as_deref())?;
    let gaps = reader.gaps()?;
    let site = match &reg {
        Some(r) => r.site.clone(),
        None => reader.stats()?.site,
    };
    let names = reg.as_ref().map(|r| r.names()).unwrap_or_default();
    let report = rp::build(
        &events,
        &names,
        &gaps,
        ReportSettings {
            site,
            time_zone,
            from,
            to,
            door: args.door,
            exit_readers: args.exit_readers,
            generated_at: Timestamp::now(),
        },
    );
    let text = match args.format {
        ReportFormat::Csv => report.to_csv(),
        ReportFormat::Html => report.to_html(),
    };
    match &args.out {
        Some(path) => {
            pintu::util::files::write_atomic(path, text.as_bytes(), 0o640)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{}: {} visits, {} entries and exits, {} denials, {} alarms",
                path.display(),
                report.visits.len(),
                report.passages.len(),
                report.denials.len(),
                report.alarms.len()
            );
        }
        None => write_text(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
