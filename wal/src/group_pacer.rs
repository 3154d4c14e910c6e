//! How long a group-commit leader waits for company before it syncs.
//!
//! Writers released by a sync come straight back with their next record, but
//! a few microseconds apart. A leader that syncs the moment it takes the lead
//! catches one or two of them, and the rest pile up for the sync after: with
//! N writers the batches alternate between small and large. The pacer
//! remembers how many records the last sync covered and how long it took; the
//! next leader waits until half as many records are reserved, for at most half
//! a sync (and never longer than the caller's `max_delay`). Half, because
//! waiting for all of them costs the full patience whenever the scheduler is
//! slow to run the released writers (measured: with 32 writers on 2 cores,
//! waiting for the whole last batch was slower than not waiting at all). A
//! lone writer's batches hold one record, so it never waits.
//!
//! The figures are hints shared without a lock: a stale value only makes one
//! wait a little shorter or longer, never unsafe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The last sync's batch size and duration, for the next leader.
#[derive(Default)]
pub(crate) struct GroupPacer {
    last_batch: AtomicU64,
    last_sync_nanos: AtomicU64,
}

/// What the next leader should wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expectation {
    /// Records to have reserved past the durable watermark before syncing:
    /// half the last batch.
    pub(crate) records: u64,
    /// The longest to wait for them.
    pub(crate) patience: Duration,
}

impl GroupPacer {
    /// Notes that a sync covering `batch` records took `took`.
    pub(crate) fn record(&self, batch: u64, took: Duration) {
        self.last_batch.store(batch, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.last_sync_nanos.store(nanos, Ordering::Relaxed);
    }

    /// What to wait for before the next sync, within `max_delay`.
    pub(crate) fn expect(&self, max_delay: Duration) -> Expectation {
        let half_sync = Duration::from_nanos(self.last_sync_nanos.load(Ordering::Relaxed) / 2);
        Expectation {
            records: self.last_batch.load(Ordering::Relaxed) / 2,
            patience: half_sync.min(max_delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_writer_never_waits() {
        let p = GroupPacer::default();
        p.record(1, Duration::from_micros(100));
        assert_eq!(p.expect(Duration::from_millis(1)).records, 0);
    }

    #[test]
    fn a_fresh_pacer_asks_for_nothing() {
        let p = GroupPacer::default();
        assert_eq!(
            p.expect(Duration::from_millis(1)),
            Expectation {
                records: 0,
                patience: Duration::ZERO
            }
        );
    }

    #[test]
    fn waits_for_half_the_last_batch_for_at_most_half_a_sync_within_max_delay() {
        let p = GroupPacer::default();
        p.record(8, Duration::from_micros(100));
        let e = p.expect(Duration::from_millis(1));
        assert_eq!((e.records, e.patience), (4, Duration::from_micros(50)));
        let capped = p.expect(Duration::from_micros(20));
        assert_eq!(capped.patience, Duration::from_micros(20));
    }
}
