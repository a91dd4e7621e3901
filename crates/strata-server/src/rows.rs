//! Accepted events as Arrow rows: one batch per request, its rows grouped
//! by partition, and each partition's range of it. One batch rather than
//! one per partition: a request of a few thousand events spread over
//! hundreds of partitions would otherwise build hundreds of batches of a
//! few rows, each with a builder per column (a tenth of the server's CPU
//! under load). Each partition's rows are a zero-copy slice of the batch.

use std::ops::Range;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::error::ArrowError;
use strata_ingest::block::by_partition;
use strata_schema::{Event, EventBatchBuilder};
use strata_store::PartitionKey;

/// Rows grouped by partition.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Every row, each partition's together (none when there are no rows).
    batch: Option<RecordBatch>,
    /// Each partition's rows in `batch`; the ranges follow each other.
    ranges: Vec<(PartitionKey, Range<usize>)>,
}

impl Rows {
    /// `events` as rows stamped with `ingested_at`.
    pub fn of(events: &[Event], ingested_at: i64) -> Result<Rows, ArrowError> {
        if events.is_empty() {
            return Ok(Rows::default());
        }
        let mut ordered = Vec::with_capacity(events.len());
        let mut ranges = Vec::new();
        for (key, group) in by_partition(events) {
            let start = ordered.len();
            ordered.extend(group);
            ranges.push((key, start..ordered.len()));
        }
        let batch = EventBatchBuilder::batch_of(&ordered, ingested_at)?;
        Ok(Rows {
            batch: Some(batch),
            ranges,
        })
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.batch.as_ref().map_or(0, RecordBatch::num_rows)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All rows in one batch, if there are any.
    pub fn batch(&self) -> Option<&RecordBatch> {
        self.batch.as_ref()
    }

    /// Memory of the rows.
    pub fn memory(&self) -> usize {
        self.batch
            .as_ref()
            .map_or(0, RecordBatch::get_array_memory_size)
    }

    /// Each partition's rows, as slices of the one batch, and its share
    /// of [`Rows::memory`].
    pub fn partitions(&self) -> impl Iterator<Item = (&PartitionKey, RecordBatch, usize)> {
        let memory = self.memory();
        let rows = self.len().max(1);
        self.ranges.iter().filter_map(move |(key, range)| {
            let batch = self.batch.as_ref()?;
            let slice = batch.slice(range.start, range.len());
            Some((key, slice, memory * range.len() / rows))
        })
    }

    /// Keeps the rows whose entry in `keep` is true (one per row).
    pub fn retain(&mut self, keep: &BooleanArray) {
        let Some(batch) = &self.batch else { return };
        let kept = filter_record_batch(batch, keep).expect("a mask of the batch's length");
        let mut start = 0;
        for (_, range) in &mut self.ranges {
            let len = (range.start..range.end)
                .filter(|&row| keep.value(row))
                .count();
            *range = start..start + len;
            start += len;
        }
        self.ranges.retain(|(_, range)| !range.is_empty());
        self.batch = (kept.num_rows() > 0).then_some(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use strata_schema::parse_line;

    fn events<'a>(lines: &[&'a str]) -> Vec<Event<'a>> {
        lines
            .iter()
            .map(|l| parse_line(l.as_bytes()).unwrap())
            .collect()
    }

    fn actions(batch: &RecordBatch) -> Vec<String> {
        let column = batch.column_by_name("action").unwrap().as_string::<i32>();
        column.iter().map(|a| a.unwrap().to_string()).collect()
    }

    #[test]
    fn each_partition_gets_its_rows_and_a_share_of_the_memory() {
        let events = events(&[
            r#"{"ts":"2026-03-01T10:00:00Z","tenant":"a","family":"access","action":"1"}"#,
            r#"{"ts":"2026-04-01T10:00:00Z","tenant":"a","family":"access","action":"2"}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","tenant":"a","family":"access","action":"3"}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","tenant":"b","family":"access","action":"4"}"#,
        ]);
        let mut rows = Rows::of(&events, 9).unwrap();
        assert_eq!(rows.len(), 4);
        let mut parts: Vec<(String, Vec<String>, usize)> = rows
            .partitions()
            .map(|(key, batch, memory)| (key.to_string(), actions(&batch), memory))
            .collect();
        parts.sort();
        let names: Vec<_> = parts
            .iter()
            .map(|(k, a, _)| (k.clone(), a.clone()))
            .collect();
        let march_a = PartitionKey::of("a", events[0].family, events[0].ts).to_string();
        assert_eq!(names[0], (march_a, vec!["1".to_string(), "3".to_string()]));
        assert_eq!(names.iter().map(|(_, a)| a.len()).sum::<usize>(), 4);
        let shares: usize = parts.iter().map(|(_, _, m)| m).sum();
        assert!(shares <= rows.memory() && shares + 3 >= rows.memory());

        // Dropping rows keeps every partition's range on its own rows.
        let keep: Vec<bool> = actions(rows.batch().unwrap())
            .iter()
            .map(|a| a != "1" && a != "4")
            .collect();
        rows.retain(&BooleanArray::from(keep));
        let mut left: Vec<Vec<String>> = rows.partitions().map(|(_, b, _)| actions(&b)).collect();
        left.sort();
        assert_eq!(left, vec![vec!["2".to_string()], vec!["3".to_string()]]);
        rows.retain(&BooleanArray::from(vec![false, false]));
        assert!(rows.is_empty() && rows.partitions().next().is_none());
        assert!(Rows::of(&[], 1).unwrap().is_empty());
    }
}
