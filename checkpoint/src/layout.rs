//! Where things live under a checkpoint root.
//!
//! ```text
//! <root>/manifests/<seq:020>.manifest                 sequence records (manifests and claims)
//! <root>/parts/<epoch:020>-<generation:020>-<writer>-<part name, percent-encoded>
//! ```
//!
//! Sequence numbers are zero-padded so lexical order is numeric order. Each writer's part names
//! carry its id (`writer` is 128 random bits, in hex), so part objects never collide and are
//! never overwritten; a part only becomes reachable through a manifest that names it.
//!
//! Parts sit side by side in one directory: on local disk a checkpoint then creates no
//! directory, and every directory a write creates costs an fsync of its parent (three per
//! checkpoint with the earlier layout). Stores written with that earlier layout,
//! `parts/<epoch:020>/<generation:020>-<writer>/<name>`, stay readable: manifests record each
//! part's path, and [`classify`] knows both.

use object_store::path::{Path, PathPart};

use crate::{CheckpointError, Epoch, error::Result};

const MANIFESTS: &str = "manifests";
const PARTS: &str = "parts";
const MANIFEST_SUFFIX: &str = ".manifest";

/// Directory of sequence records.
pub(crate) fn manifests_dir(root: &Path) -> Path {
    root.clone().join(MANIFESTS)
}

/// The record at sequence position `seq`.
pub(crate) fn manifest_path(root: &Path, seq: Epoch) -> Path {
    manifests_dir(root).join(manifest_file(seq))
}

/// The record at sequence position `seq`, relative to the root (the `path` of inline parts).
pub(crate) fn manifest_rel_path(seq: Epoch) -> String {
    format!("{MANIFESTS}/{}", manifest_file(seq))
}

fn manifest_file(seq: Epoch) -> String {
    format!("{:020}{MANIFEST_SUFFIX}", seq.0)
}

/// The path (relative to the root) of a writer's part.
pub(crate) fn part_rel_path(
    epoch: Epoch,
    generation: u64,
    writer_id: &str,
    name: &str,
) -> Result<String> {
    if name.is_empty() {
        return Err(CheckpointError::InvalidArgument(
            "part names must not be empty".into(),
        ));
    }
    let encoded = PathPart::from(name);
    Ok(format!(
        "{PARTS}/{:020}-{generation:020}-{writer_id}-{}",
        epoch.0,
        encoded.as_ref()
    ))
}

/// Resolves a root-relative path.
pub(crate) fn resolve(root: &Path, rel: &str) -> Result<Path> {
    let rel = Path::parse(rel)
        .map_err(|e| CheckpointError::corrupt("manifest", rel, format!("bad part path: {e}")))?;
    Ok(root.parts().chain(rel.parts()).collect())
}

/// What an object under the root is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A sequence record.
    Manifest(Epoch),
    /// A part object stored by writer `writer_id` of `generation` for `epoch`.
    Part {
        epoch: Epoch,
        generation: u64,
        writer_id: String,
        rel: String,
    },
    /// Anything else (temporary files of a backend, foreign objects).
    Other,
}

/// A part entry from the fields of its path, or `Other` if they do not parse.
fn part_entry(
    epoch: Option<&str>,
    generation_writer: Option<(&str, &str)>,
    name: Option<&str>,
    parts: &[PathPart<'_>],
) -> Entry {
    let parsed = (|| {
        let epoch = epoch?.parse::<u64>().ok()?;
        let (generation, writer) = generation_writer?;
        let generation = generation.parse::<u64>().ok()?;
        (!writer.is_empty() && !name?.is_empty()).then_some((epoch, generation, writer))
    })();
    match parsed {
        Some((epoch, generation, writer)) => Entry::Part {
            epoch: Epoch(epoch),
            generation,
            writer_id: writer.to_string(),
            rel: parts
                .iter()
                .map(|p| p.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        },
        None => Entry::Other,
    }
}

/// Classifies an object path under `root`.
pub(crate) fn classify(root: &Path, path: &Path) -> Entry {
    let Some(rest) = path.prefix_match(root) else {
        return Entry::Other;
    };
    let parts: Vec<PathPart<'_>> = rest.collect();
    match parts.as_slice() {
        [dir, file] if dir.as_ref() == MANIFESTS => file
            .as_ref()
            .strip_suffix(MANIFEST_SUFFIX)
            .and_then(|n| n.parse().ok())
            .map_or(Entry::Other, |n| Entry::Manifest(Epoch(n))),
        [dir, file] if dir.as_ref() == PARTS => {
            let mut fields = file.as_ref().splitn(4, '-');
            let (epoch, generation, writer, name) =
                (fields.next(), fields.next(), fields.next(), fields.next());
            part_entry(epoch, generation.zip(writer), name, &parts)
        }
        // The earlier layout: parts/<epoch>/<generation>-<writer>/<name>.
        [dir, epoch, writer, name] if dir.as_ref() == PARTS => part_entry(
            Some(epoch.as_ref()),
            writer.as_ref().split_once('-'),
            Some(name.as_ref()),
            &parts,
        ),
        _ => Entry::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_classify_back() {
        let root = Path::from("a/b");
        let m = manifest_path(&root, Epoch(42));
        assert_eq!(classify(&root, &m), Entry::Manifest(Epoch(42)));
        assert_eq!(resolve(&root, &manifest_rel_path(Epoch(42))).unwrap(), m);
        let rel = part_rel_path(Epoch(3), 1, "abc", "state/x y").unwrap();
        let full = resolve(&root, &rel).unwrap();
        assert_eq!(
            classify(&root, &full),
            Entry::Part {
                epoch: Epoch(3),
                generation: 1,
                writer_id: "abc".into(),
                rel: rel.clone()
            }
        );
    }

    #[test]
    fn parts_of_the_earlier_layout_classify() {
        let root = Path::from("a");
        let rel = "parts/00000000000000000003/00000000000000000001-abc/state";
        assert_eq!(
            classify(&root, &resolve(&root, rel).unwrap()),
            Entry::Part {
                epoch: Epoch(3),
                generation: 1,
                writer_id: "abc".into(),
                rel: rel.into()
            }
        );
        for other in [
            "parts/x/1-w/n",
            "parts/3/w/n",
            "parts/3-1-w",
            "parts/3-1--n",
        ] {
            let path = resolve(&root, other).unwrap();
            assert_eq!(classify(&root, &path), Entry::Other, "{other}");
        }
    }

    #[test]
    fn names_with_dashes_keep_writer_and_name_apart() {
        let root = Path::from("a");
        let rel = part_rel_path(Epoch(9), 2, "w1", "a-b-c").unwrap();
        assert_eq!(
            classify(&root, &resolve(&root, &rel).unwrap()),
            Entry::Part {
                epoch: Epoch(9),
                generation: 2,
                writer_id: "w1".into(),
                rel
            }
        );
    }

    #[test]
    fn hostile_names_stay_one_part_object() {
        for name in ["..", ".", "a/../../b", "/", "%2F"] {
            let rel = part_rel_path(Epoch(1), 1, "w", name).unwrap();
            let full = resolve(&Path::from("root"), &rel).unwrap();
            assert!(
                matches!(classify(&Path::from("root"), &full), Entry::Part { .. }),
                "{name}"
            );
        }
        assert!(part_rel_path(Epoch(1), 1, "w", "").is_err());
    }
}
