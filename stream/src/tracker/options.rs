//! How a tracker's metadata WAL is shaped.

use std::time::Duration;

use tidemark_wal::{Durability, RecoveryMode, WalOptions};

/// Options of [`crate::tracker::ReceivedBlockTracker::open`]. The WAL always
/// runs group commit: an event is durable when its call returns, and events
/// logged at the same moment by different threads share one sync.
#[derive(Clone, Debug)]
pub struct TrackerOptions {
    /// Size of each metadata-WAL segment file, a multiple of 4096 from
    /// [`tidemark_wal::MIN_SEGMENT_SIZE`] (8 KiB) up. Truncation retires whole
    /// segments only, so smaller segments free space sooner. An allocation's
    /// event lists its blocks (13 to 33 bytes each) and must fit in one
    /// segment, so this also bounds the blocks of one batch: about 120,000 at
    /// the default of 4 MiB, about 240 at 8 KiB.
    pub segment_size: u64,
    /// Longest a group-commit leader waits for other writers before it syncs
    /// (default: the WAL's, 500 µs).
    pub group_commit_delay: Duration,
    /// What opening does with a damaged record (default: drop a torn tail,
    /// refuse corruption of durable records).
    pub recovery: RecoveryMode,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        let wal = WalOptions::default();
        let group_commit_delay = match wal.durability {
            Durability::Group { max_delay } => max_delay,
            _ => Duration::from_micros(500),
        };
        TrackerOptions {
            segment_size: 4 << 20,
            group_commit_delay,
            recovery: wal.recovery,
        }
    }
}

impl TrackerOptions {
    /// The WAL options these make.
    pub(crate) fn wal_options(&self) -> WalOptions {
        WalOptions {
            segment_size: self.segment_size,
            durability: Durability::Group {
                max_delay: self.group_commit_delay,
            },
            recovery: self.recovery,
            ..WalOptions::default()
        }
    }
}
