//! The listener: accepts connections on an injected `TcpListener` (tests pass one on port 0),
//! does the TLS handshake when the service has a certificate (rustls), serves HTTP/1.1 with the
//! API router, and on shutdown stops accepting and lets requests in flight finish (bounded).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::ClientAddr;
use crate::config::TlsFiles;

/// A TLS setup failure.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{0}")]
    Content(String),
    /// rustls refused the pair.
    #[error("certificate and key do not make a TLS server: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS acceptor of `[server] cert_file` / `key_file`.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(&files.cert_file)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Content(format!("{}: {e}", files.cert_file.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Content(format!(
            "{}: no certificate (PEM \"BEGIN CERTIFICATE\") in it",
            files.cert_file.display()
        )));
    }
    let key_pem = zeroize::Zeroizing::new(read(&files.key_file)?);
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError::Content(format!("{}: {e}", files.key_file.display())))?
        .ok_or_else(|| {
            TlsError::Content(format!(
                "{}: no private key (PEM) in it",
                files.key_file.display()
            ))
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How long requests in flight may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app
            .clone()
            .layer(axum::Extension(ClientAddr(peer)))
            .map_request(|req: hyper::Request<hyper::body::Incoming>| {
                req.map(axum::body::Body::new)
            });
        let service = TowerToHyperService::new(app);
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = hyper::server::conn::http1::Builder::new();
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running {DRAIN:?} after shutdown began; dropped");
    }
    Ok(())
}
