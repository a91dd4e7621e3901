//! Committing a chunk: everything buffered is written out and uploaded,
//! then committed in one catalog entry with the input's progress.

use strata_store::{Draft, PartitionKey, Snapshot, SourceProgress};

use super::{IngestError, Observer, Run, SourceReport};

/// The progress to record after `line_no`: this run's counts on top of the
/// totals committed before it started.
pub(super) fn advanced(
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

impl<O: Observer> Run<O> {
    /// Writes out every buffered partition, waits for the encodes and the
    /// uploads, and commits the files with the input's progress.
    pub(super) fn commit_chunk(
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
