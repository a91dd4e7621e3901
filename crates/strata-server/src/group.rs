//! Group commit: requests wait while their events are gathered into one
//! write-ahead segment, and are answered once the segment is durable. One
//! segment is stored at a time and at most one per `wal_interval`: an idle
//! server stores a request's segment at once, a busy one gathers every
//! request of an interval into one object.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::accept::Accepted;
use crate::dedup::{EventKey, Events, KeySet};
use crate::rows::Rows;
use crate::server::Shared;
use strata_wal::Record;

/// Bytes of records after which a segment is stored without waiting for
/// the rest of its interval: under saturation, waiting for more only left
/// the core idle while every connection waited for its answer (16 MiB
/// idled a tenth of the time in the benchmark, 4 MiB a fortieth).
const SEGMENT_BYTES: usize = 4 << 20;

/// A request's accepted events, waiting to be made durable.
pub struct Submission {
    /// What the write-ahead log stores.
    pub record: Record,
    /// The key of each line (none without an `event_id`).
    pub event_ids: Vec<Option<EventKey>>,
    /// The same events as rows, buffered once the segment is stored.
    pub rows: Rows,
    /// Told the segment's number, or why it could not be stored.
    pub done: oneshot::Sender<Result<u64, String>>,
    /// Stored without waiting for the rest of the interval: someone waits
    /// for it before being answered (a query's record).
    pub urgent: bool,
}

/// Sends `accepted`'s events, sent by `principal` and stamped
/// `ingested_at`, to be made durable and waits until they are: the number
/// of the segment holding them (none if nothing was accepted), or why they
/// were not stored. The events are taken out of `accepted`. An `urgent`
/// segment is stored at once rather than at the next interval.
pub async fn submit(
    submit: &mpsc::Sender<Submission>,
    principal: &str,
    ingested_at: i64,
    accepted: &mut Accepted,
    urgent: bool,
) -> Result<Option<u64>, String> {
    if accepted.events() == 0 {
        return Ok(None);
    }
    let (done, stored) = oneshot::channel();
    let submission = Submission {
        record: Record {
            ingested_at,
            principal: principal.to_string(),
            lines: std::mem::take(&mut accepted.lines),
        },
        event_ids: std::mem::take(&mut accepted.event_ids),
        rows: std::mem::take(&mut accepted.rows),
        done,
        urgent,
    };
    let stopping = || "the server is stopping".to_string();
    submit.send(submission).await.map_err(|_| stopping())?;
    stored.await.map_err(|_| stopping())?.map(Some)
}

/// Stores the submissions received as segments from `next_seq` on, until
/// every sender is gone.
pub async fn run(shared: Arc<Shared>, mut submissions: mpsc::Receiver<Submission>, next_seq: u64) {
    let interval = shared.options.wal_interval;
    let mut seq = next_seq;
    let mut last_put: Option<Instant> = None;
    while let Some(first) = submissions.recv().await {
        let mut urgent = first.urgent;
        let mut group = vec![first];
        let mut bytes = group[0].record.lines.len();
        let due = last_put.map_or_else(Instant::now, |at| at + interval);
        while bytes < SEGMENT_BYTES {
            let deadline = if urgent { Instant::now() } else { due };
            // Whatever is already waiting joins the segment, due or not.
            let next = tokio::select! {
                biased;
                next = submissions.recv() => next,
                () = tokio::time::sleep_until(deadline.into()) => None,
            };
            let Some(next) = next else { break };
            bytes += next.record.lines.len();
            urgent |= next.urgent;
            group.push(next);
        }
        last_put = Some(Instant::now());
        let repeated = drop_repeats(&shared, &mut group);
        shared.metrics.deduplicated(repeated);
        let records: Vec<&Record> = group.iter().map(|s| &s.record).collect();
        let stored = shared.wal.put(seq, shared.wal.encode(&records)).await;
        shared.metrics.wal_segment(stored.is_ok());
        match stored {
            Ok(()) => {
                let mut done = Vec::with_capacity(group.len());
                {
                    let mut buffers = shared.buffers.lock().expect("buffers lock");
                    for submission in group {
                        let principal = &submission.record.principal;
                        let keys = submission.event_ids.into_iter().flatten();
                        buffers.live.add(seq, principal, submission.rows, keys);
                        done.push(submission.done);
                    }
                }
                for tx in done {
                    let _ = tx.send(Ok(seq));
                }
            }
            Err(e) => {
                tracing::error!("{e}");
                let mut failed = shared.failed_segments.lock().expect("failed segments lock");
                failed.push(seq);
                drop(failed);
                for submission in group {
                    let _ = submission.done.send(Err(e.to_string()));
                }
            }
        }
        // A number whose put failed may still have landed: never reuse it.
        seq += 1;
    }
}

/// Drops from `group` the events already buffered, or sent earlier in the
/// same group, under the same key; returns how many.
fn drop_repeats(shared: &Shared, group: &mut [Submission]) -> usize {
    let mut repeats = Vec::with_capacity(group.len());
    {
        let buffers = shared.buffers.lock().expect("buffers lock");
        let writing = buffers.writing.as_deref();
        let mut in_group = KeySet::default();
        for submission in group.iter() {
            let held = |key: &EventKey| {
                buffers.live.ids.contains(key)
                    || writing.is_some_and(|w| w.ids.contains(key))
                    || in_group.contains(key)
            };
            let keys = submission.event_ids.iter().flatten();
            repeats.push(
                keys.clone()
                    .filter(|k| held(k))
                    .copied()
                    .collect::<KeySet>(),
            );
            in_group.extend(keys.copied());
        }
    }
    let mut dropped = 0;
    for (submission, repeats) in group.iter_mut().zip(&repeats) {
        let mut events = Events {
            lines: &mut submission.record.lines,
            keys: &mut submission.event_ids,
            rows: &mut submission.rows,
        };
        dropped += events.remove(repeats);
    }
    dropped
}
