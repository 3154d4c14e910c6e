//! The stream graph's signature: what a checkpoint must match to be resumed
//! (Spark checkpoints the whole `DStreamGraph`; tidemark keeps only its shape).
//!
//! Streams, outputs and stateful operators are named by the application with
//! names that stay the same from one run to the next. Two signatures are
//! compared by name: [`GraphSignature::differences`] lists what was added,
//! removed, renamed or changed kind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// What an input stream reads from. Its [`Display`](fmt::Display) is the
/// stable form used in messages: `socket:127.0.0.1:9999`, `kafka:topic`,
/// `direct-kafka:topic`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// A receiver reading a TCP socket (`host:port`).
    Socket(String),
    /// A receiver-based Kafka stream of a topic.
    Kafka(String),
    /// A direct (offset-based) Kafka stream of a topic; its offsets are checkpointed.
    DirectKafka(String),
    /// Any other source, described by a stable string.
    Other(String),
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputKind::Socket(addr) => write!(f, "socket:{addr}"),
            InputKind::Kafka(topic) => write!(f, "kafka:{topic}"),
            InputKind::DirectKafka(topic) => write!(f, "direct-kafka:{topic}"),
            InputKind::Other(what) => write!(f, "other:{what}"),
        }
    }
}

/// The shape of a stream graph: input streams by name and kind, output
/// operations by name, stateful operators by name. Names are unique within
/// each group; declaring a name again replaces the earlier declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSignature {
    inputs: BTreeMap<String, InputKind>,
    outputs: BTreeSet<String>,
    stateful: BTreeSet<String>,
}

impl GraphSignature {
    /// An empty graph.
    pub fn new() -> GraphSignature {
        GraphSignature::default()
    }

    /// Adds an input stream.
    pub fn input(mut self, name: impl Into<String>, kind: InputKind) -> GraphSignature {
        self.inputs.insert(name.into(), kind);
        self
    }

    /// Adds an output operation.
    pub fn output(mut self, name: impl Into<String>) -> GraphSignature {
        self.outputs.insert(name.into());
        self
    }

    /// Adds a stateful operator (its keyed state is checkpointed).
    pub fn stateful(mut self, name: impl Into<String>) -> GraphSignature {
        self.stateful.insert(name.into());
        self
    }

    /// The input streams, by name.
    pub fn inputs(&self) -> &BTreeMap<String, InputKind> {
        &self.inputs
    }

    /// The output operations.
    pub fn outputs(&self) -> &BTreeSet<String> {
        &self.outputs
    }

    /// The stateful operators.
    pub fn stateful_operators(&self) -> &BTreeSet<String> {
        &self.stateful
    }

    /// What changed from `old` (a checkpoint's graph) to `self` (the code's),
    /// inputs first, then outputs, then stateful operators, each by name.
    pub fn differences(&self, old: &GraphSignature) -> Vec<GraphDifference> {
        let mut out = input_differences(&old.inputs, &self.inputs);
        out.extend(name_differences(&old.outputs, &self.outputs, Group::Output));
        out.extend(name_differences(
            &old.stateful,
            &self.stateful,
            Group::Stateful,
        ));
        out
    }
}

/// One difference between a checkpoint's graph and the code's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphDifference {
    /// The code has an input stream the checkpoint does not.
    InputAdded {
        /// Its name.
        name: String,
        /// Its kind.
        kind: InputKind,
    },
    /// The checkpoint has an input stream the code does not.
    InputRemoved {
        /// Its name.
        name: String,
        /// Its kind.
        kind: InputKind,
    },
    /// The only removed stream of a kind and the only added stream of the same
    /// kind: most likely one stream under a new name.
    InputRenamed {
        /// The checkpoint's name.
        from: String,
        /// The code's name.
        to: String,
        /// The kind both have.
        kind: InputKind,
    },
    /// A stream of the same name reads from another source.
    InputKindChanged {
        /// Its name.
        name: String,
        /// The checkpoint's kind.
        old: InputKind,
        /// The code's kind.
        new: InputKind,
    },
    /// The code has an output operation the checkpoint does not.
    OutputAdded(String),
    /// The checkpoint has an output operation the code does not.
    OutputRemoved(String),
    /// The code has a stateful operator the checkpoint does not.
    StatefulAdded(String),
    /// The checkpoint has a stateful operator the code does not.
    StatefulRemoved(String),
}

impl fmt::Display for GraphDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphDifference::InputAdded { name, kind } => {
                write!(f, "input stream {name:?} ({kind}) was added")
            }
            GraphDifference::InputRemoved { name, kind } => {
                write!(f, "input stream {name:?} ({kind}) was removed")
            }
            GraphDifference::InputRenamed { from, to, kind } => {
                write!(f, "input stream {from:?} ({kind}) was renamed to {to:?}")
            }
            GraphDifference::InputKindChanged { name, old, new } => {
                write!(f, "input stream {name:?} changed from {old} to {new}")
            }
            GraphDifference::OutputAdded(name) => write!(f, "output {name:?} was added"),
            GraphDifference::OutputRemoved(name) => write!(f, "output {name:?} was removed"),
            GraphDifference::StatefulAdded(name) => {
                write!(f, "stateful operator {name:?} was added")
            }
            GraphDifference::StatefulRemoved(name) => {
                write!(f, "stateful operator {name:?} was removed")
            }
        }
    }
}

fn input_differences(
    old: &BTreeMap<String, InputKind>,
    new: &BTreeMap<String, InputKind>,
) -> Vec<GraphDifference> {
    let removed: Vec<(&String, &InputKind)> =
        old.iter().filter(|(n, _)| !new.contains_key(*n)).collect();
    let added: Vec<(&String, &InputKind)> =
        new.iter().filter(|(n, _)| !old.contains_key(*n)).collect();
    let mut out: Vec<GraphDifference> = old
        .iter()
        .filter_map(|(name, kind)| match new.get(name) {
            Some(now) if now != kind => Some(GraphDifference::InputKindChanged {
                name: name.clone(),
                old: kind.clone(),
                new: now.clone(),
            }),
            _ => None,
        })
        .collect();
    let of_kind = |list: &[(&String, &InputKind)], kind: &InputKind| {
        list.iter().filter(|(_, k)| *k == kind).count()
    };
    let mut renamed_to = BTreeSet::new();
    for (name, kind) in &removed {
        let unique = of_kind(&removed, kind) == 1 && of_kind(&added, kind) == 1;
        match added.iter().find(|(_, k)| k == kind).filter(|_| unique) {
            Some((to, _)) => {
                renamed_to.insert((*to).clone());
                out.push(GraphDifference::InputRenamed {
                    from: (*name).clone(),
                    to: (*to).clone(),
                    kind: (*kind).clone(),
                });
            }
            None => out.push(GraphDifference::InputRemoved {
                name: (*name).clone(),
                kind: (*kind).clone(),
            }),
        }
    }
    out.extend(
        added
            .iter()
            .filter(|(name, _)| !renamed_to.contains(*name))
            .map(|(name, kind)| GraphDifference::InputAdded {
                name: (*name).clone(),
                kind: (*kind).clone(),
            }),
    );
    out
}

#[derive(Clone, Copy)]
enum Group {
    Output,
    Stateful,
}

fn name_differences(
    old: &BTreeSet<String>,
    new: &BTreeSet<String>,
    group: Group,
) -> Vec<GraphDifference> {
    let removed = old.difference(new).map(|n| match group {
        Group::Output => GraphDifference::OutputRemoved(n.clone()),
        Group::Stateful => GraphDifference::StatefulRemoved(n.clone()),
    });
    let added = new.difference(old).map(|n| match group {
        Group::Output => GraphDifference::OutputAdded(n.clone()),
        Group::Stateful => GraphDifference::StatefulAdded(n.clone()),
    });
    removed.chain(added).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> GraphSignature {
        GraphSignature::new()
            .input("lines", InputKind::Socket("127.0.0.1:9999".into()))
            .input("clicks", InputKind::DirectKafka("clicks".into()))
            .output("print")
            .stateful("counts")
    }

    #[test]
    fn same_graph_has_no_differences() {
        assert_eq!(base().differences(&base()), vec![]);
    }

    #[test]
    fn a_lone_removed_and_added_stream_of_one_kind_is_a_rename() {
        let old = base();
        let new = GraphSignature::new()
            .input("lines", InputKind::Socket("127.0.0.1:9999".into()))
            .input("clicks-v2", InputKind::DirectKafka("clicks".into()))
            .input("views", InputKind::Kafka("views".into()))
            .output("print")
            .stateful("counts");
        assert_eq!(
            new.differences(&old),
            vec![
                GraphDifference::InputRenamed {
                    from: "clicks".into(),
                    to: "clicks-v2".into(),
                    kind: InputKind::DirectKafka("clicks".into()),
                },
                GraphDifference::InputAdded {
                    name: "views".into(),
                    kind: InputKind::Kafka("views".into()),
                },
            ]
        );
    }

    #[test]
    fn kind_changes_outputs_and_operators_are_named() {
        let old = base();
        let new = GraphSignature::new()
            .input("lines", InputKind::Socket("127.0.0.1:7777".into()))
            .input("clicks", InputKind::DirectKafka("clicks".into()))
            .output("save")
            .stateful("sums");
        let diffs = new.differences(&old);
        assert_eq!(
            diffs,
            vec![
                GraphDifference::InputKindChanged {
                    name: "lines".into(),
                    old: InputKind::Socket("127.0.0.1:9999".into()),
                    new: InputKind::Socket("127.0.0.1:7777".into()),
                },
                GraphDifference::OutputRemoved("print".into()),
                GraphDifference::OutputAdded("save".into()),
                GraphDifference::StatefulRemoved("counts".into()),
                GraphDifference::StatefulAdded("sums".into()),
            ]
        );
        assert_eq!(
            diffs[0].to_string(),
            "input stream \"lines\" changed from socket:127.0.0.1:9999 to socket:127.0.0.1:7777"
        );
    }
}
