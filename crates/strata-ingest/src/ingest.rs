//! The ingest loop: read lines, validate, route to partitions, and every
//! `chunk_bytes` of input write one sorted Parquet file per touched partition
//! and commit them with the input's progress in a single catalog entry.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_schema::{EventBatchBuilder, parse_line};
use strata_store::{
    Archive, CatalogError, Draft, FileMeta, PartitionKey, Pending, Snapshot, SourceProgress,
    Writer, reconcile,
};
use tokio::runtime::Handle;

use crate::encode::{ZSTD_LEVEL_DEFAULT, encode_sorted};
use crate::input::{Input, hash_file, open_lines};

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
}

/// Tuning of an ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Input bytes (decompressed) buffered before writing files and committing.
    pub chunk_bytes: u64,
    /// Recorded as the actor of each commit.
    pub actor: String,
    /// zstd level of the written files.
    pub zstd_level: i32,
    /// Threads encoding Parquet in parallel.
    pub threads: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            chunk_bytes: 256 << 20,
            actor: "strata".to_string(),
            zstd_level: ZSTD_LEVEL_DEFAULT,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
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
    /// The line itself (lossy UTF-8).
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
    reconcile(&archive.store, &archive.catalog).await?;
    let writer = Writer::register(archive.store.clone(), "ingest", &options.actor).await?;
    let archive = archive.clone();
    let handle = Handle::current();
    let (report, observer, writer) = tokio::task::spawn_blocking(move || {
        let mut run = Run {
            archive,
            options,
            observer,
            handle,
            writer,
            report: IngestReport::default(),
            raw_bytes: Arc::default(),
            raw_done: 0,
            events: 0,
        };
        for input in &inputs {
            run.ingest_one(input)?;
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
    report: IngestReport,
    /// Raw bytes read of the current input.
    raw_bytes: Arc<AtomicU64>,
    /// Raw bytes of the inputs already finished.
    raw_done: u64,
    events: u64,
}

/// Stores a new data file at its catalog path.
pub(crate) async fn upload(
    store: &dyn object_store::ObjectStore,
    bytes: Bytes,
    meta: FileMeta,
) -> Result<FileMeta, IngestError> {
    match store
        .put(&Path::from(meta.path.as_str()), bytes.into())
        .await
    {
        Ok(_) => Ok(meta),
        Err(source) => Err(IngestError::Write {
            path: meta.path,
            source,
        }),
    }
}

/// The progress to record after `line_no`: this run's counts on top of the
/// totals committed before it started.
fn advanced(
    before: &SourceProgress,
    run: &SourceReport,
    line_no: u64,
    complete: bool,
) -> SourceProgress {
    SourceProgress {
        lines: line_no,
        accepted: before.accepted + run.accepted,
        rejected: before.rejected + run.rejected,
        complete,
        ..before.clone()
    }
}

/// Events buffered per partition since the last commit.
type Buffers = HashMap<PartitionKey, EventBatchBuilder>;

impl<O: Observer> Run<O> {
    fn ingest_one(&mut self, input: &Input) -> Result<(), IngestError> {
        let path = input.display();
        let read_err = |source| IngestError::Read {
            path: path.clone(),
            source,
        };
        let (id, hashed_len) = match input {
            Input::File(p) => hash_file(p).map_err(read_err)?,
            Input::Stdin => (format!("stdin-{:016x}", rand::random::<u64>()), u64::MAX),
        };
        let mut snapshot = self.handle.block_on(self.archive.catalog.load())?;
        let mut progress = snapshot
            .sources
            .get(&id)
            .cloned()
            .unwrap_or(SourceProgress {
                id: id.clone(),
                path: path.clone(),
                lines: 0,
                rejected: 0,
                accepted: 0,
                complete: false,
            });
        let mut source = SourceReport {
            path: path.clone(),
            id: id.clone(),
            status: match progress.lines {
                _ if progress.complete => SourceStatus::AlreadyComplete,
                0 => SourceStatus::Ingested,
                n => SourceStatus::Resumed(n),
            },
            lines: 0,
            accepted: 0,
            rejected: 0,
        };
        if progress.complete {
            self.report.sources.push(source);
            return Ok(());
        }
        progress.path = path.clone();
        let totals_before = progress.clone();

        self.raw_bytes.store(0, Ordering::Relaxed);
        let mut reader = open_lines(input, hashed_len, self.raw_bytes.clone()).map_err(read_err)?;
        let mut line = Vec::with_capacity(4096);
        let mut line_no = 0u64;
        let mut buffered = 0u64;
        let mut buffers = Buffers::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(read_err)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if line_no <= progress.lines {
                continue; // committed by an earlier run
            }
            self.report.input_bytes += n as u64;
            buffered += n as u64;
            source.lines += 1;
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match parse_line(text) {
                Ok(event) => {
                    let key = PartitionKey::of(&event.tenant, event.family, event.ts);
                    buffers.entry(key).or_default().append(&event);
                    source.accepted += 1;
                    self.events += 1;
                }
                Err(reason) => {
                    source.rejected += 1;
                    self.observer.rejected(&Reject {
                        source: path.clone(),
                        line: line_no,
                        reason,
                        text: String::from_utf8_lossy(text).into_owned(),
                    });
                }
            }
            if line_no.is_multiple_of(16_384) {
                self.observer.progress(
                    self.raw_done + self.raw_bytes.load(Ordering::Relaxed),
                    self.events,
                );
            }
            if buffered >= self.options.chunk_bytes {
                let next = advanced(&totals_before, &source, line_no, false);
                self.commit_chunk(&mut snapshot, &mut buffers, &mut progress, next)?;
                buffered = 0;
            }
        }
        let next = advanced(&totals_before, &source, line_no, true);
        self.commit_chunk(&mut snapshot, &mut buffers, &mut progress, next)?;
        self.raw_done += self.raw_bytes.load(Ordering::Relaxed);
        self.observer.progress(self.raw_done, self.events);
        self.report.sources.push(source);
        Ok(())
    }

    /// Writes the buffered partitions and commits them with the input's progress.
    fn commit_chunk(
        &mut self,
        snapshot: &mut Snapshot,
        buffers: &mut Buffers,
        progress: &mut SourceProgress,
        next: SourceProgress,
    ) -> Result<(), IngestError> {
        let previous_lines = progress.lines;
        let files = self.write_files(std::mem::take(buffers))?;
        let draft = Draft {
            operation: "ingest".into(),
            actor: self.options.actor.clone(),
            add: files.clone(),
            sources: vec![(next.clone(), previous_lines)],
            ..Default::default()
        };
        let seq = self
            .handle
            .block_on(self.archive.catalog.commit(snapshot, draft))?;
        *progress = next;
        self.report.commits += 1;
        self.report.files += files.len();
        self.report.bytes_written += files.iter().map(|f| f.size).sum::<u64>();
        for f in &files {
            self.report.partitions.insert(format!(
                "tenant={}/family={}/month={}",
                f.tenant, f.family, f.month
            ));
        }
        self.observer.committed(seq, files.len());
        Ok(())
    }

    /// Encodes each partition's events as one sorted Parquet file (in
    /// parallel) and uploads them (concurrently). Returns their catalog records.
    fn write_files(&mut self, buffers: Buffers) -> Result<Vec<FileMeta>, IngestError> {
        let ingested_at = Utc::now().timestamp_micros();
        let mut work: Vec<(PartitionKey, EventBatchBuilder)> = buffers.into_iter().collect();
        // Largest first, so the threads finish together.
        work.sort_by_key(|(_, b)| std::cmp::Reverse(b.len()));
        let threads = self.options.threads.clamp(1, work.len().max(1));
        let level = self.options.zstd_level;
        let queue = std::sync::Mutex::new(work);
        let encoded: Vec<Result<(Bytes, FileMeta), IngestError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let next = queue.lock().expect("queue lock").pop();
                            let Some((key, mut builder)) = next else {
                                break out;
                            };
                            let file = builder
                                .finish(ingested_at)
                                .map_err(parquet::errors::ParquetError::from)
                                .and_then(|batch| encode_sorted(&key, &[batch], level, None))
                                .map_err(IngestError::from);
                            out.push(file);
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("encoder thread"))
                .collect()
        });
        let encoded: Vec<(Bytes, FileMeta)> = encoded.into_iter().collect::<Result<_, _>>()?;
        let uploads = encoded.iter().map(|(_, meta)| Pending::of(meta)).collect();
        self.handle.block_on(self.writer.set_pending(uploads))?;
        let store = self.archive.store.clone();
        self.handle.block_on(async {
            futures::stream::iter(encoded)
                .map(|(bytes, meta)| upload(store.as_ref(), bytes, meta))
                .buffer_unordered(8)
                .try_collect()
                .await
        })
    }
}
