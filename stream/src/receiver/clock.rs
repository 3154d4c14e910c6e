//! Time for the block generator: the real clock, and a clock tests drive.
//!
//! The block generator waits on a [`Clock`] for its next cut and for rate
//! tokens, always together with a [`Signal`] that ends the wait early when the
//! generator stops. [`ManualClock`] moves only when a test advances it, so
//! tests state exactly which intervals have passed instead of sleeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A monotonic clock that threads can wait on.
pub trait Clock: Send + Sync {
    /// Time since this clock's origin. Never goes backwards.
    fn now(&self) -> Duration;

    /// Blocks until `now() >= deadline` (true) or until `signal` is raised
    /// (false, also when both hold).
    fn wait_until(&self, deadline: Duration, signal: &Arc<Signal>) -> bool;
}

/// How a [`Signal::wait_for`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// The signal was raised.
    Raised,
    /// The caller's condition held.
    Ready,
    /// The real-time limit passed.
    TimedOut,
}

/// A one-way stop flag that wakes every thread waiting on it. Clocks also use
/// it to wake waiters when their time moves ([`Signal::wake`]).
#[derive(Debug, Default)]
pub struct Signal {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    /// A signal not yet raised.
    pub fn new() -> Arc<Signal> {
        Arc::new(Signal::default())
    }

    /// Raises the signal for good and wakes every waiter.
    pub fn raise(&self) {
        *self.raised.lock() = true;
        self.cond.notify_all();
    }

    /// Whether the signal was raised.
    pub fn is_raised(&self) -> bool {
        *self.raised.lock()
    }

    /// Wakes every waiter so it checks its condition again.
    pub fn wake(&self) {
        let _guard = self.raised.lock();
        self.cond.notify_all();
    }

    /// Blocks until the signal is raised, `ready()` holds (checked under the
    /// signal's lock, so a [`Signal::wake`] after the condition became true is
    /// never missed), or `timeout` of real time passes (`None`: no limit).
    pub fn wait_for(&self, timeout: Option<Duration>, mut ready: impl FnMut() -> bool) -> WaitEnd {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut raised = self.raised.lock();
        loop {
            if *raised {
                return WaitEnd::Raised;
            }
            if ready() {
                return WaitEnd::Ready;
            }
            match deadline {
                None => self.cond.wait(&mut raised),
                Some(at) => {
                    if self.cond.wait_until(&mut raised, at).timed_out() {
                        return if *raised {
                            WaitEnd::Raised
                        } else if ready() {
                            WaitEnd::Ready
                        } else {
                            WaitEnd::TimedOut
                        };
                    }
                }
            }
        }
    }
}

/// The real monotonic clock, its origin at its creation.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock starting at zero now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wait_until(&self, deadline: Duration, signal: &Arc<Signal>) -> bool {
        loop {
            let now = self.now();
            if now >= deadline {
                return !signal.is_raised();
            }
            if signal.wait_for(Some(deadline - now), || false) == WaitEnd::Raised {
                return false;
            }
        }
    }
}

/// A clock that moves only when [`ManualClock::advance`] is called. For tests:
/// [`ManualClock::wait_for_sleepers`] tells when threads have gone back to
/// waiting on a future time, i.e. have finished reacting to an advance.
#[derive(Debug, Default)]
pub struct ManualClock {
    inner: Mutex<ManualInner>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ManualInner {
    now: Duration,
    next_id: u64,
    waiters: Vec<(u64, Duration, Arc<Signal>)>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock::default())
    }

    /// Moves the clock forward by `by` and wakes every waiter.
    pub fn advance(&self, by: Duration) {
        let signals: Vec<Arc<Signal>> = {
            let mut inner = self.inner.lock();
            inner.now += by;
            inner.waiters.iter().map(|(_, _, s)| s.clone()).collect()
        };
        self.changed.notify_all();
        for signal in signals {
            signal.wake();
        }
    }

    /// Threads waiting for a time still in the future.
    pub fn sleepers(&self) -> usize {
        let inner = self.inner.lock();
        count_sleepers(&inner)
    }

    /// Waits (up to `timeout` of real time) until at least `n` threads wait
    /// for a time still in the future. Returns whether that happened.
    pub fn wait_for_sleepers(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock();
        while count_sleepers(&inner) < n {
            if self.changed.wait_until(&mut inner, deadline).timed_out() {
                return count_sleepers(&inner) >= n;
            }
        }
        true
    }

    fn register(&self, deadline: Duration, signal: &Arc<Signal>) -> u64 {
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.waiters.push((id, deadline, signal.clone()));
        drop(inner);
        self.changed.notify_all();
        id
    }

    fn unregister(&self, id: u64) {
        self.inner.lock().waiters.retain(|(w, _, _)| *w != id);
        self.changed.notify_all();
    }
}

fn count_sleepers(inner: &ManualInner) -> usize {
    inner
        .waiters
        .iter()
        .filter(|(_, deadline, _)| *deadline > inner.now)
        .count()
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.inner.lock().now
    }

    fn wait_until(&self, deadline: Duration, signal: &Arc<Signal>) -> bool {
        let id = self.register(deadline, signal);
        let end = signal.wait_for(None, || self.now() >= deadline);
        self.unregister(id);
        end == WaitEnd::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_wakes_its_waiter_only_once_advanced_past_the_deadline() {
        let clock = ManualClock::new();
        let signal = Signal::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (c, s) = (clock.clone(), signal.clone());
        let waiter = std::thread::spawn(move || {
            let reached = c.wait_until(Duration::from_millis(100), &s);
            tx.send((reached, c.now())).expect("send");
        });
        assert!(clock.wait_for_sleepers(1, Duration::from_secs(10)));
        clock.advance(Duration::from_millis(60));
        assert!(clock.wait_for_sleepers(1, Duration::from_secs(10)));
        assert!(rx.try_recv().is_err(), "woke before its deadline");
        clock.advance(Duration::from_millis(40));
        let (reached, at) = rx.recv_timeout(Duration::from_secs(10)).expect("woke");
        assert!(reached);
        assert_eq!(at, Duration::from_millis(100));
        waiter.join().expect("join");
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn raising_the_signal_ends_a_wait_on_either_clock() {
        let manual = ManualClock::new();
        let clocks: [Arc<dyn Clock>; 2] = [manual.clone(), Arc::new(SystemClock::new())];
        for clock in clocks {
            let signal = Signal::new();
            let (c, s) = (clock.clone(), signal.clone());
            let waiter = std::thread::spawn(move || c.wait_until(Duration::from_secs(3600), &s));
            signal.raise();
            assert!(
                !waiter.join().expect("join"),
                "a raised wait is not a reached deadline"
            );
        }
    }

    #[test]
    fn the_system_clock_reaches_a_near_deadline() {
        let clock = SystemClock::new();
        let signal = Signal::new();
        assert!(clock.wait_until(clock.now() + Duration::from_millis(1), &signal));
    }
}
