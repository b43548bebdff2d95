//! `pintuctl visit issue|end`: approved visits and their pool badges.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use jiff::Timestamp;

use pintu::office::register::{LoadedRegister, NewVisit};

use super::holder::check_and_save;
use crate::output::outln;
use crate::register_args::RegisterPath;

const VISIT_EXAMPLES: &str = "Examples:
  pintuctl visit issue --visitor \"Andi (PT Nusantara Data)\" --badge VB-01 \\
      --from \"2026-11-24 09:00\" --until \"2026-11-24 12:00\" --host 199001012015011001 \\
      --escort 198805052010011002 --request-ref VIS-2026/118 --approver \"Kasi Infra\"
  pintuctl publish --key keys/kabid-2026.key          # the door learns the visit
  pintuctl visit end V-2026-0001                      # badge back in the pool";

/// Visits: issue a pool badge for an approved visit, end it (badge back in the pool).
#[derive(Args, Debug)]
#[command(after_help = VISIT_EXAMPLES)]
pub struct VisitArgs {
    #[command(subcommand)]
    action: VisitAction,
}

#[derive(Subcommand, Debug)]
enum VisitAction {
    /// Record an approved visit and hand out a badge from the pool for its window.
    Issue {
        #[command(flatten)]
        reg: RegisterPath,
        /// Visit id (default: the next V-YEAR-NNNN).
        #[arg(long)]
        id: Option<String>,
        /// Who visits: name and company (never a national ID number).
        #[arg(long)]
        visitor: String,
        /// Badge id from the pool, e.g. VB-01.
        #[arg(long)]
        badge: String,
        /// Start of the window (default now), e.g. "2026-11-24 09:00" (site time).
        #[arg(long)]
        from: Option<String>,
        /// End of the window, e.g. "2026-11-24 12:00".
        #[arg(long)]
        until: String,
        /// Holder id of the host.
        #[arg(long)]
        host: String,
        /// Holder id expected to escort (staff or escort).
        #[arg(long)]
        escort: Option<String>,
        /// Reference of the visit request.
        #[arg(long)]
        request_ref: String,
        /// Who approved it.
        #[arg(long)]
        approver: String,
    },
    /// End a visit: the badge is back in the pool.
    End {
        #[command(flatten)]
        reg: RegisterPath,
        /// Visit id.
        id: String,
    },
}

pub fn exec(args: VisitArgs) -> Result<ExitCode> {
    match args.action {
        VisitAction::Issue {
            reg,
            id,
            visitor,
            badge,
            from,
            until,
            host,
            escort,
            request_ref,
            approver,
        } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            r.refuse_if_imported("visit issue", "pintu-office's visit requests (console)")?;
            let now = Timestamp::now();
            let from = match from {
                Some(f) => f,
                None => r.local_time(now),
            };
            let visit = NewVisit {
                id,
                visitor,
                badge,
                from,
                until,
                host,
                escort,
                request_ref,
                approver,
            };
            let id = r.issue_visit(&visit, now)?;
            check_and_save(&r)?;
            outln!(
                "{}: visit {id}: {} gets badge {} from {} until {}, host {}{}, request {} approved by {}",
                r.path.display(),
                visit.visitor,
                visit.badge,
                visit.from,
                visit.until,
                visit.host,
                visit
                    .escort
                    .as_deref()
                    .map(|e| format!(", escort {e}"))
                    .unwrap_or_default(),
                visit.request_ref,
                visit.approver
            );
            outln!(
                "Sign and deliver a new list for the door to know the visit (pintuctl publish)."
            );
            Ok(ExitCode::SUCCESS)
        }
        VisitAction::End { reg, id } => {
            let mut r = LoadedRegister::load(&reg.register)?;
            r.refuse_if_imported("visit end", "pintu-office's visit requests (console)")?;
            let v = r.end_visit(&id, Timestamp::now())?;
            check_and_save(&r)?;
            outln!(
                "{}: visit {id} ({}) ended at {}; badge {} is back in the pool",
                r.path.display(),
                v.visitor,
                v.ended_at.as_ref().map_or("?", |e| e.0.as_str()),
                v.badge
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
