//! Group commit: one sync at a time, covering every writer waiting at that moment.
//!
//! The barrier keeps a *durable watermark* (the highest LSN known durable). A
//! writer that needs LSN `n` durable either finds the watermark already past
//! `n`, or waits on the condvar while a leader syncs, or becomes the leader
//! itself: it marks a sync in progress, releases the lock, runs the sync (which
//! reports how far it made the log durable), then publishes the new watermark
//! and wakes everyone. Followers that arrive while a sync runs are covered by
//! the next one, so N concurrent writers cost about two syncs, not N.
//!
//! A failed sync is fatal for the barrier: the kernel may have dropped the
//! dirty pages already, so no later sync can prove them durable. Every waiter,
//! present and future, gets the failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

/// The outcome of a failed sync, shared with every waiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyncFailed(pub(crate) String);

#[derive(Default)]
struct State {
    durable: u64,
    syncing: bool,
    failed: Option<SyncFailed>,
}

/// Coordinates syncs between writers. See the module docs.
#[derive(Default)]
pub(crate) struct WriteBarrier {
    state: Mutex<State>,
    synced: Condvar,
    poisoned: AtomicBool,
    durable_mirror: AtomicU64,
}

impl WriteBarrier {
    /// A barrier whose watermark starts at `durable`.
    pub(crate) fn new(durable: u64) -> WriteBarrier {
        WriteBarrier {
            state: Mutex::new(State {
                durable,
                ..State::default()
            }),
            synced: Condvar::new(),
            poisoned: AtomicBool::new(false),
            durable_mirror: AtomicU64::new(durable),
        }
    }

    /// The durable watermark read without the lock: it may lag, never lead.
    pub(crate) fn durable_hint(&self) -> u64 {
        self.durable_mirror.load(Ordering::Acquire)
    }

    /// True once a sync has failed (cheap: no lock).
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The highest LSN known durable.
    pub(crate) fn durable(&self) -> u64 {
        self.state.lock().durable
    }

    /// The failure that poisoned the barrier, if any.
    pub(crate) fn failure(&self) -> Option<SyncFailed> {
        self.state.lock().failed.clone()
    }

    /// Returns once `lsn` is durable, running `sync` as leader when no sync is
    /// under way. `sync` runs without the lock and returns the LSN it made
    /// durable; it may return less than `lsn` (records not yet copied), in which
    /// case the caller leads or waits again.
    pub(crate) fn wait_durable<F>(&self, lsn: u64, mut sync: F) -> Result<u64, SyncFailed>
    where
        F: FnMut() -> Result<u64, String>,
    {
        let mut st = self.state.lock();
        loop {
            if let Some(f) = &st.failed {
                return Err(f.clone());
            }
            if st.durable >= lsn {
                return Ok(st.durable);
            }
            if st.syncing {
                self.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let outcome = parking_lot::MutexGuard::unlocked(&mut st, &mut sync);
            st.syncing = false;
            match outcome {
                Ok(reached) => {
                    st.durable = st.durable.max(reached);
                    self.durable_mirror.store(st.durable, Ordering::Release);
                }
                Err(cause) => {
                    self.poisoned.store(true, Ordering::Release);
                    st.failed = Some(SyncFailed(cause));
                }
            }
            self.synced.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn one_sync_covers_every_waiting_writer() {
        let barrier = Arc::new(WriteBarrier::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let syncs = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (b, w, s) = (barrier.clone(), written.clone(), syncs.clone());
                thread::spawn(move || {
                    for _ in 0..50 {
                        let lsn = w.fetch_add(1, Ordering::SeqCst) + 1;
                        let reached = b
                            .wait_durable(lsn, || {
                                s.fetch_add(1, Ordering::SeqCst);
                                let target = w.load(Ordering::SeqCst);
                                thread::sleep(Duration::from_micros(300));
                                Ok(target)
                            })
                            .expect("no failure injected");
                        assert!(reached >= lsn);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer thread");
        }
        let n = syncs.load(Ordering::SeqCst);
        assert!(n < 800, "800 writes needed {n} syncs: no grouping happened");
        assert_eq!(barrier.durable(), 800);
    }

    /// Syncs that take no time and cover only what was written when they began:
    /// every race between a waiter going to sleep and a sync ending gets hit.
    /// A lost wake-up hangs a writer, which the watchdog turns into a failure.
    #[test]
    fn no_writer_sleeps_through_the_end_of_a_sync() {
        let barrier = Arc::new(WriteBarrier::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for _ in 0..8 {
            let (b, w, done) = (barrier.clone(), written.clone(), done_tx.clone());
            thread::spawn(move || {
                for _ in 0..5_000 {
                    let lsn = w.fetch_add(1, Ordering::SeqCst) + 1;
                    let reached = b.wait_durable(lsn, || Ok(w.load(Ordering::SeqCst)));
                    assert!(reached.expect("no failure injected") >= lsn);
                }
                let _ = done.send(());
            });
        }
        for _ in 0..8 {
            done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("a writer hung waiting for a sync that had ended");
        }
        assert_eq!(barrier.durable_hint(), 40_000);
    }

    #[test]
    fn a_failed_sync_wakes_every_waiter_with_the_failure() {
        let barrier = Arc::new(WriteBarrier::new(0));
        let leading = Arc::new(std::sync::Barrier::new(2));
        let leader = {
            let (b, l) = (barrier.clone(), leading.clone());
            thread::spawn(move || {
                b.wait_durable(1, || {
                    l.wait();
                    thread::sleep(Duration::from_millis(100));
                    Err("EIO".to_string())
                })
            })
        };
        leading.wait();
        let waiters: Vec<_> = (2..6)
            .map(|lsn| {
                let b = barrier.clone();
                thread::spawn(move || b.wait_durable(lsn, || Ok(lsn)))
            })
            .collect();
        let failed = Err(SyncFailed("EIO".into()));
        assert_eq!(leader.join().expect("leader"), failed);
        for w in waiters {
            assert_eq!(w.join().expect("waiter"), failed);
        }
    }

    #[test]
    fn a_failed_sync_poisons_every_later_wait() {
        let barrier = WriteBarrier::new(0);
        let err = barrier
            .wait_durable(1, || Err("EIO".to_string()))
            .unwrap_err();
        assert_eq!(err, SyncFailed("EIO".into()));
        let again = barrier.wait_durable(1, || Ok(1));
        assert_eq!(
            again,
            Err(SyncFailed("EIO".into())),
            "a later sync must not paper over the failure"
        );
        assert_eq!(barrier.failure(), Some(SyncFailed("EIO".into())));
        assert!(barrier.is_poisoned());
        assert_eq!(barrier.durable(), 0);
    }

    #[test]
    fn already_durable_returns_without_syncing() {
        let barrier = WriteBarrier::new(10);
        let reached = barrier
            .wait_durable(5, || panic!("must not sync"))
            .expect("durable");
        assert_eq!(reached, 10);
    }

    #[test]
    fn leader_retries_until_its_record_is_covered() {
        let barrier = WriteBarrier::new(0);
        let mut calls = 0;
        let reached = barrier
            .wait_durable(3, || {
                calls += 1;
                Ok(calls)
            })
            .expect("durable");
        assert_eq!((reached, calls), (3, 3));
    }
}
