//! The `events` table: a DataFusion table provider over the catalog's files
//! and, in a server, the events it holds in memory that no file has yet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::datasource::TableProvider;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use strata_schema::contract;
use strata_store::FileMeta;

use crate::crypto::TenantKeys;
use crate::prune::Prune;
use crate::shredded::ShreddedAttrs;
use strata_keys::envelope::KeyProvider;

/// Bytes read from the end of a file to get its footer in one request
/// rather than two (length, then footer). The benchmark's files, one row
/// group each, have footers of about 5 KiB; a longer footer (many row
/// groups of up to 1 Mi rows) costs one more read.
const FOOTER_READ_BYTES: usize = 16 * 1024;

/// What one scan of `events` kept from the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRecord {
    /// Files in the catalog.
    pub files_total: usize,
    /// Files left after catalog pruning (and so opened).
    pub files_scanned: usize,
    /// Total size of the kept files.
    pub bytes_in_files: u64,
    /// The tenants whose data the scan reads: of the kept files and of the
    /// buffered rows that the same pruning keeps.
    pub tenants: BTreeSet<String>,
}

/// The `ts` range of buffered rows of one tenant and family.
#[derive(Debug)]
struct BufferedRange {
    tenant: String,
    family: String,
    min_ts: i64,
    max_ts: i64,
}

/// The archive's events as a table, fixed at one catalog snapshot.
#[derive(Debug)]
pub struct ArchiveTable {
    files: Arc<[FileMeta]>,
    /// Where each file's store is registered, by [`FileMeta::location`].
    store_urls: HashMap<Option<String>, ObjectStoreUrl>,
    decryption: Option<Arc<TenantKeys>>,
    scans: Arc<Mutex<Vec<ScanRecord>>>,
    /// Rows of the contract's schema read besides the files.
    buffered: Vec<RecordBatch>,
    /// Their ranges, found at the first scan.
    buffered_ranges: OnceLock<Vec<BufferedRange>>,
}

impl ArchiveTable {
    /// A table over `files`, each read through the object store registered at
    /// the URL `store_urls` gives for its location (`None`: the archive), its
    /// encrypted files decrypted with `keys`; each scan appends what it kept
    /// to `scans`.
    pub fn new(
        files: Arc<[FileMeta]>,
        store_urls: HashMap<Option<String>, ObjectStoreUrl>,
        keys: Option<Arc<dyn KeyProvider>>,
        scans: Arc<Mutex<Vec<ScanRecord>>>,
    ) -> Self {
        let encrypted = files
            .iter()
            .filter(|f| f.key_version.is_some())
            .map(|f| f.path.clone())
            .collect();
        ArchiveTable {
            files,
            store_urls,
            decryption: keys.map(|keys| Arc::new(TenantKeys::new(keys, encrypted))),
            scans,
            buffered: Vec::new(),
            buffered_ranges: OnceLock::new(),
        }
    }

    /// The rows read besides the files.
    pub fn buffered(&self) -> &[RecordBatch] {
        &self.buffered
    }

    /// The same table with `batches` (of the contract's schema, in no
    /// file of the table) read as well.
    pub fn with_buffered(mut self, batches: Vec<RecordBatch>) -> Self {
        self.buffered = batches;
        self
    }

    /// Appends to the scan log what a scan with `filters` reads (see
    /// [`ScanRecord`]), and returns the files it keeps. A scan planned in
    /// another process (a cluster's scheduler) is recorded with this.
    pub fn record_scan(&self, filters: &[Expr]) -> Vec<&FileMeta> {
        let prune = Prune::from_filters(filters);
        let kept: Vec<&FileMeta> = self.files.iter().filter(|f| prune.keeps(f)).collect();
        let buffered_read = (self.buffered_ranges().iter())
            .filter(|r| prune.keeps_rows(&r.tenant, &r.family, r.min_ts, r.max_ts))
            .map(|r| &r.tenant);
        let tenants = (kept.iter().map(|f| &f.tenant))
            .chain(buffered_read)
            .cloned()
            .collect();
        self.scans.lock().expect("scan log lock").push(ScanRecord {
            files_total: self.files.len(),
            files_scanned: kept.len(),
            bytes_in_files: kept.iter().map(|f| f.size).sum(),
            tenants,
        });
        kept
    }

    /// The tenant, family and `ts` range of the buffered rows.
    fn buffered_ranges(&self) -> &[BufferedRange] {
        self.buffered_ranges.get_or_init(|| {
            let mut ranges: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
            for batch in &self.buffered {
                let column = |name: &str| batch.column_by_name(name).expect("contract schema");
                let tenants = column("tenant").as_string::<i32>();
                let families = column("family").as_string::<i32>();
                let ts = column("ts").as_primitive::<TimestampMicrosecondType>();
                for row in 0..batch.num_rows() {
                    let (at, key) = (ts.value(row), (tenants.value(row), families.value(row)));
                    let range = ranges.entry(key).or_insert((at, at));
                    *range = (range.0.min(at), range.1.max(at));
                }
            }
            (ranges.into_iter())
                .map(|((tenant, family), (min_ts, max_ts))| BufferedRange {
                    tenant: tenant.to_string(),
                    family: family.to_string(),
                    min_ts,
                    max_ts,
                })
                .collect()
        })
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
        let kept = self.record_scan(filters);
        let schema = self.schema();
        let mut scans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !self.buffered.is_empty() {
            // Filters are applied above the scan (pushdown is inexact).
            let batches = std::slice::from_ref(&self.buffered);
            scans.push(MemorySourceConfig::try_new_exec(
                batches,
                schema.clone(),
                projection.cloned(),
            )?);
        }
        // The filters prune row groups and pages by their statistics. The
        // physical plan's filter pushdown does not reach the scan through the
        // projection that extracts `attrs['key']`, so without this a filter on
        // a shredded attribute would read every row group.
        let predicate = match conjunction(filters.to_vec()) {
            Some(filter) => {
                let columns = DFSchema::try_from(schema.as_ref().clone())?;
                Some(state.create_physical_expr(filter, &columns)?)
            }
            None => None,
        };
        // One scan per store: hot files in the archive, tiered ones in their cold stores.
        let mut by_store: BTreeMap<Option<&str>, Vec<PartitionedFile>> = BTreeMap::new();
        for file in kept {
            by_store
                .entry(file.location.as_deref())
                .or_default()
                .push(PartitionedFile::new(file.path.clone(), file.size));
        }
        for (location, files) in by_store {
            let url = self
                .store_urls
                .get(&location.map(String::from))
                .ok_or_else(|| {
                    DataFusionError::Internal(format!("no object store for {location:?}"))
                })?;
            let groups = FileGroup::new(files).split_files(state.config().target_partitions());
            let mut source =
                ParquetSource::new(schema.clone()).with_metadata_size_hint(FOOTER_READ_BYTES);
            if let Some(decryption) = &self.decryption {
                source = source.with_encryption_factory(decryption.clone());
            }
            if let Some(predicate) = &predicate {
                source = source.with_predicate(Arc::clone(predicate));
            }
            let source = Arc::new(source);
            let config = FileScanConfigBuilder::new(url.clone(), source)
                .with_expr_adapter(Some(Arc::new(ShreddedAttrs)))
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            scans.push(DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>);
        }
        if scans.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(scans)
    }
}
