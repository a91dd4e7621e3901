//! A query session over one catalog snapshot of an archive.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ParamValues;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::error::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use strata_schema::Family;
use strata_store::{
    Archive, ArchiveError, CatalogError, FileMeta, Missing, Snapshot, open_location,
};

use object_store::ObjectStore;

use crate::audit::AuditTable;
use crate::files::FilesTable;
use crate::pin::{ArchiveTableKind, PinnedTable, SnapshotPin};
use crate::pseudonym_table::PseudonymTable;
use crate::scope::Scope;
use crate::table::{ArchiveTable, ScanRecord};
use crate::utc_date::UtcDateRewrite;
use strata_keys::envelope::KeyProvider;

/// Errors opening a session or running a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A cold store holding tiered files could not be opened.
    #[error(transparent)]
    ColdStore(#[from] ArchiveError),
    /// Planning or execution failed (bad SQL, unreadable file, ...).
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
}

/// What a query read, for `--stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Files in the catalog.
    pub files_total: usize,
    /// Files opened after catalog pruning (summed over scans).
    pub files_scanned: usize,
    /// Row groups skipped by Parquet statistics.
    pub row_groups_pruned: usize,
    /// Row groups read.
    pub row_groups_read: usize,
    /// Bytes read from storage.
    pub bytes_scanned: usize,
    /// Rows produced by the scans.
    pub rows_scanned: usize,
}

/// What a query's scans will read, known once it is planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// The tenants whose files or buffered rows it reads.
    pub tenants: BTreeSet<String>,
    /// The size of the files it reads.
    pub bytes_in_files: u64,
}

/// Refuses `plan` unless it only reads: DDL, DML and statements (`SET`,
/// `COPY`, `CREATE EXTERNAL TABLE`) read and write the server's files and
/// change its session in stock DataFusion.
pub fn verify_read_only(plan: &LogicalPlan) -> Result<(), DataFusionError> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
}

/// A query running (see [`QuerySession::start`]).
pub struct Running {
    /// Its physical plan, for [`QuerySession::stats`] once it is done.
    pub plan: Arc<dyn ExecutionPlan>,
    /// Its first batch, `None` for no rows.
    pub first: Option<RecordBatch>,
    /// The rest of its batches.
    pub rest: SendableRecordBatchStream,
}

/// Who a session is for: what it shows and what its queries may use.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The tenants every table shows.
    pub scope: Scope,
    /// The runtime its queries run in (a memory pool shared by one
    /// principal's queries, say); DataFusion's default without one.
    pub runtime: Option<Arc<RuntimeEnv>>,
}

impl Viewer {
    /// Every tenant, in DataFusion's default runtime: the command line.
    pub fn everything() -> Viewer {
        Viewer {
            scope: Scope::AllTenants,
            runtime: None,
        }
    }
}

/// A DataFusion session with the archive's tables registered.
pub struct QuerySession {
    /// The DataFusion context; register more tables here if needed.
    pub ctx: SessionContext,
    /// The catalog snapshot the tables show.
    pub snapshot: Arc<Snapshot>,
    scans: Arc<Mutex<Vec<ScanRecord>>>,
}

/// Where the archive's own store is registered in a session.
const STORE_URL: &str = "strata://archive/";

/// The name of the plan that runs a query on a Ballista cluster.
const DISTRIBUTED_QUERY: &str = "DistributedQueryExec";

/// The tables a session registers (besides a view per family).
const TABLES: [&str; 3] = ["events", "strata_files", "strata_audit"];

/// Whether `name` is one of the archive's tables or family views, which
/// every session names alike (whether it shows them or not).
pub fn is_archive_table(name: &str) -> bool {
    TABLES.contains(&name) || Family::parse(name).is_some()
}

impl QuerySession {
    /// Opens a session over the archive's latest committed state; encrypted
    /// files are read with `keys`.
    pub async fn open(
        archive: &Archive,
        keys: Option<Arc<dyn KeyProvider>>,
    ) -> Result<QuerySession, QueryError> {
        let snapshot = Arc::new(archive.catalog.load().await?);
        QuerySession::at(archive, snapshot, keys, Vec::new(), Viewer::everything()).await
    }

    /// Opens a session over `snapshot` of `archive` in which `events` also
    /// holds `buffered`: rows of the contract's schema in no file of the
    /// snapshot (a server's events not yet written out). Every table shows
    /// only the tenants of `viewer`'s scope (see [`Scope`]), and its queries
    /// run in `viewer`'s runtime.
    pub async fn at(
        archive: &Archive,
        snapshot: Arc<Snapshot>,
        keys: Option<Arc<dyn KeyProvider>>,
        buffered: Vec<RecordBatch>,
        viewer: Viewer,
    ) -> Result<QuerySession, QueryError> {
        let ctx = QuerySession::context(viewer.runtime)?;
        QuerySession::within(ctx, archive, snapshot, keys, buffered, viewer.scope).await
    }

    /// A DataFusion context for sessions, running in `runtime` (DataFusion's
    /// default without one), with `information_schema` and the UTC date
    /// rewrite: what [`QuerySession::within`] fills.
    pub fn context(runtime: Option<Arc<RuntimeEnv>>) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new().with_information_schema(true);
        let mut ctx = match runtime {
            Some(runtime) => SessionContext::new_with_config_rt(config, runtime),
            None => SessionContext::new_with_config(config),
        };
        ctx.register_function_rewrite(Arc::new(UtcDateRewrite))?;
        Ok(ctx)
    }

    /// [`QuerySession::at`] in `ctx` (made by [`QuerySession::context`]):
    /// the archive's tables are registered in it, replacing those of an
    /// earlier call, so that a long-lived context (a PostgreSQL connection's)
    /// reads the newest state at every statement.
    pub async fn within(
        ctx: SessionContext,
        archive: &Archive,
        snapshot: Arc<Snapshot>,
        keys: Option<Arc<dyn KeyProvider>>,
        buffered: Vec<RecordBatch>,
        scope: Scope,
    ) -> Result<QuerySession, QueryError> {
        let files = scoped_files(&snapshot, &scope);
        let store_urls = register_stores(&ctx.runtime_env(), &archive.store, &files)?;
        let buffered = (buffered.into_iter())
            .map(|batch| scope.rows_of(batch))
            .collect::<Result<Vec<_>, _>>()?;
        let pin = SnapshotPin::new(&archive.location, &snapshot, &scope);
        let scans = Arc::new(Mutex::new(Vec::new()));
        for table in TABLES {
            ctx.deregister_table(table)?;
        }
        let events = ArchiveTable::new(files.clone(), store_urls, keys, scans.clone())
            .with_buffered(buffered);
        let events: Arc<dyn TableProvider> = match &scope {
            Scope::Pseudonymised(pseudonyms) => {
                Arc::new(PseudonymTable::new(Arc::new(events), pseudonyms.clone()))
            }
            _ => Arc::new(events),
        };
        ctx.register_table("events", pinned(ArchiveTableKind::Events, &pin, events))?;
        for family in Family::ALL {
            ctx.sql(&format!(
                "CREATE OR REPLACE VIEW {family} AS SELECT * FROM events WHERE family = '{family}'"
            ))
            .await?;
        }
        // An analyst reads events alone: the receipts name operators, and
        // both tables would name the server's own tenant.
        if !matches!(scope, Scope::Pseudonymised(_)) {
            let files = Arc::new(FilesTable::new(files));
            ctx.register_table("strata_files", pinned(ArchiveTableKind::Files, &pin, files))?;
            let audit = Arc::new(AuditTable::new(
                archive.catalog.clone(),
                snapshot.seq,
                scope,
            ));
            ctx.register_table("strata_audit", pinned(ArchiveTableKind::Audit, &pin, audit))?;
        }
        Ok(QuerySession {
            ctx,
            snapshot,
            scans,
        })
    }

    /// Plans `sql` into a physical plan.
    pub async fn plan(&self, sql: &str) -> Result<Arc<dyn ExecutionPlan>, QueryError> {
        self.scans.lock().expect("scan log lock").clear();
        let frame = self.ctx.sql(sql).await?;
        let logical = frame.logical_plan().clone();
        let plan = frame.create_physical_plan().await?;
        self.record_remote_scans(&plan, &logical)?;
        Ok(plan)
    }

    /// Records what the scans of `logical` read when `physical` runs them
    /// on a cluster, whose scheduler plans them: the session still knows
    /// which tenants a query reads, for the query log.
    fn record_remote_scans(
        &self,
        physical: &Arc<dyn ExecutionPlan>,
        logical: &LogicalPlan,
    ) -> Result<(), DataFusionError> {
        if physical.name() != DISTRIBUTED_QUERY {
            return Ok(());
        }
        let optimized = self.ctx.state().optimize(logical)?;
        optimized.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(table) = source_as_provider(&scan.source)
                && let Some(pinned) = table.downcast_ref::<PinnedTable>()
                && let Some(events) = pinned.inner.downcast_ref::<ArchiveTable>()
            {
                events.record_scan(&scan.filters);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(())
    }

    /// Starts executing a plan made by [`QuerySession::plan`].
    pub fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        Ok(execute_stream(plan, self.ctx.task_ctx())?)
    }

    /// Runs `sql` to completion and returns every batch.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// What the scans planned since the session opened (or since the last
    /// [`QuerySession::plan`]) will read.
    pub fn planned(&self) -> Planned {
        let mut planned = Planned::default();
        for scan in self.scans.lock().expect("scan log lock").iter() {
            planned.bytes_in_files += scan.bytes_in_files;
            planned.tenants.extend(scan.tenants.iter().cloned());
        }
        planned
    }

    /// The names a statement may use that say nothing about the data: the
    /// session's tables and views, their columns and its functions. What a
    /// fingerprint keeps of a statement (see [`crate::query_log`]).
    pub async fn vocabulary(&self) -> Result<HashSet<String>, QueryError> {
        let state = self.ctx.state();
        let mut names: HashSet<String> = (state.scalar_functions().keys())
            .chain(state.aggregate_functions().keys())
            .chain(state.window_functions().keys())
            .cloned()
            .collect();
        for catalog_name in self.ctx.catalog_names() {
            let catalog = self.ctx.catalog(&catalog_name).expect("listed catalog");
            names.insert(catalog_name);
            for schema_name in catalog.schema_names() {
                let schema = catalog.schema(&schema_name).expect("listed schema");
                names.insert(schema_name);
                for table_name in schema.table_names() {
                    if let Some(table) = schema.table(&table_name).await? {
                        names.extend(table.schema().fields().iter().map(|f| f.name().clone()));
                    }
                    names.insert(table_name);
                }
            }
        }
        Ok(names)
    }

    /// Runs `plan` (made in this session's context and checked by
    /// [`verify_read_only`]) with `params` bound to its `$1`, `$2`, …, up to
    /// its first batch: a query that fails before its first rows fails here.
    pub async fn start(
        &self,
        plan: LogicalPlan,
        params: Option<ParamValues>,
    ) -> Result<Running, DataFusionError> {
        let plan = match params {
            Some(params) => plan.with_param_values(params)?,
            None => plan,
        };
        let frame = self.ctx.execute_logical_plan(plan).await?;
        let logical = frame.logical_plan().clone();
        let plan = frame.create_physical_plan().await?;
        self.record_remote_scans(&plan, &logical)?;
        let mut rest = execute_stream(plan.clone(), self.ctx.task_ctx())?;
        let first = rest.next().await.transpose()?;
        Ok(Running { plan, first, rest })
    }

    /// What the scans of an executed `plan` read.
    pub fn stats(&self, plan: &Arc<dyn ExecutionPlan>) -> QueryStats {
        let mut stats = QueryStats::default();
        for scan in self.scans.lock().expect("scan log lock").iter() {
            stats.files_total = scan.files_total;
            stats.files_scanned += scan.files_scanned;
        }
        add_scan_metrics(plan, &mut stats);
        stats
    }
}

/// `table` with `pin` when there is one (see [`PinnedTable`]).
fn pinned(
    kind: ArchiveTableKind,
    pin: &Option<SnapshotPin>,
    table: Arc<dyn TableProvider>,
) -> Arc<dyn TableProvider> {
    match pin {
        Some(pin) => Arc::new(PinnedTable {
            kind,
            pin: pin.clone(),
            inner: table,
        }),
        None => table,
    }
}

/// The visible files of `snapshot` that `scope` shows: one copy, shared by
/// `events` and `strata_files`.
pub fn scoped_files(snapshot: &Snapshot, scope: &Scope) -> Arc<[FileMeta]> {
    (snapshot.visible_files())
        .filter(|f| scope.covers(&f.tenant))
        .cloned()
        .collect()
}

/// The URL at which the store of files at `location` is registered
/// (`None`: the archive). A cold store's URL is named after its location,
/// so that every process (a cluster's executors too) names it alike.
pub fn store_url(location: Option<&str>) -> ObjectStoreUrl {
    let url = match location {
        None => STORE_URL.to_string(),
        Some(location) => {
            let digest = ring::digest::digest(&ring::digest::SHA256, location.as_bytes());
            format!("strata://tier-{}/", hex_prefix(digest.as_ref()))
        }
    };
    ObjectStoreUrl::parse(url).expect("a valid URL")
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers in `runtime` the archive's store (`archive`) and the cold
/// stores `files` are in, and returns where each location is registered.
pub fn register_stores(
    runtime: &RuntimeEnv,
    archive: &Arc<dyn ObjectStore>,
    files: &[FileMeta],
) -> Result<HashMap<Option<String>, ObjectStoreUrl>, QueryError> {
    let archive_url = store_url(None);
    runtime.register_object_store(archive_url.as_ref(), archive.clone());
    let mut store_urls = HashMap::from([(None, archive_url)]);
    for location in files.iter().filter_map(|f| f.location.as_ref()) {
        if let Entry::Vacant(entry) = store_urls.entry(Some(location.clone())) {
            let url = store_url(Some(location));
            runtime.register_object_store(url.as_ref(), open_location(location, Missing::Fail)?);
            entry.insert(url);
        }
    }
    Ok(store_urls)
}

fn add_scan_metrics(plan: &Arc<dyn ExecutionPlan>, stats: &mut QueryStats) {
    if plan.name() == "DataSourceExec"
        && let Some(metrics) = plan.metrics()
    {
        stats.bytes_scanned += metrics
            .sum_by_name("bytes_scanned")
            .map_or(0, |v| v.as_usize());
        stats.rows_scanned += metrics.output_rows().unwrap_or(0);
        for metric in metrics.iter() {
            if let MetricValue::PruningMetrics {
                name,
                pruning_metrics,
            } = metric.value()
                && name == "row_groups_pruned_statistics"
            {
                stats.row_groups_pruned += pruning_metrics.pruned();
                stats.row_groups_read += pruning_metrics.matched();
            }
        }
    }
    for child in plan.children() {
        add_scan_metrics(child, stats);
    }
}
