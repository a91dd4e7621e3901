//! Acknowledged events waiting in memory to be written out as Parquet.
//!
//! Events enter in write-ahead order, a segment at a time, so the buffers
//! always hold exactly the events of segments up to `through`. A write-out
//! takes the whole generation at once (its files and the log's progress go
//! in one commit), and a new generation fills meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use arrow::array::RecordBatch;
use strata_store::PartitionKey;

use crate::dedup::{EventKey, KeySet};
use crate::rows::Rows;

/// One generation of buffered events.
#[derive(Debug, Default)]
pub struct Generation {
    /// Each partition's batches (slices of the requests' batches).
    pub partitions: HashMap<PartitionKey, Vec<RecordBatch>>,
    /// The batches as they came, a request's rows each: what queries
    /// read (far fewer batches than the partitions' slices of them).
    batches: Vec<RecordBatch>,
    /// Memory of the batches.
    pub bytes: usize,
    /// Events held.
    pub events: u64,
    /// The last write-ahead segment whose events are all here.
    pub through: u64,
    /// Who sent the events: the actors of the write-out's commit.
    pub senders: BTreeSet<String>,
    /// The keys of the events held that carry an `event_id`: a retry of
    /// one of them is not stored again.
    pub ids: KeySet,
    /// When the oldest event held arrived (or was replayed).
    pub since: Option<Instant>,
    /// The largest partition's memory.
    pub largest: usize,
    /// Memory per partition.
    sizes: HashMap<PartitionKey, usize>,
}

impl Generation {
    /// Adds the events of segment `seq`, sent by `sender`, with the keys
    /// of those that have one.
    pub fn add(
        &mut self,
        seq: u64,
        sender: &str,
        rows: Rows,
        keys: impl IntoIterator<Item = EventKey>,
    ) {
        for key in keys {
            // The key with the set's overhead, roughly.
            self.bytes += 32;
            self.ids.insert(key);
        }
        self.bytes += rows.memory();
        self.batches.extend(rows.batch().cloned());
        self.events += rows.len() as u64;
        for (key, batch, bytes) in rows.partitions() {
            let size = self.sizes.entry(key.clone()).or_default();
            *size += bytes;
            self.largest = self.largest.max(*size);
            self.partitions.entry(key.clone()).or_default().push(batch);
        }
        if !self.senders.contains(sender) {
            self.senders.insert(sender.to_string());
        }
        self.since.get_or_insert_with(Instant::now);
        self.through = self.through.max(seq);
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// An empty generation whose events will come after segment `through`.
    pub fn after(through: u64) -> Generation {
        Generation {
            through,
            ..Generation::default()
        }
    }

    /// Every row held, in no particular order.
    pub fn batches(&self) -> impl Iterator<Item = &RecordBatch> {
        self.batches.iter()
    }

    /// A new, empty generation that continues after this one's segments.
    pub fn successor(&self) -> Generation {
        Generation::after(self.through)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_access::{Authenticated, Role};

    #[test]
    fn a_generation_counts_what_it_holds_and_its_successor_starts_empty() {
        let sender = Authenticated {
            name: "s".into(),
            role: Role::Ingest,
            tenants: vec![],
        };
        let lines = r#"{"ts":"2026-03-01T10:00:00Z","tenant":"a","family":"access","action":"a"}
{"ts":"2026-04-01T10:00:00Z","tenant":"a","family":"access","action":"a"}
{"ts":"2026-04-02T10:00:00Z","tenant":"a","family":"access","action":"a"}"#;
        let accepted = crate::accept::accept_lines(&bytes::Bytes::from(lines), &sender, 1);
        let mut generation = Generation::default();
        assert!(generation.is_empty());
        generation.add(
            4,
            "s",
            accepted.rows,
            accepted.event_ids.into_iter().flatten(),
        );
        assert_eq!((generation.events, generation.through), (3, 4));
        assert_eq!(generation.partitions.len(), 2);
        assert!(generation.largest > 0 && generation.largest < generation.bytes);
        assert!(generation.since.is_some());
        let next = generation.successor();
        assert!(next.is_empty());
        assert_eq!((next.through, next.bytes), (4, 0));
    }
}
