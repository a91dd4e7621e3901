//! The bytes of a write-ahead segment: the records of the requests it
//! acknowledged, each with the time its events were taken in and who sent
//! them, checksummed and compressed.
//!
//! Layout before compression: the magic, then per record its `ingested_at`
//! (i64 little-endian), the principal's name (u16 length, bytes) and its
//! accepted lines (u32 length, NDJSON bytes, each line ending in `\n`),
//! then the BLAKE3 hash of everything before it. The whole is zstd
//! compressed. Segments are written once and never changed, so the hash
//! only has to catch damage at rest.

use bytes::Bytes;

/// Identifies a segment and its layout version.
const MAGIC: &[u8] = b"STRATA-WAL-1\n";

/// zstd level of segments: they are written on the acknowledgement path
/// and live for minutes, so speed matters more than size.
const ZSTD_LEVEL: i32 = 1;

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
pub fn encode(records: &[&Record]) -> Bytes {
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
    zstd::bulk::compress(&raw, ZSTD_LEVEL)
        .expect("zstd compresses into memory")
        .into()
}

/// Decodes a segment written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Record>, Damaged> {
    let raw = zstd::stream::decode_all(bytes).map_err(|e| Damaged(format!("not zstd: {e}")))?;
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
    fn records_come_back_as_written() {
        let a = record(1, "shipper", "{\"a\":1}\n{\"b\":2}\n");
        let b = record(-7, "ünïcode", "");
        let c = record(i64::MAX, "", "{}\n");
        let bytes = encode(&[&a, &b, &c]);
        assert_eq!(decode(&bytes).unwrap(), vec![a, b, c]);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn damage_is_detected_not_replayed() {
        let bytes = encode(&[&record(1, "p", "{\"a\":1}\n")]);
        let mut raw = zstd::stream::decode_all(&bytes[..]).unwrap();
        let flip = raw.len() - 40;
        raw[flip] ^= 1;
        let damaged = zstd::bulk::compress(&raw, 1).unwrap();
        let err = decode(&damaged).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        assert!(decode(b"not a segment").is_err());
        let truncated = zstd::bulk::compress(&raw[..MAGIC.len() + 3], 1).unwrap();
        assert!(decode(&truncated).is_err());
    }
}
