//! The messages between the driver and its executors, each one frame:
//! a protocol version byte, a tag byte, then the fields ([`crate::wire`]).
//!
//! The driver sends executors only names, ids and opaque task descriptions
//! (built by the stream graph on both sides from the same code), never
//! closures or blocks.

use bytes::Bytes;

use crate::block::ReceivedBlockInfo;
use crate::scheduler::AttemptId;
use crate::wire::{DecodeError, Decoder, Encoder};

/// The version this build speaks; a frame of another version is refused.
pub const PROTOCOL_VERSION: u8 = 1;

/// What a receiver tells the driver of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiverStatus {
    /// It started (again).
    Started,
    /// It is restarting, for this reason.
    Restarting(String),
    /// It reported an error and goes on.
    Error(String),
    /// It stopped.
    Stopped,
}

/// How a task attempt ended, as the executor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Its output.
    Done(Bytes),
    /// It failed.
    Failed(String),
    /// It stopped because it was cancelled.
    Cancelled,
}

/// Executor → driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToDriver {
    /// The first message of a connection.
    Register {
        /// The executor's id (from the supervisor).
        executor: u32,
        /// Its process id.
        pid: u32,
        /// Task attempts it runs at once.
        slots: u32,
        /// Where its block manager listens (`host:port`).
        block_node: String,
    },
    /// A block was stored; the driver replies [`ToExecutor::AddBlockReply`] once it logged it.
    AddBlock {
        /// Matches the reply.
        request: u64,
        /// The block.
        info: ReceivedBlockInfo,
    },
    /// A receiver's news.
    Receiver {
        /// Its stream.
        stream_id: u32,
        /// What happened.
        status: ReceiverStatus,
    },
    /// A task attempt ended.
    TaskDone {
        /// Which.
        attempt: AttemptId,
        /// How.
        outcome: TaskOutcome,
    },
}

/// Driver → executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToExecutor {
    /// The answer to [`ToDriver::AddBlock`]: `None` once the block is logged, else why not.
    AddBlockReply {
        /// The request answered.
        request: u64,
        /// The error, if the driver could not take the block.
        error: Option<String>,
    },
    /// Start the receiver of `stream_id`; `epoch` makes its block ids unique.
    StartReceiver {
        /// The stream.
        stream_id: u32,
        /// A number the driver never gives twice for this stream.
        epoch: u32,
    },
    /// Stop that receiver gracefully.
    StopReceiver {
        /// The stream.
        stream_id: u32,
    },
    /// Run a task attempt.
    RunTask {
        /// Which attempt.
        attempt: AttemptId,
        /// The task, as the stream graph encodes it.
        task: Bytes,
    },
    /// Stop a running attempt.
    CancelTask {
        /// Which attempt.
        attempt: AttemptId,
    },
    /// Stop every receiver gracefully and exit.
    Shutdown,
}

fn attempt(e: &mut Encoder, a: AttemptId) {
    e.u64(a.set).u64(a.task as u64).u32(a.attempt);
}

fn read_attempt(d: &mut Decoder<'_>) -> Result<AttemptId, DecodeError> {
    let set = d.u64("task set")?;
    let task =
        usize::try_from(d.u64("task index")?).map_err(|_| DecodeError("task index".into()))?;
    Ok(AttemptId {
        set,
        task,
        attempt: d.u32("attempt")?,
    })
}

fn header(d: &mut Decoder<'_>) -> Result<u8, DecodeError> {
    let version = d.u8("protocol version")?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError(format!(
            "protocol version {version}, this build speaks {PROTOCOL_VERSION}"
        )));
    }
    d.u8("message tag")
}

impl ToDriver {
    /// The message as one frame's payload.
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::new();
        e.u8(PROTOCOL_VERSION);
        match self {
            ToDriver::Register {
                executor,
                pid,
                slots,
                block_node,
            } => {
                e.u8(1).u32(*executor).u32(*pid).u32(*slots).str(block_node);
            }
            ToDriver::AddBlock { request, info } => {
                e.u8(2).u64(*request);
                info.encode(&mut e);
            }
            ToDriver::Receiver { stream_id, status } => {
                e.u8(3).u32(*stream_id);
                match status {
                    ReceiverStatus::Started => e.u8(0),
                    ReceiverStatus::Restarting(r) => e.u8(1).str(r),
                    ReceiverStatus::Error(m) => e.u8(2).str(m),
                    ReceiverStatus::Stopped => e.u8(3),
                };
            }
            ToDriver::TaskDone {
                attempt: a,
                outcome,
            } => {
                e.u8(4);
                attempt(&mut e, *a);
                match outcome {
                    TaskOutcome::Done(out) => e.u8(0).bytes(out),
                    TaskOutcome::Failed(why) => e.u8(1).str(why),
                    TaskOutcome::Cancelled => e.u8(2),
                };
            }
        }
        e.finish()
    }

    /// Decodes a frame's payload.
    pub fn decode(buf: &[u8]) -> Result<ToDriver, DecodeError> {
        let mut d = Decoder::new(buf);
        let msg = match header(&mut d)? {
            1 => ToDriver::Register {
                executor: d.u32("executor")?,
                pid: d.u32("pid")?,
                slots: d.u32("slots")?,
                block_node: d.str("block node")?,
            },
            2 => ToDriver::AddBlock {
                request: d.u64("request")?,
                info: ReceivedBlockInfo::decode(&mut d)?,
            },
            3 => ToDriver::Receiver {
                stream_id: d.u32("stream id")?,
                status: match d.u8("receiver status")? {
                    0 => ReceiverStatus::Started,
                    1 => ReceiverStatus::Restarting(d.str("reason")?),
                    2 => ReceiverStatus::Error(d.str("message")?),
                    3 => ReceiverStatus::Stopped,
                    t => return Err(DecodeError(format!("receiver status {t}"))),
                },
            },
            4 => ToDriver::TaskDone {
                attempt: read_attempt(&mut d)?,
                outcome: match d.u8("task outcome")? {
                    0 => TaskOutcome::Done(Bytes::copy_from_slice(d.bytes("output")?)),
                    1 => TaskOutcome::Failed(d.str("failure")?),
                    2 => TaskOutcome::Cancelled,
                    t => return Err(DecodeError(format!("task outcome {t}"))),
                },
            },
            t => return Err(DecodeError(format!("message to the driver with tag {t}"))),
        };
        d.end("message to the driver")?;
        Ok(msg)
    }
}

impl ToExecutor {
    /// The message as one frame's payload.
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::new();
        e.u8(PROTOCOL_VERSION);
        match self {
            ToExecutor::AddBlockReply { request, error } => {
                e.u8(1).u64(*request);
                match error {
                    None => e.u8(0),
                    Some(m) => e.u8(1).str(m),
                };
            }
            ToExecutor::StartReceiver { stream_id, epoch } => {
                e.u8(2).u32(*stream_id).u32(*epoch);
            }
            ToExecutor::StopReceiver { stream_id } => {
                e.u8(3).u32(*stream_id);
            }
            ToExecutor::RunTask { attempt: a, task } => {
                e.u8(4);
                attempt(&mut e, *a);
                e.bytes(task);
            }
            ToExecutor::CancelTask { attempt: a } => {
                e.u8(5);
                attempt(&mut e, *a);
            }
            ToExecutor::Shutdown => {
                e.u8(6);
            }
        }
        e.finish()
    }

    /// Decodes a frame's payload.
    pub fn decode(buf: &[u8]) -> Result<ToExecutor, DecodeError> {
        let mut d = Decoder::new(buf);
        let msg = match header(&mut d)? {
            1 => ToExecutor::AddBlockReply {
                request: d.u64("request")?,
                error: match d.u8("error tag")? {
                    0 => None,
                    1 => Some(d.str("error")?),
                    t => return Err(DecodeError(format!("error tag {t}"))),
                },
            },
            2 => ToExecutor::StartReceiver {
                stream_id: d.u32("stream id")?,
                epoch: d.u32("epoch")?,
            },
            3 => ToExecutor::StopReceiver {
                stream_id: d.u32("stream id")?,
            },
            4 => ToExecutor::RunTask {
                attempt: read_attempt(&mut d)?,
                task: Bytes::copy_from_slice(d.bytes("task")?),
            },
            5 => ToExecutor::CancelTask {
                attempt: read_attempt(&mut d)?,
            },
            6 => ToExecutor::Shutdown,
            t => return Err(DecodeError(format!("message to an executor with tag {t}"))),
        };
        d.end("message to an executor")?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{StreamBlockId, WalHandle};

    fn to_driver() -> Vec<ToDriver> {
        let info = ReceivedBlockInfo {
            block: StreamBlockId {
                stream_id: 1,
                unique_id: 5,
            },
            num_records: Some(3),
            wal: Some(WalHandle {
                stream_id: 1,
                lsn: 8,
            }),
        };
        let a = AttemptId {
            set: 7,
            task: 4,
            attempt: 1,
        };
        vec![
            ToDriver::Register {
                executor: 2,
                pid: 77,
                slots: 4,
                block_node: "127.0.0.1:4000".into(),
            },
            ToDriver::AddBlock { request: 9, info },
            ToDriver::Receiver {
                stream_id: 1,
                status: ReceiverStatus::Restarting("EOF".into()),
            },
            ToDriver::Receiver {
                stream_id: 1,
                status: ReceiverStatus::Stopped,
            },
            ToDriver::TaskDone {
                attempt: a,
                outcome: TaskOutcome::Done(Bytes::from_static(b"42")),
            },
            ToDriver::TaskDone {
                attempt: a,
                outcome: TaskOutcome::Failed("boom".into()),
            },
            ToDriver::TaskDone {
                attempt: a,
                outcome: TaskOutcome::Cancelled,
            },
        ]
    }

    fn to_executor() -> Vec<ToExecutor> {
        let a = AttemptId {
            set: 1,
            task: 0,
            attempt: 0,
        };
        vec![
            ToExecutor::AddBlockReply {
                request: 9,
                error: None,
            },
            ToExecutor::AddBlockReply {
                request: 9,
                error: Some("WAL failed".into()),
            },
            ToExecutor::StartReceiver {
                stream_id: 0,
                epoch: 3,
            },
            ToExecutor::StopReceiver { stream_id: 0 },
            ToExecutor::RunTask {
                attempt: a,
                task: Bytes::from_static(b"sizes@1000"),
            },
            ToExecutor::CancelTask { attempt: a },
            ToExecutor::Shutdown,
        ]
    }

    #[test]
    fn every_message_round_trips_and_no_cut_decodes() {
        for m in to_driver() {
            let buf = m.encode();
            assert_eq!(ToDriver::decode(&buf), Ok(m.clone()));
            for cut in 0..buf.len() {
                assert!(ToDriver::decode(&buf[..cut]).is_err(), "{m:?} cut at {cut}");
            }
        }
        for m in to_executor() {
            let buf = m.encode();
            assert_eq!(ToExecutor::decode(&buf), Ok(m.clone()));
            for cut in 0..buf.len() {
                assert!(
                    ToExecutor::decode(&buf[..cut]).is_err(),
                    "{m:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn another_protocol_version_is_refused_by_name() {
        let mut buf = ToExecutor::Shutdown.encode().to_vec();
        buf[0] = 2;
        let err = ToExecutor::decode(&buf).expect_err("version 2");
        assert!(err.0.contains("protocol version 2"), "{err}");
    }
}
