//! Reading an input: where an earlier run stopped, the blocks of whole
//! lines handed to the parsers as memory allows, and the parsed blocks put
//! back in input order before they are buffered.

use std::io::BufRead;
use std::sync::atomic::Ordering;

use strata_store::SourceProgress;

use super::commit::advanced;
use super::uploads::UPLOAD_BATCH;
use super::{IngestError, Observer, Run, SourceReport, SourceStatus};
use crate::block::BlockReader;
use crate::input::{ContentId, Input, hash_file, is_sha256_id, open_lines};
use crate::pool::{Done, Job};

impl<O: Observer> Run<O> {
    pub(super) fn ingest_one(&mut self, input: &Input) -> Result<(), IngestError> {
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
        // Held in the snapshot or filed in a shard (legacy SHA-256 ids are
        // never filed).
        let catalog = &self.archive.catalog;
        let known = self
            .handle
            .block_on(catalog.source(&snapshot, &content.id))?;
        let legacy = |id: &String| snapshot.sources.get(id).cloned();
        let mut progress = known
            .or_else(|| content.sha256.as_ref().and_then(legacy))
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
    pub(super) fn receive(&mut self) -> Result<(), IngestError> {
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
}

#[cfg(test)]
mod tests {
    use strata_store::Draft;

    use super::super::tests::{new_archive, shuffled_input};
    use super::super::{IngestOptions, Reject, ingest};
    use super::*;

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
