//! Log sequence numbers.

use std::fmt;

/// A log sequence number: the position of a record in the log.
///
/// LSNs are dense: the first record of a new log is `Lsn(1)` and every record
/// takes the next number, across segments and restarts. `Lsn(0)` never names a
/// record; [`crate::Wal::sync`] returns it for a log that holds nothing yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The LSN that follows this one.
    pub fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Lsn {
    fn from(v: u64) -> Self {
        Lsn(v)
    }
}
