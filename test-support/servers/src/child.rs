//! Tests that re-run their own test binary as a child process: to SIGKILL it, to trace it, or
//! to give it an environment set at spawn (setting one inside a threaded test harness is
//! unsound).

use std::process::{Command, Output};

/// The arguments that make this test binary run test `test_name` alone, on one thread, with its
/// output shown.
pub fn self_test_args(test_name: &str) -> [&str; 4] {
    [test_name, "--exact", "--nocapture", "--test-threads=1"]
}

/// A command that runs this test binary's test `test_name` alone (see [`self_test_args`]).
pub fn rerun_self(test_name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(self_test_args(test_name));
    command
}

/// Panics, showing the child's output, unless it exited successfully; `what` names the child.
pub fn assert_succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
