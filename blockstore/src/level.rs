//! Storage levels: where a block lives and how many copies the cluster keeps.

use std::fmt;
use std::str::FromStr;

use crate::error::BlockError;

/// Where a block is kept and how many copies exist cluster-wide, as in Spark's `StorageLevel`.
///
/// A level with `use_memory` keeps the block in the memory store when it fits and writes it to
/// disk only when it is evicted (and only if `use_disk`). A disk-only level writes straight to
/// disk. `deserialized` levels keep typed values in memory (see [`crate::Codec`]); the others keep
/// bytes. `replication` is the number of copies on distinct nodes, this node's included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StorageLevel {
    /// The block may be kept on local disk.
    pub use_disk: bool,
    /// The block may be kept in the memory store.
    pub use_memory: bool,
    /// In memory, the block is kept as typed values rather than bytes.
    pub deserialized: bool,
    /// Number of copies on distinct nodes (1 = no replication).
    pub replication: u32,
}

/// Largest replication factor accepted (Spark's limit is 40).
pub const MAX_REPLICATION: u32 = 40;

macro_rules! levels {
    ($($name:ident = ($disk:expr, $mem:expr, $deser:expr, $rep:expr);)*) => {
        impl StorageLevel {
            $(
                #[doc = concat!("Spark's `", stringify!($name), "`.")]
                pub const $name: StorageLevel = StorageLevel {
                    use_disk: $disk,
                    use_memory: $mem,
                    deserialized: $deser,
                    replication: $rep,
                };
            )*

            /// Every predefined level with its Spark name, in Spark's order.
            pub const PREDEFINED: &'static [(&'static str, StorageLevel)] =
                &[$((stringify!($name), StorageLevel::$name)),*];
        }
    };
}

levels! {
    NONE = (false, false, false, 1);
    DISK_ONLY = (true, false, false, 1);
    DISK_ONLY_2 = (true, false, false, 2);
    DISK_ONLY_3 = (true, false, false, 3);
    MEMORY_ONLY = (false, true, true, 1);
    MEMORY_ONLY_2 = (false, true, true, 2);
    MEMORY_ONLY_SER = (false, true, false, 1);
    MEMORY_ONLY_SER_2 = (false, true, false, 2);
    MEMORY_AND_DISK = (true, true, true, 1);
    MEMORY_AND_DISK_2 = (true, true, true, 2);
    MEMORY_AND_DISK_SER = (true, true, false, 1);
    MEMORY_AND_DISK_SER_2 = (true, true, false, 2);
}

impl StorageLevel {
    /// A custom level; checked by [`StorageLevel::validate`] when a block is stored.
    pub const fn new(
        use_disk: bool,
        use_memory: bool,
        deserialized: bool,
        replication: u32,
    ) -> Self {
        StorageLevel {
            use_disk,
            use_memory,
            deserialized,
            replication,
        }
    }

    /// Spark's name for this level, if it is a predefined one.
    pub fn name(&self) -> Option<&'static str> {
        Self::PREDEFINED
            .iter()
            .find(|(_, level)| level == self)
            .map(|(name, _)| *name)
    }

    /// A level can store a block when it uses memory or disk and asks for 1..=40 copies.
    pub fn validate(&self) -> Result<(), BlockError> {
        let reason = if !self.use_memory && !self.use_disk {
            "it uses neither memory nor disk"
        } else if self.replication == 0 || self.replication > MAX_REPLICATION {
            "replication must be between 1 and 40"
        } else {
            return Ok(());
        };
        Err(BlockError::InvalidStorageLevel {
            level: *self,
            reason,
        })
    }

    /// The same level with a different replication factor.
    pub const fn with_replication(self, replication: u32) -> Self {
        StorageLevel {
            replication,
            ..self
        }
    }

    /// The valid names, comma-separated, for error messages.
    pub(crate) fn valid_names() -> String {
        Self::PREDEFINED
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Wire form: one flag byte (bit 0 disk, bit 1 memory, bit 2 deserialized) and the
    /// replication factor as a byte.
    pub(crate) fn to_wire(self) -> [u8; 2] {
        let flags = u8::from(self.use_disk)
            | (u8::from(self.use_memory) << 1)
            | (u8::from(self.deserialized) << 2);
        [flags, self.replication.min(u32::from(u8::MAX)) as u8]
    }

    /// Inverse of [`StorageLevel::to_wire`]; `None` when unknown flag bits are set.
    pub(crate) fn from_wire(bytes: [u8; 2]) -> Option<Self> {
        let [flags, replication] = bytes;
        if flags & !0b111 != 0 {
            return None;
        }
        Some(StorageLevel {
            use_disk: flags & 1 != 0,
            use_memory: flags & 2 != 0,
            deserialized: flags & 4 != 0,
            replication: u32::from(replication),
        })
    }
}

impl FromStr for StorageLevel {
    type Err = BlockError;

    /// Parses a Spark level name (case-insensitive), e.g. `MEMORY_AND_DISK_SER_2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::PREDEFINED
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, level)| *level)
            .ok_or_else(|| BlockError::UnknownStorageLevel {
                name: s.to_string(),
                valid: Self::valid_names(),
            })
    }
}

impl fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "StorageLevel(disk={}, memory={}, deserialized={}, replication={})",
                self.use_disk, self.use_memory, self.deserialized, self.replication
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_through_display_and_parse() {
        assert_eq!(StorageLevel::PREDEFINED.len(), 12);
        for (name, level) in StorageLevel::PREDEFINED {
            assert_eq!(level.to_string(), *name);
            assert_eq!(name.parse::<StorageLevel>().unwrap(), *level);
            assert_eq!(StorageLevel::from_wire(level.to_wire()), Some(*level));
        }
    }

    #[test]
    fn flags_match_spark() {
        let l = StorageLevel::MEMORY_AND_DISK_SER_2;
        assert_eq!(
            (l.use_memory, l.use_disk, l.deserialized, l.replication),
            (true, true, false, 2)
        );
        let l = StorageLevel::DISK_ONLY_3;
        assert_eq!(
            (l.use_memory, l.use_disk, l.deserialized, l.replication),
            (false, true, false, 3)
        );
        let l = StorageLevel::MEMORY_ONLY;
        assert_eq!(
            (l.use_memory, l.use_disk, l.deserialized, l.replication),
            (true, false, true, 1)
        );
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "OFF_HEAP".parse::<StorageLevel>().unwrap_err().to_string();
        assert!(err.contains("OFF_HEAP"), "{err}");
        for (name, _) in StorageLevel::PREDEFINED {
            assert!(err.contains(name), "{err} lacks {name}");
        }
    }

    #[test]
    fn none_and_bad_replication_are_invalid() {
        assert!(StorageLevel::NONE.validate().is_err());
        assert!(
            StorageLevel::MEMORY_ONLY
                .with_replication(0)
                .validate()
                .is_err()
        );
        assert!(
            StorageLevel::MEMORY_ONLY
                .with_replication(41)
                .validate()
                .is_err()
        );
        assert!(StorageLevel::DISK_ONLY_3.validate().is_ok());
        assert_eq!(StorageLevel::from_wire([0b1000, 1]), None);
    }
}
