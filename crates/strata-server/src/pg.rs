//! The server behind the PostgreSQL wire (`strata serve --pg`): its
//! principals, each principal's limits (shared with `POST /v1/query`), its
//! newest state and its record of every query.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use strata_access::Authenticated;
use strata_access::scram::Verifier;
use strata_pg::{Admission, Backend};
use strata_query::{QueryError, QuerySession};

use crate::limits::QueryLimits;
use crate::recorder::Recorder;
use crate::server::Shared;

/// The server as the PostgreSQL wire sees it.
pub struct PgBackend {
    shared: Arc<Shared>,
    queries: Arc<QueryLimits>,
    recorder: Arc<Recorder>,
}

impl PgBackend {
    /// The backend of `shared`, within `queries`, recording with `recorder`.
    pub fn shared(
        shared: &Arc<Shared>,
        queries: &Arc<QueryLimits>,
        recorder: &Arc<Recorder>,
    ) -> Arc<dyn Backend> {
        Arc::new(PgBackend {
            shared: shared.clone(),
            queries: queries.clone(),
            recorder: recorder.clone(),
        })
    }
}

#[async_trait]
impl Backend for PgBackend {
    fn login(&self, user: &str, token: &str) -> Option<Authenticated> {
        strata_access::authenticate_named(&self.shared.snapshot().governance, user, token)
    }

    fn scram_login(&self, user: &str) -> Option<(Verifier, Authenticated)> {
        strata_access::scram_login(&self.shared.snapshot().governance, user)
    }

    async fn admit(
        &self,
        principal: &str,
        patience: Duration,
    ) -> Result<Option<Admission>, String> {
        let admitted = self.queries.admit_within(principal, patience).await;
        let admitted = admitted.map_err(|e| e.to_string())?;
        Ok(admitted.map(|a| Admission {
            slot: a.slot,
            runtime: a.runtime,
        }))
    }

    fn concurrent(&self) -> usize {
        self.queries.concurrent()
    }

    fn context(&self, runtime: Arc<RuntimeEnv>) -> Result<SessionContext, QueryError> {
        self.shared.query_context(Some(runtime))
    }

    async fn session(
        &self,
        ctx: SessionContext,
        principal: &Authenticated,
    ) -> Result<QuerySession, QueryError> {
        let scope = self.shared.scope_of(principal);
        let (snapshot, buffered) = self.shared.query_view();
        let keys = self.shared.options.keys.clone();
        QuerySession::within(ctx, &self.shared.archive, snapshot, keys, buffered, scope).await
    }

    async fn moved_since(&self, session: &QuerySession) -> bool {
        (self.shared.moved_since(&session.snapshot).await).unwrap_or(false)
    }

    async fn record(&self, lines: Vec<u8>) -> Result<(), String> {
        self.recorder.store(lines).await
    }

    async fn fingerprint(&self, sql: &str) -> String {
        self.recorder.fingerprint(&self.shared, sql).await
    }
}
