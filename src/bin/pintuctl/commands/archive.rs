//! `pintuctl archive`: the office service that archives every door's events from the broker,
//! and the reports of an archive (`--gaps`, `--stats`).

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::broker_args::ArchiveArgs;
use crate::output::outln;

pub fn exec(args: ArchiveArgs) -> Result<ExitCode> {
    use pintu::office::archive::{self as arc, ArchiveReader};
    if args.gaps || args.stats {
        let reader = ArchiveReader::open(&args.db)?;
        if args.stats {
            let s = reader.stats()?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                outln!(
                    "site {}: {} events stored, {} received, {} duplicates ignored, {} conflicts, {} rejected",
                    s.site, s.stored, s.received, s.duplicates, s.conflicts, s.rejected
                );
                for d in &s.doors {
                    outln!(
                        "  door {}: {} events, seq {}..={}",
                        d.door,
                        d.events,
                        d.first,
                        d.last
                    );
                }
            }
            if s.conflicts > 0 {
                eprintln!(
                    "ALARM: {} conflicting event(s): another event arrived under an archived (door, seq) (kept with the rejected messages)",
                    s.conflicts
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let gaps = reader.gaps()?;
        if args.json {
            for g in &gaps {
                outln!("{}", serde_json::to_string(g)?);
            }
        } else if gaps.is_empty() {
            outln!("no gaps");
        } else {
            for g in &gaps {
                outln!(
                    "door {}: seq {}..={} missing ({} events){}",
                    g.door,
                    g.from,
                    g.to,
                    g.len(),
                    g.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
        }
        return Ok(if gaps.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        });
    }

    let site = args.site.context("--site is required")?;
    let broker = args.broker.with_env_fallback();
    let opts =
        arc::ArchiveOptions::from_args(&broker, &site, Some(args.db.join(arc::SOCKET_NAME)))?;
    if opts.broker.tls.is_none() {
        eprintln!("warning: plain TCP to the broker (--insecure): events and the broker password cross the network in clear");
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    std::fs::create_dir_all(&args.db)
        .with_context(|| format!("creating the archive directory {}", args.db.display()))?;
    let store = std::sync::Arc::new(arc::Archive::open(&args.db, &site)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stats = runtime.block_on(async move {
        let stop = tokio_util::sync::CancellationToken::new();
        let on_signal = stop.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            on_signal.cancel();
        });
        let task = tokio::spawn(arc::run(store, opts, stop));
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let stats = task.await.context("the archive task failed")??;
        anyhow::Ok(stats)
    })?;
    eprintln!(
        "archive stopped: {} events stored, {} duplicates ignored",
        stats.stored, stats.duplicates
    );
    Ok(ExitCode::SUCCESS)
}
