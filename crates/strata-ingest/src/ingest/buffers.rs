//! The partition buffers: each partition's parsed events since it was last
//! written out, merged as small batches pile up, and handed to the encoders
//! when a partition or all of them pass their share of the memory budget.

use std::sync::atomic::Ordering;

use arrow::array::RecordBatch;
use strata_store::PartitionKey;

use super::{Observer, Reject, Run, SourceReport};
use crate::block::ParsedBlock;
use crate::pool::Job;

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

/// One partition's parsed events since it was last written out.
pub(super) struct Buffered {
    batches: Vec<RecordBatch>,
    bytes: usize,
    /// The last block that added to it.
    last_block: u64,
}

impl<O: Observer> Run<O> {
    /// Takes a parsed block (the next in input order, starting at line
    /// `first_line`) into the buffers; returns the block's emptied line buffer.
    pub(super) fn apply(
        &mut self,
        block: ParsedBlock,
        first_line: u64,
        source: &mut SourceReport,
    ) -> Vec<u8> {
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
    pub(super) fn write_out(&mut self, key: &PartitionKey) {
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use object_store::ObjectStoreExt;
    use object_store::path::Path;

    use super::super::tests::{new_archive, shuffled_input};
    use super::super::{IngestOptions, ingest};
    use crate::input::Input;

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
}
