//! The per-receiver record rate limit (Spark's `spark.streaming.receiver.maxRate`).
//!
//! A token bucket kept as a theoretical arrival time (GCRA) in exact integer
//! arithmetic: time is counted in nanoseconds times the rate, so one record
//! costs exactly 10^9 units; only the wait a caller is told is rounded (up, to
//! the nanosecond). Over any span of `t` seconds at most `burst + rate * t`
//! records pass; the bucket starts full.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A token bucket of `rate` records per second holding up to `burst` records.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: u128,
    /// How far the arrival time may run ahead of now, in scaled units.
    tolerance: u128,
    /// When the bucket will next be full again, in scaled units.
    arrival: u128,
}

impl RateLimiter {
    /// A limiter of `rate` (> 0) records per second, bursts of at most `burst` (>= 1).
    pub(crate) fn new(rate: u64, burst: u64) -> RateLimiter {
        let rate = u128::from(rate.max(1));
        RateLimiter {
            rate,
            tolerance: u128::from(burst.max(1) - 1) * NANOS_PER_SEC,
            arrival: 0,
        }
    }

    /// The burst [`crate::receiver::BlockGenerator`] uses: a tenth of a
    /// second's worth of records, at least one.
    pub(crate) fn default_burst(rate: u64) -> u64 {
        (rate / 10).max(1)
    }

    /// Takes one token at `now`, or returns the earliest time one is there.
    pub(crate) fn try_acquire(&mut self, now: Duration) -> Result<(), Duration> {
        let now = now.as_nanos() * self.rate;
        let arrival = self.arrival.max(now);
        let ahead = arrival - now;
        if ahead > self.tolerance {
            let ready = arrival - self.tolerance;
            return Err(Duration::from_nanos(nanos_ceil(ready, self.rate)));
        }
        self.arrival = arrival + NANOS_PER_SEC;
        Ok(())
    }
}

/// `scaled / rate` rounded up, saturated to `u64` nanoseconds (584 years).
fn nanos_ceil(scaled: u128, rate: u128) -> u64 {
    u64::try_from(scaled.div_ceil(rate)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_record_per_interval_at_the_rate_and_no_more() {
        let mut rl = RateLimiter::new(10, 1);
        assert_eq!(rl.try_acquire(ms(0)), Ok(()));
        assert_eq!(rl.try_acquire(ms(0)), Err(ms(100)));
        assert_eq!(rl.try_acquire(ms(99)), Err(ms(100)));
        assert_eq!(rl.try_acquire(ms(100)), Ok(()));
        assert_eq!(rl.try_acquire(ms(100)), Err(ms(200)));
    }

    #[test]
    fn an_idle_bucket_fills_only_up_to_its_burst() {
        let mut rl = RateLimiter::new(100, 5);
        for _ in 0..5 {
            assert_eq!(rl.try_acquire(ms(0)), Ok(()));
        }
        assert_eq!(rl.try_acquire(ms(0)), Err(ms(10)));
        // A long idle spell banks at most `burst` tokens.
        let later = ms(60_000);
        for _ in 0..5 {
            assert_eq!(rl.try_acquire(later), Ok(()));
        }
        assert_eq!(rl.try_acquire(later), Err(later + ms(10)));
    }

    #[test]
    fn over_any_span_at_most_burst_plus_rate_times_span_pass() {
        // A non-round rate: 3 per second; one record costs 333.33.. ms, exactly.
        let mut rl = RateLimiter::new(3, 1);
        let mut passed = 0u64;
        let mut now = Duration::ZERO;
        while now <= Duration::from_secs(10) {
            match rl.try_acquire(now) {
                Ok(()) => passed += 1,
                Err(at) => now = at,
            }
        }
        // The bound, and no less than the rate minus the waits' rounding allows.
        assert!((30..=31).contains(&passed), "{passed} passed");
    }

    #[test]
    fn the_default_burst_is_a_tenth_of_a_second_and_at_least_one() {
        assert_eq!(RateLimiter::default_burst(1), 1);
        assert_eq!(RateLimiter::default_burst(1000), 100);
    }
}
