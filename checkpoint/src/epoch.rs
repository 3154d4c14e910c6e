//! The checkpoint sequence number.

use std::fmt;

/// Identifies one committed checkpoint. Epochs increase strictly with every commit.
///
/// An epoch is the position of the checkpoint's manifest in the store's linear record sequence
/// (see [`crate::CheckpointStore`]). Epochs are not dense: when a new writer generation starts it
/// takes one position for its claim record, so the first checkpoint after a restart skips one
/// number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The raw sequence number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next position in the sequence.
    pub(crate) fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Epoch {
    fn from(value: u64) -> Self {
        Epoch(value)
    }
}

impl From<Epoch> for u64 {
    fn from(value: Epoch) -> Self {
        value.0
    }
}
