//! Options that shape a log: segment size, durability, compression, recovery.

use std::time::Duration;

/// When an append is durable (survives power loss) relative to when it returns.
///
/// Whatever the mode, an appended record is in the OS page cache when `append`
/// returns, so it survives a crash of the process; the mode decides when it also
/// survives a crash of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Never syncs by itself; only [`crate::Wal::sync`] makes records durable.
    /// Each 4 MiB a segment's appends have moved past is handed to the disk in
    /// the background (not waited for), so a later sync has little left to write.
    Buffered,
    /// Every append returns only after its record (and every record before it) is durable.
    PerWrite,
    /// Leader/follower group commit: an append returns once durable, and one
    /// sync covers every writer waiting at that moment. Before syncing, the
    /// leader waits at most `max_delay` for writers that had reserved space but
    /// not finished copying when it took the lead, so their records ride along.
    Group {
        /// Longest the leader waits for in-flight copies before it syncs.
        max_delay: Duration,
    },
    /// A background thread syncs at this interval; appends return at once.
    /// Early writeback runs as for `Buffered`.
    Interval(Duration),
}

/// Per-record compression. Compressed records are flagged in their header and
/// decompressed transparently on read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Store payloads as given.
    None,
    /// Compress payloads of at least `min_size` bytes with zstd at `level`; a
    /// payload that does not shrink is stored raw.
    Zstd {
        /// zstd level (1 is fast; 3 is zstd's default).
        level: i32,
        /// Payloads shorter than this are stored raw.
        min_size: usize,
    },
}

/// What `open()` does when it finds a record that does not verify, with
/// RocksDB's meaning.
///
/// A bad record is a *torn tail* when nothing after it proves it had been made
/// durable; it is *corruption* when a later valid record was written after the
/// bad one was already durable (every record header carries the durable LSN of
/// its moment of writing). See `recovery.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Drop a torn tail; fail on corruption of durable records (the default).
    TolerateCorruptedTail,
    /// Fail on any bad record, torn tail included.
    AbsoluteConsistency,
    /// Stop at the first bad record, torn or not, and drop everything after it.
    PointInTime,
    /// Skip bad records, keep every valid one, and count what was skipped.
    SkipCorrupted,
}

/// How a new segment's blocks are prepared before records go into them.
///
/// A sync over blocks that were already written is cheaper than one that must
/// also convert preallocated (unwritten) extents, so for frequent syncs new
/// segments are filled with zeros through their mapping in a background thread;
/// retired segments, whose blocks are already written, are reused. Zero-filling
/// costs a second write of every segment, which only pays where syncs are small
/// and frequent. Either way the preparer prefaults each spare writable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentInit {
    /// `ZeroFill` for `PerWrite` and `Group`, `Reserve` for `Buffered` and
    /// `Interval` (the default).
    Auto,
    /// Reserve the blocks (`fallocate`) and zero them through the mapping, then sync.
    ZeroFill,
    /// Only reserve the blocks (`fallocate`): cheaper to create, dearer to sync.
    Reserve,
}

/// Options for [`crate::Wal::open`]: exactly these four fields. Build with
/// `..WalOptions::default()` or set them all.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Size of every segment file in bytes (default 64 MiB). A record (or a whole
    /// batch) must fit in one segment.
    pub segment_size: u64,
    /// When appends are durable (default: group commit).
    pub durability: Durability,
    /// Per-record compression (default: none).
    pub compression: Compression,
    /// What recovery does with bad records (default: tolerate a torn tail).
    pub recovery: RecoveryMode,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 << 20,
            durability: Durability::Group {
                max_delay: Duration::from_micros(500),
            },
            compression: Compression::None,
            recovery: RecoveryMode::TolerateCorruptedTail,
        }
    }
}

/// How segment files are prepared and reused; see [`crate::Wal::open_with`].
/// The defaults suit most logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    /// How new segments are prepared (default: by durability mode).
    pub init: SegmentInit,
    /// How many retired segments are kept for reuse instead of deleted (default 2).
    pub recycle: usize,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            init: SegmentInit::Auto,
            recycle: 2,
        }
    }
}

/// The smallest segment this crate accepts: room for a header, a page of records and a seal.
pub const MIN_SEGMENT_SIZE: u64 = 8 << 10;
/// The largest segment: offsets inside a segment are stored as `u32`.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 31;

/// Whether the preparer faults spare segments in writable before use.
///
/// Only where appends run ahead of syncs (`Buffered`, `Interval`): there it
/// saves the appender a page fault per page. Where syncs are frequent it buys
/// nothing (each msync write-protects the pages again) and it makes every page
/// of a spare dirty and mapped writable, so pages later filled through the file
/// pay a write-protect at msync anyway.
pub(crate) fn prefaults_spares(durability: Durability) -> bool {
    matches!(durability, Durability::Buffered | Durability::Interval(_))
}

impl SegmentInit {
    /// What `Auto` means under `durability`; other choices stand as they are.
    pub fn resolve(self, durability: Durability) -> SegmentInit {
        match (self, durability) {
            (SegmentInit::Auto, Durability::Buffered | Durability::Interval(_)) => {
                SegmentInit::Reserve
            }
            (SegmentInit::Auto, _) => SegmentInit::ZeroFill,
            (chosen, _) => chosen,
        }
    }
}
