//! A small binary codec for the stream layer's messages and records: fixed
//! little-endian integers and length-prefixed byte strings. Decoding checks
//! every length against what is left and never panics on bad input.

use bytes::{BufMut, Bytes, BytesMut};

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Writes values into a buffer.
#[derive(Default)]
pub struct Encoder {
    buf: BytesMut,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.put_u8(v);
        self
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.put_u32_le(v);
        self
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.put_u64_le(v);
        self
    }

    /// Appends a length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_u32_le(v.len() as u32);
        self.buf.put_slice(v);
        self
    }

    /// Appends a length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Appends `None` as 0, `Some(v)` as 1 then `v`.
    pub fn opt_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).u64(v),
        }
    }

    /// The encoded bytes.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// Reads values back, in the order they were written.
pub struct Decoder<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf, at: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                DecodeError(format!(
                    "{what} is cut off at byte {} ({n} bytes needed, {} left)",
                    self.at,
                    self.remaining()
                ))
            })?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// Where the next read starts.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    /// A `u32` count of entries of at least `min_len` bytes each, refused when
    /// the bytes left cannot hold them (so a lying count never sizes an allocation).
    pub fn count(&mut self, what: &str, min_len: usize) -> Result<usize, DecodeError> {
        let at = self.at;
        let count = self.u32(what)? as usize;
        if count.saturating_mul(min_len) > self.remaining() {
            return Err(DecodeError(format!(
                "{what} at byte {at} claims {count} entries, more than the {} bytes left can hold",
                self.remaining()
            )));
        }
        Ok(count)
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// A `u32`.
    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u64`.
    pub fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, what: &str) -> Result<String, DecodeError> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError(format!("{what}: not UTF-8")))
    }

    /// An optional `u64` as [`Encoder::opt_u64`] writes it.
    pub fn opt_u64(&mut self, what: &str) -> Result<Option<u64>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.u64(what).map(Some),
            t => Err(DecodeError(format!("{what}: option tag {t}"))),
        }
    }

    /// Fails unless every byte was read.
    pub fn end(&self, what: &str) -> Result<(), DecodeError> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError(format!(
                "{what}: {} trailing bytes",
                self.buf.len() - self.at
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_every_truncation_is_an_error() {
        let mut e = Encoder::new();
        e.u8(7)
            .u32(70_000)
            .u64(u64::MAX)
            .str("héllo")
            .opt_u64(None)
            .opt_u64(Some(9))
            .bytes(b"");
        let buf = e.finish();
        let read = |b: &[u8]| -> Result<_, DecodeError> {
            let mut d = Decoder::new(b);
            let v = (
                d.u8("a")?,
                d.u32("b")?,
                d.u64("c")?,
                d.str("d")?,
                d.opt_u64("e")?,
                d.opt_u64("f")?,
                d.bytes("g")?.len(),
            );
            d.end("all")?;
            Ok(v)
        };
        assert_eq!(
            read(&buf),
            Ok((7, 70_000, u64::MAX, "héllo".to_string(), None, Some(9), 0))
        );
        for cut in 0..buf.len() {
            assert!(read(&buf[..cut]).is_err(), "cut at {cut} decoded");
        }
        let mut long = buf.to_vec();
        long.push(0);
        assert!(read(&long).is_err());
    }
}
