//! Shared pieces of tidemark's benchmarks: the machine's own limits, measured
//! with the plainest code that reaches them, so every figure can be quoted as
//! a ratio to what the disk and the page cache allow.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub mod floors;
pub mod pool;

/// Bench size knob: `TIDEMARK_BENCH_QUICK=1`, or criterion's test mode, shrinks
/// data sets to smoke-test size. Criterion tests (runs each benchmark once)
/// unless it is given `--bench`, as `cargo bench` does; `cargo test` gives it
/// no flag at all, and `--test` asks for test mode explicitly.
pub fn quick() -> bool {
    let flag = |name: &str| std::env::args().skip(1).any(|a| a == name);
    std::env::var_os("TIDEMARK_BENCH_QUICK").is_some() || !flag("--bench") || flag("--test")
}

/// Rounds of an alternating comparison: every implementation (or baseline) is
/// measured once per round, in turn, so the slow drift of a shared disk falls
/// on both sides of a ratio alike. Three in a full run, one in quick mode.
pub fn rounds() -> usize {
    if quick() { 1 } else { 3 }
}

/// The order of `n` implementations in round `round`: rotated by one place per
/// round, so none always runs first (right after another's setup or warm-up)
/// or always follows the same neighbour.
pub fn round_order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n.max(1))
}

/// The id of `name` at `size` in round `round`: `<size>~r<round>`.
/// `scripts/bench-report.py` folds the rounds of one benchmark into one row
/// (median of round medians) and pairs ratios round by round.
pub fn round_id(name: &str, size: &str, round: usize) -> criterion::BenchmarkId {
    criterion::BenchmarkId::new(name, format!("{size}~r{round}"))
}

/// The criterion settings the append and comparison suites share: 20 samples,
/// 1 s warm-up and 3 s of measurement (0.2 s and 0.5 s in quick mode).
pub fn criterion_config() -> criterion::Criterion {
    let (warm, measure) = if quick() { (200, 500) } else { (1000, 3000) };
    criterion::Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(warm))
        .measurement_time(std::time::Duration::from_millis(measure))
}

/// Lets the disk go quiet before a measurement: writes back every dirty page on
/// the system (`sync(2)`, which also lets the discards of files deleted before
/// reach the device on a `-o discard` mount) and waits a moment. Every
/// implementation in a comparison starts after it, so none pays for the I/O
/// left behind by the one measured before it.
pub fn settle() {
    // SAFETY: sync(2) takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::sync() };
    if !quick() {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Creates `path` empty, for reading and writing.
fn create_empty(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// A file of `len` bytes whose blocks are allocated *and written* (zeros), so a
/// later `pwrite` + `fdatasync` over it never converts extents: the fastest
/// durable single-writer loop this disk offers.
pub fn preallocated_file(path: &Path, len: u64) -> io::Result<File> {
    let file = create_empty(path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let n = zeros.len().min((len - off) as usize);
        file.write_all_at(&zeros[..n], off)?;
        off += n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

/// The durable floor: `pwrite` of `record` at the next offset, then `fdatasync`.
pub struct PwriteFdatasync {
    file: File,
    len: u64,
    off: u64,
    unwritten: bool,
}

impl PwriteFdatasync {
    /// Over a preallocated, zero-filled file of `len` bytes at `path`.
    pub fn new(path: &Path, len: u64) -> io::Result<Self> {
        Ok(PwriteFdatasync {
            file: preallocated_file(path, len)?,
            len,
            off: 0,
            unwritten: false,
        })
    }

    /// Over a file of `len` bytes whose blocks are only reserved (`fallocate`,
    /// unwritten extents): every sync must also convert extents. Each
    /// wrap-around re-reserves the file so the writes never land on written blocks.
    pub fn new_unwritten(path: &Path, len: u64) -> io::Result<Self> {
        let file = create_empty(path)?;
        reserve(&file, len)?;
        Ok(PwriteFdatasync {
            file,
            len,
            off: 0,
            unwritten: true,
        })
    }

    /// One durable write; wraps around at the end of the file.
    pub fn write(&mut self, record: &[u8]) -> io::Result<()> {
        if self.off + record.len() as u64 > self.len {
            self.off = 0;
            if self.unwritten {
                self.file.set_len(0)?;
                reserve(&self.file, self.len)?;
            }
        }
        self.file.write_all_at(record, self.off)?;
        self.off += record.len() as u64;
        self.file.sync_data()
    }
}

/// Reserves `len` bytes of blocks for `file` without writing them.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `file` is open for the duration of the call; fallocate reads no memory of ours.
    match unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The buffered ceiling: `BufWriter` appends of the same bytes, no sync. Like a
/// log with retention it appends new data to a new file and, every `limit`
/// bytes, deletes the file and starts the next (so it never just overwrites
/// pages already in the page cache, which no log does).
pub struct PlainBufWriter {
    out: BufWriter<File>,
    path: std::path::PathBuf,
    written: u64,
    limit: u64,
    rewind: bool,
}

impl PlainBufWriter {
    /// Appends to a fresh file at `path`; starts over in a new file after `limit` bytes.
    pub fn new(path: &Path, limit: u64) -> io::Result<Self> {
        Ok(PlainBufWriter {
            out: BufWriter::new(File::create(path)?),
            path: path.to_path_buf(),
            written: 0,
            limit,
            rewind: false,
        })
    }

    /// Like [`PlainBufWriter::new`], but rewinds and overwrites the same file
    /// instead: once warm, every write lands on a page already in the cache.
    /// The upper bound of a page-cache copy, not of appending.
    pub fn overwriting(path: &Path, limit: u64) -> io::Result<Self> {
        let mut w = Self::new(path, limit)?;
        w.rewind = true;
        Ok(w)
    }

    /// One buffered append.
    pub fn write(&mut self, record: &[u8]) -> io::Result<()> {
        if self.written >= self.limit {
            self.out.flush()?;
            if self.rewind {
                use std::io::Seek;
                self.out.get_mut().rewind()?;
            } else {
                std::fs::remove_file(&self.path)?;
                self.out = BufWriter::new(File::create(&self.path)?);
            }
            self.written = 0;
        }
        self.out.write_all(record)?;
        self.written += record.len() as u64;
        Ok(())
    }

    /// Flushes the buffer and `fdatasync`s the current file: everything
    /// written to it so far is durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Reads every byte of the files under `dir` through a buffered reader; returns the count.
pub fn plain_read_dir(dir: &Path) -> io::Result<u64> {
    use std::io::Read;
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wal") {
            let mut f = io::BufReader::with_capacity(1 << 20, File::open(path)?);
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
    }
    Ok(total)
}

/// The least a reopen that checksums every byte can cost here: reads every
/// `*.wal` file under `dir` (whole files, unused space included) from the page
/// cache and runs CRC32C over it (crc-fast, the fastest kernel this CPU has,
/// as tidemark uses), one file at a time per core, on all cores.
/// Returns the bytes checksummed. Nothing is parsed or indexed.
pub fn crc_dir_all_cores(dir: &Path) -> io::Result<u64> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wal") {
            files.push(path);
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| crc_claimed_files(&files, &next)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .sum()
    })
}

/// CRC32C of files claimed one at a time from `next`, through a buffer that stays in L2.
fn crc_claimed_files(
    files: &[std::path::PathBuf],
    next: &std::sync::atomic::AtomicUsize,
) -> io::Result<u64> {
    use std::io::Read;
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0;
    while let Some(path) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
        let mut f = File::open(path)?;
        let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            total += n as u64;
        }
        std::hint::black_box(crc.finalize());
    }
    Ok(total)
}

/// Bytes resident in process memory, read back on all cores: the machine's
/// memory-read bandwidth, below every floor that touches each byte once.
pub struct ResidentBytes {
    words: Vec<u64>,
}

impl ResidentBytes {
    /// `len` bytes (rounded down to whole words), written once so every page is resident.
    pub fn new(len: u64) -> ResidentBytes {
        let n = usize::try_from(len / 8).unwrap_or(usize::MAX);
        let words = (0..n as u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        ResidentBytes { words }
    }

    /// CRC32C (crc-fast, as tidemark's recovery runs it) of the bytes, split evenly
    /// over all cores; returns the XOR of the parts' checksums. No faults, no copy.
    pub fn crc_all_cores(&self) -> u32 {
        self.on_all_cores(|part| crc_fast::crc32_iscsi(as_bytes(part)))
            .fold(0u32, |a, c| a ^ c)
    }

    /// Reads every word once, split evenly over all cores; returns their wrapping sum
    /// (so the reads cannot be elided). No page faults, no copy, no checksum.
    pub fn read_all_cores(&self) -> u64 {
        self.on_all_cores(sum_words).fold(0u64, u64::wrapping_add)
    }

    /// `work` over one even share of the words per core, in parallel; the results in order.
    fn on_all_cores<T: Send>(&self, work: impl Fn(&[u64]) -> T + Sync) -> std::vec::IntoIter<T> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.words.len().div_ceil(threads).max(1);
        let work = &work;
        std::thread::scope(|s| {
            let workers: Vec<_> = self
                .words
                .chunks(chunk)
                .map(|part| s.spawn(move || work(part)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Vec<T>>()
                .into_iter()
        })
    }
}

/// The bytes of `words`, in memory order.
fn as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: any initialized u64 is 8 initialized bytes; u8 has alignment 1; the length
    // is the same allocation's, and the borrow keeps `words` alive and unchanged.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

/// Wrapping sum over four independent lanes, so the loop is bound by memory, not by one add chain.
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 4];
    let mut quads = words.chunks_exact(4);
    for q in &mut quads {
        for (lane, w) in lanes.iter_mut().zip(q) {
            *lane = lane.wrapping_add(*w);
        }
    }
    let tail = quads
        .remainder()
        .iter()
        .fold(0u64, |a, w| a.wrapping_add(*w));
    lanes.iter().fold(tail, |a, l| a.wrapping_add(*l))
}
