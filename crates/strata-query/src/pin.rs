//! What a session's tables show, named so that another process can show
//! exactly the same: the archive, the catalog snapshot (its sequence
//! number and the hash of its last entry) and the tenants. A plan sent to
//! a cluster carries this instead of the files themselves (see the
//! `strata-cluster` crate).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};
use strata_store::Snapshot;

use crate::scope::Scope;

/// One snapshot of one archive, as one scope sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPin {
    /// The archive's location: an absolute folder path or `s3://bucket/prefix`.
    pub archive: String,
    /// The snapshot's sequence number.
    pub seq: u64,
    /// SHA-256 of entry `seq` ([`Snapshot::head`]): a log rewritten since,
    /// or another archive at the same place, does not match.
    pub head: String,
    /// The tenants shown; `None`: every tenant.
    pub tenants: Option<BTreeSet<String>>,
}

impl SnapshotPin {
    /// The pin of `snapshot` of the archive at `archive` seen through
    /// `scope`; `None` for an analyst's scope, whose pseudonym secret must
    /// not leave the process.
    pub fn new(archive: &str, snapshot: &Snapshot, scope: &Scope) -> Option<SnapshotPin> {
        let tenants = match scope {
            Scope::AllTenants => None,
            Scope::Tenants(tenants) => Some(tenants.as_ref().clone()),
            Scope::Pseudonymised(_) => return None,
        };
        Some(SnapshotPin {
            archive: archive.to_string(),
            seq: snapshot.seq,
            head: snapshot.head.clone(),
            tenants,
        })
    }

    /// The scope the pin shows.
    pub fn scope(&self) -> Scope {
        match &self.tenants {
            None => Scope::AllTenants,
            Some(tenants) => Scope::Tenants(Arc::new(tenants.clone())),
        }
    }
}

/// Which of the archive's tables a [`PinnedTable`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveTableKind {
    /// `events` (the family views read it).
    Events,
    /// `strata_files`.
    Files,
    /// `strata_audit`.
    Audit,
}

/// One of a session's archive tables with the pin of what it shows: in a
/// session it reads like the table it wraps; a cluster's codec sends the
/// kind and pin in its place.
#[derive(Debug)]
pub struct PinnedTable {
    /// Which table it is.
    pub kind: ArchiveTableKind,
    /// What it shows.
    pub pin: SnapshotPin,
    /// The table itself.
    pub inner: Arc<dyn TableProvider>,
}

#[async_trait]
impl TableProvider for PinnedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }
}
