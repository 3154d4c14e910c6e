//! The supervisor (Spark's `--supervise` with a cluster manager's
//! `max-attempts`): one process that starts the driver and the executors as
//! child processes of the same program (each told its role through
//! [`ROLE_ENV`]), restarts a driver that failed, up to
//! [`SuperviseConf::max_attempts`] starts in all with a doubling backoff,
//! replaces every executor that ended while the run goes on, and keeps
//! `<run dir>/pids.json` current ([`PidsFile`]).
//!
//! Guarantees:
//! - A driver that exits 0 ends the run: the executors are stopped and
//!   [`Supervisor::run`] returns Ok.
//! - A stop request ([`Supervisor::stop_handle`], or SIGTERM/SIGINT once
//!   [`Supervisor::stop_on_signals`] was called) is passed to the driver as
//!   SIGTERM, so it stops gracefully; executors are stopped after it.
//! - Every child dies with the supervisor (`PR_SET_PDEATHSIG`), and a stopped
//!   child that does not end within the grace period is killed.

mod child;
mod pids;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use child::ChildProcess;
pub use pids::{PidsFile, ProcessEntry};

use crate::error::StreamError;

/// The environment variable that tells a process of the program its role.
pub const ROLE_ENV: &str = "TIDEMARK_ROLE";
/// The environment variable that names the run directory.
pub const RUN_DIR_ENV: &str = "TIDEMARK_RUN_DIR";

/// What a process of a supervised run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The driver.
    Driver,
    /// Executor `id`.
    Executor(u32),
}

impl Role {
    /// The role this process was given, if it was started by a supervisor.
    pub fn from_env() -> Option<Role> {
        Role::parse(&std::env::var(ROLE_ENV).ok()?)
    }

    /// Parses a role as [`Role::as_env`] writes it.
    pub fn parse(text: &str) -> Option<Role> {
        match text.split_once(':') {
            None if text == "driver" => Some(Role::Driver),
            Some(("executor", id)) => id.parse().ok().map(Role::Executor),
            _ => None,
        }
    }

    /// The role's value for [`ROLE_ENV`].
    pub fn as_env(&self) -> String {
        match self {
            Role::Driver => "driver".into(),
            Role::Executor(id) => format!("executor:{id}"),
        }
    }
}

/// How a run is supervised.
#[derive(Clone, Copy, Debug)]
pub struct SuperviseConf {
    /// Executors kept alive.
    pub executors: u32,
    /// Driver starts allowed in all, the first included (3, as YARN's `am.max-attempts`).
    pub max_attempts: u32,
    /// Wait before the first restart; doubled each time, up to `max_backoff`.
    pub backoff: Duration,
    /// Longest wait between restarts.
    pub max_backoff: Duration,
    /// How long a stopped child may take before it is killed.
    pub stop_grace: Duration,
}

impl Default for SuperviseConf {
    fn default() -> Self {
        SuperviseConf {
            executors: 2,
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            stop_grace: Duration::from_secs(30),
        }
    }
}

/// How a supervised run ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Driver starts, the first included.
    pub driver_starts: u32,
    /// Executors started to replace ones that ended.
    pub executor_replacements: u32,
}

type Spawner = Box<dyn Fn(Role, &Path) -> Command + Send>;

/// Starts and watches the processes of one run.
pub struct Supervisor {
    conf: SuperviseConf,
    run_dir: PathBuf,
    spawn: Spawner,
    stop: Arc<AtomicBool>,
}

/// How often the supervisor looks at its children.
const POLL: Duration = Duration::from_millis(25);

impl Supervisor {
    /// A supervisor whose children are made by `spawn(role, run_dir)`; the
    /// supervisor adds [`ROLE_ENV`] and [`RUN_DIR_ENV`] to each command.
    pub fn new(
        run_dir: impl Into<PathBuf>,
        conf: SuperviseConf,
        spawn: impl Fn(Role, &Path) -> Command + Send + 'static,
    ) -> Supervisor {
        Supervisor {
            conf,
            run_dir: run_dir.into(),
            spawn: Box::new(spawn),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A supervisor whose children run this very program with its arguments.
    pub fn for_current_exe(
        run_dir: impl Into<PathBuf>,
        conf: SuperviseConf,
    ) -> Result<Supervisor, StreamError> {
        let exe = std::env::current_exe().map_err(StreamError::io("find this program"))?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        Ok(Supervisor::new(run_dir, conf, move |_, _| {
            let mut c = Command::new(&exe);
            c.args(&args);
            c
        }))
    }

    /// Setting this flag asks for a graceful stop of the whole run.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Makes SIGTERM and SIGINT ask for a graceful stop.
    pub fn stop_on_signals(&self) -> Result<(), StreamError> {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, self.stop.clone())
                .map_err(StreamError::io("register a signal handler"))?;
        }
        Ok(())
    }

    /// Runs until the driver ends well, a stop was asked for, or the driver
    /// failed `max_attempts` times.
    pub fn run(self) -> Result<Outcome, StreamError> {
        std::fs::create_dir_all(&self.run_dir).map_err(StreamError::io(format!(
            "create {}",
            self.run_dir.display()
        )))?;
        let mut run = Run::start(&self)?;
        let result = run.watch(&self);
        run.stop_all(&self);
        result
    }

    fn spawn(&self, role: Role) -> Result<ChildProcess, StreamError> {
        let mut command = (self.spawn)(role, &self.run_dir);
        command
            .env(ROLE_ENV, role.as_env())
            .env(RUN_DIR_ENV, &self.run_dir);
        ChildProcess::spawn(command, role.as_env())
    }
}

struct Run {
    driver: Option<ChildProcess>,
    driver_starts: u32,
    restart_at: Option<Instant>,
    executors: Vec<(u32, ChildProcess)>,
    next_executor: u32,
    replacements: u32,
    stopping: bool,
}

impl Run {
    fn start(s: &Supervisor) -> Result<Run, StreamError> {
        let mut run = Run {
            driver: Some(s.spawn(Role::Driver)?),
            driver_starts: 1,
            restart_at: None,
            executors: Vec::new(),
            next_executor: 0,
            replacements: 0,
            stopping: false,
        };
        for _ in 0..s.conf.executors {
            run.add_executor(s)?;
        }
        run.write_pids(s)?;
        Ok(run)
    }

    fn add_executor(&mut self, s: &Supervisor) -> Result<(), StreamError> {
        let id = self.next_executor;
        self.next_executor += 1;
        self.executors.push((id, s.spawn(Role::Executor(id))?));
        Ok(())
    }

    /// The supervision loop; returns when the run is over.
    fn watch(&mut self, s: &Supervisor) -> Result<Outcome, StreamError> {
        loop {
            if s.stop.load(Ordering::Acquire) && !self.stopping {
                self.stopping = true;
                tracing::info!("stop requested; asking the driver to stop gracefully");
                match &self.driver {
                    Some(d) => d.terminate(),
                    None => return Ok(self.outcome()),
                }
            }
            if let Some(done) = self.check_driver(s)? {
                return Ok(done);
            }
            self.check_executors(s)?;
            std::thread::sleep(POLL);
        }
    }

    /// Restarts or ends on the driver's exit; `Some` once the run is over.
    fn check_driver(&mut self, s: &Supervisor) -> Result<Option<Outcome>, StreamError> {
        if let Some(at) = self.restart_at
            && Instant::now() >= at
            && !self.stopping
        {
            self.restart_at = None;
            self.driver = Some(s.spawn(Role::Driver)?);
            self.driver_starts += 1;
            self.write_pids(s)?;
        }
        let Some(status) = self.driver.as_mut().and_then(ChildProcess::exited) else {
            return Ok(None);
        };
        self.driver = None;
        self.write_pids(s)?;
        if status.success() {
            tracing::info!("driver finished");
            return Ok(Some(self.outcome()));
        }
        self.driver_failed(s, status)
    }

    fn driver_failed(
        &mut self,
        s: &Supervisor,
        status: ExitStatus,
    ) -> Result<Option<Outcome>, StreamError> {
        let status = status.to_string();
        if self.stopping {
            return Err(StreamError::DriverFailed {
                starts: self.driver_starts,
                last_status: status,
            });
        }
        if self.driver_starts >= s.conf.max_attempts {
            tracing::error!(starts = self.driver_starts, %status, "driver failed; no attempts left");
            return Err(StreamError::DriverFailed {
                starts: self.driver_starts,
                last_status: status,
            });
        }
        let wait = backoff(&s.conf, self.driver_starts);
        tracing::warn!(starts = self.driver_starts, %status, ?wait, "driver failed; restarting it");
        self.restart_at = Some(Instant::now() + wait);
        Ok(None)
    }

    fn check_executors(&mut self, s: &Supervisor) -> Result<(), StreamError> {
        let before = self.executors.len();
        self.executors
            .retain_mut(|(id, child)| match child.exited() {
                Some(status) => {
                    tracing::warn!(executor = *id, %status, "executor ended");
                    false
                }
                None => true,
            });
        let ended = before - self.executors.len();
        if ended == 0 {
            return Ok(());
        }
        if !self.stopping {
            for _ in 0..ended {
                self.add_executor(s)?;
                self.replacements += 1;
            }
        }
        self.write_pids(s)
    }

    fn stop_all(&mut self, s: &Supervisor) {
        if let Some(driver) = self.driver.take() {
            driver.stop(s.conf.stop_grace);
        }
        for (_, executor) in self.executors.drain(..) {
            executor.stop(s.conf.stop_grace);
        }
        if let Err(e) = self.write_pids(s) {
            tracing::warn!(error = %e, "cannot write the final pids.json");
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            driver_starts: self.driver_starts,
            executor_replacements: self.replacements,
        }
    }

    fn write_pids(&self, s: &Supervisor) -> Result<(), StreamError> {
        let mut processes: Vec<ProcessEntry> = self
            .driver
            .iter()
            .map(|d| ProcessEntry::Driver {
                pid: d.pid(),
                attempt: self.driver_starts,
            })
            .collect();
        processes.extend(self.executors.iter().map(|(id, c)| ProcessEntry::Executor {
            id: *id,
            pid: c.pid(),
        }));
        let file = PidsFile {
            supervisor: std::process::id(),
            updated_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            processes,
        };
        file.write(&s.run_dir)
    }
}

/// The wait before the restart that follows start number `starts`.
fn backoff(conf: &SuperviseConf, starts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(starts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    conf.backoff.saturating_mul(factor).min(conf.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_the_environment_form() {
        for role in [Role::Driver, Role::Executor(0), Role::Executor(17)] {
            assert_eq!(Role::parse(&role.as_env()), Some(role));
        }
        for bad in ["", "driver:1", "executor", "executor:x", "worker:1"] {
            assert_eq!(Role::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let conf = SuperviseConf {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..SuperviseConf::default()
        };
        let waits: Vec<u128> = (1..=5).map(|n| backoff(&conf, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350, 350]);
    }
}
