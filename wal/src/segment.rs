//! One segment file: a fixed-size file, fully allocated, mapped whole.
//!
//! Invariants:
//! - A segment file never shrinks while mapped; it is created at its final size
//!   with its blocks reserved, and only ever renamed (recycled) or unlinked.
//! - Bytes are written only into ranges reserved by the writer that owns them
//!   (see `Wal::reserve`), and a published frame is never written again while
//!   the segment is live, so readers may hold slices of it.
//! - `synced_to` only grows, and everything below it is durable.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Result, WalError};
use crate::format::{
    FRAME_HEADER_LEN, FrameHeader, KIND_SEAL, SEAL_FRAME_LEN, SEGMENT_HEADER_LEN, SegmentHeader,
};
use crate::fs_util::{pwrite_all_vectored, reserve_blocks, sync_dir};
use crate::options::SegmentInit;
use crate::slot_index::SlotIndex;

/// Frames at least this long are written with `pwritev` rather than copied
/// into the mapping (see [`Segment::write_frame`]): two pages, so that such a
/// frame always covers at least one page whole.
pub(crate) const WRITE_THROUGH_FILE_MIN: usize = 8 << 10;

/// The system's page size (4 KiB if it cannot be read): `madvise` ranges must start on one.
fn page_size() -> u64 {
    // SAFETY: sysconf reads a system constant; it touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// The file name of the segment with sequence number `seq`.
pub(crate) fn segment_file_name(seq: u64) -> String {
    format!("seg-{seq:020}.wal")
}

/// The sequence number in a segment file name, if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".wal")?
        .parse()
        .ok()
}

/// A prepared segment file that holds no live records: created ahead of need,
/// or retired and kept for reuse.
pub(crate) struct Spare {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) map: MmapRaw,
    pub(crate) seq: u64,
}

impl Spare {
    /// Creates `seg-<seq>.wal` of `len` bytes: reserved, optionally zero-filled
    /// through its mapping, synced, then renamed into place and the directory synced.
    pub(crate) fn create(dir: &Path, seq: u64, len: u64, init: SegmentInit) -> Result<Spare> {
        let path = dir.join(segment_file_name(seq));
        let tmp = path.with_extension("wal.tmp");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| WalError::io("create segment", &tmp, e))?;
        let prepared = prepare(&file, &tmp, len, init);
        if let Err(e) = prepared {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let map = prepared?;
        std::fs::rename(&tmp, &path).map_err(|e| WalError::io("rename segment", &tmp, e))?;
        sync_dir(dir)?;
        Ok(Spare {
            path,
            file,
            map,
            seq,
        })
    }

    /// Renames this spare to carry `seq` (the caller syncs the directory).
    pub(crate) fn renumber(mut self, dir: &Path, seq: u64) -> Result<Spare> {
        let path = dir.join(segment_file_name(seq));
        std::fs::rename(&self.path, &path)
            .map_err(|e| WalError::io("rename segment", &self.path, e))?;
        self.path = path;
        self.seq = seq;
        Ok(self)
    }

    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Faults every page in writable without changing a byte, so the appender
    /// takes no page fault per page (best effort: a kernel without
    /// MADV_POPULATE_WRITE just leaves the faults to the appender).
    ///
    /// The pages become dirty again; if the segment sits unused for longer
    /// than the kernel's dirty expiry, the zeros are written back once more.
    pub(crate) fn prefault(&self) {
        if let Err(e) = self.map.advise(memmap2::Advice::PopulateWrite) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot prefault segment");
        }
    }
}

fn prepare(file: &File, path: &Path, len: u64, init: SegmentInit) -> Result<MmapRaw> {
    reserve_blocks(file, len).map_err(|e| WalError::io("reserve blocks for segment", path, e))?;
    let map = MmapOptions::new()
        .len(len as usize)
        .map_raw(file)
        .map_err(|e| WalError::io("map segment", path, e))?;
    if init == SegmentInit::ZeroFill {
        // Fault pages in one by one: with readahead the kernel caches a large file
        // in large folios, and an msync of a 4 KiB range then writes the whole folio.
        advise(&map, path, memmap2::Advice::Random);
        // SAFETY: the mapping is `len` bytes long, private to this function (the
        // file is a fresh temporary no one else has), and writable.
        unsafe { std::ptr::write_bytes(map.as_mut_ptr(), 0, len as usize) };
        advise(&map, path, memmap2::Advice::Normal);
        map.flush()
            .map_err(|e| WalError::io("sync zero-filled segment", path, e))?;
    }
    file.sync_all()
        .map_err(|e| WalError::io("sync segment", path, e))?;
    Ok(map)
}

/// Best-effort `madvise` of the whole mapping.
fn advise(map: &MmapRaw, path: &Path, advice: memmap2::Advice) {
    if let Err(e) = map.advise(advice) {
        tracing::debug!(path = %path.display(), error = %e, ?advice, "madvise failed");
    }
}

/// Opens and maps an existing segment file whole, writable or read-only.
pub(crate) fn map_existing(path: &Path, writable: bool) -> Result<(File, MmapRaw)> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .map_err(|e| WalError::io("open segment", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| WalError::io("stat segment", path, e))?
        .len();
    if len < SEGMENT_HEADER_LEN + SEAL_FRAME_LEN {
        return Err(WalError::NotAWal {
            path: path.to_path_buf(),
            reason: format!("{len} bytes is too short for a segment"),
        });
    }
    let mut opts = MmapOptions::new();
    opts.len(len as usize);
    let map = if writable {
        opts.map_raw(&file)
    } else {
        opts.map_raw_read_only(&file)
    };
    let map = map.map_err(|e| WalError::io("map segment", path, e))?;
    Ok((file, map))
}

/// A live segment: its header, its mapping and its index.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    /// The open file behind `map`, for frames written with `pwritev`.
    file: File,
    map: MmapRaw,
    pub(crate) header: SegmentHeader,
    pub(crate) salt: u32,
    pub(crate) index: SlotIndex,
    synced_to: AtomicU64,
    end_lsn: AtomicU64,
    sealed_end: AtomicU64,
    sealed_at: AtomicU64,
}

impl Segment {
    fn new(path: PathBuf, file: File, map: MmapRaw, header: SegmentHeader) -> Segment {
        let capacity = (map.len() as u64 - SEGMENT_HEADER_LEN) / FRAME_HEADER_LEN as u64;
        Segment {
            path,
            file,
            salt: header.salt(),
            index: SlotIndex::with_capacity(capacity as usize + 1),
            map,
            header,
            synced_to: AtomicU64::new(0),
            end_lsn: AtomicU64::new(u64::MAX),
            sealed_end: AtomicU64::new(0),
            sealed_at: AtomicU64::new(0),
        }
    }

    /// Turns a spare into the live segment that starts at `base_lsn` by writing
    /// its header. The header is durable with the segment's first sync.
    pub(crate) fn activate(spare: Spare, log_id: u64, base_lsn: u64, now_nanos: u64) -> Segment {
        let header = SegmentHeader {
            version: crate::format::FORMAT_VERSION,
            tag: rand::random::<u32>() | 1,
            log_id,
            seq: spare.seq,
            base_lsn,
            created_unix_nanos: now_nanos,
            segment_len: spare.len(),
        };
        let seg = Segment::new(spare.path, spare.file, spare.map, header);
        // SAFETY: a spare belongs to no one else, and the header range lies inside the mapping.
        unsafe { seg.write_at(0, &header.encode()) };
        seg
    }

    /// Wraps a recovered segment whose header decoded.
    pub(crate) fn recovered(
        path: PathBuf,
        file: File,
        map: MmapRaw,
        header: SegmentHeader,
    ) -> Segment {
        Segment::new(path, file, map, header)
    }

    /// Length of the segment file.
    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Maps every page of the segment at once (reading from disk what the page
    /// cache lacks), so that a scan of it takes no page fault per few pages.
    /// Best effort: without MADV_POPULATE_READ the scan faults as usual.
    pub(crate) fn populate_for_scan(&self) {
        if let Err(e) = self.map.advise(memmap2::Advice::PopulateRead) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot populate segment");
        }
    }

    /// False when the file is shorter than its header says (cut by damage).
    pub(crate) fn is_whole(&self) -> bool {
        self.len() == self.header.segment_len
    }

    /// Copies `bytes` into the mapping at `off`.
    ///
    /// # Safety
    /// The caller owns `off..off + bytes.len()` exclusively (it reserved it, or
    /// holds the segment alone), no reader has been handed that range, and the
    /// mapping is writable. Bounds are checked here.
    pub(crate) unsafe fn write_at(&self, off: u64, bytes: &[u8]) {
        let end = off as usize + bytes.len();
        assert!(end <= self.map.len(), "write beyond segment end");
        // SAFETY: in bounds (checked above); exclusive ownership of the range is the caller's contract.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(off as usize),
                bytes.len(),
            )
        };
    }

    /// Writes one frame (its encoded header, then its payload) at `off`.
    ///
    /// Frames of at least [`WRITE_THROUGH_FILE_MIN`] bytes go through the file
    /// with one `pwritev` into the same page cache the mapping shows; smaller
    /// ones are copied into the mapping. Either way the bytes are visible
    /// through the mapping when this returns and become durable with
    /// [`Segment::sync_to`] (an msync is an fsync of the file range, whatever
    /// dirtied the pages). Why: every page dirtied *through the mapping* costs
    /// a write fault and, at msync, a write-protect with a TLB flush; for a
    /// frame spanning many pages that is most of the gap to a plain
    /// `pwrite` + `fdatasync` (see BENCHMARKS.md). Should the `pwritev` fail,
    /// the frame is copied into the mapping instead and any disk trouble
    /// surfaces at the next sync, which is fatal for the instance.
    ///
    /// # Safety
    /// As for [`Segment::write_at`], for `off..off + header.len() + payload.len()`.
    pub(crate) unsafe fn write_frame(&self, off: u64, header: &[u8], payload: &[u8]) {
        let len = header.len() + payload.len();
        if len >= WRITE_THROUGH_FILE_MIN && off as usize + len <= self.map.len() {
            let mut bufs = [IoSlice::new(header), IoSlice::new(payload)];
            match pwrite_all_vectored(&self.file, off, &mut bufs) {
                Ok(()) => return,
                Err(e) => tracing::warn!(
                    path = %self.path.display(), off, error = %e,
                    "pwritev of a frame failed; copying it into the mapping instead"
                ),
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            self.write_at(off, header);
            self.write_at(off + header.len() as u64, payload);
        }
    }

    /// The bytes at `off..off + len`, or `None` when out of bounds.
    ///
    /// Only call for ranges that no one writes any more: published frames, or any
    /// range while recovery holds the segment alone.
    pub(crate) fn bytes(&self, off: u64, len: u64) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        // SAFETY: in bounds (checked above); by this function's contract nobody
        // writes the range while the returned borrow of `self` lives.
        Some(unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(off as usize), len as usize)
        })
    }

    /// The frame header at `off`, its raw bytes and its claimed payload, if the
    /// claimed extent lies inside the segment. Nothing is verified.
    pub(crate) fn frame_at(
        &self,
        off: u64,
    ) -> Option<(FrameHeader, &[u8; FRAME_HEADER_LEN], &[u8])> {
        let raw: &[u8; FRAME_HEADER_LEN] =
            self.bytes(off, FRAME_HEADER_LEN as u64)?.try_into().ok()?;
        let h = FrameHeader::decode(raw);
        let payload = self.bytes(off + FRAME_HEADER_LEN as u64, u64::from(h.len))?;
        Some((h, raw, payload))
    }

    /// The frame at `off` if it verifies as a frame of this segment incarnation.
    pub(crate) fn valid_frame_at(&self, off: u64) -> Option<(FrameHeader, &[u8])> {
        let (h, raw, payload) = self.frame_at(off)?;
        (h.tag == self.header.tag && h.verify(self.salt, raw, payload)).then_some((h, payload))
    }

    /// Writes the seal frame at `off`: the segment ends there and the next one
    /// starts at `next_lsn`. Called with the reservation lock held.
    pub(crate) fn seal(&self, off: u64, next_lsn: u64, durable: u64, now_nanos: u64) {
        let payload = now_nanos.to_le_bytes();
        let h = FrameHeader {
            crc: 0,
            len: payload.len() as u32,
            lsn: next_lsn,
            tag: self.header.tag,
            hint_delta: u32::try_from(next_lsn.saturating_sub(durable)).unwrap_or(u32::MAX),
            batch_left: 0,
            kind: KIND_SEAL,
            flags: 0,
        };
        let raw = h.encode(self.salt, &payload);
        if off + SEAL_FRAME_LEN > self.len() {
            // Only a file cut short by damage lacks room; recovery never appends to one.
            self.mark_sealed(self.len(), next_lsn, now_nanos);
            return;
        }
        // SAFETY: the caller holds the reservation lock and `off` is the reservation
        // end, so this range belongs to no writer; the bounds are checked above.
        unsafe {
            self.write_at(off, &raw);
            self.write_at(off + FRAME_HEADER_LEN as u64, &payload);
        }
        self.mark_sealed(off + SEAL_FRAME_LEN, next_lsn, now_nanos);
    }

    /// Records that the segment ends at byte `end` and LSN `end_lsn` (exclusive).
    pub(crate) fn mark_sealed(&self, end: u64, end_lsn: u64, at_nanos: u64) {
        self.sealed_at.store(at_nanos, Ordering::Release);
        self.sealed_end.store(end, Ordering::Release);
        self.end_lsn.store(end_lsn, Ordering::Release);
    }

    /// First LSN past this segment once sealed; `u64::MAX` while it takes appends.
    pub(crate) fn end_lsn(&self) -> u64 {
        self.end_lsn.load(Ordering::Acquire)
    }

    /// Byte end of the seal frame once sealed, else `None`.
    pub(crate) fn sealed_end(&self) -> Option<u64> {
        match self.sealed_end.load(Ordering::Acquire) {
            0 => None,
            end => Some(end),
        }
    }

    /// The byte end of the seal if this segment is sealed and its seal is not
    /// yet durable. A segment whose records were all durable when it was sealed
    /// owes only its seal: [`crate::Wal`]'s sync leader pays it before it makes
    /// any record of a later segment durable.
    pub(crate) fn owed_seal(&self) -> Option<u64> {
        self.sealed_end()
            .filter(|&end| self.synced_to.load(Ordering::Acquire) < end)
    }

    /// When the segment was sealed (unix nanos), if it is.
    pub(crate) fn sealed_at(&self) -> Option<u64> {
        self.sealed_end()
            .map(|_| self.sealed_at.load(Ordering::Acquire))
    }

    /// Makes bytes up to `to` durable (msync of the range not yet synced).
    /// Only the sync leader or recovery calls this.
    pub(crate) fn sync_to(&self, to: u64) -> Result<()> {
        #[cfg(test)]
        if fail_injection::sync_fails(&self.path) {
            let eio = std::io::Error::from_raw_os_error(libc::EIO);
            return Err(WalError::io("sync", &self.path, eio));
        }
        let from = self.synced_to.load(Ordering::Acquire);
        let to = to.min(self.len());
        if to <= from {
            return Ok(());
        }
        self.map
            .flush_range(from as usize, (to - from) as usize)
            .map_err(|e| WalError::io("sync", &self.path, e))?;
        self.synced_to.store(to, Ordering::Release);
        Ok(())
    }

    /// Starts writing the whole pages inside `from..to` back to disk, without
    /// waiting for them. First drops this process's page-table entries for the
    /// range (the pages stay in the page cache, dirty, and fault back in on the
    /// next access), so the kernel's write-protect pass before the I/O finds no
    /// mapping to flush and interrupts no other core. Durability is unchanged:
    /// only [`Segment::sync_to`] makes bytes durable; this only moves the disk
    /// work earlier, so a later sync has less left to write.
    ///
    /// Call only for ranges no writer copies into any more (a racing copy is
    /// still correct, merely faulted back in and written twice).
    pub(crate) fn start_writeback(&self, from: u64, to: u64) -> std::io::Result<()> {
        let page = page_size();
        let from = from.next_multiple_of(page);
        let to = (to.min(self.len()) / page) * page;
        if to <= from {
            return Ok(());
        }
        let (off, len) = (from as usize, (to - from) as usize);
        // SAFETY: `off..off + len` lies inside the mapping (clamped above).
        // MADV_DONTNEED on a shared file mapping only unmaps: the page cache
        // keeps the bytes and their dirty state, and any later access (a
        // reader's borrowed slice included) faults the same bytes back in.
        unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, len)?;
        }
        // SAFETY: a plain syscall on an open descriptor with a checked range; it
        // reads no memory of this process.
        let rc = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                from as libc::off64_t,
                (to - from) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Takes the mapping back as a spare, for reuse under a new sequence number.
    pub(crate) fn into_spare(self) -> Spare {
        Spare {
            path: self.path,
            file: self.file,
            map: self.map,
            seq: self.header.seq,
        }
    }
}

/// Failure injection for the crate's own tests, scoped to one directory so
/// that tests running beside it in the same process are not affected.
#[cfg(test)]
pub(crate) mod fail_injection {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static SYNC_FAILS_UNDER: Mutex<Option<PathBuf>> = Mutex::new(None);

    /// While set, every segment sync under `dir` fails with EIO.
    pub(crate) fn fail_syncs_under(dir: Option<&Path>) {
        *SYNC_FAILS_UNDER.lock().unwrap_or_else(|p| p.into_inner()) = dir.map(Path::to_path_buf);
    }

    pub(crate) fn sync_fails(path: &Path) -> bool {
        let dir = SYNC_FAILS_UNDER.lock().unwrap_or_else(|p| p.into_inner());
        dir.as_deref().is_some_and(|d| path.starts_with(d))
    }
}
