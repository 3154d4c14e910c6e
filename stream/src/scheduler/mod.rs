//! Running one batch's tasks on executors, with retries and speculation
//! (Spark's `TaskSetManager` for a streaming job's single stage).
//!
//! [`run_task_set`] runs every task of a set on the executors a
//! [`TaskBackend`] offers and returns their outputs in task order:
//! - a failed attempt is retried, on another executor when there is one, until
//!   the task has failed [`SchedulerConf::max_task_failures`] times (Spark's
//!   `spark.task.maxFailures`, 4); then the whole set fails and every running
//!   attempt is cancelled. An attempt lost with its executor does not count;
//! - **speculation** (`spark.speculation.*`): every `interval`, once at least
//!   `quantile` of the tasks succeeded, a task whose only attempt has run longer
//!   than `multiplier` times the median successful duration gets a second
//!   attempt on another executor. The first attempt to succeed is the task's
//!   output; the other is cancelled and whatever it returns is ignored.
//!
//! Outputs must tolerate a task running twice (both attempts may run to the
//! end before one is cancelled): that is why batch outputs are written
//! idempotently.

mod local;
mod task_set;

use std::time::Duration;

pub use local::{LocalBackend, TaskContext};
pub use task_set::run_task_set;

/// An executor, as the backend names it.
pub type ExecutorId = u32;

/// One attempt at one task of one task set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptId {
    /// The task set (unique in the driver process), so a late report of an
    /// earlier set's attempt is never taken for this one's.
    pub set: u64,
    /// The task's index in its set.
    pub task: usize,
    /// Attempts of the same task are numbered from 0.
    pub attempt: u32,
}

/// Why an attempt did not produce an output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskFailure {
    /// The task itself failed; counts toward `max_task_failures`.
    Failed(String),
    /// Its executor died or left; the task is run again without counting it.
    ExecutorLost(String),
    /// It was cancelled (another attempt won, or the set failed).
    Cancelled,
}

/// What an attempt came to, as the backend reports it.
#[derive(Debug)]
pub struct Completion<O> {
    /// The attempt.
    pub attempt: AttemptId,
    /// Its output, or why there is none.
    pub result: Result<O, TaskFailure>,
}

/// Where tasks run: executors that take attempts and report each one's
/// completion exactly once on the channel given at launch.
pub trait TaskBackend {
    /// What a task is (sent to executors: names, block ids, offset ranges).
    type Task: Clone;
    /// What a task returns.
    type Output;

    /// The executors alive now, each with the number of attempts it runs at once.
    fn executors(&self) -> Vec<(ExecutorId, usize)>;

    /// Starts `attempt` of `task` on `executor`; its completion (output,
    /// failure, or cancellation) must be sent on `done` exactly once.
    fn launch(
        &self,
        executor: ExecutorId,
        attempt: AttemptId,
        task: Self::Task,
        done: std::sync::mpsc::Sender<Completion<Self::Output>>,
    );

    /// Asks a running attempt to stop (cooperatively); it still reports a completion.
    fn cancel(&self, attempt: AttemptId);
}

/// Speculation settings, named after Spark's `spark.speculation.*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpeculationConf {
    /// How often running tasks are checked (`spark.speculation.interval`, 100 ms).
    pub interval: Duration,
    /// Share of tasks that must have succeeded first (`.quantile`, 0.75).
    pub quantile: f64,
    /// How many times the median successful duration makes a task slow (`.multiplier`, 1.5).
    pub multiplier: f64,
    /// No task is speculated before it ran this long (`.minTaskRuntime`, 100 ms).
    pub min_task_runtime: Duration,
}

impl Default for SpeculationConf {
    fn default() -> Self {
        SpeculationConf {
            interval: Duration::from_millis(100),
            quantile: 0.75,
            multiplier: 1.5,
            min_task_runtime: Duration::from_millis(100),
        }
    }
}

/// How a task set is run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedulerConf {
    /// Failures of one task that fail the set (`spark.task.maxFailures`, 4).
    pub max_task_failures: u32,
    /// Speculation, if on (Spark's default is off; tidemark's is on).
    pub speculation: Option<SpeculationConf>,
    /// How long the set may wait with no executor alive before it fails.
    pub no_executor_timeout: Duration,
}

impl Default for SchedulerConf {
    fn default() -> Self {
        SchedulerConf {
            max_task_failures: 4,
            speculation: Some(SpeculationConf::default()),
            no_executor_timeout: Duration::from_secs(60),
        }
    }
}
