//! Executors inside the driver's process, as threads (Spark's `local[N]`):
//! the backend of single-process runs and of the scheduler's own tests.
//! Cancellation is cooperative: a task polls [`TaskContext::is_cancelled`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use parking_lot::Mutex;

use super::{AttemptId, Completion, ExecutorId, TaskBackend, TaskFailure};

/// What a running attempt knows of itself.
#[derive(Clone, Debug)]
pub struct TaskContext {
    attempt: AttemptId,
    executor: ExecutorId,
    cancelled: Arc<AtomicBool>,
}

impl TaskContext {
    /// True once the scheduler asked this attempt to stop (another attempt won,
    /// the set failed, or the executor is going away).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Which attempt this is.
    pub fn attempt(&self) -> AttemptId {
        self.attempt
    }

    /// Which executor runs it.
    pub fn executor(&self) -> ExecutorId {
        self.executor
    }
}

type TaskFn<T, O> = dyn Fn(&T, &TaskContext) -> Result<O, String> + Send + Sync;

struct Attempt {
    executor: ExecutorId,
    cancelled: Arc<AtomicBool>,
}

/// `executors` executors of `slots` attempts each, running `run` on threads.
pub struct LocalBackend<T, O> {
    slots: Vec<(ExecutorId, usize)>,
    run: Arc<TaskFn<T, O>>,
    running: Arc<Mutex<HashMap<AttemptId, Attempt>>>,
    lost: Arc<Mutex<HashSet<ExecutorId>>>,
}

impl<T: Send + 'static, O: Send + 'static> LocalBackend<T, O> {
    /// Executors `0..executors`, each running up to `slots` attempts at once.
    pub fn new(
        executors: u32,
        slots: usize,
        run: impl Fn(&T, &TaskContext) -> Result<O, String> + Send + Sync + 'static,
    ) -> Self {
        LocalBackend {
            slots: (0..executors).map(|e| (e, slots)).collect(),
            run: Arc::new(run),
            running: Arc::new(Mutex::new(HashMap::new())),
            lost: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Takes `executor` away, as if its process died: it gets no more tasks,
    /// and its running attempts are cancelled and reported lost.
    pub fn lose_executor(&self, executor: ExecutorId) {
        self.lost.lock().insert(executor);
        for a in self
            .running
            .lock()
            .values()
            .filter(|a| a.executor == executor)
        {
            a.cancelled.store(true, Ordering::Release);
        }
    }
}

impl<T: Clone + Send + 'static, O: Send + 'static> TaskBackend for LocalBackend<T, O> {
    type Task = T;
    type Output = O;

    fn executors(&self) -> Vec<(ExecutorId, usize)> {
        let lost = self.lost.lock();
        self.slots
            .iter()
            .copied()
            .filter(|(e, _)| !lost.contains(e))
            .collect()
    }

    fn launch(
        &self,
        executor: ExecutorId,
        attempt: AttemptId,
        task: T,
        done: Sender<Completion<O>>,
    ) {
        let ctx = TaskContext {
            attempt,
            executor,
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        self.running.lock().insert(
            attempt,
            Attempt {
                executor,
                cancelled: ctx.cancelled.clone(),
            },
        );
        let (run, running, lost) = (self.run.clone(), self.running.clone(), self.lost.clone());
        let report_spawn_failure = done.clone();
        let spawned = std::thread::Builder::new()
            .name(format!(
                "tidemark-task-{}.{}",
                attempt.task, attempt.attempt
            ))
            .spawn(move || {
                let outcome = run(&task, &ctx);
                running.lock().remove(&attempt);
                let result = if lost.lock().contains(&executor) {
                    Err(TaskFailure::ExecutorLost(format!(
                        "executor {executor} was lost"
                    )))
                } else if ctx.is_cancelled() {
                    Err(TaskFailure::Cancelled)
                } else {
                    outcome.map_err(TaskFailure::Failed)
                };
                let _ = done.send(Completion { attempt, result });
            });
        if let Err(e) = spawned {
            self.running.lock().remove(&attempt);
            tracing::error!(error = %e, "cannot start a task thread");
            let result = Err(TaskFailure::Failed(format!(
                "cannot start a task thread: {e}"
            )));
            let _ = report_spawn_failure.send(Completion { attempt, result });
        }
    }

    fn cancel(&self, attempt: AttemptId) {
        if let Some(a) = self.running.lock().get(&attempt) {
            a.cancelled.store(true, Ordering::Release);
        }
    }
}
