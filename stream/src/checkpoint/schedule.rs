//! Which batch times a restarted driver runs before its timer takes over
//! (Spark's `JobGenerator.restart`: the pending batches, then every batch time
//! the driver missed while it was down).

use crate::block::BatchTime;

/// Down-time batches left out of the re-run list because of its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DroppedReruns {
    /// How many.
    pub count: u64,
    /// The first left out.
    pub first: BatchTime,
    /// The last left out.
    pub last: BatchTime,
}

/// What a restarted driver runs, in order, and where its timer starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RerunPlan {
    pub rerun: Vec<BatchTime>,
    pub dropped: Option<DroppedReruns>,
    pub next_batch: BatchTime,
}

/// The pending batches (ascending, after `last_completed`), then each multiple
/// of `interval_ms` after the last of them up to `now_ms` rounded down to the
/// interval, at most `max_down_time` of those (the earliest). The timer's next
/// batch is the first multiple of the interval after all of them.
pub(crate) fn plan_reruns(
    last_completed: BatchTime,
    pending: &[BatchTime],
    interval_ms: u64,
    now_ms: u64,
    max_down_time: usize,
) -> RerunPlan {
    let interval = interval_ms.max(1);
    let anchor = pending
        .last()
        .copied()
        .unwrap_or(last_completed)
        .max(last_completed);
    let first = next_multiple_after(anchor.0, interval);
    let now_floor = now_ms - now_ms % interval;
    let total = if now_floor >= first {
        (now_floor - first) / interval + 1
    } else {
        0
    };
    let kept = total.min(max_down_time as u64);
    let mut rerun = pending.to_vec();
    rerun.extend((0..kept).map(|i| BatchTime(first + i * interval)));
    let dropped = (total > kept).then(|| DroppedReruns {
        count: total - kept,
        first: BatchTime(first + kept * interval),
        last: BatchTime(now_floor),
    });
    let newest = now_floor.max(anchor.0);
    RerunPlan {
        rerun,
        dropped,
        next_batch: BatchTime(next_multiple_after(newest, interval)),
    }
}

/// The smallest multiple of `interval` greater than `t` (saturating).
fn next_multiple_after(t: u64, interval: u64) -> u64 {
    (t / interval).saturating_add(1).saturating_mul(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(ms: &[u64]) -> Vec<BatchTime> {
        ms.iter().copied().map(BatchTime).collect()
    }

    #[test]
    fn pending_then_down_time_up_to_now_rounded_down() {
        let plan = plan_reruns(BatchTime(5000), &times(&[6000, 7000]), 1000, 10_500, 100);
        assert_eq!(plan.rerun, times(&[6000, 7000, 8000, 9000, 10_000]));
        assert_eq!(plan.dropped, None);
        assert_eq!(plan.next_batch, BatchTime(11_000));
    }

    #[test]
    fn the_cap_keeps_pending_and_the_earliest_down_time() {
        let plan = plan_reruns(BatchTime(5000), &times(&[6000]), 1000, 20_000, 3);
        assert_eq!(plan.rerun, times(&[6000, 7000, 8000, 9000]));
        assert_eq!(
            plan.dropped,
            Some(DroppedReruns {
                count: 11,
                first: BatchTime(10_000),
                last: BatchTime(20_000)
            })
        );
        assert_eq!(plan.next_batch, BatchTime(21_000));
    }

    #[test]
    fn a_clock_behind_the_checkpoint_reruns_only_pending() {
        let plan = plan_reruns(BatchTime(5000), &times(&[6000]), 1000, 3000, 100);
        assert_eq!(plan.rerun, times(&[6000]));
        assert_eq!(plan.next_batch, BatchTime(7000));
    }

    #[test]
    fn a_new_interval_continues_on_its_own_grid_after_the_pending_batches() {
        let plan = plan_reruns(BatchTime(5000), &times(&[6000, 7000]), 5000, 16_000, 100);
        assert_eq!(plan.rerun, times(&[6000, 7000, 10_000, 15_000]));
        assert_eq!(plan.next_batch, BatchTime(20_000));
    }
}
