//! Storing the record of every query (`strata_query::query_log`) through
//! the write-ahead log, like shipped events: a query is answered only once
//! its record is durable, and the record is queryable at once.

use std::collections::HashSet;

use bytes::Bytes;
use strata_query::{QuerySession, Scope, Viewer};
use tokio::sync::{OnceCell, mpsc};

use crate::accept::accept_logged;
use crate::group::{self, Submission};
use crate::server::Shared;

/// Stores query records.
pub struct Recorder {
    submit: mpsc::Sender<Submission>,
    /// The sender the write-ahead log names for the records.
    sender: String,
    /// The names a fingerprint keeps: the same in every session.
    vocabulary: OnceCell<HashSet<String>>,
}

impl Recorder {
    /// A recorder storing through `submit`, as server `node_id`.
    pub fn new(submit: mpsc::Sender<Submission>, node_id: &str) -> Recorder {
        Recorder {
            submit,
            sender: format!("strata serve {node_id}"),
            vocabulary: OnceCell::new(),
        }
    }

    /// Stores `lines` (records made by `strata_query::query_log`) and waits
    /// until they are durable, or says why they are not.
    pub async fn store(&self, lines: Vec<u8>) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp_micros();
        let mut accepted = accept_logged(&Bytes::from(lines), now);
        if let Some(bad) = accepted.rejected.first() {
            return Err(format!(
                "a query record is not a valid event: {}",
                bad.reason
            ));
        }
        group::submit(&self.submit, &self.sender, now, &mut accepted, true)
            .await
            .map(|_| ())
    }

    /// The fingerprint of `sql` (see `strata_query::query_log::fingerprint`).
    pub async fn fingerprint(&self, shared: &Shared, sql: &str) -> String {
        let vocabulary = self
            .vocabulary
            .get_or_try_init(|| async {
                // The names are the same in every session: an empty one has them.
                let nobody = Viewer {
                    scope: Scope::tenants(Vec::<String>::new()),
                    runtime: None,
                };
                let snapshot = shared.snapshot();
                let session = QuerySession::at(&shared.archive, snapshot, None, Vec::new(), nobody);
                session.await?.vocabulary().await
            })
            .await;
        match vocabulary {
            Ok(vocabulary) => strata_query::query_log::fingerprint(sql, vocabulary),
            Err(e) => {
                tracing::warn!("the session's names are unknown ({e}); the fingerprint keeps none");
                strata_query::query_log::fingerprint(sql, &HashSet::new())
            }
        }
    }
}
