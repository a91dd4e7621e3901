//! `strata publish`: the Delta Lake table of the archive, caught up.

use std::process::ExitCode;

use strata_store::Archive;

/// Writes the Delta versions (and checkpoints) the catalog has and
/// `_delta_log/` lacks, in order, and says where the table stands.
pub async fn run(archive: &Archive) -> anyhow::Result<ExitCode> {
    let snapshot = archive.catalog.load().await?;
    if snapshot.seq == 0 {
        eprintln!("the archive is empty: there is nothing to publish yet");
        return Ok(ExitCode::SUCCESS);
    }
    let published = archive.catalog.publish(&snapshot).await?;
    let table = format!(
        "the Delta table at {} is at version {}",
        archive.location, snapshot.seq
    );
    match published.versions {
        0 => eprintln!("already published: {table}"),
        n => eprintln!(
            "published {n} Delta version{} and {} checkpoint{}: {table}",
            if n == 1 { "" } else { "s" },
            published.checkpoints,
            if published.checkpoints == 1 { "" } else { "s" },
        ),
    }
    Ok(ExitCode::SUCCESS)
}
