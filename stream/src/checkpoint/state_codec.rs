//! The encoding of a [`StateMap`] as a checkpoint part, written and read as a
//! stream so a large state never has to fit in memory twice.
//!
//! ```text
//! "TMSTATE" format:u8
//! { 1:u8 key_len:u32le key value_len:u32le value }*   keys strictly increasing
//! 0:u8 count:u64le                                    then the end of the part
//! ```
//!
//! The checkpoint store checksums every part; the end marker, the count and
//! the key order catch a part that is cut short or was not written by this
//! encoder. A length is never trusted for an allocation: bytes are read as
//! they arrive.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use crate::block::BatchTime;

use super::state::StateMap;

const MAGIC: &[u8; 7] = b"TMSTATE";
/// The state part format this build writes and the newest it reads.
pub(crate) const STATE_FORMAT: u8 = 1;
const TAG_ENTRY: u8 = 1;
const TAG_END: u8 = 0;

/// Why a state part does not decode.
#[derive(Debug)]
pub(crate) enum StateDecodeError {
    /// Written by a newer build.
    NewerFormat(u8),
    /// Damaged or foreign bytes.
    Damaged(String),
    /// The read failed: damage found by the store's checks (`InvalidData`), or I/O.
    Io(io::Error),
}

/// Writes `state` to `out`; returns the number of entries written.
pub(crate) fn encode_state(state: &StateMap, out: &mut impl Write) -> io::Result<u64> {
    out.write_all(MAGIC)?;
    out.write_all(&[STATE_FORMAT])?;
    let mut count = 0u64;
    for (key, value) in state.iter() {
        out.write_all(&[TAG_ENTRY])?;
        write_bytes(out, key)?;
        write_bytes(out, value)?;
        count += 1;
    }
    out.write_all(&[TAG_END])?;
    out.write_all(&count.to_le_bytes())?;
    Ok(count)
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a state key or value of {} bytes exceeds 4 GiB",
                bytes.len()
            ),
        )
    })?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// Reads a state written by [`encode_state`], as of `last_batch`.
pub(crate) fn decode_state(
    input: &mut impl Read,
    last_batch: Option<BatchTime>,
) -> Result<StateMap, StateDecodeError> {
    let mut header = [0u8; 8];
    read_exact(input, &mut header, "header")?;
    if &header[..7] != MAGIC {
        return Err(StateDecodeError::Damaged(
            "not a state part (bad magic)".into(),
        ));
    }
    if header[7] > STATE_FORMAT {
        return Err(StateDecodeError::NewerFormat(header[7]));
    }
    let mut entries = BTreeMap::new();
    loop {
        let mut tag = [0u8; 1];
        read_exact(input, &mut tag, "entry tag")?;
        match tag[0] {
            TAG_ENTRY => insert_next(input, &mut entries)?,
            TAG_END => break,
            other => return Err(StateDecodeError::Damaged(format!("bad entry tag {other}"))),
        }
    }
    check_end(input, entries.len())?;
    Ok(StateMap::from_parts(entries, last_batch))
}

fn insert_next(
    input: &mut impl Read,
    entries: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), StateDecodeError> {
    let key = read_bytes(input, "key")?;
    let value = read_bytes(input, "value")?;
    if entries
        .last_key_value()
        .is_some_and(|(last, _)| *last >= key)
    {
        return Err(StateDecodeError::Damaged(format!(
            "key {} is out of order",
            entries.len()
        )));
    }
    entries.insert(key, value);
    Ok(())
}

fn check_end(input: &mut impl Read, decoded: usize) -> Result<(), StateDecodeError> {
    let mut count = [0u8; 8];
    read_exact(input, &mut count, "entry count")?;
    let count = u64::from_le_bytes(count);
    if count != decoded as u64 {
        return Err(StateDecodeError::Damaged(format!(
            "{decoded} entries, the end marker says {count}"
        )));
    }
    let mut rest = [0u8; 1];
    match input.read(&mut rest) {
        Ok(0) => Ok(()),
        Ok(_) => Err(StateDecodeError::Damaged(
            "bytes after the end marker".into(),
        )),
        Err(e) => Err(StateDecodeError::Io(e)),
    }
}

fn read_bytes(input: &mut impl Read, what: &str) -> Result<Vec<u8>, StateDecodeError> {
    let mut len = [0u8; 4];
    read_exact(input, &mut len, what)?;
    let len = u64::from(u32::from_le_bytes(len));
    let mut out = Vec::new();
    let got = input
        .take(len)
        .read_to_end(&mut out)
        .map_err(StateDecodeError::Io)?;
    if got as u64 != len {
        return Err(StateDecodeError::Damaged(format!(
            "{what} cut short: {got} of {len} bytes"
        )));
    }
    Ok(out)
}

fn read_exact(input: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), StateDecodeError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => StateDecodeError::Damaged(format!("{what} cut short")),
        _ => StateDecodeError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateMap {
        let mut state = StateMap::new();
        let input = vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"a".to_vec(), b"1".to_vec()),
            (Vec::new(), Vec::new()),
        ];
        state
            .update_state_by_key(BatchTime(1000), input, |_, values, _| {
                values.last().cloned()
            })
            .expect("update");
        state
    }

    fn encoded(state: &StateMap) -> Vec<u8> {
        let mut out = Vec::new();
        encode_state(state, &mut out).expect("encode to memory");
        out
    }

    #[test]
    fn state_round_trips() {
        let state = sample();
        let bytes = encoded(&state);
        let back = decode_state(&mut bytes.as_slice(), Some(BatchTime(1000))).expect("decode");
        assert_eq!(back, state);
    }

    #[test]
    fn every_cut_is_detected() {
        let bytes = encoded(&sample());
        for cut in 0..bytes.len() {
            let result = decode_state(&mut &bytes[..cut], None);
            assert!(
                matches!(result, Err(StateDecodeError::Damaged(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn newer_format_and_trailing_bytes_are_refused() {
        let mut bytes = encoded(&sample());
        bytes.push(0);
        assert!(matches!(
            decode_state(&mut bytes.as_slice(), None),
            Err(StateDecodeError::Damaged(_))
        ));
        bytes.pop();
        bytes[7] = STATE_FORMAT + 1;
        assert!(matches!(
            decode_state(&mut bytes.as_slice(), None),
            Err(StateDecodeError::NewerFormat(2))
        ));
    }
}
