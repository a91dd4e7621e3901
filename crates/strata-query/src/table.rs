//! The `events` table: a DataFusion table provider over the catalog's files.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::TableProvider;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use strata_schema::contract;
use strata_store::FileMeta;

use crate::prune::Prune;

/// What one scan of `events` kept from the catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanRecord {
    /// Files in the catalog.
    pub files_total: usize,
    /// Files left after catalog pruning (and so opened).
    pub files_scanned: usize,
    /// Total size of the kept files.
    pub bytes_in_files: u64,
}

/// The archive's events as a table, fixed at one catalog snapshot.
#[derive(Debug)]
pub struct ArchiveTable {
    files: Vec<FileMeta>,
    store_url: ObjectStoreUrl,
    scans: Arc<Mutex<Vec<ScanRecord>>>,
}

impl ArchiveTable {
    /// A table over `files`, read through the object store registered at `store_url`;
    /// each scan appends what it kept to `scans`.
    pub fn new(
        files: Vec<FileMeta>,
        store_url: ObjectStoreUrl,
        scans: Arc<Mutex<Vec<ScanRecord>>>,
    ) -> Self {
        ArchiveTable {
            files,
            store_url,
            scans,
        }
    }
}

#[async_trait]
impl TableProvider for ArchiveTable {
    fn schema(&self) -> SchemaRef {
        contract().arrow_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Catalog pruning and Parquet statistics narrow the files and row
        // groups; DataFusion still applies every filter to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let prune = Prune::from_filters(filters);
        let kept: Vec<&FileMeta> = self.files.iter().filter(|f| prune.keeps(f)).collect();
        self.scans.lock().expect("scan log lock").push(ScanRecord {
            files_total: self.files.len(),
            files_scanned: kept.len(),
            bytes_in_files: kept.iter().map(|f| f.size).sum(),
        });
        let schema = self.schema();
        if kept.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let files: Vec<PartitionedFile> = kept
            .iter()
            .map(|f| PartitionedFile::new(f.path.clone(), f.size))
            .collect();
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let source = Arc::new(ParquetSource::new(schema));
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
