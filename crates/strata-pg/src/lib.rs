//! The PostgreSQL wire protocol in front of Strata's query sessions, for
//! psql, DBeaver/PgJDBC, Metabase, Grafana and the Python drivers.
//!
//! `pgwire` speaks the protocol; `datafusion-postgres`'s pieces map Arrow
//! types to PostgreSQL's, answer `SET`/`SHOW`/`BEGIN` the way drivers
//! expect and derive `pg_catalog` from the session. None of its defaults
//! that are unsafe for an archive are used: every connection logs in as a
//! principal (SCRAM-SHA-256, or its token in cleartext over TLS only), has
//! its own session showing what its role may see, runs queries only (no
//! DDL, DML or `SET datafusion.…`), within its principal's limits, and
//! every statement is recorded before it is answered (see [`Backend`]).

mod answer;
mod compat;
mod cursors;
mod login;
mod no_indexes;
mod parse;
mod statements;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use pgwire::api::{ConnectionManager, RandomPidSecretKeyGenerator};
use strata_access::Authenticated;
use strata_access::scram::Verifier;
use strata_query::{QueryError, QuerySession};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// Connections served at once; beyond it they wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// Leave to run one statement.
pub struct Admission {
    /// Frees the principal's slot when dropped.
    pub slot: OwnedSemaphorePermit,
    /// The runtime (memory pool) its queries run in.
    pub runtime: Arc<RuntimeEnv>,
}

/// What the wire needs from the server behind it.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A context for a connection's statements, in `runtime` (see
    /// [`QuerySession::context`]; a server on a cluster runs them there).
    fn context(&self, runtime: Arc<RuntimeEnv>) -> Result<SessionContext, QueryError>;
    /// The active principal named `user` whose token is `token`.
    fn login(&self, user: &str, token: &str) -> Option<Authenticated>;
    /// The SCRAM verifier of the active principal named `user`, and the
    /// principal.
    fn scram_login(&self, user: &str) -> Option<(Verifier, Authenticated)>;
    /// Leave for `principal` to run one more statement, waiting up to
    /// `patience` while it runs as many as it may (`None` then).
    async fn admit(&self, principal: &str, patience: Duration)
    -> Result<Option<Admission>, String>;
    /// How many statements a principal may run at once.
    fn concurrent(&self) -> usize;
    /// The archive's newest state (and buffered events), as `principal`
    /// may see it, registered in `ctx` (see [`QuerySession::within`]).
    async fn session(
        &self,
        ctx: SessionContext,
        principal: &Authenticated,
    ) -> Result<QuerySession, QueryError>;
    /// Whether a file `session` reads is gone from the newest state, so
    /// that a statement that failed in it may be run again.
    async fn moved_since(&self, session: &QuerySession) -> bool;
    /// Stores query records durably (see `strata_query::query_log`).
    async fn record(&self, lines: Vec<u8>) -> Result<(), String>;
    /// The fingerprint of `sql` (see `strata_query::query_log::fingerprint`).
    async fn fingerprint(&self, sql: &str) -> String;
}

/// Serves the PostgreSQL wire on `listener` (requiring TLS when `tls` is
/// given: a client that does not ask for it is refused) until `stop` turns
/// true; connections in progress end with their sockets.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    backend: Arc<dyn Backend>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = Arc::new(ConnectionManager::new());
    let pids = Arc::new(RandomPidSecretKeyGenerator::default());
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accepting a PostgreSQL connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let handlers = wire::Handlers::new(
            backend.clone(),
            connections.clone(),
            pids.clone(),
            tls.is_some(),
        );
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                tracing::debug!("PostgreSQL connection from {peer} ended: {e}");
            }
            drop(slot);
        });
    }
}

/// Who a connection logged in as.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    principal: Authenticated,
    peer: SocketAddr,
    /// Names the connection in its query records.
    session_id: String,
}
