//! Where receivers run (Spark's `ReceiverSchedulingPolicy`, simplified): each
//! receiver stream on one live executor, spread evenly; when an executor
//! leaves, its receivers are placed again on the others (seed 1.1: a
//! receiver is restarted on another executor).
//!
//! Placing a receiver yields an order ([`StartOrder`]) the driver sends; each
//! order carries a new epoch (the high bits of its block ids, see
//! [`crate::receiver::ids`]): minutes since 2026-01-01 (24 bits last until
//! 2057), raised past the `floor` the driver recovered (the highest epoch of
//! any block its tracker still holds) and past every epoch handed out in this
//! process, so a block id the driver still tracks is never handed out again.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::receiver::ids::MAX_EPOCH;
use crate::scheduler::ExecutorId;

/// 2026-01-01T00:00:00Z in Unix seconds: epochs count minutes from here.
const EPOCH_BASE_SECS: u64 = 1_767_225_600;

/// An order to start a receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartOrder {
    /// Where.
    pub executor: ExecutorId,
    /// Which stream's receiver.
    pub stream_id: u32,
    /// Its block-id epoch.
    pub epoch: u32,
}

#[derive(Default)]
struct State {
    executors: Vec<ExecutorId>,
    /// Stream -> executor running (or about to run) its receiver.
    placed: BTreeMap<u32, ExecutorId>,
    unplaced: Vec<u32>,
    stopped: Vec<u32>,
    orders: Vec<StartOrder>,
    last_epoch: u32,
}

/// The receivers' placement; `Sync`, shared by connection threads and the job loop.
pub struct Placement {
    state: Mutex<State>,
    streams: Vec<u32>,
}

impl Placement {
    /// Receivers for `streams`, none placed yet.
    /// Every epoch handed out will be above `floor` (the highest epoch of a
    /// block still tracked).
    pub fn new(streams: Vec<u32>, floor: u32) -> Placement {
        Placement {
            state: Mutex::new(State {
                unplaced: streams.clone(),
                last_epoch: floor,
                ..State::default()
            }),
            streams,
        }
    }

    /// An executor is available: unplaced receivers go where fewest run.
    pub fn executor_joined(&self, executor: ExecutorId) {
        let mut st = self.state.lock();
        if !st.executors.contains(&executor) {
            st.executors.push(executor);
        }
        place_unplaced(&mut st);
    }

    /// An executor is gone: its receivers are placed again on the others.
    pub fn executor_left(&self, executor: ExecutorId) {
        let mut st = self.state.lock();
        st.executors.retain(|&e| e != executor);
        let moved: Vec<u32> = st
            .placed
            .iter()
            .filter(|(_, e)| **e == executor)
            .map(|(s, _)| *s)
            .collect();
        for s in moved {
            st.placed.remove(&s);
            if !st.stopped.contains(&s) {
                st.unplaced.push(s);
            }
        }
        st.orders.retain(|o| o.executor != executor);
        place_unplaced(&mut st);
    }

    /// A receiver reported that it stopped (a graceful stop).
    pub fn receiver_stopped(&self, stream_id: u32) {
        let mut st = self.state.lock();
        if !st.stopped.contains(&stream_id) {
            st.stopped.push(stream_id);
        }
    }

    /// True once every receiver reported that it stopped.
    pub fn all_stopped(&self) -> bool {
        let st = self.state.lock();
        self.streams.iter().all(|s| st.stopped.contains(s))
    }

    /// `(executor, stream)` of every placed receiver.
    pub fn running(&self) -> Vec<(ExecutorId, u32)> {
        self.state
            .lock()
            .placed
            .iter()
            .map(|(s, e)| (*e, *s))
            .collect()
    }

    /// The start orders not yet sent.
    pub fn take_orders(&self) -> Vec<StartOrder> {
        std::mem::take(&mut self.state.lock().orders)
    }
}

fn place_unplaced(st: &mut State) {
    while !st.executors.is_empty() {
        let Some(stream_id) = st.unplaced.pop() else {
            return;
        };
        let executor = least_loaded(st);
        let epoch = next_epoch(st);
        st.placed.insert(stream_id, executor);
        st.orders.push(StartOrder {
            executor,
            stream_id,
            epoch,
        });
    }
}

fn least_loaded(st: &State) -> ExecutorId {
    let load = |e: ExecutorId| st.placed.values().filter(|&&p| p == e).count();
    st.executors
        .iter()
        .copied()
        .min_by_key(|&e| (load(e), e))
        .unwrap_or_default()
}

fn next_epoch(st: &mut State) -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let minutes = u32::try_from(secs.saturating_sub(EPOCH_BASE_SECS) / 60).unwrap_or(u32::MAX);
    st.last_epoch = minutes.max(st.last_epoch.saturating_add(1)).min(MAX_EPOCH);
    st.last_epoch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_spread_and_move_off_a_lost_executor_with_new_epochs() {
        let p = Placement::new(vec![0, 1, 2], 0);
        assert!(p.take_orders().is_empty(), "nothing to place on");
        p.executor_joined(7);
        p.executor_joined(8);
        let first = p.take_orders();
        assert_eq!(first.len(), 3);
        assert!(
            first.iter().all(|o| o.executor == 7),
            "all went to the only executor at the time"
        );
        p.executor_left(7);
        let moved = p.take_orders();
        assert_eq!(moved.len(), 3);
        assert!(moved.iter().all(|o| o.executor == 8));
        let epochs: Vec<u32> = first.iter().chain(&moved).map(|o| o.epoch).collect();
        let mut unique = epochs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            epochs.len(),
            "epochs never repeat: {epochs:?}"
        );
        p.executor_joined(9);
        assert!(
            p.take_orders().is_empty(),
            "placed receivers stay where they are"
        );
        p.executor_left(8);
        let spread: Vec<ExecutorId> = p.take_orders().iter().map(|o| o.executor).collect();
        assert_eq!(spread, vec![9, 9, 9]);
    }

    #[test]
    fn epochs_fit_block_ids_and_start_above_the_recovered_floor() {
        let p = Placement::new(vec![0], MAX_EPOCH - 5);
        p.executor_joined(1);
        assert_eq!(p.take_orders()[0].epoch, MAX_EPOCH - 4);
        let p = Placement::new(vec![0], 0);
        p.executor_joined(1);
        let now = p.take_orders()[0].epoch;
        assert!(now > 0 && now <= MAX_EPOCH, "{now}");
    }

    #[test]
    fn stopped_receivers_are_not_placed_again() {
        let p = Placement::new(vec![0], 0);
        p.executor_joined(1);
        assert_eq!(p.take_orders().len(), 1);
        p.receiver_stopped(0);
        assert!(p.all_stopped());
        p.executor_left(1);
        p.executor_joined(2);
        assert!(p.take_orders().is_empty());
    }
}
