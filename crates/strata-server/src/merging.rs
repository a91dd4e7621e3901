//! When the partitions written out get merged. Merging after every
//! write-out rewrote each partition's merged file every few seconds (most
//! of a loaded server's CPU went to rewriting the same rows); waiting for
//! a few files per partition rewrites it a few times less often and keeps
//! the bound small. A partition nobody writes to any more (a closed month)
//! is merged once it has been idle a while, and everything at a stop.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use strata_store::{PartitionKey, Snapshot};

/// A partition written to is merged once it holds this many small files:
/// between two merges it holds at most this many.
pub const MERGE_AT_FILES: usize = 4;

/// A partition not written to for this long is merged whatever its files.
pub const MERGE_WHEN_IDLE: Duration = Duration::from_secs(60);

/// The partitions written out since they were last merged, with when.
#[derive(Debug, Default)]
pub struct Unmerged {
    written: HashMap<PartitionKey, Instant>,
}

/// Which of the unmerged partitions to merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Those that reached [`MERGE_AT_FILES`] or have been idle for
    /// [`MERGE_WHEN_IDLE`].
    Due,
    /// All of them (at a stop).
    All,
}

impl Unmerged {
    /// The partitions of `snapshot` holding more than one small file (a
    /// server stopped before merging them), as if written at `now`.
    pub fn of(snapshot: &Snapshot, is_small: impl Fn(u64) -> bool, now: Instant) -> Self {
        let written = small_files(snapshot, is_small, |_| true)
            .into_iter()
            .filter(|&(_, files)| files > 1)
            .map(|(key, _)| (key, now))
            .collect();
        Unmerged { written }
    }

    /// Notes that a write-out at `now` gave `partitions` files.
    pub fn written(&mut self, partitions: impl IntoIterator<Item = PartitionKey>, now: Instant) {
        for key in partitions {
            self.written.insert(key, now);
        }
    }

    /// Whether some partition has been idle long enough to be merged.
    pub fn any_idle(&self, now: Instant) -> bool {
        self.written
            .values()
            .any(|&at| now.duration_since(at) >= MERGE_WHEN_IDLE)
    }

    /// The partitions to merge now; `is_small` tells the files a merge
    /// would take from those it leaves alone.
    pub fn due(
        &self,
        merge: Merge,
        snapshot: &Snapshot,
        is_small: impl Fn(u64) -> bool,
        now: Instant,
    ) -> BTreeSet<PartitionKey> {
        let small = small_files(snapshot, is_small, |key| self.written.contains_key(key));
        let due = |key: &PartitionKey, at: Instant| {
            merge == Merge::All
                || now.duration_since(at) >= MERGE_WHEN_IDLE
                || small.get(key).copied().unwrap_or(0) >= MERGE_AT_FILES
        };
        (self.written.iter())
            .filter(|&(key, &at)| due(key, at))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Notes that `partitions` were merged.
    pub fn merged(&mut self, partitions: &BTreeSet<PartitionKey>) {
        self.written.retain(|key, _| !partitions.contains(key));
    }
}

/// The small files of each partition `wanted` in `snapshot`.
fn small_files(
    snapshot: &Snapshot,
    is_small: impl Fn(u64) -> bool,
    wanted: impl Fn(&PartitionKey) -> bool,
) -> HashMap<PartitionKey, usize> {
    let mut counts = HashMap::new();
    for file in snapshot.visible_files().filter(|f| is_small(f.size)) {
        if let Some(key) = PartitionKey::of_file(file).filter(&wanted) {
            *counts.entry(key).or_default() += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::FileMeta;

    fn key(month: u32) -> PartitionKey {
        PartitionKey::of_file(&file(month, 0, 1)).unwrap()
    }

    fn file(month: u32, n: usize, size: u64) -> FileMeta {
        FileMeta {
            path: format!("m{month}-{n}"),
            tenant: "acme".into(),
            family: "access".into(),
            month: format!("2026-{month:02}"),
            size,
            sha256: String::new(),
            rows: 1,
            min_ts: 0,
            max_ts: 0,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        }
    }

    /// A snapshot whose partition of `month` holds `files` files of `size` bytes each.
    fn holding(partitions: &[(u32, usize, u64)]) -> Snapshot {
        let mut snapshot = Snapshot::empty();
        for &(month, files, size) in partitions {
            for n in 0..files {
                let f = file(month, n, size);
                snapshot.files.insert(f.path.clone(), f);
            }
        }
        snapshot
    }

    const SMALL: fn(u64) -> bool = |size| size < 100;

    #[test]
    fn a_partition_written_to_is_merged_at_its_fourth_small_file() {
        let now = Instant::now();
        let mut unmerged = Unmerged::default();
        unmerged.written([key(1), key(2), key(3)], now);
        let snapshot = holding(&[
            (1, MERGE_AT_FILES - 1, 10),
            (2, MERGE_AT_FILES, 10),
            (3, 9, 500),
        ]);
        let due = unmerged.due(Merge::Due, &snapshot, SMALL, now);
        assert_eq!(due, BTreeSet::from([key(2)]), "large files do not count");
        unmerged.merged(&due);
        let all = unmerged.due(Merge::All, &snapshot, SMALL, now);
        assert_eq!(
            all,
            BTreeSet::from([key(1), key(3)]),
            "a stop merges the rest"
        );
    }

    #[test]
    fn an_idle_partition_is_merged_and_a_write_makes_it_busy_again() {
        let start = Instant::now();
        let later = start + MERGE_WHEN_IDLE;
        let mut unmerged = Unmerged::default();
        unmerged.written([key(1), key(2)], start);
        assert!(!unmerged.any_idle(later - Duration::from_millis(1)));
        assert!(unmerged.any_idle(later));
        unmerged.written([key(2)], later);
        let snapshot = holding(&[(1, 2, 10), (2, 2, 10)]);
        let due = unmerged.due(Merge::Due, &snapshot, SMALL, later);
        assert_eq!(due, BTreeSet::from([key(1)]));
        unmerged.merged(&due);
        assert!(!unmerged.any_idle(later));
    }

    #[test]
    fn a_restart_remembers_the_partitions_left_with_several_small_files() {
        let now = Instant::now();
        let snapshot = holding(&[(1, 1, 10), (2, 2, 10), (3, 2, 500)]);
        let unmerged = Unmerged::of(&snapshot, SMALL, now);
        let all = unmerged.due(Merge::All, &snapshot, SMALL, now);
        assert_eq!(all, BTreeSet::from([key(2)]));
    }
}
