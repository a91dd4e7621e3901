//! Input cut into blocks of whole lines, and a block parsed into one record
//! batch per partition. Blocks are what the ingest's worker threads parse in
//! parallel. A parsed block places its rejected lines within itself; the
//! ingest takes blocks back in input order and so knows where each block
//! starts, which gives every rejected line its exact number in the input
//! whichever thread parsed it (and spares the reading thread a count of
//! every block's lines).
//!
//! Lines have a maximum length: the reader keeps only the start of a longer
//! one, discards the rest as it reads, and the parser rejects it. So memory
//! stays bounded even by an input without a newline, or by a compressed input
//! that expands into one huge line.

use std::io::{self, BufRead, Read};

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use strata_schema::{Event, EventBatchBuilder, parse_line};
use strata_store::PartitionKey;

/// Whole lines of one input.
pub struct Block {
    /// Position in the input, from 0.
    pub seq: u64,
    /// The lines, each ending in `\n` except perhaps the input's last; a
    /// line longer than `max_line` is cut to its first [`KEPT_OF_OVERLONG`]
    /// bytes.
    pub bytes: Vec<u8>,
    /// Where each line longer than `max_line` starts in `bytes`, in order.
    pub overlong: Vec<usize>,
    /// The maximum length of a line in bytes, `\n` excluded.
    pub max_line: usize,
}

/// Bytes kept of a line longer than the maximum, to show in its rejection.
pub const KEPT_OF_OVERLONG: usize = 256;

/// Room for the line that crosses a block's `size`, reserved with the
/// block so that finishing that line does not reallocate (and copy) it.
const LINE_SLACK: usize = 64 << 10;

/// Cuts a line reader into blocks of at least `size` bytes (but for the
/// last), never inside a line. A block holds at most about `size` plus
/// `max_line` bytes whatever the input.
pub struct BlockReader<R> {
    reader: R,
    size: usize,
    max_line: usize,
    /// The start of a line that the previous block cut off (no `\n` in it).
    carry: Vec<u8>,
    /// Buffers of parsed blocks, given back for reuse: at most as many as
    /// blocks were ever in flight at once.
    spare: Vec<Vec<u8>>,
    next_seq: u64,
}

impl<R: BufRead> BlockReader<R> {
    /// Reads `reader` in blocks of at least `size` bytes, with lines of at
    /// most `max_line` bytes (`\n` excluded).
    pub fn new(reader: R, size: usize, max_line: usize) -> Self {
        BlockReader {
            reader,
            size: size.max(1),
            max_line: max_line.max(1),
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
        let mut overlong = Vec::new();
        // The lines before `line_start` are whole and within the maximum;
        // `bytes[line_start..checked]` holds no `\n`.
        let mut line_start: usize = 0;
        let mut checked = bytes.len();
        let complete = loop {
            let wanted = self.size.saturating_sub(bytes.len()).max(1 << 16) as u64;
            if (&mut self.reader).take(wanted).read_to_end(&mut bytes)? == 0 {
                break bytes.len();
            }
            loop {
                // The line at `line_start` must end by `limit`. Searching
                // backwards from there skips the shorter lines before it
                // without looking at each.
                let limit = (line_start + 1).saturating_add(self.max_line);
                let end = limit.min(bytes.len());
                if let Some(newline) = memchr::memrchr(b'\n', &bytes[checked..end]) {
                    line_start = checked + newline + 1;
                    checked = end;
                } else if end == limit {
                    // Too long: keep its start for the rejection and drop
                    // the rest, read or not, up to its `\n` (kept).
                    overlong.push(line_start);
                    let kept = line_start + KEPT_OF_OVERLONG.min(self.max_line);
                    match memchr::memchr(b'\n', &bytes[end..]) {
                        Some(newline) => {
                            bytes.drain(kept..end + newline);
                        }
                        None => {
                            bytes.truncate(kept);
                            if skip_rest_of_line(&mut self.reader)? {
                                bytes.push(b'\n');
                            }
                        }
                    }
                    checked = kept;
                } else {
                    checked = end;
                    break;
                }
            }
            // The block ends with its last whole line once it holds
            // `size` bytes, so that `k` blocks always hold at least
            // `k * size` bytes.
            if line_start >= self.size {
                break line_start;
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
            overlong,
            max_line: self.max_line,
        };
        self.next_seq += 1;
        Ok(Some(block))
    }
}

/// Reads and discards `reader` up to and including the next `\n`, or to the
/// end of the input, a buffer at a time. Returns whether a `\n` was found.
fn skip_rest_of_line(reader: &mut impl BufRead) -> io::Result<bool> {
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(false);
        }
        match memchr::memchr(b'\n', buf) {
            Some(newline) => {
                reader.consume(newline + 1);
                return Ok(true);
            }
            None => {
                let len = buf.len();
                reader.consume(len);
            }
        }
    }
}

/// Why a line longer than `max_line` bytes is rejected.
fn overlong_reason(max_line: usize) -> String {
    if max_line.is_multiple_of(1024) {
        format!(
            "line is longer than the maximum of {} KiB (--max-line-kib)",
            max_line / 1024
        )
    } else {
        format!("line is longer than the maximum of {max_line} bytes")
    }
}

/// A line that broke the event contract, found while parsing a block.
pub struct BadLine {
    /// Position of the line in its block, from 0.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The line itself (lossy UTF-8), or only its start if it is longer
    /// than the maximum.
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
/// the block), then grouped into one batch per partition
/// ([`partition_batches`]).
pub fn parse_block(block: Block, ingested_at: i64) -> Result<ParsedBlock, ArrowError> {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    let mut line_no = 0;
    let body = block.bytes.strip_suffix(b"\n").unwrap_or(&block.bytes);
    let mut overlong = block.overlong.iter().peekable();
    for (start, line) in lines(body) {
        let text = line.trim_ascii();
        let too_long = overlong.next_if_eq(&&start).is_some();
        if too_long {
            rejected.push(BadLine {
                line: line_no,
                reason: overlong_reason(block.max_line),
                text: String::from_utf8_lossy(text).into_owned(),
            });
        } else if !text.is_empty() {
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
    let partitions = partition_batches(&events, ingested_at)?;
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

/// The lines of `body` with the offset each starts at, split at each `\n`
/// as `split` would (the part after the last one included), found with
/// SIMD: a byte-by-byte split was a twentieth of a server's CPU.
pub fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    ends.map(move |end| {
        let line = (start, &body[start..end]);
        start = end + 1;
        line
    })
}

/// `events` grouped by partition, one batch per partition stamped with
/// `ingested_at`. Each batch is built from its events at its exact size:
/// one copy of each value, where building one batch and splitting it by
/// partition would copy each twice, and grow buffers on the way.
pub fn partition_batches(
    events: &[Event],
    ingested_at: i64,
) -> Result<Vec<(PartitionKey, RecordBatch)>, ArrowError> {
    by_partition(events)
        .into_iter()
        .map(|(key, events)| Ok((key, EventBatchBuilder::batch_of(&events, ingested_at)?)))
        .collect()
}

/// `events` grouped by partition, each group in input order; the groups in
/// no particular order.
pub fn by_partition<'e, 'a>(events: &'e [Event<'a>]) -> Vec<(PartitionKey, Vec<&'e Event<'a>>)> {
    // Events grouped by tenant, family and month, without building a key
    // (and copying the tenant) per event. foldhash rather than the default
    // SipHash: this is a lookup per event, and its seed is random as well.
    let mut groups: foldhash::HashMap<_, Vec<&Event>> = foldhash::HashMap::default();
    for event in events {
        let month = PartitionKey::month_of(event.ts);
        groups
            .entry((&event.tenant, event.family, month))
            .or_default()
            .push(event);
    }
    groups
        .into_values()
        .map(|events| {
            let first = events[0];
            (
                PartitionKey::of(&first.tenant, first.family, first.ts),
                events,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_split_does_and_know_where_they_start() {
        for body in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\n\nb\n",
            "\n\na\r\n",
            "ab\ncd\nef",
        ] {
            let body = body.as_bytes();
            let expected: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
            let found: Vec<(usize, &[u8])> = lines(body).collect();
            assert_eq!(found.iter().map(|(_, l)| *l).collect::<Vec<_>>(), expected);
            for (start, line) in found {
                assert_eq!(&body[start..start + line.len()], line, "{body:?}");
            }
        }
    }

    /// The blocks of `text`, with lines of at most `max_line` bytes, each
    /// block's buffer handed back for reuse (after copying it out) as the
    /// ingest does.
    fn blocks(text: &str, size: usize, max_line: usize) -> Vec<Block> {
        let mut reader = BlockReader::new(text.as_bytes(), size, max_line);
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
            let got = blocks(text, size, 1 << 20);
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
        assert!(blocks("", 4, 1 << 20).is_empty());
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
            overlong: Vec::new(),
            max_line: 1 << 20,
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

    #[test]
    fn overlong_lines_are_cut_to_their_start_and_their_offsets_recorded() {
        let max_line = 300;
        let at_limit = "a".repeat(max_line);
        let over = "b".repeat(max_line + 1);
        // Longer than a read (64 KiB): its rest is discarded from the reader.
        let huge = "c".repeat(200_000);
        let middle = ["x", &at_limit, &over, "y", &huge, &at_limit, "", "z"].join("\n");
        let cut = |line: &str| {
            if line.len() > max_line {
                line[..KEPT_OF_OVERLONG].to_string()
            } else {
                line.to_string()
            }
        };
        let cases = [
            format!("{middle}\n"),
            format!("{middle}\n{over}"),
            format!("{middle}\n{over}\n"),
            format!("{middle}\n{huge}"),
            format!("{middle}\n{huge}\n"),
            format!("{huge}\n{middle}"),
        ];
        for (case, text) in cases.iter().enumerate() {
            let mut expected = String::new();
            let mut offsets = Vec::new();
            for line in text.split_inclusive('\n') {
                if line.trim_end_matches('\n').len() > max_line {
                    offsets.push(expected.len());
                }
                expected += &cut(line.trim_end_matches('\n'));
                if line.ends_with('\n') {
                    expected.push('\n');
                }
            }
            for size in [1, 7, 1000, 1 << 20] {
                let got = blocks(text, size, max_line);
                let mut joined = Vec::new();
                let mut got_offsets = Vec::new();
                for block in &got {
                    got_offsets.extend(block.overlong.iter().map(|o| joined.len() + o));
                    joined.extend_from_slice(&block.bytes);
                    assert_eq!(block.max_line, max_line);
                }
                assert_eq!(
                    String::from_utf8(joined).unwrap(),
                    expected,
                    "case {case}, size {size}: every line but the overlong ones intact"
                );
                assert_eq!(got_offsets, offsets, "case {case}, size {size}");
            }
        }
    }

    #[test]
    fn an_overlong_line_is_rejected_with_its_number_between_intact_neighbours() {
        let good = |i: u32| {
            format!(
                r#"{{"ts":"2025-01-01T00:00:00Z","tenant":"a","family":"access","action":"login","event_id":"e{i}"}}"#
            )
        };
        let over = format!(r#"{{"message":"{}"}}"#, "é".repeat(1_000));
        let text = [
            good(1),
            good(2),
            over.clone(),
            good(3),
            String::new(),
            good(4),
        ]
        .join("\n");
        for size in [1, 100, 1 << 20] {
            let mut reader = BlockReader::new(text.as_bytes(), size, 1024);
            let (mut lines, mut accepted, mut rejected) = (0, 0, Vec::new());
            while let Some(block) = reader.next_block().unwrap() {
                let parsed = parse_block(block, 0).unwrap();
                accepted += parsed.accepted;
                for bad in parsed.rejected {
                    rejected.push((lines + 1 + bad.line, bad.reason, bad.text));
                }
                lines += parsed.lines;
            }
            assert_eq!((lines, accepted), (6, 4), "size {size}");
            assert_eq!(rejected.len(), 1, "size {size}");
            let (line, reason, text) = &rejected[0];
            assert_eq!(*line, 3, "size {size}");
            assert_eq!(
                reason,
                "line is longer than the maximum of 1 KiB (--max-line-kib)"
            );
            assert!(over.starts_with(text.trim_end_matches('\u{FFFD}')));
            assert!(text.len() <= KEPT_OF_OVERLONG + 3, "only its start is kept");
        }
    }

    #[test]
    fn an_endless_line_is_read_in_bounded_memory() {
        let endless = io::BufReader::with_capacity(1 << 16, io::repeat(b'x').take(1 << 30));
        let mut reader = BlockReader::new(endless, 4 << 20, 1 << 20);
        let block = reader.next_block().unwrap().unwrap();
        assert_eq!(block.bytes, [b'x'; KEPT_OF_OVERLONG]);
        assert_eq!(block.overlong, [0]);
        assert!(
            block.bytes.capacity() <= 8 << 20,
            "the block buffer grew to {} bytes",
            block.bytes.capacity()
        );
        assert!(reader.next_block().unwrap().is_none());
    }
}
