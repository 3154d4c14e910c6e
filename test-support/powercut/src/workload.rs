//! The records a guest writes, and the lines it prints about them.
//!
//! A record says who wrote it: `W<writer>-S<seq>-` then filler derived from
//! both, 200 to 499 bytes in all. So a record read back after a power cut can
//! be checked on its own, whatever LSN it got, and one that no writer made
//! (invented by a bad recovery) is recognised.
//!
//! Lines, one per event, on the guest's serial console:
//! - writer: `ACK <lsn> <writer> <seq>` once `append` returned;
//!   `TRUNCATING <lsn>` before `truncate_before(lsn)`;
//! - checker: `R <lsn> <writer> <seq>` per record read back intact,
//!   `BAD <lsn>` per record that is not one a writer made, `OPENFAIL <error>`,
//!   `READERR <error>`, then `CHECK records=<n> bad=<n>`.

/// The record `seq` of `writer`.
pub fn record(writer: u64, seq: u64) -> Vec<u8> {
    let mut v = format!("W{writer}-S{seq}-").into_bytes();
    let mut x = (writer << 48 ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = 200 + (seq.wrapping_mul(7919) % 300) as usize;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

/// `(writer, seq)` if `data` is exactly a record [`record`] makes.
pub fn parse_record(data: &[u8]) -> Option<(u64, u64)> {
    let head = data.get(..data.len().min(48))?;
    let text = std::str::from_utf8(head).ok()?;
    let mut it = text.splitn(3, '-');
    let writer = it.next()?.strip_prefix('W')?.parse().ok()?;
    let seq = it.next()?.strip_prefix('S')?.parse().ok()?;
    (record(writer, seq) == data).then_some((writer, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_back_and_damage_does_not() {
        for (w, s) in [(0, 1), (3, 12_345), (1, 999_999)] {
            let r = record(w, s);
            assert!((200..500).contains(&r.len()));
            assert_eq!(parse_record(&r), Some((w, s)));
            let mut bad = r.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(parse_record(&bad), None);
        }
        assert_eq!(parse_record(b"W1-S2-"), None);
        assert_eq!(parse_record(&[0xff; 300]), None);
    }
}
