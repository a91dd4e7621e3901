//! The ingest loop. This thread reads each input in blocks of whole lines;
//! worker threads parse them into per-partition batches, which this thread
//! takes back in input order and buffers per partition. When the buffers
//! pass their share of the memory budget, the partitions written to least
//! recently (then the largest) are sorted and encoded by the workers and
//! uploaded, but not yet committed. Every `chunk_bytes` of input, and at the
//! end, everything still buffered is written too and all the files are
//! committed in one catalog entry with the input's progress, so a rerun
//! after a crash resumes at the last commit (see docs/layout.md).
//!
//! This module holds the options, the report and the run's state; `reader`
//! reads each input and puts the parsed blocks back in input order, `buffers`
//! keeps each partition's events within the memory budget and hands them to
//! the encoders, `uploads` stores the encoded files, and `commit` commits
//! them with the input's progress.

mod buffers;
mod commit;
mod reader;
mod uploads;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Receiver;

use bytes::Bytes;
use chrono::Utc;
use strata_store::{Archive, CatalogError, FileMeta, PartitionKey, Pending, Writer, reconcile};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::block::ParsedBlock;
use crate::encode::ZSTD_LEVEL_DEFAULT;
use crate::input::Input;
use crate::pool::{Done, Pool};
use buffers::Buffered;
pub use uploads::upload;

/// Bytes of input per parse job (less when commits are closer together).
const BLOCK_BYTES: usize = 4 << 20;

/// Errors that stop an ingest (rejected lines do not: they are reported).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An input could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The input.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing a data file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The object.
        path: String,
        /// The cause.
        source: object_store::Error,
    },
    /// Encoding Parquet failed.
    #[error("cannot encode Parquet: {0}")]
    Encode(#[from] parquet::errors::ParquetError),
    /// The catalog refused or failed the commit.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Encrypted files could not be read or written.
    #[error("{0}")]
    Keys(String),
    /// The ingest task panicked or was cancelled.
    #[error("ingest task failed: {0}")]
    Task(String),
    /// A catalogued file to be rewritten is not the file the catalog
    /// records: rewriting it would give the change a fresh, valid hash.
    #[error(
        "MODIFIED {path}: {detail}; nothing was rewritten (run `strata verify --deep` and restore the file from a copy)"
    )]
    Modified {
        /// The file, relative to its store.
        path: String,
        /// How it differs from its catalog record.
        detail: String,
    },
}

/// Tuning of an ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Input bytes (decompressed) between commits: what a crash can cost.
    pub chunk_bytes: u64,
    /// Memory the ingest aims to stay within, whatever the input's size
    /// or order (see [`IngestOptions::buffer_limit`]).
    pub memory_bytes: u64,
    /// Recorded as the actor of each commit.
    pub actor: String,
    /// zstd level of the written files.
    pub zstd_level: i32,
    /// Threads encoding Parquet in parallel.
    pub threads: usize,
    /// The maximum length of a line in bytes (its `\n` excluded). A longer
    /// line is rejected, and only its first bytes are read into memory.
    pub max_line_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            chunk_bytes: 2 << 30,
            memory_bytes: 512 << 20,
            actor: "strata".to_string(),
            zstd_level: ZSTD_LEVEL_DEFAULT,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_line_bytes: 1 << 20,
        }
    }
}

impl IngestOptions {
    /// Parsed events buffered before the oldest partitions are written out:
    /// 3/8 of the budget. The rest covers the blocks being parsed, the
    /// partitions being sorted and encoded (about twice their buffered
    /// size each), uploads, and the program itself.
    pub fn buffer_limit(&self) -> usize {
        (self.memory_bytes / 8 * 3) as usize
    }

    /// A partition buffered past this size is written out at once (1/8 of
    /// the buffer limit), so that no single encode needs much memory.
    fn partition_limit(&self) -> usize {
        self.buffer_limit() / 8
    }

    /// Bytes of input per parse job: commits fall on block boundaries, so
    /// a block is at most a quarter of `chunk_bytes`, and the blocks in
    /// flight take a small share of the budget.
    fn block_bytes(&self) -> usize {
        let bound = (self.chunk_bytes / 4).min(self.memory_bytes / 32);
        BLOCK_BYTES.min(bound.max(64 << 10) as usize)
    }

    /// Blocks parsed at a time: enough to keep every worker busy.
    fn blocks_in_flight(&self) -> usize {
        self.threads.max(1) * 2
    }

    /// Encoded bytes waiting for their uploads before reading pauses.
    fn upload_limit(&self) -> usize {
        (self.memory_bytes / 16) as usize
    }
}

/// A line that broke the event contract.
#[derive(Debug, Clone)]
pub struct Reject {
    /// The input it came from.
    pub source: String,
    /// 1-based line number in the (decompressed) input.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The line itself (lossy UTF-8), or only its first 256 bytes if it
    /// is longer than [`IngestOptions::max_line_bytes`].
    pub text: String,
}

/// Receives what happens during an ingest, for progress bars and reject files.
pub trait Observer: Send {
    /// A line was rejected.
    fn rejected(&mut self, _reject: &Reject) {}
    /// Progress: raw input bytes read and events accepted so far, over all inputs.
    fn progress(&mut self, _raw_bytes: u64, _events: u64) {}
    /// A commit was made.
    fn committed(&mut self, _seq: u64, _files: usize) {}
}

impl Observer for () {}

/// What happened to one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStatus {
    /// Read from the start.
    Ingested,
    /// Resumed after the given line, committed by an earlier, interrupted run.
    Resumed(u64),
    /// Already fully committed by an earlier run; nothing was done.
    AlreadyComplete,
}

/// Per-input outcome.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// The input.
    pub path: String,
    /// Its content hash (or a random id for stdin).
    pub id: String,
    /// What happened.
    pub status: SourceStatus,
    /// Lines read in this run.
    pub lines: u64,
    /// Events accepted in this run.
    pub accepted: u64,
    /// Lines rejected in this run.
    pub rejected: u64,
}

/// Outcome of an ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// One per input.
    pub sources: Vec<SourceReport>,
    /// Decompressed input bytes read.
    pub input_bytes: u64,
    /// Data files written and committed.
    pub files: usize,
    /// Bytes of those files.
    pub bytes_written: u64,
    /// Partitions touched.
    pub partitions: BTreeSet<String>,
    /// Catalog commits made.
    pub commits: usize,
}

impl IngestReport {
    /// Events accepted over all inputs.
    pub fn accepted(&self) -> u64 {
        self.sources.iter().map(|s| s.accepted).sum()
    }

    /// Lines rejected over all inputs.
    pub fn rejected(&self) -> u64 {
        self.sources.iter().map(|s| s.rejected).sum()
    }
}

/// Ingests `inputs` into `archive`, one after the other, and gives the
/// observer back with the report.
pub async fn ingest<O: Observer + 'static>(
    archive: &Archive,
    inputs: Vec<Input>,
    options: IngestOptions,
    observer: O,
) -> Result<(IngestReport, O), IngestError> {
    reconcile(&archive.stores, &archive.catalog).await?;
    let snapshot = archive.catalog.load().await?;
    archive.catalog.check_writer(&snapshot)?;
    let writer = Writer::register(&archive.stores, "ingest", &options.actor).await?;
    let archive = archive.clone();
    let handle = Handle::current();
    let (report, observer, writer) = tokio::task::spawn_blocking(move || {
        let (pool, results) = Pool::start(
            options.threads,
            Utc::now().timestamp_micros(),
            options.zstd_level,
        );
        let mut run = Run {
            archive,
            options,
            observer,
            handle,
            writer,
            pool,
            results,
            report: IngestReport::default(),
            raw_bytes: Arc::default(),
            raw_done: 0,
            events: 0,
            chunk: Chunk::default(),
        };
        for input in &inputs {
            if let Err(e) = run.ingest_one(input) {
                // Remove what this run uploaded but did not commit, once
                // no upload can land after the cleanup.
                run.settle_uploads();
                run.handle
                    .clone()
                    .block_on(run.writer.abandon(&run.archive.catalog));
                return Err(e);
            }
        }
        Ok::<_, IngestError>((run.report, run.observer, run.writer))
    })
    .await
    .map_err(|e| IngestError::Task(e.to_string()))??;
    writer.finish().await?;
    Ok((report, observer))
}

struct Run<O> {
    archive: Archive,
    options: IngestOptions,
    observer: O,
    handle: Handle,
    /// Names the files uploaded but not yet committed, for cleanup after a crash.
    writer: Writer,
    pool: Pool,
    results: Receiver<Done>,
    report: IngestReport,
    /// Raw bytes read of the current input.
    raw_bytes: Arc<AtomicU64>,
    /// Raw bytes of the inputs already finished.
    raw_done: u64,
    events: u64,
    /// What is in flight since the last commit.
    chunk: Chunk,
}

/// Work in flight since the last commit.
#[derive(Default)]
struct Chunk {
    buffers: HashMap<PartitionKey, Buffered>,
    /// Memory of `buffers`.
    buffered: usize,
    /// Memory of the batches being encoded.
    encoding: usize,
    /// Blocks being parsed, and partitions being encoded.
    parsing: usize,
    encodes: usize,
    /// Parsed blocks that arrived ahead of an earlier one, by position.
    early: BTreeMap<u64, ParsedBlock>,
    next_block: u64,
    /// Input bytes taken into the buffers since the last commit.
    input_bytes: u64,
    /// Encoded files not yet uploaded.
    encoded: Vec<(Bytes, FileMeta)>,
    /// Uploads running, with their sizes.
    uploads: VecDeque<(usize, JoinHandle<Result<FileMeta, IngestError>>)>,
    upload_bytes: usize,
    /// Files uploaded, to commit.
    uploaded: Vec<FileMeta>,
    /// Every file uploaded or being uploaded since the last commit.
    pending: Vec<Pending>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::{Missing, open_archive};

    /// A new archive in `dir/archive`.
    pub(super) fn new_archive(dir: &std::path::Path) -> Archive {
        open_archive(&dir.join("archive").to_string_lossy(), Missing::Create).unwrap()
    }

    /// `events` lines over four tenants and the twelve months of 2025, in
    /// a scrambled time order.
    pub(super) fn shuffled_input(dir: &std::path::Path, events: u64) -> std::path::PathBuf {
        let year = 365 * 86_400_000_u64;
        let lines: String = (0..events)
            .map(|i| {
                let ts = 1_735_689_600_000 + (i * 7_919 % events) * (year / events);
                format!(
                    r#"{{"ts":{ts},"tenant":"t{}","family":"access","action":"login","message":"event {i}"}}"#,
                    i % 4
                ) + "\n"
            })
            .collect();
        let path = dir.join("events.ndjson");
        std::fs::write(&path, lines).unwrap();
        path
    }
}
