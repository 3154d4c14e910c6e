//! The task-set scheduler on the local (thread) backend: outputs in order,
//! retries elsewhere, the failure limit, speculation taking the first result,
//! executor loss, and no executors at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tidemark_stream::StreamError;
use tidemark_stream::scheduler::{LocalBackend, SchedulerConf, TaskContext, run_task_set};

/// Waits until `ctx` is cancelled (at most `limit`); true if it was.
fn wait_for_cancel(ctx: &TaskContext, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ctx.is_cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn no_speculation() -> SchedulerConf {
    SchedulerConf {
        speculation: None,
        ..SchedulerConf::default()
    }
}

#[test]
fn every_task_runs_and_outputs_come_in_task_order() {
    let backend = LocalBackend::new(3, 2, |t: &u32, _ctx: &TaskContext| {
        std::thread::sleep(Duration::from_millis(u64::from(20 - t)));
        Ok(t * 10)
    });
    let out = run_task_set(&backend, (0..20).collect(), &no_speculation()).expect("run");
    assert_eq!(out, (0..20).map(|t| t * 10).collect::<Vec<_>>());
}

#[test]
fn a_failed_attempt_is_retried_on_another_executor() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    // Task 0 is placed first, on executor 0, where it fails.
    let backend = LocalBackend::new(2, 1, move |t: &u32, ctx: &TaskContext| {
        seen.lock()
            .push((*t, ctx.attempt().attempt, ctx.executor()));
        if ctx.executor() == 0 && *t == 0 {
            return Err("bad disk on executor 0".into());
        }
        Ok(*t)
    });
    let out = run_task_set(&backend, vec![0, 1, 2], &no_speculation()).expect("run");
    assert_eq!(out, vec![0, 1, 2]);
    let log = attempts.lock().clone();
    let task0: Vec<(u32, u32)> = log
        .iter()
        .filter(|(t, _, _)| *t == 0)
        .map(|&(_, a, e)| (a, e))
        .collect();
    assert_eq!(
        task0,
        vec![(0, 0), (1, 1)],
        "attempt 1 ran on executor 1: {log:?}"
    );
}

#[test]
fn a_task_failing_as_often_as_allowed_fails_the_set_and_cancels_the_rest() {
    let other_cancelled = Arc::new(AtomicBool::new(false));
    let flag = other_cancelled.clone();
    let backend = LocalBackend::new(2, 2, move |t: &u32, ctx: &TaskContext| {
        if *t == 0 {
            return Err(format!("attempt {} fails", ctx.attempt().attempt));
        }
        // The other task runs until the set's failure cancels it.
        if wait_for_cancel(ctx, Duration::from_secs(30)) {
            flag.store(true, Ordering::Release);
        }
        Ok(*t)
    });
    let started = Instant::now();
    match run_task_set(&backend, vec![0, 1], &no_speculation()) {
        Err(StreamError::TaskFailed {
            task: 0,
            failures: 4,
            last_error,
        }) => {
            assert!(last_error.contains("attempt 3"), "{last_error}")
        }
        other => panic!("expected TaskFailed after 4 failures, got {other:?}"),
    }
    let deadline = started + Duration::from_secs(30);
    while !other_cancelled.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        other_cancelled.load(Ordering::Acquire),
        "the running task was not cancelled"
    );
}

#[test]
fn speculation_runs_a_second_attempt_of_a_straggler_and_takes_the_first_result() {
    let straggler_cancelled = Arc::new(AtomicBool::new(false));
    let launches = Arc::new(AtomicU32::new(0));
    let (flag, count) = (straggler_cancelled.clone(), launches.clone());
    let backend = LocalBackend::new(3, 4, move |t: &u32, ctx: &TaskContext| {
        count.fetch_add(1, Ordering::AcqRel);
        if *t == 3 && ctx.attempt().attempt == 0 {
            // A straggler: stuck until it is cancelled.
            if wait_for_cancel(ctx, Duration::from_secs(60)) {
                flag.store(true, Ordering::Release);
                return Err("stopped".into());
            }
            return Ok(format!("task {t} by the straggler"));
        }
        std::thread::sleep(Duration::from_millis(10));
        Ok(format!("task {t} by attempt {}", ctx.attempt().attempt))
    });
    let out = run_task_set(&backend, (0..8).collect(), &SchedulerConf::default()).expect("run");
    assert_eq!(
        out[3], "task 3 by attempt 1",
        "the speculative copy's result is taken"
    );
    assert_eq!(
        launches.load(Ordering::Acquire),
        9,
        "one speculative attempt, no more"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !straggler_cancelled.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        straggler_cancelled.load(Ordering::Acquire),
        "the losing attempt was cancelled"
    );
}

#[test]
fn without_speculation_a_straggler_gets_no_second_attempt() {
    let launches = Arc::new(AtomicU32::new(0));
    let count = launches.clone();
    let backend = LocalBackend::new(3, 4, move |t: &u32, _ctx: &TaskContext| {
        count.fetch_add(1, Ordering::AcqRel);
        let ms = if *t == 3 { 400 } else { 5 };
        std::thread::sleep(Duration::from_millis(ms));
        Ok(*t)
    });
    let out = run_task_set(&backend, (0..8).collect(), &no_speculation()).expect("run");
    assert_eq!(out, (0..8).collect::<Vec<_>>());
    assert_eq!(launches.load(Ordering::Acquire), 8);
}

#[test]
fn a_task_lost_with_its_executor_runs_again_without_counting_a_failure() {
    let backend = Arc::new(LocalBackend::new(2, 1, |t: &u32, ctx: &TaskContext| {
        if ctx.executor() == 0 && wait_for_cancel(ctx, Duration::from_secs(30)) {
            return Err("interrupted".into());
        }
        Ok(*t + 100)
    }));
    let conf = SchedulerConf {
        max_task_failures: 1,
        ..no_speculation()
    };
    let killer = backend.clone();
    let kill = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        killer.lose_executor(0);
    });
    let out =
        run_task_set(&*backend, vec![1, 2], &conf).expect("an executor loss is not a task failure");
    kill.join().expect("killer");
    assert_eq!(out, vec![101, 102]);
}

#[test]
fn with_no_executor_alive_the_set_fails_after_its_timeout() {
    let backend = LocalBackend::new(1, 1, |t: &u32, _ctx: &TaskContext| Ok(*t));
    backend.lose_executor(0);
    let conf = SchedulerConf {
        no_executor_timeout: Duration::from_millis(200),
        ..no_speculation()
    };
    match run_task_set(&backend, vec![1], &conf) {
        Err(StreamError::NoExecutors { .. }) => {}
        other => panic!("expected NoExecutors, got {other:?}"),
    }
}

#[test]
fn a_task_every_live_executor_failed_runs_on_one_of_them_again() {
    // One executor: the retry has nowhere else to go, so it runs there again and succeeds.
    let backend = LocalBackend::new(1, 1, |t: &u32, ctx: &TaskContext| {
        match ctx.attempt().attempt {
            0 => Err("transient".to_string()),
            _ => Ok(*t),
        }
    });
    assert_eq!(
        run_task_set(&backend, vec![5], &no_speculation()).expect("run"),
        vec![5]
    );
}
