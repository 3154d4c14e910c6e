//! Retrying a failed checkpoint write with exponential backoff.
//!
//! Spark's `CheckpointWriter` tries 3 times and then only logs; a stream then
//! runs on without checkpoints (SPARK-22429). Here the last failure is
//! returned to the caller, who stops the stream.

use std::time::Duration;

use tidemark_checkpoint::CheckpointError;

use crate::error::StreamError;

/// How a failed checkpoint write is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1 (Spark's `CheckpointWriter` makes 3).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 or more): `base_delay *
    /// 2^(failures - 1)`, at most `max_delay`.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Runs `attempt` until it succeeds, `policy.attempts` are used up, or it is
/// fenced (a newer driver took over: retrying cannot help). `on_retry` hears
/// of each failure that is retried, before the wait. Returns the value and the
/// attempts made, or the last error and the attempts made.
pub(crate) fn with_retries<T>(
    policy: &RetryPolicy,
    mut attempt: impl FnMut() -> Result<T, StreamError>,
    mut on_retry: impl FnMut(u32, &StreamError),
) -> Result<(T, u32), (StreamError, u32)> {
    let attempts = policy.attempts.max(1);
    let mut made = 0;
    loop {
        made += 1;
        let error = match attempt() {
            Ok(value) => return Ok((value, made)),
            Err(e) => e,
        };
        if made >= attempts || is_fenced(&error) {
            return Err((error, made));
        }
        let wait = policy.delay_after(made);
        tracing::warn!(attempt = made, of = attempts, ?wait, error = %error, "checkpoint write failed; retrying");
        on_retry(made, &error);
        std::thread::sleep(wait);
    }
}

fn is_fenced(error: &StreamError) -> bool {
    matches!(error, StreamError::Checkpoint { source, .. } if matches!(**source, CheckpointError::Fenced { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let delays: Vec<u128> = (1..=5).map(|n| policy.delay_after(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
        assert_eq!(policy.delay_after(u32::MAX), Duration::from_millis(500));
    }
}
