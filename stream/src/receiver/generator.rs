//! The block generator (Spark's `BlockGenerator`): records stored one at a
//! time are cut into a block every block interval and handed, one block at a
//! time and in cut order, to a push function on the generator's own thread.
//!
//! Guarantees:
//! - **Order.** Records from one thread appear in blocks in the order that
//!   thread stored them; blocks are pushed in the order they were cut.
//! - **Back-pressure.** At most `queue_capacity` cut blocks wait for the
//!   pusher. While the queue is full, `store()` blocks, and a tick cuts
//!   nothing (its records wait for the next tick with room). Only the final
//!   block cut by `stop()` may take the queue one over its capacity.
//! - **Rate.** With `max_rate > 0`, `store()` waits for a token of a bucket of
//!   `max_rate` records per second holding a tenth of a second's worth.
//! - **Orderly stop.** `stop()` refuses new records (callers waiting for room
//!   or tokens get [`StreamError::Stopped`]), stops the timer, cuts the last
//!   block, pushes everything queued, and only then returns: every `store()`
//!   that returned `Ok` before or during `stop()` is in a pushed block.
//!
//! What it does not survive: the records are in memory only until the push
//! function stores them; a crash of the process loses them (an unreliable
//! receiver's contract, as in Spark).

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::error::StreamError;
use crate::receiver::clock::{Clock, Signal};
use crate::receiver::rate::RateLimiter;

/// Spark's default block interval (`spark.streaming.blockInterval`).
pub const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_millis(200);
/// Spark's default queue of cut blocks (`spark.streaming.blockQueueSize`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10;

/// How a [`BlockGenerator`] cuts and paces blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockGeneratorConfig {
    /// A block is cut this often (> 0).
    pub block_interval: Duration,
    /// Cut blocks waiting for the pusher before `store()` blocks (>= 1).
    pub queue_capacity: usize,
    /// Records per second this generator accepts; 0 is unlimited.
    pub max_rate: u64,
}

impl Default for BlockGeneratorConfig {
    fn default() -> Self {
        BlockGeneratorConfig {
            block_interval: DEFAULT_BLOCK_INTERVAL,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_rate: 0,
        }
    }
}

impl BlockGeneratorConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), StreamError> {
        if self.block_interval.is_zero() {
            return Err(StreamError::InvalidSetting {
                name: "block_interval",
                reason: "must be positive".into(),
            });
        }
        if self.queue_capacity == 0 {
            return Err(StreamError::InvalidSetting {
                name: "queue_capacity",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// What a generator has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneratorStats {
    /// Records accepted by `store()`.
    pub records_stored: u64,
    /// Blocks cut (never empty ones).
    pub blocks_cut: u64,
    /// Blocks the push function returned from.
    pub blocks_pushed: u64,
    /// Cut blocks waiting for the pusher.
    pub queued_blocks: usize,
    /// `store()` callers blocked on a full queue.
    pub blocked_stores: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepting records and cutting blocks.
    Active,
    /// Refusing records; the timer is stopping; the pusher keeps pushing.
    Stopping,
    /// The last block is cut; the pusher drains the queue and ends.
    Draining,
    /// Everything pushed.
    Stopped,
}

struct State {
    phase: Phase,
    buffer: Vec<Bytes>,
    queue: VecDeque<Vec<Bytes>>,
    stats: GeneratorStats,
}

struct Shared {
    config: BlockGeneratorConfig,
    clock: Arc<dyn Clock>,
    stop: Arc<Signal>,
    state: Mutex<State>,
    /// The queue has room, or the phase changed.
    room: Condvar,
    /// The queue has a block, or the phase changed.
    work: Condvar,
    /// Anything in `stats` or the phase changed.
    changed: Condvar,
    limiter: Option<Mutex<RateLimiter>>,
}

/// Cuts stored records into blocks and pushes them; see the module docs.
pub struct BlockGenerator {
    shared: Arc<Shared>,
    threads: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl BlockGenerator {
    /// Starts the timer and pusher threads. `push` gets each block on the
    /// pusher thread, one at a time, in cut order; it must not panic and should
    /// not block forever (a stuck push holds `stop()` and, once the queue
    /// fills, every `store()`).
    pub fn start<F>(
        config: BlockGeneratorConfig,
        clock: Arc<dyn Clock>,
        push: F,
    ) -> Result<BlockGenerator, StreamError>
    where
        F: FnMut(Vec<Bytes>) + Send + 'static,
    {
        config.validate()?;
        let limiter = (config.max_rate > 0).then(|| {
            let burst = RateLimiter::default_burst(config.max_rate);
            Mutex::new(RateLimiter::new(config.max_rate, burst))
        });
        let shared = Arc::new(Shared {
            config,
            clock,
            stop: Signal::new(),
            state: Mutex::new(State {
                phase: Phase::Active,
                buffer: Vec::new(),
                queue: VecDeque::new(),
                stats: GeneratorStats::default(),
            }),
            room: Condvar::new(),
            work: Condvar::new(),
            changed: Condvar::new(),
            limiter,
        });
        let pusher = spawn("tidemark-block-pusher", {
            let shared = shared.clone();
            move || shared.keep_pushing(push)
        })?;
        let timer = match spawn("tidemark-block-timer", {
            let shared = shared.clone();
            move || shared.keep_cutting()
        }) {
            Ok(timer) => timer,
            Err(e) => {
                shared.finish_without_timer();
                let _ = pusher.join();
                return Err(e);
            }
        };
        Ok(BlockGenerator {
            shared,
            threads: Mutex::new(Some((timer, pusher))),
        })
    }

    /// Adds one record to the block being filled. Waits for a rate token and
    /// for room in the queue; returns `Ok` once the record is buffered (not
    /// stored: that happens when its block is pushed). After `stop()` began,
    /// returns [`StreamError::Stopped`] and the record is not taken.
    pub fn store(&self, record: Bytes) -> Result<(), StreamError> {
        self.shared.wait_for_token()?;
        self.shared.add(record)
    }

    /// Stops in order (see the module docs); returns once every block is
    /// pushed. Idempotent: a later or concurrent call returns once stopped.
    pub fn stop(&self) {
        let mut threads = self.threads.lock();
        let Some((timer, pusher)) = threads.take() else {
            return;
        };
        self.shared.set_phase(Phase::Stopping);
        self.shared.stop.raise();
        if timer.join().is_err() {
            tracing::error!("the block timer thread panicked");
        }
        self.shared.cut_last_block();
        if pusher.join().is_err() {
            tracing::error!("the block pusher thread panicked; queued blocks are lost");
        }
        self.shared.set_phase(Phase::Stopped);
        tracing::debug!(stats = ?self.stats(), "block generator stopped");
    }

    /// Whether `stop()` has begun (no record is accepted any more).
    pub fn is_stopping(&self) -> bool {
        self.shared.state.lock().phase != Phase::Active
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> GeneratorStats {
        self.shared.snapshot(&self.shared.state.lock())
    }

    /// Waits up to `timeout` until `ready` holds for the counters; returns
    /// whether it did. For monitoring and tests, instead of polling.
    pub fn wait_for(&self, timeout: Duration, ready: impl Fn(&GeneratorStats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if ready(&self.shared.snapshot(&state)) {
                return true;
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return ready(&self.shared.snapshot(&state));
            }
        }
    }
}

impl Drop for BlockGenerator {
    /// Stops in order, so dropping loses nothing either.
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StreamError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(StreamError::io(format!("start the {name} thread")))
}

impl Shared {
    fn snapshot(&self, state: &State) -> GeneratorStats {
        GeneratorStats {
            queued_blocks: state.queue.len(),
            ..state.stats
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.state.lock().phase = phase;
        self.room.notify_all();
        self.work.notify_all();
        self.changed.notify_all();
    }

    fn stopped_error() -> StreamError {
        StreamError::Stopped("block generator")
    }

    /// Waits for a rate token, if there is a rate limit.
    fn wait_for_token(&self) -> Result<(), StreamError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        loop {
            let ready_at = match limiter.lock().try_acquire(self.clock.now()) {
                Ok(()) => return Ok(()),
                Err(at) => at,
            };
            if !self.clock.wait_until(ready_at, &self.stop) {
                return Err(Self::stopped_error());
            }
        }
    }

    /// Buffers a record once the queue has room.
    fn add(&self, record: Bytes) -> Result<(), StreamError> {
        let mut state = self.state.lock();
        while state.phase == Phase::Active && state.queue.len() >= self.config.queue_capacity {
            state.stats.blocked_stores += 1;
            self.changed.notify_all();
            self.room.wait(&mut state);
            state.stats.blocked_stores -= 1;
        }
        if state.phase != Phase::Active {
            self.changed.notify_all();
            return Err(Self::stopped_error());
        }
        state.buffer.push(record);
        state.stats.records_stored += 1;
        drop(state);
        self.changed.notify_all();
        Ok(())
    }

    /// The timer thread: a cut at every interval of the clock, until stopped.
    fn keep_cutting(&self) {
        let interval = self.config.block_interval;
        let mut next = self.clock.now() + interval;
        while self.clock.wait_until(next, &self.stop) {
            self.cut(false);
            next += interval;
        }
    }

    /// Moves the buffer into the queue as a block: at a tick only while
    /// active and when the queue has room; at the end (`last`) always.
    fn cut(&self, last: bool) {
        let mut state = self.state.lock();
        let full = state.queue.len() >= self.config.queue_capacity;
        let allowed = last || (state.phase == Phase::Active && !full);
        if !allowed || state.buffer.is_empty() {
            return;
        }
        let block = std::mem::take(&mut state.buffer);
        state.queue.push_back(block);
        state.stats.blocks_cut += 1;
        drop(state);
        self.work.notify_one();
        self.changed.notify_all();
    }

    /// Called once the timer has ended: the last block, then drain.
    fn cut_last_block(&self) {
        self.cut(true);
        self.set_phase(Phase::Draining);
    }

    /// Ends a generator whose timer never started: the pusher drains and ends.
    fn finish_without_timer(&self) {
        self.stop.raise();
        self.set_phase(Phase::Draining);
    }

    /// The pusher thread: pushes blocks in order until drained after stop.
    fn keep_pushing(&self, mut push: impl FnMut(Vec<Bytes>)) {
        while let Some(block) = self.next_block() {
            push(block);
            self.state.lock().stats.blocks_pushed += 1;
            self.changed.notify_all();
        }
    }

    /// The next queued block; `None` once draining and the queue is empty.
    fn next_block(&self) -> Option<Vec<Bytes>> {
        let mut state = self.state.lock();
        loop {
            if let Some(block) = state.queue.pop_front() {
                drop(state);
                self.room.notify_all();
                self.changed.notify_all();
                return Some(block);
            }
            if state.phase == Phase::Draining || state.phase == Phase::Stopped {
                return None;
            }
            self.work.wait(&mut state);
        }
    }
}
