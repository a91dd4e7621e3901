//! `strata cluster scheduler` and `strata cluster executor`: Ballista's
//! processes with Strata's codecs.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::error::BallistaError;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use strata_keys::envelope::KeyProvider;

use crate::codec::{StrataLogicalCodec, StrataPhysicalCodec};
use crate::served::ServedArchive;

/// Runs a scheduler for `served` listening on `bind` until it is stopped.
pub async fn run_scheduler(
    served: Arc<ServedArchive>,
    bind: SocketAddr,
) -> Result<(), BallistaError> {
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: bind.ip().to_string(),
        override_logical_codec: Some(Arc::new(StrataLogicalCodec::serving(served.clone()))),
        override_physical_codec: Some(Arc::new(StrataPhysicalCodec::new(served, None))),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, bind, Arc::new(config)).await
}

/// Where an executor listens and whom it works for.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host and gRPC port.
    pub scheduler: (String, u16),
    /// The address the executor binds and advertises.
    pub host: String,
    /// Its Arrow Flight port (results and shuffles are fetched there).
    pub flight_port: u16,
    /// Its gRPC port (the scheduler sends it tasks there).
    pub grpc_port: u16,
    /// Tasks it runs at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Where it keeps shuffle files (default: a new temporary folder).
    pub work_dir: Option<String>,
}

/// Runs an executor for `served` until it is stopped; it decrypts the
/// encrypted files it reads with `keys`.
pub async fn run_executor(
    served: Arc<ServedArchive>,
    keys: Option<Arc<dyn KeyProvider>>,
    options: ExecutorOptions,
) -> Result<(), BallistaError> {
    let config = ExecutorProcessConfig {
        scheduler_host: options.scheduler.0,
        scheduler_port: options.scheduler.1,
        bind_host: options.host.clone(),
        external_host: Some(options.host),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        vcores: options.concurrent_tasks,
        work_dir: options.work_dir,
        override_logical_codec: Some(Arc::new(StrataLogicalCodec::serving(served.clone()))),
        override_physical_codec: Some(Arc::new(StrataPhysicalCodec::new(served, keys))),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config)).await
}
