//! A persistent pool of writer threads for multi-writer benchmarks: the
//! threads exist before the clock starts, so a timed sample pays for no thread
//! spawn, only for waking the writers through a channel (microseconds against
//! the milliseconds a sample lasts).

use std::error::Error;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a benchmark's writers do, and how it fails.
pub type TaskError = Box<dyn Error + Send + Sync>;

/// One writer's work: called as `task(writer_index)` once per operation.
pub type Task = Arc<dyn Fn(usize) -> Result<(), TaskError> + Send + Sync>;

struct Job {
    task: Task,
    ops: u64,
}

/// `n` writer threads waiting for jobs. Dropping the pool stops and joins them.
pub struct WriterPool {
    senders: Vec<Sender<Job>>,
    done: Receiver<Result<(), TaskError>>,
    handles: Vec<JoinHandle<()>>,
}

impl WriterPool {
    /// Starts `writers` threads (at least one).
    pub fn new(writers: usize) -> std::io::Result<Self> {
        let (done_tx, done) = channel();
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for index in 0..writers.max(1) {
            let (tx, rx) = channel::<Job>();
            let done_tx = done_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("bench-writer-{index}"))
                .spawn(move || worker(index, &rx, &done_tx))?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok(WriterPool {
            senders,
            done,
            handles,
        })
    }

    /// Number of writer threads.
    pub fn writers(&self) -> usize {
        self.senders.len()
    }

    /// Runs `ops` operations of `task` spread evenly over the writers (the
    /// first `ops % writers` writers do one more) and returns the wall time from
    /// handing out the work to the last writer finishing. Fails with the first
    /// error any writer reported (the others still finish their share).
    pub fn run(&self, ops: u64, task: &Task) -> Result<Duration, TaskError> {
        let n = self.senders.len() as u64;
        let start = Instant::now();
        for (i, tx) in self.senders.iter().enumerate() {
            let share = ops / n + u64::from((i as u64) < ops % n);
            let job = Job {
                task: Arc::clone(task),
                ops: share,
            };
            tx.send(job).map_err(|_| "a writer thread has exited")?;
        }
        let mut first_err = None;
        for _ in 0..n {
            let res = self.done.recv().map_err(|_| "a writer thread has exited")?;
            if let (Err(e), None) = (res, &first_err) {
                first_err = Some(e);
            }
        }
        let elapsed = start.elapsed();
        first_err.map_or(Ok(elapsed), Err)
    }
}

fn worker(index: usize, jobs: &Receiver<Job>, done: &Sender<Result<(), TaskError>>) {
    while let Ok(job) = jobs.recv() {
        let res = (0..job.ops).try_for_each(|_| (job.task)(index));
        if done.send(res).is_err() {
            return;
        }
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        self.senders.clear();
        for handle in self.handles.drain(..) {
            // A writer that panicked has nothing left to clean up.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn spreads_exactly_ops_over_the_writers() {
        let pool = WriterPool::new(3).expect("pool");
        let count = Arc::new(AtomicU64::new(0));
        let per_writer: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let (c, p) = (Arc::clone(&count), Arc::clone(&per_writer));
        let task: Task = Arc::new(move |w| {
            c.fetch_add(1, Ordering::Relaxed);
            p[w].fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        pool.run(10, &task).expect("run");
        pool.run(1, &task).expect("run");
        assert_eq!(count.load(Ordering::Relaxed), 11);
        let shares: Vec<u64> = per_writer
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        assert_eq!(shares, vec![5, 3, 3]);
    }

    #[test]
    fn reports_a_writer_error() {
        let pool = WriterPool::new(2).expect("pool");
        let task: Task = Arc::new(|w| {
            if w == 1 {
                Err("disk on fire".into())
            } else {
                Ok(())
            }
        });
        let err = pool.run(4, &task).expect_err("must fail");
        assert_eq!(err.to_string(), "disk on fire");
        let ok: Task = Arc::new(|_| Ok(()));
        pool.run(4, &ok).expect("pool still usable");
    }
}
