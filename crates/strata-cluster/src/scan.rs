//! A scan of archive files as an executor runs it: the snapshot checked,
//! the stores registered, the encrypted files decrypted with the
//! executor's keys.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::proto::ExecutionPlanEncodeCtx;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
    Statistics,
};
use datafusion_proto::physical_plan::{AsExecutionPlan, PhysicalExtensionCodec};
use datafusion_proto::protobuf::physical_plan_node::PhysicalPlanType;
use datafusion_proto::protobuf::{PhysicalExtensionNode, PhysicalPlanNode};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};
use strata_keys::envelope::KeyProvider;
use strata_query::{ShreddedAttrs, SnapshotPin, TenantKeys, store_url};
use strata_store::{Missing, open_location};
use tokio::sync::OnceCell;

use crate::served::ServedArchive;
use crate::wire::{SCAN_MAGIC, join, split};

/// What a scan is sent as, before its input.
#[derive(Serialize, Deserialize)]
struct ScanHeader {
    pin: SnapshotPin,
    stores: BTreeMap<String, Option<String>>,
}

fn refused(reason: String) -> DataFusionError {
    DataFusionError::Plan(format!("refused a Strata scan: {reason}"))
}

/// Registers in `runtime` the `stores` (URL → location, `None`: the
/// archive of `served`) it does not have, refusing a URL that is not the
/// one its location is read at.
fn register_stores(
    stores: &BTreeMap<String, Option<String>>,
    served: &ServedArchive,
    runtime: &RuntimeEnv,
) -> Result<()> {
    for (url, location) in stores {
        let parsed = ObjectStoreUrl::parse(url)?;
        if parsed != store_url(location.as_deref()) {
            return Err(refused(format!("{url} is not where {location:?} is read")));
        }
        if runtime.object_store(&parsed).is_err() {
            let store = match location {
                None => served.archive().store.clone(),
                Some(location) => open_location(location, Missing::Fail)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
            };
            runtime.register_object_store(parsed.as_ref(), store);
        }
    }
    Ok(())
}

/// A Parquet scan of the files of a pinned snapshot. It passes its input's
/// rows through unchanged; before the first, the executor running it checks
/// that every file is a visible file of the pinned snapshot in the pinned
/// tenants and in the store the plan names, registers those stores, and
/// attaches its own keys to the encrypted files.
#[derive(Debug, Clone)]
pub struct ArchiveScanExec {
    pin: SnapshotPin,
    /// Object store URL → location of the store (`None`: the archive).
    stores: BTreeMap<String, Option<String>>,
    input: Arc<dyn ExecutionPlan>,
    served: Arc<ServedArchive>,
    keys: Option<Arc<dyn KeyProvider>>,
    /// The checked, decrypting input, made once per node.
    prepared: Arc<OnceCell<Arc<dyn ExecutionPlan>>>,
}

impl ArchiveScanExec {
    /// A scan of `input` (a Parquet scan of files of `pin`, in `stores`),
    /// run by a process serving `served` that decrypts with `keys`.
    pub fn new(
        pin: SnapshotPin,
        stores: BTreeMap<String, Option<String>>,
        input: Arc<dyn ExecutionPlan>,
        served: Arc<ServedArchive>,
        keys: Option<Arc<dyn KeyProvider>>,
    ) -> ArchiveScanExec {
        ArchiveScanExec {
            pin,
            stores,
            input,
            served,
            keys,
            prepared: Arc::default(),
        }
    }

    /// What the scan reads.
    pub fn pin(&self) -> &SnapshotPin {
        &self.pin
    }

    /// The stores it reads, by object store URL.
    pub fn stores(&self) -> &BTreeMap<String, Option<String>> {
        &self.stores
    }

    /// The scan that [`ExecutionPlan::try_to_proto`] encoded as `bytes`
    /// (after the magic line), for a process serving `served` that decrypts
    /// with `keys`. The stores it reads are registered in `ctx` first: its
    /// Parquet scan cannot be decoded without them.
    pub(crate) fn decode(
        bytes: &[u8],
        ctx: &TaskContext,
        codec: &dyn PhysicalExtensionCodec,
        served: &Arc<ServedArchive>,
        keys: Option<Arc<dyn KeyProvider>>,
    ) -> Result<ArchiveScanExec> {
        let (header, input): (ScanHeader, &[u8]) = split(bytes)?;
        register_stores(&header.stores, served, &ctx.runtime_env())?;
        let input = PhysicalPlanNode::decode(input)
            .map_err(|e| refused(format!("its Parquet scan does not decode: {e}")))?
            .try_into_physical_plan(ctx, codec)?;
        Ok(ArchiveScanExec::new(
            header.pin,
            header.stores,
            input,
            served.clone(),
            keys,
        ))
    }

    /// The input checked against the pinned snapshot, with decryption.
    async fn prepare(&self, ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        // Ballista runs a task in another runtime than it decoded it in.
        register_stores(&self.stores, &self.served, &ctx.runtime_env())?;
        let pinned = self.served.pinned(&self.pin).await?;
        let exec = (self.input.downcast_ref::<DataSourceExec>())
            .ok_or_else(|| refused(format!("its input is a {}", self.input.name())))?;
        let (config, parquet) = (exec.downcast_to_file_source::<ParquetSource>())
            .ok_or_else(|| refused("its input is not a Parquet scan".into()))?;
        let location = (self.stores.get(config.object_store_url.as_str())).ok_or_else(|| {
            refused(format!(
                "it reads {}, a store it does not name",
                config.object_store_url.as_str()
            ))
        })?;
        let scope = self.pin.scope();
        let mut encrypted = HashSet::new();
        for file in config.file_groups.iter().flat_map(|group| group.iter()) {
            let path = file.object_meta.location.as_ref();
            let meta = (pinned.visible.get(path))
                .filter(|meta| meta.location == *location && scope.covers(&meta.tenant))
                .ok_or_else(|| {
                    refused(format!(
                        "{path} is not a file of entry {} that the session may read",
                        self.pin.seq
                    ))
                })?;
            if meta.key_version.is_some() {
                encrypted.insert(path.to_string());
            }
        }
        // The codec carries neither the keys nor the reading of shredded
        // attributes: both are attached here, on the executor.
        let mut source = parquet.clone();
        if !encrypted.is_empty() {
            let keys = self.keys.clone().ok_or_else(|| {
                DataFusionError::Execution(
                    "this executor has no keys for encrypted files: start it with the keyring that holds the tenants' keys (--keyring)".into(),
                )
            })?;
            source = source.with_encryption_factory(Arc::new(TenantKeys::new(keys, encrypted)));
        }
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .with_expr_adapter(Some(Arc::new(ShreddedAttrs)))
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

impl DisplayAs for ArchiveScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ArchiveScanExec: entry={}", self.pin.seq)?;
        if let Some(tenants) = &self.pin.tenants {
            write!(f, ", tenants={}", tenants.len())?;
        }
        Ok(())
    }
}

#[allow(deprecated)] // `with_new_children` is still required in DataFusion 55
impl ExecutionPlan for ArchiveScanExec {
    fn name(&self) -> &'static str {
        "ArchiveScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "a Strata scan has one input".into(),
            ));
        }
        Ok(Arc::new(ArchiveScanExec::new(
            self.pin.clone(),
            self.stores.clone(),
            children.swap_remove(0),
            self.served.clone(),
            self.keys.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let scan = self.clone();
        let rows = futures::stream::once(async move {
            let input = (scan.prepared)
                .get_or_try_init(|| scan.prepare(&context))
                .await?;
            input.execute(partition, context)
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            rows.boxed(),
        )))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.input.partition_statistics(partition)
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn try_to_proto(&self, ctx: &ExecutionPlanEncodeCtx<'_>) -> Result<Option<PhysicalPlanNode>> {
        // The input travels inside the node, not as its child: an executor
        // must register the stores before it can decode a Parquet scan.
        let mut node = SCAN_MAGIC.to_vec();
        let header = ScanHeader {
            pin: self.pin.clone(),
            stores: self.stores.clone(),
        };
        join(&header, &mut node)?;
        node.extend(ctx.encode_child(&self.input)?.encode_to_vec());
        let extension = PhysicalExtensionNode {
            node,
            inputs: Vec::new(),
        };
        Ok(Some(PhysicalPlanNode {
            physical_plan_type: Some(PhysicalPlanType::Extension(extension)),
        }))
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::FileGroup;
    use strata_query::Scope;
    use strata_schema::contract;
    use strata_store::{Draft, FileMeta, Missing, Snapshot, open_archive};

    fn file(tenant: &str, name: &str) -> FileMeta {
        FileMeta {
            path: format!("tenant={tenant}/family=access/month=2025-01/part-{name}.parquet"),
            tenant: tenant.into(),
            family: "access".into(),
            month: "2025-01".into(),
            size: 100,
            sha256: "00".repeat(32),
            rows: 1,
            min_ts: 1_735_689_600_000_000,
            max_ts: 1_735_689_600_000_001,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        }
    }

    /// An archive whose catalog lists a file of `acme` and one of `globex`
    /// (no data: executors check the plan before reading anything).
    async fn archive() -> (tempfile::TempDir, Arc<ServedArchive>, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("archive").display().to_string();
        let archive = open_archive(&location, Missing::Create).unwrap();
        let mut snapshot = archive.catalog.load().await.unwrap();
        let draft = Draft {
            operation: "ingest".into(),
            actor: "test".into(),
            add: vec![file("acme", "a"), file("globex", "g")],
            ..Draft::default()
        };
        archive.catalog.commit(&mut snapshot, draft).await.unwrap();
        let served = Arc::new(ServedArchive::open(&location).unwrap());
        (dir, served, snapshot)
    }

    /// A plan's scan of `paths` in the archive's store, pinned to `pin`.
    fn scan(served: &Arc<ServedArchive>, pin: SnapshotPin, paths: &[String]) -> ArchiveScanExec {
        let files = paths
            .iter()
            .map(|p| PartitionedFile::new(p.clone(), 100))
            .collect();
        let source = Arc::new(ParquetSource::new(contract().arrow_schema()));
        let config = FileScanConfigBuilder::new(store_url(None), source)
            .with_file_groups(vec![FileGroup::new(files)])
            .build();
        let stores = [(store_url(None).as_str().to_string(), None)].into();
        let input = DataSourceExec::from_data_source(config);
        ArchiveScanExec::new(pin, stores, input, served.clone(), None)
    }

    #[tokio::test]
    async fn executors_read_only_the_pinned_entrys_files_of_the_pinned_tenants() {
        let (_dir, served, snapshot) = archive().await;
        let location = &served.archive().location;
        let acme = SnapshotPin::new(location, &snapshot, &Scope::tenants(["acme"])).unwrap();
        let (acme_file, globex_file) = (file("acme", "a").path, file("globex", "g").path);
        let ctx = TaskContext::default();
        let prepared = scan(&served, acme.clone(), std::slice::from_ref(&acme_file));
        assert!(prepared.prepare(&ctx).await.is_ok());

        let refusals = [
            (
                scan(&served, acme.clone(), &[acme_file.clone(), globex_file]),
                "is not a file of entry 1",
            ),
            (
                scan(&served, acme.clone(), &["stray.parquet".into()]),
                "is not a file of entry 1",
            ),
            (
                scan(
                    &served,
                    SnapshotPin {
                        head: "00".repeat(32),
                        ..acme.clone()
                    },
                    std::slice::from_ref(&acme_file),
                ),
                "has no entry 1 with hash",
            ),
            (
                scan(
                    &served,
                    SnapshotPin {
                        archive: "/elsewhere".into(),
                        ..acme
                    },
                    &[acme_file],
                ),
                "serves the archive at",
            ),
        ];
        for (plan, reason) in refusals {
            let error = plan.prepare(&ctx).await.unwrap_err().to_string();
            assert!(error.contains(reason), "{error}");
        }
    }
}
