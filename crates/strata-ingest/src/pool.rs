//! The ingest's worker threads: they parse blocks and encode partitions,
//! taking jobs from one queue (encodes first, since they free memory) and
//! sending results back to the thread that reads the input and commits.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;
use bytes::Bytes;
use strata_store::{FileMeta, PartitionKey};

use crate::block::{Block, ParsedBlock, parse_block};
use crate::encode::encode_sorted;
use crate::ingest::IngestError;

/// Work for a worker.
pub(crate) enum Job {
    /// Parse a block of lines.
    Parse(Block),
    /// Sort a partition's batches and encode them as one Parquet file.
    Encode {
        key: PartitionKey,
        batches: Vec<RecordBatch>,
        /// Memory the batches hold, handed back with the result.
        bytes: usize,
    },
}

/// A finished job.
pub(crate) enum Done {
    /// A parsed block.
    Parsed(Result<ParsedBlock, IngestError>),
    /// An encoded file, and the memory its batches held.
    Encoded(Result<(Bytes, FileMeta), IngestError>, usize),
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// A fixed set of worker threads; dropping it stops and joins them.
pub(crate) struct Pool {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` workers stamping `ingested_at` and encoding at
    /// `zstd_level`; results arrive on the returned receiver.
    pub fn start(threads: usize, ingested_at: i64, zstd_level: i32) -> (Pool, Receiver<Done>) {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let (done, results) = channel();
        let workers = (0..threads.max(1))
            .map(|i| {
                let queue = queue.clone();
                let done: Sender<Done> = done.clone();
                std::thread::Builder::new()
                    .name(format!("strata-ingest-{i}"))
                    .spawn(move || {
                        while let Some(job) = next_job(&queue) {
                            let run = std::panic::AssertUnwindSafe(|| match job {
                                Job::Parse(block) => Done::Parsed(
                                    parse_block(block, ingested_at)
                                        .map_err(|e| IngestError::Encode(e.into())),
                                ),
                                Job::Encode {
                                    key,
                                    batches,
                                    bytes,
                                } => Done::Encoded(
                                    encode_sorted(&key, &batches, zstd_level, None)
                                        .map_err(IngestError::from),
                                    bytes,
                                ),
                            });
                            // A panic fails the ingest like an error (which kind of
                            // job failed no longer matters then).
                            let result = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                                Done::Parsed(Err(IngestError::Task("a worker panicked".into())))
                            });
                            if done.send(result).is_err() {
                                break; // the ingest gave up
                            }
                        }
                    })
                    .expect("spawn an ingest worker")
            })
            .collect();
        (Pool { queue, workers }, results)
    }

    /// Queues a job: encodes go ahead of parses.
    pub fn submit(&self, job: Job) {
        let (lock, wake) = &*self.queue;
        let mut queue = lock.lock().expect("job queue lock");
        match job {
            Job::Encode { .. } => queue.jobs.push_front(job),
            Job::Parse(_) => queue.jobs.push_back(job),
        }
        wake.notify_one();
    }
}

fn next_job(queue: &(Mutex<Queue>, Condvar)) -> Option<Job> {
    let (lock, wake) = queue;
    let mut queue = lock.lock().expect("job queue lock");
    loop {
        if queue.closed {
            return None;
        }
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        queue = wake.wait(queue).expect("job queue lock");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let (lock, wake) = &*self.queue;
        lock.lock().expect("job queue lock").closed = true;
        wake.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
