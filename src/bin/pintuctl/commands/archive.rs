//! `pintuctl archive`: the office service that archives every door's events from the broker,
//! and the reports of an archive (`--gaps`, `--stats`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::broker_args::{broker_address, ArchiveArgs};
use crate::output::outln;

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
}

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
    let broker = args.broker.context("--broker is required")?;
    let (host, port) = broker_address(&broker, args.ca_file.is_some())?;
    let credentials = match (args.username, args.password_file) {
        (Some(user), Some(file)) => {
            let text = String::from_utf8(read_file(&file, "password file")?)
                .with_context(|| format!("password file {} is not UTF-8", file.display()))?;
            let password = text.lines().next().unwrap_or("").to_string();
            Some((user, password))
        }
        _ => None,
    };
    if args.ca_file.is_none() && !args.insecure {
        anyhow::bail!(
            "--broker {broker}: no --ca-file, so events and the broker password would cross the \
             network in clear; give --ca-file, or --insecure to allow plain TCP"
        );
    }
    if args.ca_file.is_none() {
        eprintln!("warning: plain TCP to the broker (--insecure): events and the broker password cross the network in clear");
    }
    let tls = match &args.ca_file {
        Some(ca) => Some(arc::TlsMaterial {
            ca: read_file(ca, "CA file")?,
            client: match (&args.client_cert_file, &args.client_key_file) {
                (Some(c), Some(k)) => Some((
                    read_file(c, "client certificate")?,
                    read_file(k, "client key")?,
                )),
                _ => None,
            },
        }),
        None => None,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    std::fs::create_dir_all(&args.db)
        .with_context(|| format!("creating the archive directory {}", args.db.display()))?;
    let opts = arc::ArchiveOptions {
        host,
        port,
        client_id: args
            .client_id
            .unwrap_or_else(|| format!("pintu-archive-{site}")),
        prefix: args.prefix,
        site: site.clone(),
        credentials,
        tls,
        keep_alive: args.keep_alive,
        reconnect_min: args.reconnect_min,
        reconnect_max: args.reconnect_max.max(args.reconnect_min),
        socket: Some(args.db.join(arc::SOCKET_NAME)),
    };
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
