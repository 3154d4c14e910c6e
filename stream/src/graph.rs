//! The stream graph a user builds: input streams, record transformations and
//! named output operations (Spark's `DStreamGraph`).
//!
//! The same user function builds the same graph in the driver and in every
//! executor, so functions are ordinary closures found by stable names: the
//! driver sends an executor only an output's name, a batch time and where the
//! batch's records are ([`TaskSpec`]); the executor looks the output up in its
//! own copy of the graph and runs it.
//!
//! Records enter as bytes (a line, a Kafka value); [`DStream::map`],
//! [`DStream::filter`] and [`DStream::flat_map`] compose typed steps on top,
//! and [`DStream::foreach_batch`] names an output that receives each batch's
//! records. An output runs once per batch (one task), so it sees the whole
//! batch; a re-run batch (after a failure, or as a speculative copy) calls it
//! again with the same records, so outputs must be idempotent.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::block::{BatchTime, ReceivedBlockInfo};
use crate::error::StreamError;
use crate::wire::{DecodeError, Decoder, Encoder};

/// Where an input stream's records come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Lines from a TCP server (`socketTextStream`, unreliable).
    Socket {
        /// `host:port`.
        addr: String,
    },
    /// A Kafka topic through a reliable receiver (consumer-group offsets committed after storing).
    KafkaReceiver {
        /// `host:port` of a broker.
        bootstrap: String,
        /// The topic.
        topic: String,
    },
    /// A Kafka topic read directly by offset ranges (no receiver).
    DirectKafka {
        /// `host:port` of a broker.
        bootstrap: String,
        /// The topic.
        topic: String,
    },
}

impl InputKind {
    /// The stable name that identifies the stream across restarts.
    pub fn stable_name(&self) -> String {
        match self {
            InputKind::Socket { addr } => format!("socket:{addr}"),
            InputKind::KafkaReceiver { topic, .. } => format!("kafka:{topic}"),
            InputKind::DirectKafka { topic, .. } => format!("direct-kafka:{topic}"),
        }
    }

    /// Whether the stream runs a receiver on an executor.
    pub fn has_receiver(&self) -> bool {
        !matches!(self, InputKind::DirectKafka { .. })
    }
}

/// One input stream of the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputStream {
    /// Its id: its position in the graph, the same in every process.
    pub id: u32,
    /// Its source.
    pub kind: InputKind,
}

/// One batch's records as an output sees them.
pub struct Batch<T> {
    time: BatchTime,
    records: Vec<T>,
}

impl<T> Batch<T> {
    /// The batch's time.
    pub fn time(&self) -> BatchTime {
        self.time
    }

    /// Its records, in the order they were received.
    pub fn records(&self) -> &[T] {
        &self.records
    }

    /// Takes the records.
    pub fn into_records(self) -> Vec<T> {
        self.records
    }
}

/// A step from one raw record to zero or more typed values.
type Step<T> = Arc<dyn Fn(&Bytes, &mut dyn FnMut(T)) + Send + Sync>;
/// An output's body: the batch time and its raw records in, success or a reason out.
type OutputFn = Arc<dyn Fn(BatchTime, &[Bytes]) -> Result<(), String> + Send + Sync>;

/// A named output operation.
#[derive(Clone)]
pub struct Output {
    /// Its stable name.
    pub name: String,
    /// The input stream it reads.
    pub input: u32,
    run: OutputFn,
}

impl Output {
    /// Runs the output on one batch's raw records.
    pub fn run(&self, time: BatchTime, records: &[Bytes]) -> Result<(), String> {
        (self.run)(time, records)
    }
}

#[derive(Default)]
struct GraphState {
    inputs: Vec<InputStream>,
    outputs: Vec<Output>,
    errors: Vec<String>,
}

/// Builds a graph; handed to the user's build function.
#[derive(Clone, Default)]
pub struct GraphBuilder {
    state: Arc<Mutex<GraphState>>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// Adds an input stream of `kind`; its records are raw bytes.
    pub fn input(&self, kind: InputKind) -> DStream<Bytes> {
        let mut st = self.state.lock();
        let id = st.inputs.len() as u32;
        st.inputs.push(InputStream { id, kind });
        DStream {
            graph: self.clone(),
            input: id,
            step: Arc::new(|raw: &Bytes, emit: &mut dyn FnMut(Bytes)| emit(raw.clone())),
        }
    }

    /// Lines of a TCP server at `addr` (`host:port`), each a `String` (invalid UTF-8 is replaced).
    pub fn socket_text_stream(&self, addr: &str) -> DStream<String> {
        self.input(InputKind::Socket {
            addr: addr.to_string(),
        })
        .map(|raw| String::from_utf8_lossy(&raw).into_owned())
    }

    /// The values of Kafka topic `topic` on the brokers at `bootstrap`, through
    /// a reliable receiver (its consumer group's offsets are committed only
    /// after each block is stored).
    pub fn kafka_stream(&self, bootstrap: &str, topic: &str) -> DStream<Bytes> {
        self.input(InputKind::KafkaReceiver {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
        })
    }

    /// The finished graph; an error if the build asked for something impossible.
    pub fn build(self) -> Result<StreamGraph, StreamError> {
        let st = std::mem::take(&mut *self.state.lock());
        if let Some(first) = st.errors.first() {
            return Err(StreamError::InvalidGraph(first.clone()));
        }
        if st.outputs.is_empty() {
            return Err(StreamError::InvalidGraph(
                "the graph has no output operation".into(),
            ));
        }
        Ok(StreamGraph {
            inputs: st.inputs,
            outputs: st.outputs,
        })
    }
}

/// A stream of typed records, one batch per batch interval (Spark's `DStream`).
pub struct DStream<T> {
    graph: GraphBuilder,
    input: u32,
    step: Step<T>,
}

impl<T: 'static> DStream<T> {
    /// Each record `r` becomes `f(r)`.
    pub fn map<U: 'static>(self, f: impl Fn(T) -> U + Send + Sync + 'static) -> DStream<U> {
        self.flat_map(move |t| std::iter::once(f(t)))
    }

    /// Keeps the records for which `f` holds.
    pub fn filter(self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DStream<T> {
        self.flat_map(move |t| f(&t).then_some(t))
    }

    /// Each record becomes every item of `f(record)`.
    pub fn flat_map<U: 'static, I: IntoIterator<Item = U>>(
        self,
        f: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> DStream<U> {
        let prev = self.step;
        DStream {
            graph: self.graph,
            input: self.input,
            step: Arc::new(move |raw: &Bytes, emit: &mut dyn FnMut(U)| {
                prev(raw, &mut |t| f(t).into_iter().for_each(&mut *emit))
            }),
        }
    }

    /// Names an output that receives each batch. `name` must be unique in the
    /// graph and stable across restarts (it identifies the output in checkpoints).
    pub fn foreach_batch(
        self,
        name: &str,
        f: impl Fn(Batch<T>) -> Result<(), String> + Send + Sync + 'static,
    ) {
        let step = self.step;
        let run: OutputFn = Arc::new(move |time, raws| {
            let mut records = Vec::with_capacity(raws.len());
            for raw in raws {
                step(raw, &mut |t| records.push(t));
            }
            f(Batch { time, records })
        });
        let mut st = self.graph.state.lock();
        if st.outputs.iter().any(|o| o.name == name) {
            st.errors.push(format!("two outputs are named {name:?}"));
            return;
        }
        st.outputs.push(Output {
            name: name.to_string(),
            input: self.input,
            run,
        });
    }
}

/// A built graph.
pub struct StreamGraph {
    inputs: Vec<InputStream>,
    outputs: Vec<Output>,
}

impl StreamGraph {
    /// The input streams, by id.
    pub fn inputs(&self) -> &[InputStream] {
        &self.inputs
    }

    /// The outputs, in the order they were declared (the order they run in a batch).
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The output named `name`.
    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The graph's shape by stable names, for comparison with a checkpoint's:
    /// `input/<id> -> <stable name>` and `output/<name> -> input <id>`.
    pub fn signature(&self) -> BTreeMap<String, String> {
        let mut sig = BTreeMap::new();
        for i in &self.inputs {
            sig.insert(format!("input/{}", i.id), i.kind.stable_name());
        }
        for o in &self.outputs {
            sig.insert(format!("output/{}", o.name), format!("input {}", o.input));
        }
        sig
    }
}

/// Where a task's records are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskInput {
    /// Received blocks (read from the block store, or the receiver WAL).
    Blocks(Vec<ReceivedBlockInfo>),
    /// Encoded Kafka offset ranges (read straight from the broker).
    OffsetRanges(Bytes),
}

/// What the driver sends an executor to run: an output on one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    /// The output's stable name.
    pub output: String,
    /// The batch.
    pub batch: BatchTime,
    /// Its records.
    pub input: TaskInput,
}

impl TaskSpec {
    /// The task as bytes for [`crate::rpc::ToExecutor::RunTask`].
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::new();
        e.u8(1).str(&self.output).u64(self.batch.0);
        match &self.input {
            TaskInput::Blocks(blocks) => {
                e.u8(0).u32(blocks.len() as u32);
                for b in blocks {
                    b.encode(&mut e);
                }
            }
            TaskInput::OffsetRanges(ranges) => {
                e.u8(1).bytes(ranges);
            }
        }
        e.finish()
    }

    /// Decodes [`TaskSpec::encode`]'s bytes.
    pub fn decode(buf: &[u8]) -> Result<TaskSpec, DecodeError> {
        let mut d = Decoder::new(buf);
        let version = d.u8("task version")?;
        if version != 1 {
            return Err(DecodeError(format!("task version {version}")));
        }
        let output = d.str("output")?;
        let batch = BatchTime(d.u64("batch time")?);
        let input = match d.u8("task input")? {
            0 => {
                let n = d.u32("block count")?;
                let blocks = (0..n)
                    .map(|_| ReceivedBlockInfo::decode(&mut d))
                    .collect::<Result<_, _>>()?;
                TaskInput::Blocks(blocks)
            }
            1 => TaskInput::OffsetRanges(Bytes::copy_from_slice(d.bytes("offset ranges")?)),
            t => return Err(DecodeError(format!("task input {t}"))),
        };
        d.end("task")?;
        Ok(TaskSpec {
            output,
            batch,
            input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::StreamBlockId;

    /// What the test output saw: (batch time, records) per call.
    type Sink = Arc<Mutex<Vec<(u64, Vec<u64>)>>>;

    fn graph(sink: Sink) -> StreamGraph {
        let g = GraphBuilder::new();
        g.socket_text_stream("127.0.0.1:9999")
            .flat_map(|l: String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|w| !w.starts_with('#'))
            .map(|w| w.len() as u64)
            .foreach_batch("sizes", move |batch| {
                sink.lock().push((batch.time().0, batch.records().to_vec()));
                Ok(())
            });
        g.build().expect("graph")
    }

    #[test]
    fn steps_compose_in_order_and_outputs_see_the_batch() {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let g = graph(sink.clone());
        let raws = [
            Bytes::from_static(b"ab cde #x"),
            Bytes::from_static(b""),
            Bytes::from_static(b"f"),
        ];
        g.output("sizes")
            .expect("output")
            .run(BatchTime(1000), &raws)
            .expect("run");
        assert_eq!(*sink.lock(), vec![(1000, vec![2, 3, 1])]);
        assert_eq!(
            g.signature().into_iter().collect::<Vec<_>>(),
            vec![
                ("input/0".to_string(), "socket:127.0.0.1:9999".to_string()),
                ("output/sizes".to_string(), "input 0".to_string())
            ]
        );
    }

    #[test]
    fn duplicate_output_names_and_empty_graphs_are_refused() {
        let g = GraphBuilder::new();
        let s = g.socket_text_stream("a:1");
        let t = g.socket_text_stream("a:2");
        s.foreach_batch("out", |_| Ok(()));
        t.foreach_batch("out", |_| Ok(()));
        assert!(matches!(g.build(), Err(StreamError::InvalidGraph(m)) if m.contains("out")));
        assert!(matches!(
            GraphBuilder::new().build(),
            Err(StreamError::InvalidGraph(_))
        ));
    }

    #[test]
    fn task_specs_round_trip_and_cuts_fail() {
        let specs = [
            TaskSpec {
                output: "sizes".into(),
                batch: BatchTime(5000),
                input: TaskInput::Blocks(vec![ReceivedBlockInfo {
                    block: StreamBlockId {
                        stream_id: 0,
                        unique_id: 3,
                    },
                    num_records: Some(4),
                    wal: None,
                }]),
            },
            TaskSpec {
                output: "k".into(),
                batch: BatchTime(0),
                input: TaskInput::OffsetRanges(Bytes::from_static(b"\x01ranges")),
            },
        ];
        for spec in specs {
            let buf = spec.encode();
            assert_eq!(TaskSpec::decode(&buf), Ok(spec.clone()));
            for cut in 0..buf.len() {
                assert!(TaskSpec::decode(&buf[..cut]).is_err());
            }
        }
    }
}
