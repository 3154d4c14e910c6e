//! The supervisor with real child processes: this test binary re-runs itself
//! as the driver and the executors (test `child`, told what to do by an
//! environment variable), and the tests kill and count real processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tidemark_stream::StreamError;
use tidemark_stream::supervisor::{
    Outcome, PidsFile, RUN_DIR_ENV, Role, SuperviseConf, Supervisor,
};
use tidemark_test_servers::child::rerun_self;

/// Set in children: what the driver does.
const BEHAVIOUR_ENV: &str = "TIDEMARK_SUPERVISOR_TEST_CHILD";

/// The child side: does nothing unless started by a supervisor of these tests.
#[test]
fn child() {
    let Ok(behaviour) = std::env::var(BEHAVIOUR_ENV) else {
        return;
    };
    let run_dir = PathBuf::from(std::env::var(RUN_DIR_ENV).expect("run dir"));
    let role = Role::from_env().expect("a role");
    let code = match (role, behaviour.as_str()) {
        (Role::Driver, "fail-twice") => {
            if bump(&run_dir.join("driver-starts")) <= 2 {
                3
            } else {
                0
            }
        }
        (Role::Driver, "always-fail") => 4,
        (role, _) => run_until_sigterm(&run_dir, role),
    };
    std::process::exit(code);
}

/// Adds one to the counter in `path`; returns the new value.
fn bump(path: &Path) -> u32 {
    let n = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
        + 1;
    std::fs::write(path, n.to_string()).expect("counter");
    n
}

/// Waits for SIGTERM (two minutes at most), then notes that it stopped gracefully.
fn run_until_sigterm(run_dir: &Path, role: Role) -> i32 {
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone()).expect("signal");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !term.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(run_dir.join(format!("{}.stopped", role.as_env())), b"").expect("note");
    0
}

fn supervisor(run_dir: &Path, behaviour: &'static str) -> Supervisor {
    let conf = SuperviseConf {
        executors: 2,
        backoff: Duration::from_millis(50),
        stop_grace: Duration::from_secs(20),
        ..SuperviseConf::default()
    };
    Supervisor::new(run_dir, conf, move |_, _| {
        let mut c = rerun_self("child");
        c.env(BEHAVIOUR_ENV, behaviour);
        c
    })
}

fn stopped(run_dir: &Path, role: Role) -> bool {
    run_dir.join(format!("{}.stopped", role.as_env())).exists()
}

#[test]
fn a_failed_driver_is_restarted_and_a_finished_one_ends_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = supervisor(dir.path(), "fail-twice")
        .run()
        .expect("third start succeeds");
    assert_eq!(
        outcome,
        Outcome {
            driver_starts: 3,
            executor_replacements: 0
        }
    );
    // The executors were asked to stop, and did, gracefully.
    assert!(stopped(dir.path(), Role::Executor(0)) && stopped(dir.path(), Role::Executor(1)));
    let pids = PidsFile::read(dir.path()).expect("pids.json");
    assert!(pids.processes.is_empty(), "{pids:?}");
}

#[test]
fn a_driver_that_keeps_failing_ends_the_run_after_max_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    match supervisor(dir.path(), "always-fail").run() {
        Err(StreamError::DriverFailed {
            starts: 3,
            last_status,
        }) => {
            assert!(last_status.contains('4'), "{last_status}")
        }
        other => panic!("expected DriverFailed after 3 starts, got {other:?}"),
    }
    assert!(stopped(dir.path(), Role::Executor(0)) && stopped(dir.path(), Role::Executor(1)));
}

/// Polls pids.json until `check` holds (a minute at most).
fn wait_for_pids(dir: &Path, what: &str, check: impl Fn(&PidsFile) -> bool) -> PidsFile {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(p) = PidsFile::read(dir)
            && check(&p)
        {
            return p;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_executor_is_replaced_and_a_stop_reaches_every_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sup = supervisor(dir.path(), "until-sigterm");
    let stop = sup.stop_handle();
    let running = std::thread::spawn(move || sup.run());
    let pids = wait_for_pids(dir.path(), "two executors", |p| {
        p.executors().len() == 2 && p.driver().is_some()
    });
    let (_, victim) = pids.executors()[0];
    // SAFETY (test): SIGKILL to a child pid the supervisor has not reaped.
    unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
    let after = wait_for_pids(dir.path(), "a replacement executor", |p| {
        let ids: Vec<u32> = p.executors().iter().map(|e| e.0).collect();
        ids == [1, 2]
    });
    assert!(after.executors().iter().all(|&(_, pid)| pid != victim));
    stop.store(true, Ordering::Release);
    let outcome = running
        .join()
        .expect("supervisor thread")
        .expect("graceful stop");
    assert_eq!(
        outcome,
        Outcome {
            driver_starts: 1,
            executor_replacements: 1
        }
    );
    for role in [Role::Driver, Role::Executor(1), Role::Executor(2)] {
        assert!(
            stopped(dir.path(), role),
            "{role:?} was not stopped gracefully"
        );
    }
    assert!(
        !stopped(dir.path(), Role::Executor(0)),
        "the killed executor cannot have stopped gracefully"
    );
}
