//! One measured case: how many operations, how long, and their latencies.

use std::time::Duration;

/// The result of one benchmark case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// Group: `machine`, `wal_append`, `wal_replay`.
    pub group: &'static str,
    /// The case within its group, e.g. `per_write`.
    pub name: String,
    /// Concurrent writers (1 for single-threaded cases).
    pub threads: usize,
    /// Operations completed.
    pub ops: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Per-operation latencies, sorted, in nanoseconds (empty when not per-op).
    pub latencies_ns: Vec<u64>,
    /// The machine limit this case is compared with: (case name, its value).
    pub limit: Option<Limit>,
}

/// A machine limit a case is compared with.
#[derive(Clone, Debug)]
pub struct Limit {
    /// Name of the machine case.
    pub name: String,
    /// True when compared by operations per second, false by bytes per second.
    pub by_ops: bool,
    /// The limit's value (ops/s or bytes/s).
    pub value: f64,
}

impl CaseResult {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// MiB of payload per second.
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1), if latencies were recorded.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let n = self.latencies_ns.len();
        let at = ((n as f64 * q).ceil() as usize).clamp(1, n.max(1)) - 1;
        self.latencies_ns
            .get(at)
            .map(|&ns| Duration::from_nanos(ns))
    }

    /// This case's throughput divided by its machine limit's (>1: faster than the limit).
    pub fn ratio(&self) -> Option<f64> {
        let l = self.limit.as_ref()?;
        let mine = if l.by_ops {
            self.ops_per_sec()
        } else {
            self.mib_per_sec() * (1 << 20) as f64
        };
        (l.value > 0.0).then(|| mine / l.value)
    }

    /// Ops/s (or bytes/s) as a limit for other cases.
    pub fn as_limit(&self, by_ops: bool) -> Limit {
        Limit {
            name: format!("{}/{}", self.group, self.name),
            by_ops,
            value: if by_ops {
                self.ops_per_sec()
            } else {
                self.mib_per_sec() * (1 << 20) as f64
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_ratios() {
        let r = CaseResult {
            group: "wal_append",
            name: "x".into(),
            threads: 1,
            ops: 100,
            bytes: 100 << 20,
            elapsed: Duration::from_secs(2),
            latencies_ns: (1..=100).collect(),
            limit: Some(Limit {
                name: "m".into(),
                by_ops: true,
                value: 25.0,
            }),
        };
        assert_eq!(r.ops_per_sec(), 50.0);
        assert_eq!(r.mib_per_sec(), 50.0);
        assert_eq!(r.percentile(0.5), Some(Duration::from_nanos(50)));
        assert_eq!(r.percentile(0.99), Some(Duration::from_nanos(99)));
        assert_eq!(r.percentile(1.0), Some(Duration::from_nanos(100)));
        assert_eq!(r.ratio(), Some(2.0));
    }
}
