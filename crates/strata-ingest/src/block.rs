//! Input cut into blocks of whole lines, and a block parsed into one record
//! batch per partition. Blocks are what the ingest's worker threads parse in
//! parallel. A parsed block places its rejected lines within itself; the
//! ingest takes blocks back in input order and so knows where each block
//! starts, which gives every rejected line its exact number in the input
//! whichever thread parsed it (and spares the reading thread a count of
//! every block's lines).

use std::io::{self, BufRead, Read};

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use strata_schema::{Event, EventBatchBuilder, parse_line};
use strata_store::PartitionKey;

/// Whole lines of one input.
pub struct Block {
    /// Position in the input, from 0.
    pub seq: u64,
    /// The lines, each ending in `\n` except perhaps the input's last.
    pub bytes: Vec<u8>,
}

/// Room for the line that crosses a block's `size`, reserved with the
/// block so that finishing that line does not reallocate (and copy) it.
const LINE_SLACK: usize = 64 << 10;

/// Cuts a line reader into blocks of at least `size` bytes (but for the
/// last), never inside a line.
pub struct BlockReader<R> {
    reader: R,
    size: usize,
    /// The start of a line that the previous block cut off.
    carry: Vec<u8>,
    /// Buffers of parsed blocks, given back for reuse: at most as many as
    /// blocks were ever in flight at once.
    spare: Vec<Vec<u8>>,
    next_seq: u64,
}

impl<R: BufRead> BlockReader<R> {
    /// Reads `reader` in blocks of at least `size` bytes.
    pub fn new(reader: R, size: usize) -> Self {
        BlockReader {
            reader,
            size: size.max(1),
            carry: Vec::new(),
            spare: Vec::new(),
            next_seq: 0,
        }
    }

    /// Takes back a parsed block's buffer ([`ParsedBlock::buffer`]): the
    /// next block reuses its memory instead of faulting in fresh pages,
    /// which cost more than the parsing on some hosts.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.spare.push(buffer);
    }

    /// The next block, or `None` at the end of the input.
    pub fn next_block(&mut self) -> io::Result<Option<Block>> {
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.append(&mut self.carry);
        bytes.reserve((self.size + LINE_SLACK).saturating_sub(bytes.len()));
        let complete = loop {
            let wanted = self.size.saturating_sub(bytes.len()).max(1 << 16) as u64;
            if (&mut self.reader).take(wanted).read_to_end(&mut bytes)? == 0 {
                break bytes.len();
            }
            // The block ends with the line that reaches `size`, so that
            // `k` blocks always hold at least `k * size` bytes.
            if bytes.len() >= self.size
                && let Some(end) = memchr::memchr(b'\n', &bytes[self.size - 1..])
            {
                break self.size + end;
            }
        };
        if bytes.is_empty() {
            self.spare.push(bytes);
            return Ok(None);
        }
        self.carry.extend_from_slice(&bytes[complete..]);
        bytes.truncate(complete);
        let block = Block {
            seq: self.next_seq,
            bytes,
        };
        self.next_seq += 1;
        Ok(Some(block))
    }
}

/// A line that broke the event contract, found while parsing a block.
pub struct BadLine {
    /// Position of the line in its block, from 0.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The line itself (lossy UTF-8).
    pub text: String,
}

/// A block's events, grouped by partition.
pub struct ParsedBlock {
    /// The block's position in the input.
    pub seq: u64,
    /// Lines in the block (a last line without `\n` counts).
    pub lines: u64,
    /// Bytes of the block.
    pub bytes: u64,
    /// Events accepted.
    pub accepted: u64,
    /// Lines rejected, in input order.
    pub rejected: Vec<BadLine>,
    /// One batch per partition the block touched.
    pub partitions: Vec<(PartitionKey, RecordBatch)>,
    /// The block's buffer, emptied, for [`BlockReader::recycle`].
    pub buffer: Vec<u8>,
}

/// Parses every line of `block`, stamping `ingested_at` on its events.
///
/// The block's events are parsed first (their strings still borrowed from
/// the block), then each partition's batch is built from its events at its
/// exact size: one copy of each value, where building one batch for the
/// block and splitting it by partition would copy each twice, and grow
/// buffers (copying again) on the way.
pub fn parse_block(block: Block, ingested_at: i64) -> Result<ParsedBlock, ArrowError> {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    let mut line_no = 0;
    let body = block.bytes.strip_suffix(b"\n").unwrap_or(&block.bytes);
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    let mut start = 0;
    for end in ends {
        let text = body[start..end].trim_ascii();
        start = end + 1;
        if !text.is_empty() {
            match parse_line(text) {
                Ok(event) => events.push(event),
                Err(reason) => rejected.push(BadLine {
                    line: line_no,
                    reason,
                    text: String::from_utf8_lossy(text).into_owned(),
                }),
            }
        }
        line_no += 1;
    }
    // Events grouped by tenant, family and month, without building a key
    // (and copying the tenant) per event. foldhash rather than the default
    // SipHash: this is a lookup per event, and its seed is random as well.
    let mut groups: foldhash::HashMap<_, Vec<&Event>> = foldhash::HashMap::default();
    for event in &events {
        let month = PartitionKey::month_of(event.ts);
        groups
            .entry((&event.tenant, event.family, month))
            .or_default()
            .push(event);
    }
    let partitions = groups
        .into_values()
        .map(|events| {
            let first = events[0];
            let key = PartitionKey::of(&first.tenant, first.family, first.ts);
            Ok((key, EventBatchBuilder::batch_of(&events, ingested_at)?))
        })
        .collect::<Result<_, ArrowError>>()?;
    let accepted = events.len() as u64;
    drop(events); // they borrow from the block's bytes, handed back below
    let mut buffer = block.bytes;
    let bytes = buffer.len() as u64;
    buffer.clear();
    Ok(ParsedBlock {
        seq: block.seq,
        lines: line_no,
        bytes,
        accepted,
        rejected,
        partitions,
        buffer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks of `text`, each block's buffer handed back for reuse
    /// (after copying it out) as the ingest does.
    fn blocks(text: &str, size: usize) -> Vec<Block> {
        let mut reader = BlockReader::new(text.as_bytes(), size);
        let mut out = Vec::new();
        while let Some(block) = reader.next_block().unwrap() {
            out.push(Block {
                bytes: block.bytes.clone(),
                ..block
            });
            reader.recycle(block.bytes);
        }
        out
    }

    #[test]
    fn blocks_hold_whole_lines_in_order() {
        let text = "aaaa\nbb\n\ncccccccccccc\nd";
        for size in [1, 3, 5, 8, 100] {
            let got = blocks(text, size);
            let joined: Vec<u8> = got.iter().flat_map(|b| b.bytes.clone()).collect();
            assert_eq!(joined, text.as_bytes(), "size {size}");
            for (i, block) in got.iter().enumerate() {
                assert_eq!(block.seq, i as u64);
                if i < got.len() - 1 {
                    assert!(
                        block.bytes.ends_with(b"\n"),
                        "size {size}: block {i} cuts a line"
                    );
                    assert!(block.bytes.len() >= size, "size {size}: block {i} is short");
                }
            }
        }
        assert!(blocks("", 4).is_empty());
    }

    #[test]
    fn parsing_counts_lines_and_places_bad_ones_in_the_block() {
        let good = |ts: &str, tenant: &str| {
            format!(r#"{{"ts":"{ts}","tenant":"{tenant}","family":"access","action":"login"}}"#)
        };
        let text = format!(
            "{}\n\n{{not json\n{}\n{}",
            good("2025-01-31T23:00:00Z", "a"),
            good("2025-02-01T00:00:00Z", "a"),
            good("2025-01-05T00:00:00Z", "b"),
        );
        let block = Block {
            seq: 3,
            bytes: text.into_bytes(),
        };
        let parsed = parse_block(block, 7).unwrap();
        assert_eq!((parsed.seq, parsed.lines), (3, 5));
        assert_eq!(parsed.accepted, 3);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].line, 2, "the third line");
        assert_eq!(parsed.rejected[0].text, "{not json");
        let mut months: Vec<_> = parsed
            .partitions
            .iter()
            .map(|(key, batch)| (key.tenant.clone(), key.month, batch.num_rows()))
            .collect();
        months.sort();
        assert_eq!(
            months,
            [("a".into(), 1, 1), ("a".into(), 2, 1), ("b".into(), 1, 1)]
        );
    }
}
