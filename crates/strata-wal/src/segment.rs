//! The bytes of a write-ahead segment: the records of the requests it
//! acknowledged, each with the time its events were taken in and who sent
//! them, checksummed and, in an object store, compressed.
//!
//! Layout before compression: the magic, then per record its `ingested_at`
//! (i64 little-endian), the principal's name (u16 length, bytes) and its
//! accepted lines (u32 length, NDJSON bytes, each line ending in `\n`),
//! then the BLAKE3 hash of everything before it. In a local folder that is
//! the segment: it lives for minutes in the page cache, and compressing it
//! took 8% of the server's CPU under NDJSON load for no gain. Bound for an
//! object store over the network it is compressed as one LZ4 block behind
//! the tag `SWL4` and its size (u32 LE): LZ4 because segments are written
//! on the acknowledgement path, so speed matters more than size (zstd at
//! level 1 took 12% of the server's CPU, LZ4 a third of that). Segments of
//! earlier versions, zstd frames, are still read. Segments are written once
//! and never changed, so the hash only has to catch damage at rest.

use std::borrow::Cow;

use bytes::Bytes;

/// Identifies a segment and its layout version.
const MAGIC: &[u8] = b"STRATA-WAL-1\n";

/// Starts a segment compressed with LZ4 (followed by the raw size).
const LZ4_TAG: &[u8] = b"SWL4";

/// Starts a zstd frame: a segment written by an earlier version.
const ZSTD_FRAME: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// LZ4 expands at most this much (a run of one byte): a segment declaring
/// more raw bytes than that times its compressed size is damaged, and is
/// refused before that much memory is allocated for it.
const LZ4_MAX_RATIO: usize = 255;

/// How a segment is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As laid out: for a local folder.
    None,
    /// One LZ4 block: for an object store across a network.
    Lz4,
}

/// The events of one acknowledged request (or of one replayed record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the server took the events in (UTC microseconds): stamped on
    /// every row, the same whether the row is written out from memory or
    /// replayed from the segment after a crash.
    pub ingested_at: i64,
    /// The principal that sent them.
    pub principal: String,
    /// The accepted events as event-contract NDJSON, each line ending in `\n`.
    pub lines: Bytes,
}

/// Why a segment could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("write-ahead segment is damaged: {0}")]
pub struct Damaged(String);

/// Encodes `records` as one segment.
pub fn encode(records: &[&Record], compression: Compression) -> Bytes {
    let size: usize = records
        .iter()
        .map(|r| 14 + r.principal.len() + r.lines.len())
        .sum();
    let mut raw = Vec::with_capacity(MAGIC.len() + size + 32);
    raw.extend_from_slice(MAGIC);
    for record in records {
        raw.extend_from_slice(&record.ingested_at.to_le_bytes());
        let principal = record.principal.as_bytes();
        raw.extend_from_slice(&(principal.len() as u16).to_le_bytes());
        raw.extend_from_slice(principal);
        raw.extend_from_slice(&(record.lines.len() as u32).to_le_bytes());
        raw.extend_from_slice(&record.lines);
    }
    let hash = blake3::hash(&raw);
    raw.extend_from_slice(hash.as_bytes());
    if compression == Compression::None {
        return raw.into();
    }
    // Its size fits the u32 LZ4 prepends: request bodies are at most 1 GiB
    // (--max-body-mib) and a segment takes more only up to 16 MiB.
    let mut out = Vec::with_capacity(LZ4_TAG.len() + 4 + raw.len() / 2);
    out.extend_from_slice(LZ4_TAG);
    out.extend_from_slice(&lz4_flex::block::compress_prepend_size(&raw));
    out.into()
}

/// Decodes a segment written by [`encode`] (or by an earlier version).
pub fn decode(bytes: &[u8]) -> Result<Vec<Record>, Damaged> {
    let raw = decompress(bytes)?;
    let body = raw
        .strip_prefix(MAGIC)
        .ok_or_else(|| Damaged("it does not start with the segment magic".into()))?;
    let Some(split) = body.len().checked_sub(32) else {
        return Err(Damaged("it is shorter than its checksum".into()));
    };
    let (mut rest, hash) = body.split_at(split);
    if blake3::hash(&raw[..raw.len() - 32]).as_bytes() != hash {
        return Err(Damaged("its checksum does not match its bytes".into()));
    }
    let mut records = Vec::new();
    while !rest.is_empty() {
        let ingested_at = i64::from_le_bytes(take::<8>(&mut rest)?);
        let name_len = u16::from_le_bytes(take::<2>(&mut rest)?) as usize;
        let principal = String::from_utf8(take_slice(&mut rest, name_len)?.to_vec())
            .map_err(|_| Damaged("a principal's name is not UTF-8".into()))?;
        let lines_len = u32::from_le_bytes(take::<4>(&mut rest)?) as usize;
        let lines = Bytes::copy_from_slice(take_slice(&mut rest, lines_len)?);
        records.push(Record {
            ingested_at,
            principal,
            lines,
        });
    }
    Ok(records)
}

/// The raw bytes of a segment, stored as they are, in LZ4 or in zstd.
fn decompress(bytes: &[u8]) -> Result<Cow<'_, [u8]>, Damaged> {
    if bytes.starts_with(MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    if let Some(block) = bytes.strip_prefix(LZ4_TAG) {
        let declared = block
            .get(..4)
            .map(|size| u32::from_le_bytes(size.try_into().expect("4 bytes")) as usize);
        if declared.is_none_or(|size| size > block.len() * LZ4_MAX_RATIO) {
            return Err(Damaged("its declared size is missing or impossible".into()));
        }
        return lz4_flex::block::decompress_size_prepended(block)
            .map(Cow::Owned)
            .map_err(|e| Damaged(format!("not LZ4: {e}")));
    }
    if bytes.starts_with(ZSTD_FRAME) {
        return zstd::stream::decode_all(bytes)
            .map(Cow::Owned)
            .map_err(|e| Damaged(format!("not zstd: {e}")));
    }
    Err(Damaged(
        "it does not start with the segment magic, nor is it LZ4 or zstd".into(),
    ))
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], Damaged> {
    Ok(take_slice(rest, N)?.try_into().expect("N bytes"))
}

fn take_slice<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], Damaged> {
    if rest.len() < n {
        return Err(Damaged("a record runs past the end".into()));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ingested_at: i64, principal: &str, lines: &str) -> Record {
        Record {
            ingested_at,
            principal: principal.into(),
            lines: Bytes::copy_from_slice(lines.as_bytes()),
        }
    }

    #[test]
    fn records_come_back_as_written_stored_plain_or_in_lz4() {
        let a = record(1, "shipper", "{\"a\":1}\n{\"b\":2}\n");
        let b = record(-7, "ünïcode", "");
        let c = record(i64::MAX, "", "{}\n");
        for compression in [Compression::None, Compression::Lz4] {
            let bytes = encode(&[&a, &b, &c], compression);
            assert_eq!(
                decode(&bytes).unwrap(),
                vec![a.clone(), b.clone(), c.clone()]
            );
            assert_eq!(decode(&encode(&[], compression)).unwrap(), vec![]);
        }
        let repetitive = record(1, "p", &"{\"a\":1}\n".repeat(100));
        let plain = encode(&[&repetitive], Compression::None);
        let lz4 = encode(&[&repetitive], Compression::Lz4);
        assert!(plain.starts_with(MAGIC) && lz4.starts_with(LZ4_TAG));
        assert!(lz4.len() * 5 < plain.len(), "{} {}", lz4.len(), plain.len());
    }

    /// A segment as an earlier version wrote it: zstd of the same layout.
    fn zstd_segment(raw: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(raw, 1).unwrap()
    }

    #[test]
    fn segments_of_the_earlier_zstd_version_are_still_read() {
        let a = record(5, "shipper", "{\"a\":1}\n");
        let raw = encode(&[&a], Compression::None);
        assert_eq!(decode(&zstd_segment(&raw)).unwrap(), vec![a]);
    }

    #[test]
    fn damage_is_detected_not_replayed() {
        let mut raw = encode(&[&record(1, "p", "{\"a\":1}\n")], Compression::None).to_vec();
        let flip = raw.len() - 40;
        raw[flip] ^= 1;
        for damaged in [
            raw.clone(),
            zstd_segment(&raw),
            [LZ4_TAG, &lz4_flex::compress_prepend_size(&raw)].concat(),
        ] {
            let err = decode(&damaged).unwrap_err().to_string();
            assert!(err.contains("checksum"), "{err}");
        }
        assert!(decode(b"not a segment").is_err());
        assert!(decode(&raw[..MAGIC.len() + 3]).is_err());
        let truncated = zstd_segment(&raw[..MAGIC.len() + 3]);
        assert!(decode(&truncated).is_err());
        let lz4 = encode(&[&record(1, "p", "{\"a\":1}\n")], Compression::Lz4);
        let cut = &lz4[..lz4.len() - 3];
        assert!(decode(cut).unwrap_err().to_string().contains("LZ4"));
        let huge = [LZ4_TAG, &(1u32 << 30).to_le_bytes(), &[0; 16]].concat();
        assert!(decode(&huge).unwrap_err().to_string().contains("size"));
    }
}
