//! Writing buffered events out as Parquet. A write-out takes the whole
//! live generation, encodes one sorted file per partition, uploads them
//! under a writer record (so a crash leaves nothing behind that reconcile
//! does not remove), and commits them in one catalog entry together with
//! the write-ahead log's progress: the events of segments up to the
//! generation's last are in the archive exactly when that entry exists.
//! Only then are those segments deleted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_ingest::{CompactOptions, encode_sorted, upload};
use strata_store::{
    Draft, FileMeta, PartitionKey, Pending, Snapshot, SourceProgress, Writer, entry_path,
};

use crate::buffer::Generation;
use crate::merging::Merge;
use crate::server::{ServeError, Shared};
use strata_wal::{WAL_PREFIX, source_id};

/// How often the write-out conditions are checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The longest wait between attempts after write-outs failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Uploads in flight at once.
const UPLOADS: usize = 4;

/// Writes out buffered events whenever they are due, retrying failures,
/// and compacts the partitions each write-out added to.
pub async fn run(shared: Arc<Shared>) {
    let mut wait = CHECK_EVERY;
    loop {
        let asked = tokio::select! {
            () = tokio::time::sleep(wait) => false,
            () = shared.write_out_now.notified() => true,
        };
        if !asked && !due(&shared) {
            continue;
        }
        match write_out_and_compact(&shared, Merge::Due).await {
            Ok(()) => wait = CHECK_EVERY,
            Err(e) => {
                wait = (wait * 2).min(MAX_BACKOFF);
                tracing::warn!("write-out failed, retrying in {wait:?}: {e}");
            }
        }
    }
}

/// Whether the buffers should be written out now: a failed write-out is
/// pending, or the live generation is old enough, has a large partition,
/// or takes its share of the memory budget; or a partition is idle enough
/// to be merged.
fn due(shared: &Shared) -> bool {
    let options = &shared.options;
    let idle = (shared.unmerged.lock().expect("unmerged lock")).any_idle(Instant::now());
    if idle {
        return true;
    }
    let buffers = shared.buffers.lock().expect("buffers lock");
    let live = &buffers.live;
    buffers.writing.is_some()
        || live.since.is_some_and(|at| at.elapsed() >= options.max_age)
        || live.largest >= options.partition_bytes
        || live.bytes as u64 >= options.write_out_bytes()
}

/// Writes out what is buffered now and merges the partitions `merge`
/// says (see [`crate::merging`]), holding `shared.writing_out` throughout:
/// two never overlap, and a stop waiting for that lock never cuts a
/// compaction off between its upload and its commit (which would leave an
/// unlisted file behind).
pub async fn write_out_and_compact(shared: &Shared, merge: Merge) -> Result<(), ServeError> {
    let _only_one = shared.writing_out.lock().await;
    delete_failed_segments(shared).await;
    let written = write_out(shared).await?;
    let now = Instant::now();
    let options = compact_options(shared);
    let partitions = {
        let mut unmerged = shared.unmerged.lock().expect("unmerged lock");
        unmerged.written(written, now);
        unmerged.due(
            merge,
            &shared.snapshot(),
            |size| options.is_small(size),
            now,
        )
    };
    if compact(shared, options, &partitions).await {
        let mut unmerged = shared.unmerged.lock().expect("unmerged lock");
        unmerged.merged(&partitions);
    }
    Ok(())
}

/// Deletes the segments whose put was reported failed, in case it landed:
/// their requests were refused and retried, so a replay must not find
/// them. Those that cannot be deleted now are tried again next time.
async fn delete_failed_segments(shared: &Shared) {
    let failed = std::mem::take(&mut *shared.failed_segments.lock().expect("failed segments lock"));
    for seq in failed {
        if let Err(e) = shared.wal.delete(&[seq]).await {
            tracing::warn!("a segment whose put failed is not deleted yet: {e}");
            let mut left = shared.failed_segments.lock().expect("failed segments lock");
            left.push(seq);
        }
    }
}

/// Writes out and commits what is buffered now (a generation left by a
/// failed write-out first, then the live one; not the events that arrive
/// meanwhile, so that each write-out is followed by its compaction);
/// returns the partitions that got files.
async fn write_out(shared: &Shared) -> Result<BTreeSet<PartitionKey>, ServeError> {
    let mut partitions = BTreeSet::new();
    let mut took_live = false;
    loop {
        let generation = {
            let mut buffers = shared.buffers.lock().expect("buffers lock");
            match &buffers.writing {
                Some(generation) => generation.clone(),
                None if took_live || buffers.live.is_empty() => return Ok(partitions),
                None => {
                    took_live = true;
                    let next = buffers.live.successor();
                    let generation = Arc::new(std::mem::replace(&mut buffers.live, next));
                    buffers.writing = Some(generation.clone());
                    generation
                }
            }
        };
        let committed = commit(shared, &generation).await;
        shared
            .metrics
            .write_out(committed.as_ref().map(|n| *n).map_err(|_| ()));
        if committed? > 0 {
            partitions.extend(generation.partitions.keys().cloned());
        }
        shared.buffers.lock().expect("buffers lock").writing = None;
        shared.committed.send_replace(generation.through);
        let done: Vec<u64> = shared
            .wal
            .list()
            .await?
            .into_iter()
            .take_while(|&seq| seq <= generation.through)
            .collect();
        shared.wal.delete(&done).await?;
    }
}

/// How the server compacts: its share of the memory, one thread.
fn compact_options(shared: &Shared) -> CompactOptions {
    CompactOptions {
        zstd_level: shared.options.zstd_level,
        actor: format!("strata serve {}", shared.options.node_id),
        keys: shared.options.keys.clone(),
        memory_bytes: shared.options.compaction_bytes(),
        threads: 1,
        ..CompactOptions::default()
    }
}

/// Merges the small files of `partitions` (see docs/serve.md for the
/// bound this keeps), then shows queries the new state at once; returns
/// whether the merge succeeded.
async fn compact(
    shared: &Shared,
    options: CompactOptions,
    partitions: &BTreeSet<PartitionKey>,
) -> bool {
    if partitions.is_empty() {
        return true;
    }
    let options = CompactOptions {
        partitions: Some(partitions.clone()),
        ..options
    };
    let merged = match strata_ingest::compact(&shared.archive, options).await {
        Ok(report) => {
            shared.metrics.compaction(Ok(report.files_removed));
            true
        }
        Err(e) => {
            shared.metrics.compaction(Err(()));
            tracing::warn!("compaction failed (the next write-out tries again): {e}");
            false
        }
    };
    if let Err(e) = shared.refresh_now().await {
        tracing::warn!("cannot refresh the catalog: {e}");
    }
    merged
}

/// Commits `generation`'s events with the log's progress through its last
/// segment; returns the files committed (none if an earlier attempt's
/// commit had landed after all).
async fn commit(shared: &Shared, generation: &Generation) -> Result<usize, ServeError> {
    let archive = &shared.archive;
    let mut snapshot = (*shared.snapshot()).clone();
    archive.catalog.refresh(&mut snapshot).await?;
    let before = wal_progress(&snapshot, &shared.options.node_id);
    if before.lines >= generation.through {
        shared.publish(snapshot);
        return Ok(0);
    }
    let level = shared.options.zstd_level;
    let partitions: Vec<_> = generation
        .partitions
        .iter()
        .map(|(key, batches)| (key.clone(), batches.clone()))
        .collect();
    let encoded = tokio::task::spawn_blocking(move || {
        partitions
            .iter()
            .map(|(key, batches)| encode_sorted(key, batches, level, None))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ServeError::WriteOut(e.to_string()))?
    .map_err(|e| ServeError::WriteOut(format!("cannot encode Parquet: {e}")))?;
    let actor = generation
        .senders
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let mut writer = Writer::register(&archive.stores, "serve", &actor).await?;
    let outcome = store_and_commit(
        shared,
        generation,
        &mut writer,
        encoded,
        &before,
        &actor,
        &mut snapshot,
    )
    .await;
    match outcome {
        Ok(files) => {
            writer.finish().await?;
            shared.publish(snapshot);
            Ok(files)
        }
        Err(e) => {
            writer.abandon(&archive.catalog).await;
            Err(e)
        }
    }
}

/// How far `node`'s write-ahead log is committed according to `snapshot`.
fn wal_progress(snapshot: &Snapshot, node: &str) -> SourceProgress {
    let id = source_id(node);
    match snapshot.sources.get(&id) {
        Some(progress) => progress.clone(),
        None => SourceProgress {
            id,
            path: format!("{WAL_PREFIX}/{node}"),
            lines: 0,
            rejected: 0,
            accepted: 0,
            complete: false,
        },
    }
}

/// Uploads the encoded files named in `writer`'s record and commits them
/// with the log's progress through `generation`'s last segment.
async fn store_and_commit(
    shared: &Shared,
    generation: &Generation,
    writer: &mut Writer,
    encoded: Vec<(Bytes, FileMeta)>,
    before: &SourceProgress,
    actor: &str,
    snapshot: &mut Snapshot,
) -> Result<usize, ServeError> {
    let archive = &shared.archive;
    let pending = encoded.iter().map(|(_, meta)| Pending::of(meta)).collect();
    writer.set_pending(pending).await?;
    // Every upload is awaited, failed or not: none may land after a cleanup.
    let slots = Arc::new(tokio::sync::Semaphore::new(UPLOADS));
    let mut uploads = tokio::task::JoinSet::new();
    for (bytes, meta) in encoded {
        let store = archive.store.clone();
        let slots = slots.clone();
        uploads.spawn(async move {
            let _slot = slots.acquire_owned().await;
            upload(store.as_ref(), bytes, meta).await
        });
    }
    let uploads = uploads.join_all().await;
    let files = uploads
        .into_iter()
        .collect::<Result<Vec<FileMeta>, _>>()
        .map_err(|e| ServeError::WriteOut(e.to_string()))?;
    let progress = SourceProgress {
        lines: generation.through,
        accepted: before.accepted + generation.events,
        ..before.clone()
    };
    let draft = Draft {
        operation: "serve".into(),
        actor: actor.to_string(),
        add: files.clone(),
        sources: vec![(progress, before.lines)],
        ..Default::default()
    };
    let seq = archive.catalog.commit(snapshot, draft).await?;
    // On a local folder the commit and its files must reach the disk
    // before the segments holding the same events are deleted.
    let mut durable: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    durable.push(entry_path(seq).to_string());
    shared.durability.sync(durable).await?;
    Ok(files.len())
}
