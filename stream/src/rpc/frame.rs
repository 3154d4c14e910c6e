//! Frames on a driver–executor connection: a `u32` payload length, the
//! payload's CRC32C, then the payload (all little-endian). A length over the
//! limit is refused before anything is allocated; a bad checksum closes the
//! connection.

use std::io::{self, Read, Write};

/// The largest payload accepted (messages carry names and block ids, never blocks).
pub const MAX_FRAME: u32 = 16 << 20;

/// Writes one frame with a single `write_all`.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {} bytes", payload.len()),
            )
        })?;
    let mut buf = Vec::with_capacity(8 + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 8];
    if !read_all_or_eof(r, &mut head)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame claims {len} bytes"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if crc32c::crc32c(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame checksum mismatch",
        ));
    }
    Ok(Some(payload))
}

/// Fills `buf`; false if the stream ended before its first byte.
fn read_all_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").expect("write");
        write_frame(&mut buf, b"").expect("write");
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).expect("read"), Some(b"hello".to_vec()));
        assert_eq!(read_frame(&mut r).expect("read"), Some(Vec::new()));
        assert_eq!(read_frame(&mut r).expect("eof"), None);
        let mut flipped = buf.clone();
        flipped[9] ^= 1;
        assert!(read_frame(&mut &flipped[..]).is_err());
        assert!(
            read_frame(&mut &buf[..5]).is_err(),
            "a cut header is an error, not an end"
        );
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(read_frame(&mut &huge[..]).is_err());
    }
}
