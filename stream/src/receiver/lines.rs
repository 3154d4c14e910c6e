//! Splitting a byte stream into `\n`-terminated lines of bounded length.
//!
//! Memory stays bounded by the maximum line length whatever the input: a line
//! that grows past it is dropped as it arrives and only its length is kept.

use bytes::Bytes;

/// One line out of the splitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line within the limit, without its `\n` (and a `\r` before it).
    Text(Bytes),
    /// A line longer than the limit; `len` is its length in bytes.
    Oversize { len: u64 },
}

/// Accumulates chunks and yields whole lines.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max_len: usize,
    line: Vec<u8>,
    /// Bytes of the current line dropped because it is oversize.
    skipped: u64,
}

impl LineSplitter {
    /// A splitter for lines of at most `max_len` bytes (before the `\n`).
    pub(crate) fn new(max_len: usize) -> LineSplitter {
        LineSplitter {
            max_len,
            line: Vec::new(),
            skipped: 0,
        }
    }

    /// Feeds `chunk`, handing each completed line to `emit`; stops at the first
    /// error `emit` returns (the rest of the chunk is dropped).
    pub(crate) fn feed<E>(
        &mut self,
        mut chunk: &[u8],
        emit: &mut impl FnMut(Line) -> Result<(), E>,
    ) -> Result<(), E> {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.append(&chunk[..end]);
                    chunk = &chunk[end + 1..];
                    emit(self.take_line())?;
                }
                None => {
                    self.append(chunk);
                    chunk = &[];
                }
            }
        }
        Ok(())
    }

    /// At the end of the stream: the last line if it had no `\n`.
    pub(crate) fn finish(&mut self) -> Option<Line> {
        if self.line.is_empty() && self.skipped == 0 {
            return None;
        }
        Some(self.take_line())
    }

    fn append(&mut self, part: &[u8]) {
        if self.skipped > 0 || self.line.len() + part.len() > self.max_len {
            self.skipped += (self.line.len() + part.len()) as u64;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(part);
    }

    fn take_line(&mut self) -> Line {
        if self.skipped > 0 {
            let len = std::mem::take(&mut self.skipped);
            return Line::Oversize { len };
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Line::Text(Bytes::from(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, input: &[u8], chunk: usize) -> Vec<Line> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            s.feed::<()>(part, &mut |l| {
                out.push(l);
                Ok(())
            })
            .expect("feed");
        }
        out.extend(s.finish());
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(Bytes::from(s.to_string()))
    }

    #[test]
    fn lines_split_the_same_whatever_the_chunking() {
        let input = b"alpha\r\nbeta\n\nlong-line-here\ngamma";
        let want = vec![
            text("alpha"),
            text("beta"),
            text(""),
            Line::Oversize { len: 14 },
            text("gamma"),
        ];
        for chunk in 1..=input.len() {
            assert_eq!(split(10, input, chunk), want, "chunks of {chunk}");
        }
    }

    #[test]
    fn an_oversize_line_never_grows_the_buffer_past_the_limit() {
        let mut s = LineSplitter::new(8);
        let big = vec![b'x'; 1 << 20];
        s.feed::<()>(&big, &mut |_| panic!("no line yet"))
            .expect("feed");
        assert!(s.line.capacity() <= 8, "kept {} bytes", s.line.capacity());
        let mut got = Vec::new();
        s.feed::<()>(b"\nok\n", &mut |l| {
            got.push(l);
            Ok(())
        })
        .expect("feed");
        assert_eq!(got, vec![Line::Oversize { len: 1 << 20 }, text("ok")]);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn an_error_from_emit_stops_the_feed() {
        let mut s = LineSplitter::new(8);
        let mut seen = 0;
        let r = s.feed(b"a\nb\nc\n", &mut |_| {
            seen += 1;
            if seen == 2 { Err("full") } else { Ok(()) }
        });
        assert_eq!((r, seen), (Err("full"), 2));
    }
}
