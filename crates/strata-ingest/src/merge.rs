//! Merging files that are each sorted by `ts` into one sorted file, holding
//! one batch of each source at a time: memory depends on how many files are
//! merged, not on their size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::ScalarBuffer;
use arrow::compute::interleave_record_batch;
use bytes::Bytes;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::errors::ParquetError;

use crate::encode::{FileBatches, SortedFileWriter, ts_of};

/// Files of at most this many rows are decoded whole when a merge opens
/// them, and their readers dropped: a reader holds a decoded page and a
/// zstd context per column, more than a small file's rows take.
const LOAD_ROWS: usize = 16 * 1024;
/// Rows a larger file is read by.
const STREAM_ROWS: usize = 4 * 1024;
/// Rows written to the output at a time.
const OUTPUT_ROWS: usize = 16 * 1024;

/// What a file costs a merge, in rows held in memory: its rows when it is
/// decoded whole; else a batch and its reader, about `LOAD_ROWS` rows' worth.
pub(crate) fn merge_cost(rows: u64) -> u64 {
    rows.min(LOAD_ROWS as u64)
}

/// The batches of one file to merge.
pub(crate) enum Source {
    /// A small file, decoded whole.
    Loaded(std::vec::IntoIter<RecordBatch>),
    /// A larger file, read a batch at a time.
    Streamed(FileBatches),
}

impl Source {
    /// Opens a file of `rows` rows (decrypting it if needed).
    pub(crate) fn open(
        bytes: Bytes,
        decryption: Option<Arc<FileDecryptionProperties>>,
        rows: u64,
    ) -> Result<Source, ParquetError> {
        if rows <= LOAD_ROWS as u64 {
            let batches = FileBatches::open(bytes, decryption, LOAD_ROWS)?;
            Ok(Source::Loaded(
                batches.collect::<Result<Vec<_>, _>>()?.into_iter(),
            ))
        } else {
            Ok(Source::Streamed(FileBatches::open(
                bytes,
                decryption,
                STREAM_ROWS,
            )?))
        }
    }
}

impl Iterator for Source {
    type Item = Result<RecordBatch, ParquetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Source::Loaded(batches) => batches.next().map(Ok),
            Source::Streamed(batches) => batches.next(),
        }
    }
}

/// One source file and where the merge is in it.
struct Cursor {
    batches: Source,
    /// Index of its current batch in `Merge::held`.
    held: usize,
    ts: ScalarBuffer<i64>,
    row: usize,
}

/// The state of a k-way merge.
struct Merge {
    /// Batches that rows picked since the last flush come from.
    held: Vec<RecordBatch>,
    /// Picked rows, in output order, as (index in `held`, row).
    picks: Vec<(usize, usize)>,
}

impl Merge {
    /// Writes the picked rows out and keeps only the batches still being read.
    fn flush(
        &mut self,
        cursors: &mut [Option<Cursor>],
        out: &mut SortedFileWriter,
    ) -> Result<(), ParquetError> {
        if self.picks.is_empty() {
            return Ok(());
        }
        let held: Vec<&RecordBatch> = self.held.iter().collect();
        out.write(&interleave_record_batch(&held, &self.picks)?)?;
        self.picks.clear();
        let mut kept = Vec::new();
        for cursor in cursors.iter_mut().flatten() {
            kept.push(self.held[cursor.held].clone());
            cursor.held = kept.len() - 1;
        }
        self.held = kept;
        Ok(())
    }

    /// Moves `cursor` to its source's next non-empty batch; `None` at the end.
    fn advance(&mut self, mut cursor: Cursor) -> Result<Option<Cursor>, ParquetError> {
        for batch in cursor.batches.by_ref() {
            let batch = batch?;
            if batch.num_rows() > 0 {
                cursor.ts = ts_of(&batch).values().clone();
                cursor.row = 0;
                self.held.push(batch);
                cursor.held = self.held.len() - 1;
                return Ok(Some(cursor));
            }
        }
        Ok(None)
    }
}

/// A file to merge, opened only when the merge reaches its first row: files
/// that do not overlap in time (the usual case) are read one after the other.
pub(crate) struct SourceFile {
    /// The file's bytes.
    pub bytes: Bytes,
    /// Its rows.
    pub rows: u64,
    /// Its earliest `ts`, as catalogued.
    pub min_ts: i64,
}

/// Merges `files`, each sorted by `ts`, into `out` in `ts` order; rows
/// with equal `ts` keep the order of their files.
pub(crate) fn merge_sorted(
    files: Vec<SourceFile>,
    decryption: Option<Arc<FileDecryptionProperties>>,
    out: &mut SortedFileWriter,
) -> Result<(), ParquetError> {
    let mut merge = Merge {
        held: Vec::new(),
        picks: Vec::with_capacity(OUTPUT_ROWS),
    };
    // The next row of each file, smallest first; a file not yet opened
    // stands in with its earliest `ts`.
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = files
        .iter()
        .enumerate()
        .map(|(i, file)| Reverse((file.min_ts, i)))
        .collect();
    let mut waiting: Vec<Option<SourceFile>> = files.into_iter().map(Some).collect();
    let mut cursors: Vec<Option<Cursor>> = waiting.iter().map(|_| None).collect();
    while let Some(Reverse((_, source))) = heap.pop() {
        if let Some(file) = waiting[source].take() {
            let cursor = Cursor {
                batches: Source::open(file.bytes, decryption.clone(), file.rows)?,
                held: 0,
                ts: ScalarBuffer::from(Vec::new()),
                row: 0,
            };
            cursors[source] = merge.advance(cursor)?;
            if let Some(cursor) = &cursors[source] {
                if cursor.ts[0] < file.min_ts {
                    return Err(ParquetError::General(format!(
                        "a file starts at {} but is catalogued from {}",
                        cursor.ts[0], file.min_ts
                    )));
                }
                heap.push(Reverse((cursor.ts[0], source)));
            }
            continue;
        }
        let next_other = heap.peek().map(|Reverse(next)| *next);
        let cursor = cursors[source]
            .as_mut()
            .expect("opened files in the heap have rows");
        // Take a run from this file, up to the next row of another.
        loop {
            merge.picks.push((cursor.held, cursor.row));
            cursor.row += 1;
            let at_end = cursor.row == cursor.ts.len();
            if at_end
                || merge.picks.len() == OUTPUT_ROWS
                || next_other.is_some_and(|next| (cursor.ts[cursor.row], source) > next)
            {
                break;
            }
        }
        if merge.picks.len() == OUTPUT_ROWS {
            merge.flush(&mut cursors, out)?;
        }
        let cursor = cursors[source].take().expect("taken only here");
        cursors[source] = if cursor.row < cursor.ts.len() {
            Some(cursor)
        } else {
            merge.advance(cursor)?
        };
        if let Some(cursor) = &cursors[source] {
            heap.push(Reverse((cursor.ts[cursor.row], source)));
        }
    }
    merge.flush(&mut cursors, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Expected, encode_sorted, read_file};
    use strata_schema::{EventBatchBuilder, Family, parse_line};
    use strata_store::PartitionKey;

    /// A file of one partition holding events at `times` (milliseconds).
    fn file(times: &[i64]) -> bytes::Bytes {
        let mut builder = EventBatchBuilder::new();
        for ts in times {
            let line = format!(
                r#"{{"ts":{ts},"tenant":"t","family":"access","action":"login","message":"m{ts}"}}"#
            );
            builder.append(&parse_line(line.as_bytes()).unwrap());
        }
        let key = PartitionKey::of("t", Family::Access, 0);
        encode_sorted(&key, &[builder.finish(1).unwrap()], 3, None)
            .unwrap()
            .0
    }

    #[test]
    fn a_file_starting_before_its_catalogued_time_is_refused() {
        let key = PartitionKey::of("t", Family::Access, 0);
        let mut out =
            SortedFileWriter::new("p".into(), &key, 3, None, Expected { bytes: 0, rows: 0 });
        let sources = vec![SourceFile {
            bytes: file(&[5, 9]),
            rows: 2,
            min_ts: 7_000,
        }];
        let err = merge_sorted(sources, None, &mut out).unwrap_err();
        assert!(err.to_string().contains("catalogued from 7000"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        #[test]
        fn merging_sorted_files_gives_every_row_once_in_order(
            files in proptest::collection::vec(proptest::collection::vec(0i64..50_000, 0..10_000), 1..6),
            streamed in proptest::bool::ANY,
        ) {
            let key = PartitionKey::of("t", Family::Access, 0);
            // Decoded whole, or read in batches as a larger file would be.
            let sources = files
                .iter()
                .map(|times| SourceFile {
                    bytes: file(times),
                    rows: if streamed { u64::MAX } else { times.len() as u64 },
                    min_ts: times.iter().min().map_or(0, |ms| ms * 1000),
                })
                .collect();
            let mut out = SortedFileWriter::new("p".into(), &key, 3, None, Expected { bytes: 0, rows: 0 });
            merge_sorted(sources, None, &mut out).unwrap();
            let (bytes, meta) = out.finish().unwrap();
            let merged: Vec<(i64, String)> = read_file(bytes, None)
                .unwrap()
                .iter()
                .flat_map(|b| {
                    let message = b.column_by_name("message").unwrap();
                    let message = arrow::array::AsArray::as_string::<i32>(message);
                    ts_of(b).values().iter().copied().zip(message.iter().map(|m| m.unwrap().to_string())).collect::<Vec<_>>()
                })
                .collect();
            let mut expected: Vec<(i64, String)> = files
                .iter()
                .flatten()
                .map(|ms| (ms * 1000, format!("m{ms}")))
                .collect();
            expected.sort();
            let mut got = merged.clone();
            proptest::prop_assert!(merged.windows(2).all(|w| w[0].0 <= w[1].0), "sorted by ts");
            got.sort();
            proptest::prop_assert_eq!(got, expected.clone());
            proptest::prop_assert_eq!(meta.rows, expected.len() as u64);
            if let (Some(first), Some(last)) = (expected.first(), expected.last()) {
                proptest::prop_assert_eq!((meta.min_ts, meta.max_ts), (first.0, last.0));
            }
        }
    }
}
