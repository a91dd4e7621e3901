//! The ingest loop. This thread reads each input in blocks of whole lines;
//! worker threads parse them into per-partition batches, which this thread
//! takes back in input order and buffers per partition. When the buffers
//! pass their share of the memory budget, the partitions written to least
//! recently (then the largest) are sorted and encoded by the workers and
//! uploaded, but not yet committed. Every `chunk_bytes` of input, and at the
//! end, everything still buffered is written too and all the files are
//! committed in one catalog entry with the input's progress, so a rerun
//! after a crash resumes at the last commit (see docs/layout.md).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_store::{
    Archive, CatalogError, Draft, FileMeta, PartitionKey, Pending, Snapshot, SourceProgress,
    Writer, reconcile,
};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::block::{BlockReader, ParsedBlock};
use crate::encode::ZSTD_LEVEL_DEFAULT;
use crate::input::{ContentId, Input, hash_file, is_sha256_id, open_lines};
use crate::pool::{Done, Job, Pool};

/// Bytes of input per parse job (less when commits are closer together).
const BLOCK_BYTES: usize = 4 << 20;
/// Encoded files uploaded together (after one update of the writer record).
const UPLOAD_BATCH: usize = 32;
/// A partition's buffered batches are merged into one when they reach this
/// many and their array headers take at least `1 / HEADER_SHARE_TO_MERGE`
/// of their memory.
const COALESCE_BATCHES: usize = 16;
/// See `COALESCE_BATCHES`.
const HEADER_SHARE_TO_MERGE: usize = 8;
/// Memory of one array's header and buffer handles, which
/// `get_array_memory_size` leaves out.
const ARRAY_HEADER_BYTES: usize = 200;

/// Memory a buffered batch holds, headers included.
fn batch_memory(batch: &RecordBatch) -> usize {
    batch.get_array_memory_size() + batch.num_columns() * ARRAY_HEADER_BYTES
}

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
                // Remove what this run uploaded but did not commit.
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

/// One partition's parsed events since it was last written out.
struct Buffered {
    batches: Vec<RecordBatch>,
    bytes: usize,
    /// The last block that added to it.
    last_block: u64,
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

impl<O: Observer> Run<O> {
    fn ingest_one(&mut self, input: &Input) -> Result<(), IngestError> {
        let path = input.display();
        let read_err = |source| IngestError::Read {
            path: path.clone(),
            source,
        };
        let mut snapshot = self.handle.block_on(self.archive.catalog.load())?;
        let content = match input {
            Input::File(p) => {
                let legacy = snapshot.sources.keys().any(|id| is_sha256_id(id));
                hash_file(p, legacy).map_err(read_err)?
            }
            Input::Stdin => ContentId {
                id: format!("stdin-{:016x}", rand::random::<u64>()),
                sha256: None,
                len: u64::MAX,
            },
        };
        let known = |id: &String| snapshot.sources.get(id).cloned();
        let mut progress = known(&content.id)
            .or_else(|| content.sha256.as_ref().and_then(known))
            .unwrap_or(SourceProgress {
                id: content.id.clone(),
                path: path.clone(),
                lines: 0,
                rejected: 0,
                accepted: 0,
                complete: false,
            });
        let mut source = SourceReport {
            path: path.clone(),
            id: progress.id.clone(),
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
        let mut reader =
            open_lines(input, content.len, self.raw_bytes.clone()).map_err(read_err)?;
        for _ in 0..progress.lines {
            // Committed by an earlier run; skipped without holding a line,
            // which may be one rejected for its length.
            if reader.skip_until(b'\n').map_err(read_err)? == 0 {
                break;
            }
        }
        let mut line_no = progress.lines;
        let mut blocks = BlockReader::new(
            reader,
            self.options.block_bytes(),
            self.options.max_line_bytes,
        );
        let mut end_of_input = false;
        loop {
            while !end_of_input && self.may_read() {
                match blocks.next_block().map_err(read_err)? {
                    Some(block) => {
                        self.pool.submit(Job::Parse(block));
                        self.chunk.parsing += 1;
                    }
                    None => end_of_input = true,
                }
            }
            if end_of_input && self.chunk.parsing == 0 {
                break;
            }
            self.receive()?;
            while let Some(block) = self.chunk.early.remove(&self.chunk.next_block) {
                self.chunk.next_block += 1;
                let first_line = line_no + 1;
                line_no += block.lines;
                blocks.recycle(self.apply(block, first_line, &mut source));
                if self.chunk.input_bytes >= self.options.chunk_bytes {
                    let next = advanced(&totals_before, &source, line_no, false);
                    self.commit_chunk(&mut snapshot, &mut progress, next)?;
                }
            }
        }
        let next = advanced(&totals_before, &source, line_no, true);
        self.commit_chunk(&mut snapshot, &mut progress, next)?;
        self.chunk.next_block = 0;
        self.raw_done += self.raw_bytes.load(Ordering::Relaxed);
        self.observer.progress(self.raw_done, self.events);
        self.report.sources.push(source);
        Ok(())
    }

    /// Whether another block may be read: not too many are being parsed,
    /// and buffers, encodes and uploads leave room in the memory budget
    /// (or nothing is in flight that would free any).
    fn may_read(&self) -> bool {
        let chunk = &self.chunk;
        let idle = chunk.parsing == 0 && chunk.encodes == 0;
        chunk.parsing < self.options.blocks_in_flight()
            && (idle
                || (chunk.buffered + chunk.encoding < self.options.buffer_limit()
                    && chunk.upload_bytes < self.options.upload_limit()))
    }

    /// Waits for one finished job and takes its result.
    fn receive(&mut self) -> Result<(), IngestError> {
        let done = self
            .results
            .recv()
            .map_err(|_| IngestError::Task("the ingest workers stopped".into()))?;
        match done {
            Done::Parsed(block) => {
                self.chunk.parsing -= 1;
                let block = block?;
                self.chunk.early.insert(block.seq, block);
            }
            Done::Encoded(file, bytes) => {
                self.chunk.encodes -= 1;
                self.chunk.encoding -= bytes;
                self.chunk.encoded.push(file?);
                if self.chunk.encoded.len() >= UPLOAD_BATCH {
                    self.start_uploads()?;
                }
            }
        }
        Ok(())
    }

    /// Takes a parsed block (the next in input order, starting at line
    /// `first_line`) into the buffers; returns the block's emptied line buffer.
    fn apply(&mut self, block: ParsedBlock, first_line: u64, source: &mut SourceReport) -> Vec<u8> {
        self.report.input_bytes += block.bytes;
        self.chunk.input_bytes += block.bytes;
        source.lines += block.lines;
        source.accepted += block.accepted;
        source.rejected += block.rejected.len() as u64;
        self.events += block.accepted;
        for bad in block.rejected {
            self.observer.rejected(&Reject {
                source: source.path.clone(),
                line: first_line + bad.line,
                reason: bad.reason,
                text: bad.text,
            });
        }
        for (key, batch) in block.partitions {
            let buffered = self.chunk.buffers.entry(key.clone()).or_insert(Buffered {
                batches: Vec::new(),
                bytes: 0,
                last_block: block.seq,
            });
            let before = buffered.bytes;
            let columns = batch.num_columns();
            buffered.bytes += batch_memory(&batch);
            buffered.batches.push(batch);
            buffered.last_block = block.seq;
            // Input out of time order gives every partition a few rows per
            // block; such small batches cost more in array headers than in
            // data, so they are merged as they pile up. Input in time order
            // gives large batches, left alone: encoding merges them anyway.
            let headers = buffered.batches.len() * columns * ARRAY_HEADER_BYTES;
            if buffered.batches.len() >= COALESCE_BATCHES
                && headers * HEADER_SHARE_TO_MERGE >= buffered.bytes
                && let Ok(merged) =
                    arrow::compute::concat_batches(&buffered.batches[0].schema(), &buffered.batches)
            {
                buffered.bytes = batch_memory(&merged);
                buffered.batches = vec![merged];
            }
            self.chunk.buffered = self.chunk.buffered + buffered.bytes - before;
            if buffered.bytes >= self.options.partition_limit() {
                self.write_out(&key);
            }
        }
        if self.chunk.buffered > self.options.buffer_limit() {
            // Least recently written first: with input in time order those
            // are the months that are over. Then the largest.
            let mut order: Vec<(u64, std::cmp::Reverse<usize>, PartitionKey)> = (self.chunk)
                .buffers
                .iter()
                .map(|(key, b)| (b.last_block, std::cmp::Reverse(b.bytes), key.clone()))
                .collect();
            order.sort_unstable();
            for (_, _, key) in order {
                if self.chunk.buffered <= self.options.buffer_limit() / 2 {
                    break;
                }
                self.write_out(&key);
            }
        }
        self.observer.progress(
            self.raw_done + self.raw_bytes.load(Ordering::Relaxed),
            self.events,
        );
        block.buffer
    }

    /// Hands a partition's buffered events to the workers to encode.
    fn write_out(&mut self, key: &PartitionKey) {
        if let Some(buffered) = self.chunk.buffers.remove(key) {
            self.chunk.buffered -= buffered.bytes;
            self.chunk.encoding += buffered.bytes;
            self.chunk.encodes += 1;
            self.pool.submit(Job::Encode {
                key: key.clone(),
                batches: buffered.batches,
                bytes: buffered.bytes,
            });
        }
    }

    /// Names the encoded files in the writer record, then starts uploading
    /// them; waits for earlier uploads while too many bytes are waiting.
    fn start_uploads(&mut self) -> Result<(), IngestError> {
        if !self.chunk.encoded.is_empty() {
            let chunk = &mut self.chunk;
            chunk
                .pending
                .extend(chunk.encoded.iter().map(|(_, meta)| Pending::of(meta)));
            self.handle
                .block_on(self.writer.set_pending(chunk.pending.clone()))?;
            for (bytes, meta) in chunk.encoded.drain(..) {
                let store = self.archive.store.clone();
                let size = bytes.len();
                let upload = self
                    .handle
                    .spawn(async move { upload(store.as_ref(), bytes, meta).await });
                chunk.uploads.push_back((size, upload));
                chunk.upload_bytes += size;
            }
        }
        while let Some((_, upload)) = self.chunk.uploads.front() {
            if !upload.is_finished() && self.chunk.upload_bytes <= self.options.upload_limit() {
                break;
            }
            self.finish_upload()?;
        }
        Ok(())
    }

    /// Waits for the oldest upload.
    fn finish_upload(&mut self) -> Result<(), IngestError> {
        if let Some((size, upload)) = self.chunk.uploads.pop_front() {
            self.chunk.upload_bytes -= size;
            let meta = self
                .handle
                .block_on(upload)
                .map_err(|e| IngestError::Task(e.to_string()))??;
            self.chunk.uploaded.push(meta);
        }
        Ok(())
    }

    /// Writes out every buffered partition, waits for the encodes and the
    /// uploads, and commits the files with the input's progress.
    fn commit_chunk(
        &mut self,
        snapshot: &mut Snapshot,
        progress: &mut SourceProgress,
        next: SourceProgress,
    ) -> Result<(), IngestError> {
        let keys: Vec<PartitionKey> = self.chunk.buffers.keys().cloned().collect();
        for key in &keys {
            self.write_out(key);
        }
        while self.chunk.encodes > 0 {
            self.receive()?; // parsed blocks wait in `early` meanwhile
        }
        self.start_uploads()?;
        while !self.chunk.uploads.is_empty() {
            self.finish_upload()?;
        }
        let files = std::mem::take(&mut self.chunk.uploaded);
        let draft = Draft {
            operation: "ingest".into(),
            actor: self.options.actor.clone(),
            add: files.clone(),
            sources: vec![(next.clone(), progress.lines)],
            ..Default::default()
        };
        let seq = self
            .handle
            .block_on(self.archive.catalog.commit(snapshot, draft))?;
        *progress = next;
        self.chunk.pending.clear();
        self.chunk.input_bytes = 0;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::{Missing, open_archive};

    /// A new archive in `dir/archive`.
    fn new_archive(dir: &std::path::Path) -> Archive {
        open_archive(&dir.join("archive").to_string_lossy(), Missing::Create).unwrap()
    }

    /// `events` lines over four tenants and the twelve months of 2025, in
    /// a scrambled time order.
    fn shuffled_input(dir: &std::path::Path, events: u64) -> std::path::PathBuf {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_budget_writes_partitions_early_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let input = shuffled_input(dir.path(), 20_000);
        let archive = new_archive(dir.path());
        let options = IngestOptions {
            memory_bytes: 1 << 20,
            chunk_bytes: 1 << 30,
            threads: 2,
            ..Default::default()
        };
        let (report, ()) = ingest(&archive, vec![Input::File(input)], options, ())
            .await
            .unwrap();
        assert_eq!(report.accepted(), 20_000);
        assert_eq!(report.commits, 1, "one commit for the whole input");
        let snapshot = archive.catalog.load().await.unwrap();
        let partitions: BTreeSet<_> = snapshot
            .files
            .values()
            .map(|f| (f.tenant.clone(), f.month.clone()))
            .collect();
        assert_eq!(partitions.len(), 48);
        assert!(
            snapshot.files.len() > 2 * partitions.len(),
            "the budget forced partitions out early: {} files for {} partitions",
            snapshot.files.len(),
            partitions.len()
        );
        assert_eq!(snapshot.files.values().map(|f| f.rows).sum::<u64>(), 20_000);
        for file in snapshot.files.values() {
            let bytes = archive
                .store
                .get(&Path::from(file.path.as_str()))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let batches = crate::read_file(bytes, None).unwrap();
            let ts: Vec<i64> = batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect();
            assert!(ts.is_sorted(), "{} is sorted by ts", file.path);
            assert_eq!((ts[0], ts[ts.len() - 1]), (file.min_ts, file.max_ts));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_recorded_under_its_sha256_by_an_older_strata_resumes_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = shuffled_input(dir.path(), 1_000);
        let archive = new_archive(dir.path());
        // What a strata from before BLAKE3 identities left after committing
        // the first 400 lines (with no files, which this test does not need).
        let legacy_id = strata_store::sha256_hex(&std::fs::read(&input).unwrap());
        let mut snapshot = archive.catalog.load().await.unwrap();
        let earlier = SourceProgress {
            id: legacy_id.clone(),
            path: input.display().to_string(),
            lines: 400,
            rejected: 0,
            accepted: 400,
            complete: false,
        };
        let draft = Draft {
            operation: "ingest".into(),
            actor: "older strata".into(),
            sources: vec![(earlier, 0)],
            ..Default::default()
        };
        archive.catalog.commit(&mut snapshot, draft).await.unwrap();

        let ingest_again = || {
            ingest(
                &archive,
                vec![Input::File(input.clone())],
                IngestOptions::default(),
                (),
            )
        };
        let (report, ()) = ingest_again().await.unwrap();
        assert_eq!(report.sources[0].status, SourceStatus::Resumed(400));
        assert_eq!(report.sources[0].id, legacy_id);
        assert_eq!(report.accepted(), 600, "only the lines after the commit");
        let snapshot = archive.catalog.load().await.unwrap();
        assert_eq!(snapshot.sources.len(), 1, "no second record under BLAKE3");
        assert!(snapshot.sources[&legacy_id].complete);

        let (report, ()) = ingest_again().await.unwrap();
        assert_eq!(report.sources[0].status, SourceStatus::AlreadyComplete);
        assert_eq!(report.accepted(), 0);
    }

    /// Collects the line numbers of rejected lines.
    impl Observer for Vec<u64> {
        fn rejected(&mut self, reject: &Reject) {
            self.push(reject.line);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rejected_lines_get_their_input_line_numbers_whichever_block_held_them() {
        let dir = tempfile::tempdir().unwrap();
        let input = shuffled_input(dir.path(), 20_000);
        let bad: Vec<u64> = (1..=20_000).filter(|n| n % 1_013 == 7).collect();
        let text = std::fs::read_to_string(&input).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .zip(1..)
            .map(|(line, n)| if bad.contains(&n) { "{not json" } else { line })
            .collect();
        std::fs::write(&input, lines.join("\n")).unwrap();
        let archive = new_archive(dir.path());
        // A small budget gives small blocks: the input spans dozens of them.
        let options = IngestOptions {
            memory_bytes: 1 << 20,
            threads: 2,
            ..Default::default()
        };
        assert!(options.block_bytes() * 20 < text.len());
        let (report, rejected) = ingest(&archive, vec![Input::File(input)], options, Vec::new())
            .await
            .unwrap();
        assert_eq!(rejected, bad);
        assert_eq!(report.sources[0].lines, 20_000);
        assert_eq!(report.accepted(), 20_000 - bad.len() as u64);
    }
}
