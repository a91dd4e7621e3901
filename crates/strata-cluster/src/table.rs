//! The scheduler's side of a Strata table: the pinned snapshot's table,
//! built when the query is planned, its Parquet scans wrapped for executors.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use strata_query::{
    ArchiveTable, ArchiveTableKind, AuditTable, FilesTable, SnapshotPin, register_stores,
    scoped_files,
};

use crate::scan::ArchiveScanExec;
use crate::served::ServedArchive;

/// A table a client sent: what [`ArchiveTableKind`] shows at the pin.
#[derive(Debug)]
pub(crate) struct ClusterTable {
    kind: ArchiveTableKind,
    pin: SnapshotPin,
    schema: SchemaRef,
    buffered: Vec<RecordBatch>,
    served: Arc<ServedArchive>,
}

impl ClusterTable {
    /// The table of `kind` at `pin` of `served`, of the `schema` the client
    /// planned with; `buffered` rows are read besides `events`' files.
    pub(crate) fn new(
        kind: ArchiveTableKind,
        pin: SnapshotPin,
        schema: SchemaRef,
        buffered: Vec<RecordBatch>,
        served: Arc<ServedArchive>,
    ) -> ClusterTable {
        ClusterTable {
            kind,
            pin,
            schema,
            buffered,
            served,
        }
    }
}

#[async_trait]
impl TableProvider for ClusterTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // As the client's tables do: `events` prunes by them, the others not.
        let pushdown = match self.kind {
            ArchiveTableKind::Events => TableProviderFilterPushDown::Inexact,
            _ => TableProviderFilterPushDown::Unsupported,
        };
        Ok(vec![pushdown; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let pinned = self.served.pinned(&self.pin).await?;
        let archive = self.served.archive();
        let scope = self.pin.scope();
        let files = scoped_files(&pinned.snapshot, &scope);
        match self.kind {
            ArchiveTableKind::Events => {
                let urls = register_stores(state.runtime_env(), &archive.store, &files)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                let stores = (urls.iter())
                    .map(|(location, url)| (url.as_str().to_string(), location.clone()))
                    .collect();
                let table = ArchiveTable::new(files, urls, None, Arc::default())
                    .with_buffered(self.buffered.clone());
                let plan = table.scan(state, projection, filters, limit).await?;
                Ok(self.wrap_file_scans(plan, stores)?)
            }
            ArchiveTableKind::Files => {
                let table = FilesTable::new(files);
                table.scan(state, projection, filters, limit).await
            }
            ArchiveTableKind::Audit => {
                let table = AuditTable::new(archive.catalog.clone(), pinned.snapshot.seq, scope);
                table.scan(state, projection, filters, limit).await
            }
        }
    }
}

impl ClusterTable {
    /// `plan` with each scan of files in an [`ArchiveScanExec`], which
    /// checks and decrypts them on the executor.
    fn wrap_file_scans(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        stores: BTreeMap<String, Option<String>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wrapped = plan.transform_up(|node| {
            let scans_files = (node.downcast_ref::<DataSourceExec>()).is_some_and(|exec| {
                exec.data_source()
                    .downcast_ref::<FileScanConfig>()
                    .is_some()
            });
            if !scans_files {
                return Ok(Transformed::no(node));
            }
            let scan = ArchiveScanExec::new(
                self.pin.clone(),
                stores.clone(),
                node,
                self.served.clone(),
                None,
            );
            Ok(Transformed::yes(Arc::new(scan) as Arc<dyn ExecutionPlan>))
        })?;
        Ok(wrapped.data)
    }
}
