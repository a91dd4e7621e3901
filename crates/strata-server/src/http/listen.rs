//! The HTTP listener's connections, served with hyper directly rather than
//! `axum::serve`, which has no TLS, no header timeout and no connection
//! limit: TLS when configured (plaintext is then refused by the
//! handshake), a deadline for the handshake and for each request's
//! headers (slowloris), a bound on connections (beyond it they wait in
//! the kernel's backlog), and a graceful stop that answers the requests in
//! flight.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::server::stopped;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 4096;
/// The longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a request's headers may take to arrive, including the wait
/// for the next request on a kept-alive connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping server waits for the requests in flight.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why TLS could not be set up: the server does not start.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// ALPN of HTTP/1.1, what the HTTP listener speaks.
pub const HTTP_ALPN: &[u8] = b"http/1.1";
/// ALPN of the PostgreSQL wire (PostgreSQL 17's direct TLS requires it).
pub const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// A TLS acceptor serving the PEM certificate chain in `cert` with the PEM
/// private key in `key`, for the protocol of `alpn`.
pub fn tls_acceptor(cert: &Path, key: &Path, alpn: &[u8]) -> Result<TlsAcceptor, TlsError> {
    let unreadable = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        TlsError(format!("cannot read the {what} {}: {e}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| unreadable("certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable("certificate", cert, &e))?;
    if chain.is_empty() {
        let message = format!("{} holds no PEM certificate", cert.display());
        return Err(TlsError(message));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("key", key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            TlsError(format!(
                "the key {} does not serve the certificate {}: {e}",
                key.display(),
                cert.display()
            ))
        })?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` until `stop` turns true, then stops
/// accepting and waits for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(router);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            () = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: pause rather than spin.
                tracing::warn!("accepting an HTTP connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (tls, watcher) = (tls.clone(), graceful.watcher());
        // Handlers read the peer's address (a query's record names it).
        let service = service.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            service.call(request)
        });
        tokio::spawn(async move {
            match tls {
                None => connection(stream, service, watcher).await,
                Some(tls) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, service, watcher).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake refused: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(STOP_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running {} s after the stop were cut off",
            STOP_TIMEOUT.as_secs()
        );
    }
}

/// Serves HTTP/1.1 on one connection.
async fn connection<S, H>(stream: S, service: H, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Service<Request<Incoming>, Response = Response<axum::body::Body>> + Send + 'static,
    H::Future: Send + 'static,
    H::Error: std::error::Error + Send + Sync + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let served = watcher
        .watch(builder.serve_connection(TokioIo::new(stream), service))
        .await;
    if let Err(e) = served {
        tracing::debug!("HTTP connection ended: {e}");
    }
}
