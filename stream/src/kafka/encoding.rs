//! The binary encoding of offset ranges, as they travel to executors in task
//! descriptions and rest in checkpoints.
//!
//! Format 1, every integer an unsigned LEB128 varint in its shortest form:
//!
//! ```text
//! one range:      version (1 byte, = 1) | body
//! list of ranges: version (1 byte, = 1) | count | body * count
//! body:           topic length | topic (UTF-8) | partition | from_offset | until_offset - from_offset
//! ```
//!
//! A range of a 20-byte topic with offsets below 2^21 takes 28 bytes. The
//! containers carry the checksum (checkpoint parts, task frames), so the
//! format has none; decoding checks every field against the range's invariants
//! and the buffer's end, rejects trailing bytes and non-shortest varints (so
//! every range has exactly one encoding), and never panics.

use bytes::{BufMut, Bytes, BytesMut};

use super::offset_range::{MAX_TOPIC_LEN, OffsetRange};
use crate::error::StreamError;

/// The format version written.
pub const OFFSET_RANGE_FORMAT: u8 = 1;

/// The smallest body: a 1-byte topic and four 1-byte varints.
const MIN_BODY: usize = 5;

/// Encodes one range.
pub fn encode_offset_range(range: &OffsetRange) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + range.topic().len() + 4 * 10);
    out.put_u8(OFFSET_RANGE_FORMAT);
    put_body(&mut out, range);
    out.freeze()
}

/// Decodes one range made by [`encode_offset_range`].
pub fn decode_offset_range(bytes: &[u8]) -> Result<OffsetRange, StreamError> {
    let mut input = Input::new(bytes);
    input.version()?;
    let range = input.body()?;
    input.finish()?;
    Ok(range)
}

/// Encodes a list of ranges (a batch's) in one buffer.
pub fn encode_offset_ranges(ranges: &[OffsetRange]) -> Bytes {
    let len: usize = ranges.iter().map(|r| r.topic().len() + 4 * 10).sum();
    let mut out = BytesMut::with_capacity(1 + 10 + len);
    out.put_u8(OFFSET_RANGE_FORMAT);
    put_varint(&mut out, ranges.len() as u64);
    for range in ranges {
        put_body(&mut out, range);
    }
    out.freeze()
}

/// Decodes a list made by [`encode_offset_ranges`].
pub fn decode_offset_ranges(bytes: &[u8]) -> Result<Vec<OffsetRange>, StreamError> {
    let mut input = Input::new(bytes);
    input.version()?;
    let count = input.varint("range count")?;
    // Never allocate for more ranges than the bytes left could hold.
    let fits = input.left() / MIN_BODY;
    if count > fits as u64 {
        return Err(input.bad(format!(
            "claims {count} ranges, but {} bytes hold at most {fits}",
            input.left()
        )));
    }
    let mut ranges = Vec::with_capacity(count as usize);
    for _ in 0..count {
        ranges.push(input.body()?);
    }
    input.finish()?;
    Ok(ranges)
}

fn put_body(out: &mut BytesMut, range: &OffsetRange) {
    put_varint(out, range.topic().len() as u64);
    out.put_slice(range.topic().as_bytes());
    put_varint(out, range.partition() as u64);
    put_varint(out, range.from_offset() as u64);
    put_varint(out, range.count());
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// A cursor over encoded bytes whose every read is checked.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes, at: 0 }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn bad(&self, reason: String) -> StreamError {
        StreamError::BadInput {
            source_name: "offset range encoding".to_string(),
            reason: format!("at byte {}: {reason}", self.at),
        }
    }

    fn version(&mut self) -> Result<(), StreamError> {
        match self.bytes.first() {
            Some(&OFFSET_RANGE_FORMAT) => {
                self.at = 1;
                Ok(())
            }
            Some(v) => Err(self.bad(format!(
                "format version {v}; this build reads {OFFSET_RANGE_FORMAT}"
            ))),
            None => Err(self.bad("empty input".to_string())),
        }
    }

    fn varint(&mut self, what: &str) -> Result<u64, StreamError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(self.bad(format!("{what} cut off")));
            };
            self.at += 1;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && byte > 1 {
                return Err(self.bad(format!("{what} overflows 64 bits")));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(self.bad(format!("{what} is not in its shortest form")));
                }
                return Ok(value);
            }
        }
        Err(self.bad(format!("{what} is longer than 10 bytes")))
    }

    fn bounded(&mut self, what: &str, max: u64) -> Result<u64, StreamError> {
        let value = self.varint(what)?;
        if value > max {
            return Err(self.bad(format!("{what} {value} is above {max}")));
        }
        Ok(value)
    }

    fn body(&mut self) -> Result<OffsetRange, StreamError> {
        let len = self.bounded("topic length", MAX_TOPIC_LEN as u64)? as usize;
        let Some(raw) = self.bytes.get(self.at..self.at + len) else {
            return Err(self.bad(format!("topic of {len} bytes cut off")));
        };
        let topic = std::str::from_utf8(raw)
            .map_err(|e| self.bad(format!("topic is not UTF-8: {e}")))?
            .to_string();
        self.at += len;
        let partition = self.bounded("partition", i32::MAX as u64)? as i32;
        let from = self.bounded("from_offset", i64::MAX as u64)? as i64;
        let count = self.bounded("offset count", (i64::MAX - from) as u64)? as i64;
        OffsetRange::new(topic, partition, from, from + count).map_err(|e| self.bad(e.to_string()))
    }

    fn finish(&self) -> Result<(), StreamError> {
        match self.left() {
            0 => Ok(()),
            n => Err(self.bad(format!("{n} bytes after the end"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(topic: &str, partition: i32, from: i64, until: i64) -> OffsetRange {
        OffsetRange::new(topic, partition, from, until).expect("valid range")
    }

    #[test]
    fn ranges_round_trip_including_extremes() {
        let ranges = vec![
            range("orders", 0, 0, 0),
            range("orders.v2_x-y", 7, 127, 128),
            range(&"t".repeat(MAX_TOPIC_LEN), i32::MAX, 0, i64::MAX),
            range("t", 0, i64::MAX, i64::MAX),
        ];
        for r in &ranges {
            assert_eq!(
                &decode_offset_range(&encode_offset_range(r)).expect("decode"),
                r
            );
        }
        let list = encode_offset_ranges(&ranges);
        assert_eq!(decode_offset_ranges(&list).expect("decode list"), ranges);
        assert!(
            decode_offset_ranges(&encode_offset_ranges(&[]))
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn the_encoding_is_compact() {
        let r = range("twenty-bytes-topic-x", 3, 1_000_000, 1_001_000);
        assert_eq!(encode_offset_range(&r).len(), 1 + 1 + 20 + 1 + 3 + 2);
    }

    #[test]
    fn every_cut_of_an_encoding_is_an_error() {
        let one = encode_offset_range(&range("topic", 2, 300, 70_000));
        for cut in 0..one.len() {
            assert!(decode_offset_range(&one[..cut]).is_err(), "cut at {cut}");
        }
        let list = encode_offset_ranges(&[range("a", 0, 1, 2), range("b", 1, 3, 400)]);
        for cut in 0..list.len() {
            assert!(decode_offset_ranges(&list[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bad_fields_are_named_errors() {
        let good = encode_offset_range(&range("t", 1, 2, 3)).to_vec();
        let err = |bytes: &[u8]| {
            decode_offset_range(bytes)
                .expect_err("must fail")
                .to_string()
        };
        let mut version = good.clone();
        version[0] = 2;
        assert!(err(&version).contains("format version 2"));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(err(&trailing).contains("after the end"));
        // topic length 1, topic "t", partition as a non-shortest varint (0x81 0x00).
        assert!(err(&[1, 1, b't', 0x81, 0x00, 2, 1]).contains("shortest form"));
        assert!(err(&[1, 1, b' ', 1, 2, 1]).contains("illegal topic name"));
        assert!(err(&[1, 1, 0xff, 1, 2, 1]).contains("not UTF-8"));
        assert!(err(&[1, 0, 1, 2, 1]).contains("topic name of 0 bytes"));
        assert!(err(&[1, 0xfa, 0x01]).contains("topic length 250"));
        // partition 2^31: above i32::MAX.
        assert!(err(&[1, 1, b't', 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0]).contains("partition"));
        let overflow = [
            1, 1, b't', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert!(err(&overflow).contains("overflows"));
        // from_offset i64::MAX and a count of 1: until would overflow.
        let mut past = vec![1, 1, b't', 0];
        past.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1]);
        assert!(err(&past).contains("offset count 1 is above 0"));
    }

    #[test]
    fn a_list_claiming_more_ranges_than_bytes_is_refused_before_allocating() {
        let mut bytes = vec![1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        bytes.extend_from_slice(&[1, b't', 0, 0, 0]);
        let err = decode_offset_ranges(&bytes).expect_err("must fail");
        assert!(err.to_string().contains("at most 1"), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_offset_range(&bytes);
            let _ = decode_offset_ranges(&bytes);
        }

        #[test]
        fn valid_ranges_round_trip(
            topic in "[a-zA-Z0-9._-]{3,40}",
            partition in 0..=i32::MAX,
            from in 0..=i64::MAX,
            count in any::<u64>(),
        ) {
            let until = from.saturating_add((count >> 1) as i64);
            let r = range(&topic, partition, from, until);
            prop_assert_eq!(decode_offset_range(&encode_offset_range(&r)).expect("decode"), r);
        }
    }
}
