//! A client's session context that runs its queries on a cluster.

use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::planner::BallistaQueryPlanner;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;
use strata_query::{PinnedTable, UtcDateRewrite};

use crate::codec::StrataLogicalCodec;

/// The scheduler's gRPC URL for a cluster named `df://HOST:PORT`.
pub fn scheduler_url(cluster: &str) -> Result<String> {
    let bad = |reason: &str| {
        DataFusionError::Configuration(format!(
            "cluster {cluster}: {reason} (expected df://HOST:PORT, the scheduler's address)"
        ))
    };
    let address = cluster
        .strip_prefix("df://")
        .ok_or_else(|| bad("not a df:// URL"))?;
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad("no host or a bad port"));
    }
    Ok(format!("http://{host}:{port}"))
}

/// A context like a local session's (`information_schema`, the UTC date
/// rewrite), in `runtime` if given, whose queries of the archive's tables
/// run on the cluster `df://HOST:PORT`; register the tables in it with
/// `QuerySession::within`. Queries that read none of them (a PostgreSQL
/// client's catalog queries, `SELECT 1`) run here.
pub fn remote_context(cluster: &str, runtime: Option<Arc<RuntimeEnv>>) -> Result<SessionContext> {
    let config = SessionConfig::new_with_ballista().with_information_schema(true);
    let codec = Arc::new(StrataLogicalCodec::client());
    let planner = ClusterPlanner {
        cluster: BallistaQueryPlanner::with_extension(
            scheduler_url(cluster)?,
            config.ballista_config(),
            codec.clone(),
        ),
        local: DefaultPhysicalPlanner::default(),
    };
    let config = config
        .with_ballista_logical_extension_codec(codec)
        .with_ballista_query_planner(Arc::new(planner));
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config);
    if let Some(runtime) = runtime {
        state = state.with_runtime_env(runtime);
    }
    // The URL is unused: the planner set above replaces Ballista's own.
    let state = state
        .build()
        .upgrade_for_ballista(scheduler_url(cluster)?)?;
    let mut ctx = SessionContext::new_with_state(state);
    ctx.register_function_rewrite(Arc::new(UtcDateRewrite))?;
    Ok(ctx)
}

/// Plans queries that read the archive's tables on the cluster, others here.
struct ClusterPlanner {
    cluster: BallistaQueryPlanner<LogicalPlanNode>,
    local: DefaultPhysicalPlanner,
}

impl std::fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPlanner")
            .field("cluster", &self.cluster)
            .finish()
    }
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if reads_archive(plan)? {
            self.cluster.create_physical_plan(plan, session).await
        } else {
            self.local.create_physical_plan(plan, session).await
        }
    }
}

/// Whether `plan` scans one of the archive's tables.
fn reads_archive(plan: &LogicalPlan) -> Result<bool> {
    let mut reads = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && source_as_provider(&scan.source).is_ok_and(|table| table.is::<PinnedTable>())
        {
            reads = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_a_host_and_port() {
        assert_eq!(
            scheduler_url("df://127.0.0.1:50050").unwrap(),
            "http://127.0.0.1:50050"
        );
        for bad in [
            "127.0.0.1:50050",
            "df://host",
            "df://:50050",
            "df://host:port",
        ] {
            let error = scheduler_url(bad).unwrap_err().to_string();
            assert!(
                error.contains(bad) && error.contains("df://HOST:PORT"),
                "{error}"
            );
        }
    }
}
