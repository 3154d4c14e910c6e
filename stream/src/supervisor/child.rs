//! One supervised child process: started so that it dies with the supervisor,
//! stopped politely (SIGTERM) and then, past a timeout, by force.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::error::StreamError;

/// A running child.
pub(crate) struct ChildProcess {
    child: Child,
    what: String,
}

impl ChildProcess {
    /// Starts `command`; the kernel kills the child if the supervisor dies
    /// (`PR_SET_PDEATHSIG`), so a killed supervisor leaves no orphans.
    pub(crate) fn spawn(mut command: Command, what: String) -> Result<ChildProcess, StreamError> {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // prctl, which is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(StreamError::io(format!("start {what}")))?;
        tracing::info!(pid = child.id(), %what, "started");
        Ok(ChildProcess { child, what })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has ended (it is reaped then).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(status) => status,
            Err(e) => {
                tracing::warn!(what = %self.what, error = %e, "cannot wait for a child");
                None
            }
        }
    }

    /// Sends SIGTERM (a request to stop gracefully).
    pub(crate) fn terminate(&self) {
        signal(self.child.id(), libc::SIGTERM);
    }

    /// SIGTERM, then SIGKILL if it has not ended within `grace`; reaps it.
    pub(crate) fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        self.terminate();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(what = %self.what, pid = self.pid(), "did not stop in time; killing it");
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill() only sends a signal to a pid we started and have not reaped
    // (so the pid cannot have been reused); it touches no memory.
    unsafe {
        libc::kill(pid, sig);
    }
}
