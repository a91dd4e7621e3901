//! A query session over one catalog snapshot of an archive.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ParamValues;
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

use crate::audit::AuditTable;
use crate::files::FilesTable;
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

const STORE_URL: &str = "strata://archive/";

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
        let store_url = ObjectStoreUrl::parse(STORE_URL)?;
        ctx.register_object_store(store_url.as_ref(), archive.store.clone());
        let mut store_urls = HashMap::from([(None, store_url)]);
        // One copy of the files, shared by `events` and `strata_files`.
        let files: Arc<[FileMeta]> = (snapshot.visible_files())
            .filter(|f| scope.covers(&f.tenant))
            .cloned()
            .collect();
        let buffered = (buffered.into_iter())
            .map(|batch| scope.rows_of(batch))
            .collect::<Result<Vec<_>, _>>()?;
        for location in files.iter().filter_map(|f| f.location.as_ref()) {
            if !store_urls.contains_key(&Some(location.clone())) {
                let url = ObjectStoreUrl::parse(format!("strata://tier{}/", store_urls.len()))?;
                let store = open_location(location, Missing::Fail)?;
                ctx.register_object_store(url.as_ref(), store);
                store_urls.insert(Some(location.clone()), url);
            }
        }
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
        ctx.register_table("events", events)?;
        for family in Family::ALL {
            ctx.sql(&format!(
                "CREATE OR REPLACE VIEW {family} AS SELECT * FROM events WHERE family = '{family}'"
            ))
            .await?;
        }
        // An analyst reads events alone: the receipts name operators, and
        // both tables would name the server's own tenant.
        if !matches!(scope, Scope::Pseudonymised(_)) {
            ctx.register_table("strata_files", Arc::new(FilesTable::new(files)))?;
            let audit = AuditTable::new(archive.catalog.clone(), snapshot.seq, scope);
            ctx.register_table("strata_audit", Arc::new(audit))?;
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
        Ok(frame.create_physical_plan().await?)
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
        let plan = frame.create_physical_plan().await?;
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
