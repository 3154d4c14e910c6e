//! The stream checkpoint's metadata part: versioned JSON.
//!
//! A checkpoint holds one part [`META_PART`] (this JSON) and one part per
//! stateful operator (`state-<n>`, see [`super::state_codec`]), named in the
//! metadata. Format 1:
//!
//! ```json
//! { "format": 1,
//!   "batch_interval_ms": 1000, "last_completed_ms": 5000, "pending_ms": [6000],
//!   "settings": { "name": "value" },
//!   "graph": { "inputs": { "clicks": { "direct-kafka": "clicks" } },
//!              "outputs": ["save"], "stateful": ["counts"] },
//!   "offsets": { "clicks": [ { "topic": "clicks", "partition": 0, "next": 42 } ] },
//!   "states": { "counts": { "part": "state-0", "last_batch_ms": 5000, "entries": 3 } } }
//! ```
//!
//! `format` is read first: a newer format is refused with a clear error rather
//! than misread. Every older format stays readable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::graph::GraphSignature;
use super::offsets::WireOffset;
use super::settings::Settings;

/// The metadata part's name.
pub(crate) const META_PART: &str = "stream-meta";
/// The metadata format this build writes and the newest it reads.
pub(crate) const META_FORMAT: u32 = 1;

/// The metadata as encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub format: u32,
    pub batch_interval_ms: u64,
    pub last_completed_ms: u64,
    pub pending_ms: Vec<u64>,
    pub settings: Settings,
    pub graph: GraphSignature,
    pub offsets: BTreeMap<String, Vec<WireOffset>>,
    pub states: BTreeMap<String, StatePartRef>,
}

/// Where a stateful operator's state is, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatePartRef {
    /// The part holding it.
    pub part: String,
    /// The last batch applied to it.
    pub last_batch_ms: Option<u64>,
    /// Its number of keys.
    pub entries: u64,
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// Why metadata does not decode.
#[derive(Debug)]
pub(crate) enum MetaError {
    /// Written in a newer format.
    Newer(u32),
    /// Not valid metadata.
    Damaged(String),
}

/// Encodes metadata (plain data: encoding cannot fail, but says so if it did).
pub(crate) fn encode_meta(meta: &Meta) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec_pretty(meta)
}

/// Decodes metadata: the format first, then the rest.
pub(crate) fn decode_meta(bytes: &[u8]) -> Result<Meta, MetaError> {
    let format: FormatOnly =
        serde_json::from_slice(bytes).map_err(|e| MetaError::Damaged(e.to_string()))?;
    if format.format > META_FORMAT || format.format == 0 {
        return match format.format {
            0 => Err(MetaError::Damaged("format 0 does not exist".into())),
            newer => Err(MetaError::Newer(newer)),
        };
    }
    let meta: Meta =
        serde_json::from_slice(bytes).map_err(|e| MetaError::Damaged(e.to_string()))?;
    check(&meta).map_err(MetaError::Damaged)?;
    Ok(meta)
}

/// What the writer guarantees of every checkpoint it writes.
fn check(meta: &Meta) -> Result<(), String> {
    if meta.batch_interval_ms == 0 {
        return Err("batch interval of 0 ms".into());
    }
    let ordered = meta.pending_ms.windows(2).all(|w| w[0] < w[1]);
    let after = meta
        .pending_ms
        .first()
        .is_none_or(|p| *p > meta.last_completed_ms);
    if !ordered || !after {
        return Err(format!(
            "pending batches {:?} are not ascending after the last completed batch {}",
            meta.pending_ms, meta.last_completed_ms
        ));
    }
    let named: Vec<&String> = meta.states.keys().collect();
    let declared: Vec<&String> = meta.graph.stateful_operators().iter().collect();
    if named != declared {
        return Err(format!(
            "states {named:?} do not match the graph's stateful operators {declared:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::graph::InputKind;

    fn meta() -> Meta {
        Meta {
            format: META_FORMAT,
            batch_interval_ms: 1000,
            last_completed_ms: 5000,
            pending_ms: vec![6000, 7000],
            settings: Settings::new().set("a", "1"),
            graph: GraphSignature::new()
                .input("clicks", InputKind::DirectKafka("clicks".into()))
                .stateful("counts"),
            offsets: BTreeMap::new(),
            states: BTreeMap::from([(
                "counts".to_string(),
                StatePartRef {
                    part: "state-0".into(),
                    last_batch_ms: Some(5000),
                    entries: 0,
                },
            )]),
        }
    }

    #[test]
    fn metadata_round_trips() {
        let bytes = encode_meta(&meta()).expect("encode");
        assert_eq!(decode_meta(&bytes).expect("decode"), meta());
    }

    #[test]
    fn newer_format_is_refused_before_anything_else_is_read() {
        let bytes = br#"{"format": 2, "something": "new"}"#;
        assert!(matches!(decode_meta(bytes), Err(MetaError::Newer(2))));
    }

    #[test]
    fn unordered_pending_batches_are_damage() {
        let mut m = meta();
        m.pending_ms = vec![7000, 6000];
        let bytes = encode_meta(&m).expect("encode");
        assert!(matches!(decode_meta(&bytes), Err(MetaError::Damaged(_))));
    }
}
