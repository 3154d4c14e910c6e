//! The bytes of a block: its records, each a `u32` little-endian length and
//! then the record's bytes. Blocks travel and rest inside containers that
//! checksum them (block store files and transfers, WAL frames), so this
//! format carries no checksum of its own; decoding still checks every length
//! against what is there and never panics on bad input.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::StreamError;

/// Encodes `records` into one block.
pub fn encode_records(records: &[Bytes]) -> Bytes {
    let len: usize = records.iter().map(|r| 4 + r.len()).sum();
    let mut out = BytesMut::with_capacity(len);
    for r in records {
        out.put_u32_le(r.len() as u32);
        out.put_slice(r);
    }
    out.freeze()
}

/// Decodes a block made by [`encode_records`]; each record shares `block`'s memory.
pub fn decode_records(block: &Bytes, what: &str) -> Result<Vec<Bytes>, StreamError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < block.len() {
        let bad = |reason: String| StreamError::BadInput {
            source_name: what.to_string(),
            reason,
        };
        let head = block
            .get(at..at + 4)
            .ok_or_else(|| bad(format!("a record length cut off at byte {at}")))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let start = at + 4;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= block.len())
            .ok_or_else(|| {
                bad(format!(
                    "record at byte {at} claims {len} bytes, past the block's end"
                ))
            })?;
        records.push(block.slice(start..end));
        at = end;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_including_empty_ones() {
        let recs: Vec<Bytes> = ["", "a", "hello world", ""]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let block = encode_records(&recs);
        assert_eq!(decode_records(&block, "t").expect("decode"), recs);
        assert!(
            decode_records(&Bytes::new(), "t")
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn a_cut_or_lying_block_is_an_error_not_a_panic() {
        let block = encode_records(&[Bytes::from_static(b"abcdef"), Bytes::from_static(b"xyz")]);
        for cut in 1..block.len() {
            let part = block.slice(..cut);
            if let Ok(recs) = decode_records(&part, "t") {
                // Only a cut at a record boundary decodes, and then to a prefix.
                assert!(cut == 10, "cut {cut} decoded to {recs:?}");
            }
        }
        let mut lying = encode_records(&[Bytes::from_static(b"ab")]).to_vec();
        lying[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_records(&Bytes::from(lying), "t").is_err());
    }
}
