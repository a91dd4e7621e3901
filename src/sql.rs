//! `strata sql` and `strata status`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use strata_query::{QuerySession, QueryStats};
use strata_store::Archive;

use crate::cli::{Format, SqlArgs};
use crate::ingest::human_bytes;

/// Opens a query session, refusing an archive with nothing in it.
pub async fn open(archive: &Archive) -> anyhow::Result<QuerySession> {
    let session = QuerySession::open(archive).await?;
    anyhow::ensure!(
        session.snapshot.seq > 0,
        "no archive at {}: nothing has been committed there yet (run `strata ingest` or `strata demo`)",
        archive.location
    );
    Ok(session)
}

/// Runs `strata sql`.
pub async fn run(archive: &Archive, args: SqlArgs) -> anyhow::Result<ExitCode> {
    let session = open(archive).await?;
    let Some(query) = args.query else {
        crate::shell::run(&session).await?;
        return Ok(ExitCode::SUCCESS);
    };
    anyhow::ensure!(
        args.format != Format::Parquet || args.output.is_some(),
        "--format parquet needs --output FILE"
    );
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    execute(&session, &query, args.format, out, args.stats).await?;
    Ok(ExitCode::SUCCESS)
}

/// Plans and runs one statement, writing its result and optionally its stats.
pub async fn execute(
    session: &QuerySession,
    query: &str,
    format: Format,
    out: Box<dyn Write + Send>,
    stats: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let plan = session.plan(query).await?;
    let stream = session.execute(plan.clone())?;
    let rows = crate::output::write(format, stream, out).await?;
    if stats {
        print_stats(&session.stats(&plan), rows, started.elapsed().as_secs_f64());
    }
    Ok(())
}

fn print_stats(stats: &QueryStats, rows: usize, seconds: f64) {
    eprintln!(
        "{rows} rows in {seconds:.3} s; files: {} scanned of {} in the catalog ({} pruned); row groups: {} read, {} pruned by statistics; {} read from storage",
        stats.files_scanned,
        stats.files_total,
        stats.files_total.saturating_sub(stats.files_scanned),
        stats.row_groups_read,
        stats.row_groups_pruned,
        human_bytes(stats.bytes_scanned as u64),
    );
}

/// Runs `strata status`.
pub async fn status(archive: &Archive) -> anyhow::Result<ExitCode> {
    let snapshot = archive.catalog.load().await?;
    let partitions: std::collections::BTreeSet<_> = snapshot
        .files
        .values()
        .map(|f| (&f.tenant, &f.family, &f.month))
        .collect();
    let tenants: std::collections::BTreeSet<_> =
        snapshot.files.values().map(|f| &f.tenant).collect();
    let range = snapshot
        .files
        .values()
        .map(|f| (f.min_ts, f.max_ts))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    println!("archive:    {}", archive.location);
    println!("commits:    {}", snapshot.seq);
    println!("tenants:    {}", tenants.len());
    println!("partitions: {}", partitions.len());
    println!("files:      {}", snapshot.files.len());
    println!("rows:       {}", snapshot.total_rows());
    println!("bytes:      {}", human_bytes(snapshot.total_bytes()));
    println!(
        "sources:    {} inputs ingested",
        snapshot.sources.values().filter(|s| s.complete).count()
    );
    if let Some((min, max)) = range {
        let fmt = |t| {
            chrono::DateTime::from_timestamp_micros(t).map_or_else(String::new, |t| t.to_rfc3339())
        };
        println!("events:     {} .. {}", fmt(min), fmt(max));
    }
    Ok(ExitCode::SUCCESS)
}
