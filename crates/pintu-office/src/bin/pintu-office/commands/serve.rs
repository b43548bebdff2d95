//! `pintu-office serve`: applies pending migrations, then serves the API until SIGTERM or
//! SIGINT. Tells systemd when it is ready (`Type=notify`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use pintu_office::api::{self, AppState};
use pintu_office::server;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen here instead of `[server] listen` (same rules: plain HTTP only on loopback).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

pub async fn run(config: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let (mut settings, key, db) = super::open(config).await?;
    if let Some(listen) = args.listen {
        anyhow::ensure!(
            settings.server.tls.is_some()
                || listen.ip().is_loopback()
                || settings.server.allow_plain_http,
            "--listen {listen}: plain HTTP only on a loopback address (or set allow_plain_http)"
        );
        settings.server.listen = listen;
    }
    let tls = match &settings.server.tls {
        Some(files) => Some(server::tls_acceptor(files)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %listener.local_addr()?,
        database = db.backend().as_str(),
        site = %settings.site.name,
        "pintu-office serving on {scheme}://{}",
        listener.local_addr()?
    );
    let state = AppState {
        db: db.clone(),
        key: Arc::new(key),
        settings: Arc::new(settings),
        https: tls.is_some(),
    };
    let ingest = start_ingest(&state).await?;
    let app = api::router(state);
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    server::serve(listener, tls, app, shutdown_signal()).await?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Some((stop, task)) = ingest {
        // The ingest acknowledges only what it committed: stopping it loses nothing (the
        // broker keeps the rest for the persistent session).
        let _ = stop.send(());
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "event ingest ended with an error"),
            Err(e) => tracing::warn!(error = %e, "event ingest task failed"),
        }
    }
    db.close().await;
    tracing::info!("pintu-office stopped");
    Ok(ExitCode::SUCCESS)
}

type Ingest = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), pintu_office::archive::ArchiveError>>,
);

/// Starts the door-event ingest when `[mqtt]` names a broker: the doors' site is `[site] id`,
/// or the imported register's site.
async fn start_ingest(state: &AppState) -> anyhow::Result<Option<Ingest>> {
    let Some(broker) = state.settings.broker()? else {
        tracing::info!("no [mqtt] broker: the event ingest is off");
        return Ok(None);
    };
    let site = match &state.settings.site.id {
        Some(id) => Some(id.clone()),
        None => pintu_office::directory::register::registered_site(&state.db).await?,
    };
    let Some(site) = site else {
        tracing::warn!(
            "the event ingest is off: the doors' site is unknown (set [site] id, or import the \
             register with `pintu-office register import`)"
        );
        return Ok(None);
    };
    let instance = state.settings.server.instance.clone();
    tracing::info!(%site, %instance, broker = %broker.broker(), "event ingest starting");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(pintu_office::archive::run(
        state.db.clone(),
        broker,
        site,
        instance,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Some((stop, task)))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the service would not stop cleanly; wait forever instead
        // of stopping at once (systemd then kills it).
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
