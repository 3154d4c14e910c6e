//! Whether a part object a manifest names is in the store as the manifest records it.
//!
//! One HEAD per part; only the size is compared (the checksum needs the bytes: see
//! [`crate::Checkpoint::verify`]). Used by `latest()` and `list()` to judge a checkpoint, and by
//! `commit()` before it publishes a manifest.

use crate::{error::Result, layout, manifest::PartInfo, store::Shared};

/// What is wrong with a part object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartProblem {
    /// No object at the part's path.
    Missing,
    /// An object of this many bytes, not the manifest's `stored_size`.
    WrongSize(u64),
}

impl PartProblem {
    /// The problem in words, naming the part.
    pub(crate) fn describe(self, part: &PartInfo) -> String {
        match self {
            PartProblem::Missing => format!("part {:?} is missing", part.name),
            PartProblem::WrongSize(size) => format!(
                "part {:?} is {size} bytes, manifest says {}",
                part.name, part.stored_size
            ),
        }
    }
}

/// Looks up the size of `part`'s object and compares its size with the manifest's; `None` if it is as
/// recorded. A store error other than "not found" is an error, not a problem of the part.
pub(crate) async fn part_problem(shared: &Shared, part: &PartInfo) -> Result<Option<PartProblem>> {
    let path = layout::resolve(&shared.root, &part.path)?;
    Ok(match shared.object_size(&path).await? {
        Some(size) if size == part.stored_size => None,
        Some(size) => Some(PartProblem::WrongSize(size)),
        None => Some(PartProblem::Missing),
    })
}
