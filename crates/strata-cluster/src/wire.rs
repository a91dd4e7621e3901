//! The bytes of Strata's plan nodes: a magic line, then a JSON header
//! after its length, then whatever the node appends.

use datafusion::error::{DataFusionError, Result};
use serde::{Deserialize, Serialize};

/// Starts an encoded table.
pub(crate) const TABLE_MAGIC: &[u8] = b"strata-table/1\n";
/// Starts an encoded scan.
pub(crate) const SCAN_MAGIC: &[u8] = b"strata-scan/1\n";

/// Appends `header` as JSON after its length (4 bytes, little-endian).
pub(crate) fn join<T: Serialize>(header: &T, buf: &mut Vec<u8>) -> Result<()> {
    let json = serde_json::to_vec(header).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let len = u32::try_from(json.len())
        .map_err(|_| DataFusionError::Internal("header too long".into()))?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&json);
    Ok(())
}

/// The header [`join`] wrote and the bytes after it.
pub(crate) fn split<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<(T, &'a [u8])> {
    let bad =
        |reason: String| DataFusionError::Plan(format!("a damaged Strata plan node: {reason}"));
    let (len, rest) = buf
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("no length".into()))?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad(format!(
            "{len} header bytes announced, {} present",
            rest.len()
        )));
    }
    let (json, rest) = rest.split_at(len);
    let header = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    Ok((header, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Header {
        seq: u64,
        stores: BTreeMap<String, Option<String>>,
    }

    #[test]
    fn a_header_round_trips_and_damage_is_refused() {
        let header = Header {
            seq: 7,
            stores: [("strata://archive/".to_string(), None)].into(),
        };
        let mut buf = Vec::new();
        join(&header, &mut buf).unwrap();
        buf.extend_from_slice(b"rest");
        let (read, rest): (Header, &[u8]) = split(&buf).unwrap();
        assert_eq!((read, rest), (header, &b"rest"[..]));
        let cut = &buf[..buf.len() - 10];
        assert!(
            split::<Header>(cut)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
        assert!(split::<Header>(&buf[..2]).is_err());
    }
}
