//! The run loop of one task set: launch, retry, speculate, finish.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::{
    AttemptId, Completion, ExecutorId, SchedulerConf, SpeculationConf, TaskBackend, TaskFailure,
};
use crate::error::StreamError;

/// How often the loop looks at executors and speculation when nothing completes.
const TICK: Duration = Duration::from_millis(20);

/// The next task set's id.
static NEXT_SET: AtomicU64 = AtomicU64::new(1);

/// Runs every task of `tasks` on `backend`'s executors; returns the outputs
/// in task order, or the error of the first task that failed
/// `conf.max_task_failures` times (every running attempt is then cancelled).
pub fn run_task_set<B: TaskBackend>(
    backend: &B,
    tasks: Vec<B::Task>,
    conf: &SchedulerConf,
) -> Result<Vec<B::Output>, StreamError> {
    let mut run = SetRun::new(backend, tasks, *conf);
    let result = run.drive();
    run.cancel_all();
    result
}

struct Running {
    attempt: u32,
    executor: ExecutorId,
    started: Instant,
}

#[derive(Default)]
struct TaskState {
    failures: u32,
    next_attempt: u32,
    running: Vec<Running>,
    done: bool,
    speculated: bool,
    failed_on: Vec<ExecutorId>,
}

struct SetRun<'a, B: TaskBackend> {
    set: u64,
    backend: &'a B,
    tasks: Vec<B::Task>,
    conf: SchedulerConf,
    states: Vec<TaskState>,
    outputs: Vec<Option<B::Output>>,
    pending: VecDeque<usize>,
    speculatable: VecDeque<usize>,
    durations: Vec<Duration>,
    remaining: usize,
    tx: Sender<Completion<B::Output>>,
    rx: Receiver<Completion<B::Output>>,
    no_executors_since: Option<Instant>,
    last_speculation_check: Instant,
}

impl<'a, B: TaskBackend> SetRun<'a, B> {
    fn new(backend: &'a B, tasks: Vec<B::Task>, conf: SchedulerConf) -> Self {
        let n = tasks.len();
        let (tx, rx) = mpsc::channel();
        SetRun {
            set: NEXT_SET.fetch_add(1, Ordering::Relaxed),
            backend,
            tasks,
            conf,
            states: (0..n).map(|_| TaskState::default()).collect(),
            outputs: (0..n).map(|_| None).collect(),
            pending: (0..n).collect(),
            speculatable: VecDeque::new(),
            durations: Vec::new(),
            remaining: n,
            tx,
            rx,
            no_executors_since: None,
            last_speculation_check: Instant::now(),
        }
    }

    fn drive(&mut self) -> Result<Vec<B::Output>, StreamError> {
        while self.remaining > 0 {
            self.launch_ready()?;
            match self.rx.recv_timeout(TICK) {
                Ok(c) => self.complete(c)?,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            self.check_speculation();
        }
        Ok(self.outputs.iter_mut().filter_map(Option::take).collect())
    }

    /// Launches pending tasks, then speculative copies, on free executor slots.
    ///
    /// A task waits for an executor it has not failed on while one is alive,
    /// even a busy one; only when every live executor failed it does it run on
    /// one of those again.
    fn launch_ready(&mut self) -> Result<(), StreamError> {
        let (alive, mut free) = self.free_slots()?;
        let mut waiting = VecDeque::new();
        while let Some(task) = self.pending.pop_front() {
            let failed = &self.states[task].failed_on;
            let untried_alive = alive.iter().any(|e| !failed.contains(e));
            let choice = if untried_alive {
                pick_strict(&mut free, |e| !failed.contains(&e))
            } else {
                pick_strict(&mut free, |_| true)
            };
            match choice {
                Some(executor) => self.launch(task, executor),
                None => waiting.push_back(task),
            }
        }
        self.pending = waiting;
        let mut waiting = VecDeque::new();
        while let Some(task) = self.speculatable.pop_front() {
            let busy_on: Vec<ExecutorId> = self.states[task]
                .running
                .iter()
                .map(|r| r.executor)
                .collect();
            if self.states[task].done || busy_on.is_empty() {
                continue;
            }
            match pick_strict(&mut free, |e| !busy_on.contains(&e)) {
                Some(executor) => {
                    tracing::info!(task, executor, "launching a speculative attempt");
                    self.launch(task, executor);
                }
                None => waiting.push_back(task),
            }
        }
        self.speculatable = waiting;
        Ok(())
    }

    /// Free slots per executor; fails once no executor was alive for the timeout.
    fn free_slots(&mut self) -> Result<(Vec<ExecutorId>, HashMap<ExecutorId, usize>), StreamError> {
        let executors = self.backend.executors();
        if executors.is_empty() {
            let since = *self.no_executors_since.get_or_insert_with(Instant::now);
            if since.elapsed() > self.conf.no_executor_timeout {
                return Err(StreamError::NoExecutors {
                    waited: self.conf.no_executor_timeout,
                });
            }
        } else {
            self.no_executors_since = None;
        }
        let alive: Vec<ExecutorId> = executors.iter().map(|e| e.0).collect();
        let mut free: HashMap<ExecutorId, usize> = executors.into_iter().collect();
        for r in self.states.iter().flat_map(|s| &s.running) {
            if let Some(slots) = free.get_mut(&r.executor) {
                *slots = slots.saturating_sub(1);
            }
        }
        free.retain(|_, slots| *slots > 0);
        Ok((alive, free))
    }

    fn launch(&mut self, task: usize, executor: ExecutorId) {
        let state = &mut self.states[task];
        let attempt = AttemptId {
            set: self.set,
            task,
            attempt: state.next_attempt,
        };
        state.next_attempt += 1;
        state.running.push(Running {
            attempt: attempt.attempt,
            executor,
            started: Instant::now(),
        });
        self.backend
            .launch(executor, attempt, self.tasks[task].clone(), self.tx.clone());
    }

    fn complete(&mut self, c: Completion<B::Output>) -> Result<(), StreamError> {
        let task = c.attempt.task;
        if c.attempt.set != self.set {
            return Ok(()); // another set's attempt
        }
        let Some(state) = self.states.get_mut(task) else {
            return Ok(());
        };
        let Some(at) = state
            .running
            .iter()
            .position(|r| r.attempt == c.attempt.attempt)
        else {
            return Ok(()); // a stale report
        };
        let ran = state.running.swap_remove(at);
        if state.done {
            return Ok(());
        }
        match c.result {
            Ok(output) => self.succeed(task, output, ran.started.elapsed()),
            Err(TaskFailure::Failed(reason)) => self.fail(task, ran.executor, reason)?,
            Err(TaskFailure::ExecutorLost(_) | TaskFailure::Cancelled) => self.requeue(task),
        }
        Ok(())
    }

    fn succeed(&mut self, task: usize, output: B::Output, took: Duration) {
        let state = &mut self.states[task];
        state.done = true;
        for other in state.running.drain(..) {
            self.backend.cancel(AttemptId {
                set: self.set,
                task,
                attempt: other.attempt,
            });
        }
        self.outputs[task] = Some(output);
        self.durations.push(took);
        self.remaining -= 1;
    }

    fn fail(
        &mut self,
        task: usize,
        executor: ExecutorId,
        reason: String,
    ) -> Result<(), StreamError> {
        let state = &mut self.states[task];
        state.failures += 1;
        state.failed_on.push(executor);
        tracing::warn!(task, executor, failures = state.failures, %reason, "task attempt failed");
        if state.failures >= self.conf.max_task_failures {
            return Err(StreamError::TaskFailed {
                task,
                failures: state.failures,
                last_error: reason,
            });
        }
        self.requeue(task);
        Ok(())
    }

    /// Runs the task again unless another attempt of it is still running.
    fn requeue(&mut self, task: usize) {
        if self.states[task].running.is_empty() {
            self.pending.push_back(task);
        }
    }

    fn check_speculation(&mut self) {
        let Some(spec) = self.conf.speculation else {
            return;
        };
        if self.last_speculation_check.elapsed() < spec.interval {
            return;
        }
        self.last_speculation_check = Instant::now();
        let Some(threshold) = slow_threshold(&spec, &self.durations, self.tasks.len()) else {
            return;
        };
        for (task, state) in self.states.iter_mut().enumerate() {
            let slow = match state.running.as_slice() {
                [only] => only.started.elapsed() > threshold,
                _ => false,
            };
            if slow && !state.done && !state.speculated {
                state.speculated = true;
                self.speculatable.push_back(task);
            }
        }
    }

    fn cancel_all(&mut self) {
        for (task, state) in self.states.iter_mut().enumerate() {
            for r in state.running.drain(..) {
                self.backend.cancel(AttemptId {
                    set: self.set,
                    task,
                    attempt: r.attempt,
                });
            }
        }
    }
}

/// How long a task may run before it is slow: `multiplier` × the median
/// successful duration (at least `min_task_runtime`), once at least
/// `quantile` of the `total` tasks succeeded; `None` before that.
fn slow_threshold(
    spec: &SpeculationConf,
    durations: &[Duration],
    total: usize,
) -> Option<Duration> {
    let min_finished = ((spec.quantile * total as f64).floor() as usize).max(1);
    if durations.len() < min_finished {
        return None;
    }
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    Some(median.mul_f64(spec.multiplier).max(spec.min_task_runtime))
}

/// Takes a free slot on an executor for which `allowed` holds (lowest id first).
fn pick_strict(
    free: &mut HashMap<ExecutorId, usize>,
    allowed: impl Fn(ExecutorId) -> bool,
) -> Option<ExecutorId> {
    let executor = free.keys().copied().filter(|&e| allowed(e)).min()?;
    if let Some(slots) = free.get_mut(&executor) {
        *slots -= 1;
        if *slots == 0 {
            free.remove(&executor);
        }
    }
    Some(executor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_slow_only_past_the_quantile_and_the_multiplied_median() {
        let spec = SpeculationConf::default();
        let ms = Duration::from_millis;
        // 2 of 4 done: under 0.75 of them, no verdict yet.
        assert_eq!(slow_threshold(&spec, &[ms(200), ms(300)], 4), None);
        // 3 of 4 done: 1.5 x the median (300 ms).
        assert_eq!(
            slow_threshold(&spec, &[ms(200), ms(300), ms(400)], 4),
            Some(ms(450))
        );
        // Never below the minimum runtime.
        assert_eq!(
            slow_threshold(&spec, &[ms(1), ms(2), ms(3)], 4),
            Some(ms(100))
        );
        // One task: it must itself have finished (at least one success).
        assert_eq!(slow_threshold(&spec, &[], 1), None);
    }

    #[test]
    fn slots_go_to_allowed_executors_lowest_first_and_run_out() {
        let mut free: HashMap<ExecutorId, usize> = [(1, 1), (2, 2)].into_iter().collect();
        assert_eq!(pick_strict(&mut free, |e| e != 1), Some(2));
        assert_eq!(pick_strict(&mut free, |e| e == 3), None);
        assert_eq!(pick_strict(&mut free, |_| true), Some(1));
        assert_eq!(pick_strict(&mut free, |_| true), Some(2));
        assert_eq!(pick_strict(&mut free, |_| true), None);
    }
}
