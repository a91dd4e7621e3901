//! `strata sql` and `strata status`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use strata_integrity::Checkpoint;
use strata_keys::Keyring;
use strata_query::query_log::{Ending, Start};
use strata_query::{QuerySession, QueryStats};
use strata_store::Archive;
use strata_verify::export::Manifest;

use crate::cli::{Format, SqlArgs};
use crate::ingest::human_bytes;
use crate::sql_record::SqlRecorder;

/// Opens a query session, refusing an archive with nothing in it.
pub async fn open(archive: &Archive) -> anyhow::Result<QuerySession> {
    let session = QuerySession::open(archive, Some(crate::tenant_keys()?)).await?;
    refuse_empty(archive, session)
}

/// `session`, unless its archive has nothing in it.
fn refuse_empty(archive: &Archive, session: QuerySession) -> anyhow::Result<QuerySession> {
    anyhow::ensure!(
        session.snapshot.seq > 0,
        "no archive at {}: nothing has been committed there yet (run `strata ingest` or `strata demo`)",
        archive.location
    );
    Ok(session)
}

/// Runs `strata sql`; its statements are recorded in the archive (see
/// [`SqlRecorder`]), commits countersigned by `witness` if there is one.
pub async fn run(
    archive: &Archive,
    keyring: &Path,
    witness: Option<&str>,
    args: SqlArgs,
) -> anyhow::Result<ExitCode> {
    let session = match &args.cluster {
        Some(cluster) => refuse_empty(
            archive,
            crate::cluster::open_session(archive, cluster).await?,
        )?,
        None => open(archive).await?,
    };
    let recorder = SqlRecorder::new(archive, &session, keyring, witness).await?;
    let Some(query) = args.query else {
        crate::shell::run(&session, &recorder).await?;
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(dir) = &args.export {
        export(archive, &session, &recorder, keyring, &query, dir).await?;
        return Ok(ExitCode::SUCCESS);
    }
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
    let outputs = vec![(args.format, out)];
    execute(&session, &recorder, &query, outputs, args.stats).await?;
    Ok(ExitCode::SUCCESS)
}

/// Plans and runs one statement, writing its result in each of `outputs`
/// and optionally its stats, its records stored before and after (see
/// [`SqlRecorder`]); returns the rows written.
pub async fn execute(
    session: &QuerySession,
    recorder: &SqlRecorder,
    query: &str,
    outputs: Vec<(Format, Box<dyn Write + Send>)>,
    stats: bool,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut statement = recorder.statement(query);
    let plan = match session.plan(query).await {
        Ok(plan) => plan,
        Err(e) => {
            let failed = Start::Failed(e.to_string());
            recorder.start(&mut statement, session, &failed).await?;
            return Err(e.into());
        }
    };
    recorder
        .start(&mut statement, session, &Start::Answering)
        .await?;
    let written = match session.execute(plan.clone()) {
        Ok(stream) => crate::output::write(stream, outputs).await,
        Err(e) => Err(e.into()),
    };
    let query_stats = session.stats(&plan);
    let (ending, rows) = match &written {
        Ok(rows) => (Ending::Answered, *rows),
        Err(e) => (Ending::CutShort(e.to_string()), 0),
    };
    recorder
        .end(&statement, ending, rows, query_stats.bytes_scanned)
        .await?;
    let rows = written?;
    if stats {
        print_stats(&query_stats, rows, started.elapsed().as_secs_f64());
    }
    Ok(rows)
}

/// Writes a signed export of `query` into the new folder `dir`. The files
/// are written into a temporary sibling folder that is renamed into place
/// last, so `dir` either holds a complete signed export or does not exist.
async fn export(
    archive: &Archive,
    session: &QuerySession,
    recorder: &SqlRecorder,
    keyring: &Path,
    query: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !dir.exists(),
        "{} already exists: an export goes into a new folder",
        dir.display()
    );
    let key = Keyring::open(keyring)?.signing_key()?;
    let seq = session.snapshot.seq;
    let checkpoint_path = strata_store::checkpoint_path(seq);
    let Some(note) = strata_store::get_if_exists(&*archive.store, &checkpoint_path).await? else {
        anyhow::bail!(
            "commit {seq} of {} has no signed checkpoint ({checkpoint_path}), so an export \
             could not say which archive state it shows; run `strata verify`",
            archive.location
        );
    };
    let checkpoint = String::from_utf8(note.to_vec())?;
    Checkpoint::open(&checkpoint, &key.verifier()).with_context(|| {
        format!("the archive's checkpoint {checkpoint_path} is not signed by the keyring's key")
    })?;

    let name = dir.file_name().context("--export needs a folder name")?;
    let partial = dir.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let written = async {
        let create = |file: &str| -> anyhow::Result<Box<dyn Write + Send>> {
            let path = partial.join(file);
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Ok(Box::new(std::io::BufWriter::new(file)))
        };
        let outputs = vec![
            (Format::Parquet, create(PARQUET_RESULT)?),
            (Format::Csv, create(CSV_RESULT)?),
        ];
        let rows = execute(session, recorder, query, outputs, false).await?;
        let manifest = Manifest::new(
            &partial,
            &[PARQUET_RESULT, CSV_RESULT],
            query,
            &crate::actor(),
            rows as u64,
            checkpoint,
        )?;
        manifest.write_signed(&partial, &key)?;
        std::fs::rename(&partial, dir)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), dir.display()))?;
        eprintln!(
            "exported {rows} rows to {} (result.parquet, result.csv, manifest.note signed by {})",
            dir.display(),
            key.verifier().name()
        );
        anyhow::Ok(())
    }
    .await;
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    written
}

const PARQUET_RESULT: &str = "result.parquet";
const CSV_RESULT: &str = "result.csv";

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
        snapshot.completed_sources()
    );
    if let Some((min, max)) = range {
        let fmt = |t| {
            chrono::DateTime::from_timestamp_micros(t).map_or_else(String::new, |t| t.to_rfc3339())
        };
        println!("events:     {} .. {}", fmt(min), fmt(max));
    }
    Ok(ExitCode::SUCCESS)
}
