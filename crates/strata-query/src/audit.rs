//! `strata_audit`: every catalog entry as receipts, one row per file added or
//! removed and per policy, hold or expiry change, read from the log when a
//! query scans it (so opening a session stays as cheap as loading a snapshot).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use strata_store::{Catalog, Change, Entry, FileMeta, PartitionRecord};

use crate::scope::Scope;

/// Entries read at once.
const READ_CONCURRENCY: usize = 32;

/// The receipts table, up to one commit.
#[derive(Debug)]
pub struct AuditTable {
    catalog: Catalog,
    upto: u64,
    scope: Scope,
}

impl AuditTable {
    /// Receipts of entries 1 to `upto` of `catalog` about the tenants of
    /// `scope`. A scoped table keeps only receipts naming one of its tenants,
    /// and shows a commit's actor and reason only when the commit concerned
    /// no other tenant: one write-out of a server commits many tenants'
    /// files, and its actor lists every sender (whose names, like a typed
    /// reason, may name other tenants).
    pub fn new(catalog: Catalog, upto: u64, scope: Scope) -> AuditTable {
        AuditTable {
            catalog,
            upto,
            scope,
        }
    }
}

fn schema() -> SchemaRef {
    let text = |name| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new(
            "committed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("actor"),
        Field::new("operation", DataType::Utf8, false),
        text("reason"),
        Field::new("policy_version", DataType::UInt64, true),
        Field::new("action", DataType::Utf8, false),
        text("tenant"),
        text("family"),
        text("month"),
        text("path"),
        text("location"),
        text("sha256"),
        Field::new("bytes", DataType::UInt64, true),
        Field::new("rows", DataType::UInt64, true),
        text("detail"),
    ]))
}

/// Column builders, one row per receipt of the scope's tenants.
#[derive(Default)]
struct Receipts {
    scope: Scope,
    /// Whether the entry being added concerns only the scope's tenants
    /// (set by `add` before its rows).
    whole: bool,
    seq: UInt64Builder,
    committed_at: TimestampMicrosecondBuilder,
    actor: StringBuilder,
    operation: StringBuilder,
    reason: StringBuilder,
    policy_version: UInt64Builder,
    action: StringBuilder,
    tenant: StringBuilder,
    family: StringBuilder,
    month: StringBuilder,
    path: StringBuilder,
    location: StringBuilder,
    sha256: StringBuilder,
    bytes: UInt64Builder,
    rows: UInt64Builder,
    detail: StringBuilder,
}

impl Receipts {
    fn row(
        &mut self,
        entry: &Entry,
        action: &str,
        partition: Option<&PartitionRecord>,
        file: Option<&FileMeta>,
        detail: Option<String>,
    ) {
        if !self.scope.is_everything() && !partition.is_some_and(|p| self.scope.covers(&p.tenant)) {
            return;
        }
        let committed = chrono::DateTime::parse_from_rfc3339(&entry.committed_at)
            .map_or(0, |t| t.timestamp_micros());
        self.seq.append_value(entry.seq);
        self.committed_at.append_value(committed);
        let whole = self.whole;
        self.actor.append_option(whole.then_some(&entry.actor));
        self.operation.append_value(&entry.operation);
        self.reason
            .append_option(entry.reason.as_deref().filter(|_| whole));
        self.policy_version.append_option(entry.policy_version);
        self.action.append_value(action);
        self.tenant.append_option(partition.map(|p| &p.tenant));
        self.family.append_option(partition.map(|p| &p.family));
        self.month.append_option(partition.map(|p| &p.month));
        self.path.append_option(file.map(|f| &f.path));
        self.location
            .append_option(file.and_then(|f| f.location.as_deref()));
        self.sha256.append_option(file.map(|f| &f.sha256));
        self.bytes.append_option(file.map(|f| f.size));
        self.rows.append_option(file.map(|f| f.rows));
        self.detail.append_option(detail);
    }

    fn add(&mut self, entry: &Entry) {
        self.whole = self.scope.is_everything()
            || tenants_of(entry).all(|tenant| self.scope.covers(&tenant));
        for file in &entry.add {
            self.row(
                entry,
                "add",
                Some(&PartitionRecord::of(file)),
                Some(file),
                None,
            );
        }
        for file in &entry.remove {
            self.row(
                entry,
                "remove",
                Some(&PartitionRecord::of(file)),
                Some(file),
                None,
            );
        }
        for change in &entry.changes {
            let detail = serde_json::to_value(change).expect("changes serialize");
            let action = detail["change"].as_str().unwrap_or("change").to_string();
            let partition = partition_of(change);
            self.row(
                entry,
                &action,
                partition.as_ref(),
                None,
                Some(detail.to_string()),
            );
        }
        if entry.add.is_empty() && entry.remove.is_empty() && entry.changes.is_empty() {
            self.row(entry, &entry.operation, None, None, None);
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.committed_at.finish().with_timezone("UTC")),
            Arc::new(self.actor.finish()),
            Arc::new(self.operation.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.policy_version.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.tenant.finish()),
            Arc::new(self.family.finish()),
            Arc::new(self.month.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.location.finish()),
            Arc::new(self.sha256.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.rows.finish()),
            Arc::new(self.detail.finish()),
        ];
        Ok(RecordBatch::try_new(schema(), columns)?)
    }
}

/// The partition (or tenant) a governance change concerns, if any.
fn partition_of(change: &Change) -> Option<PartitionRecord> {
    let tenant_only = |tenant: &String| PartitionRecord {
        tenant: tenant.clone(),
        family: String::new(),
        month: String::new(),
    };
    match change {
        Change::ExpiryMarked { mark } => Some(mark.partition.clone()),
        Change::ExpiryCancelled { partition, .. } | Change::ExpirySwept { partition } => {
            Some(partition.clone())
        }
        Change::HoldAdded { hold } => Some(PartitionRecord {
            family: hold.family.clone().unwrap_or_default(),
            ..tenant_only(&hold.tenant)
        }),
        Change::KeyRotated { tenant, .. }
        | Change::ShredScheduled { tenant, .. }
        | Change::KeysShredded { tenant, .. } => Some(tenant_only(tenant)),
        Change::PolicySet { .. }
        | Change::HoldReleased { .. }
        | Change::KeyTrusted { .. }
        | Change::KeyRetired { .. }
        | Change::PrincipalAdded { .. }
        | Change::PrincipalRevoked { .. } => None,
    }
}

/// Every tenant `entry` concerns (an empty name for a change of none).
fn tenants_of(entry: &Entry) -> impl Iterator<Item = String> + '_ {
    let files = entry
        .add
        .iter()
        .chain(&entry.remove)
        .map(|f| f.tenant.clone());
    let changes =
        (entry.changes.iter()).map(|c| partition_of(c).map(|p| p.tenant).unwrap_or_default());
    files.chain(changes)
}

#[async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let catalog = &self.catalog;
        let mut entries = futures::stream::iter(1..=self.upto)
            .map(|seq| async move {
                match catalog.read_entry(seq).await {
                    // Every loaded catalog checked this; a reader racing an
                    // edit is told rather than shown 1970.
                    Ok(Some((entry, _)))
                        if chrono::DateTime::parse_from_rfc3339(&entry.committed_at).is_err() =>
                    {
                        Err(DataFusionError::Execution(format!(
                            "catalog entry {} has an unreadable commit time {:?}; run `strata verify`",
                            strata_store::entry_path(seq),
                            entry.committed_at
                        )))
                    }
                    Ok(Some((entry, _))) => Ok(entry),
                    Ok(None) => Err(DataFusionError::Execution(format!(
                        "catalog entry {seq} is missing; run `strata verify`"
                    ))),
                    Err(e) => Err(DataFusionError::External(Box::new(e))),
                }
            })
            .buffered(READ_CONCURRENCY);
        let mut receipts = Receipts {
            scope: self.scope.clone(),
            ..Receipts::default()
        };
        while let Some(entry) = entries.try_next().await? {
            receipts.add(&entry);
        }
        let batch = receipts.finish()?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema(),
            projection.cloned(),
        )?)
    }
}
