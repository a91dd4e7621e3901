//! `strata cluster scheduler|executor` and sessions of `strata sql --cluster`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use strata_cluster::{ExecutorOptions, ServedArchive, canonical_location, remote_context};
use strata_query::{QuerySession, Scope};
use strata_store::Archive;

use crate::cli::ClusterCommand;

/// Runs a scheduler or an executor for the archive at `location` until it is stopped.
pub async fn run(location: &str, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    let served = Arc::new(ServedArchive::open(location)?);
    let archive = served.archive().location.clone();
    match command {
        ClusterCommand::Scheduler { bind } => {
            eprintln!("strata cluster scheduler: listening on {bind} for the archive at {archive}");
            strata_cluster::run_scheduler(served, bind)
                .await
                .with_context(|| format!("the scheduler on {bind} stopped"))?;
        }
        ClusterCommand::Executor {
            scheduler,
            host,
            flight_port,
            grpc_port,
            concurrent_tasks,
            work_dir,
        } => {
            let (scheduler_host, port) = scheduler
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
                .with_context(|| format!("--scheduler {scheduler}: expected HOST:PORT"))?;
            let options = ExecutorOptions {
                scheduler: (scheduler_host, port),
                host: host.clone(),
                flight_port,
                grpc_port,
                concurrent_tasks,
                work_dir: work_dir.map(|dir| dir.display().to_string()),
            };
            eprintln!(
                "strata cluster executor: {host}:{flight_port} (flight), {host}:{grpc_port} (tasks), \
                 working for {scheduler} on the archive at {archive}"
            );
            strata_cluster::run_executor(served, Some(crate::tenant_keys()?), options)
                .await
                .context("the executor stopped")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A session over the archive's latest state whose queries run on the
/// cluster `df://HOST:PORT`; the cluster must serve the same archive.
pub async fn open_session(archive: &Archive, cluster: &str) -> anyhow::Result<QuerySession> {
    let archive = Archive {
        location: canonical_location(&archive.location)?,
        ..archive.clone()
    };
    let snapshot = Arc::new(archive.catalog.load().await?);
    let ctx = remote_context(cluster, None)?;
    let session =
        QuerySession::within(ctx, &archive, snapshot, None, Vec::new(), Scope::AllTenants).await?;
    Ok(session)
}
