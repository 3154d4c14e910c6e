//! The driver's end: executors connect, register, report blocks, receivers and
//! task outcomes; the driver starts receivers and runs tasks on them.
//!
//! An executor is alive exactly while its connection is: when it drops (the
//! process died, or sent something that does not decode), the executor is
//! removed, each of its running attempts completes as
//! [`TaskFailure::ExecutorLost`], and the [`DriverHandler`] hears of it.
//! [`ExecutorHub`] is a [`TaskBackend`], so a batch's tasks run on executor
//! processes through [`crate::scheduler::run_task_set`].

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use bytes::Bytes;
use parking_lot::Mutex;

use super::frame::{read_frame, write_frame};
use super::message::{ReceiverStatus, TaskOutcome, ToDriver, ToExecutor};
use crate::block::ReceivedBlockInfo;
use crate::error::StreamError;
use crate::scheduler::{AttemptId, Completion, ExecutorId, TaskBackend, TaskFailure};

/// What the driver does with executors' news. Called from connection threads.
pub trait DriverHandler: Send + Sync + 'static {
    /// `executor` registered (or registered again after reconnecting).
    fn executor_registered(&self, executor: ExecutorId, block_node: &str);
    /// A block was stored; Ok once it is logged (the executor's `store_block` waits for this).
    fn add_block(&self, executor: ExecutorId, info: ReceivedBlockInfo) -> Result<(), String>;
    /// A receiver's news.
    fn receiver_status(&self, executor: ExecutorId, stream_id: u32, status: ReceiverStatus);
    /// `executor`'s connection is gone.
    fn executor_lost(&self, executor: ExecutorId, reason: &str);
}

struct Conn {
    writer: Mutex<TcpStream>,
    slots: usize,
    /// Tells apart a connection from its replacement under the same id.
    serial: u64,
}

type Attempts = HashMap<AttemptId, (ExecutorId, Sender<Completion<Bytes>>)>;

struct Shared {
    handler: Arc<dyn DriverHandler>,
    executors: Mutex<HashMap<ExecutorId, Arc<Conn>>>,
    attempts: Mutex<Attempts>,
    next_serial: Mutex<u64>,
    /// Set when the hub is dropped: the accept loop ends.
    closed: AtomicBool,
}

/// The driver's listener and its executor connections.
pub struct ExecutorHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl ExecutorHub {
    /// Listens on `bind` (port 0: any free port) and serves executors until dropped.
    pub fn start(
        bind: SocketAddr,
        handler: Arc<dyn DriverHandler>,
    ) -> Result<ExecutorHub, StreamError> {
        let listener =
            TcpListener::bind(bind).map_err(StreamError::io(format!("listen on {bind}")))?;
        let addr = listener
            .local_addr()
            .map_err(StreamError::io("read the listener's address"))?;
        let shared = Arc::new(Shared {
            handler,
            executors: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
            next_serial: Mutex::new(0),
            closed: AtomicBool::new(false),
        });
        let accept = shared.clone();
        std::thread::Builder::new()
            .name("tidemark-driver-accept".into())
            .spawn(move || accept_loop(&listener, &accept))
            .map_err(StreamError::io("start the accept thread"))?;
        Ok(ExecutorHub { addr, shared })
    }

    /// Where executors connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The executors connected now.
    pub fn executor_ids(&self) -> Vec<ExecutorId> {
        let mut ids: Vec<ExecutorId> = self.shared.executors.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Sends `msg` to `executor`; an error if it is not connected or the send failed.
    pub fn send(&self, executor: ExecutorId, msg: &ToExecutor) -> Result<(), StreamError> {
        let conn = self.shared.executors.lock().get(&executor).cloned();
        let conn = conn.ok_or(StreamError::ExecutorGone(executor))?;
        let mut w = conn.writer.lock();
        write_frame(&mut *w, &msg.encode())
            .map_err(StreamError::io(format!("send to executor {executor}")))
    }
}

impl Drop for ExecutorHub {
    /// Stops accepting and closes every connection; executors see their driver gone.
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        for conn in self.shared.executors.lock().values() {
            let _ = conn.writer.lock().shutdown(std::net::Shutdown::Both);
        }
    }
}

impl TaskBackend for ExecutorHub {
    type Task = Bytes;
    type Output = Bytes;

    fn executors(&self) -> Vec<(ExecutorId, usize)> {
        self.shared
            .executors
            .lock()
            .iter()
            .map(|(id, c)| (*id, c.slots))
            .collect()
    }

    fn launch(
        &self,
        executor: ExecutorId,
        attempt: AttemptId,
        task: Bytes,
        done: Sender<Completion<Bytes>>,
    ) {
        self.shared
            .attempts
            .lock()
            .insert(attempt, (executor, done));
        if let Err(e) = self.send(executor, &ToExecutor::RunTask { attempt, task }) {
            complete(
                &self.shared,
                attempt,
                Err(TaskFailure::ExecutorLost(e.to_string())),
            );
        }
    }

    fn cancel(&self, attempt: AttemptId) {
        let executor = self.shared.attempts.lock().get(&attempt).map(|a| a.0);
        if let Some(executor) = executor
            && let Err(e) = self.send(executor, &ToExecutor::CancelTask { attempt })
        {
            tracing::debug!(error = %e, ?attempt, "cannot cancel");
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an executor failed");
                continue;
            }
        };
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("tidemark-driver-conn".into())
            .spawn(move || serve(stream, &shared));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a connection thread");
        }
    }
}

/// One executor connection, from its registration to its end.
fn serve(stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    let (executor, conn) = match register(&mut reader, stream, shared) {
        Ok(r) => r,
        Err(why) => {
            tracing::warn!(%why, "an executor connection did not register");
            return;
        }
    };
    let why = loop {
        match read_frame(&mut reader) {
            Ok(Some(buf)) => match ToDriver::decode(&buf) {
                Ok(msg) => dispatch(shared, executor, &conn, msg),
                Err(e) => break format!("bad message: {e}"),
            },
            Ok(None) => break "connection closed".to_string(),
            Err(e) => break format!("connection failed: {e}"),
        }
    };
    lose(shared, executor, &conn, &why);
}

fn register(
    reader: &mut TcpStream,
    writer: TcpStream,
    shared: &Shared,
) -> Result<(ExecutorId, Arc<Conn>), String> {
    let buf = read_frame(reader)
        .map_err(|e| e.to_string())?
        .ok_or("closed before registering")?;
    let ToDriver::Register {
        executor,
        slots,
        block_node,
        pid,
    } = ToDriver::decode(&buf).map_err(|e| e.to_string())?
    else {
        return Err("the first message was not a registration".into());
    };
    let serial = {
        let mut n = shared.next_serial.lock();
        *n += 1;
        *n
    };
    let conn = Arc::new(Conn {
        writer: Mutex::new(writer),
        slots: slots.max(1) as usize,
        serial,
    });
    shared.executors.lock().insert(executor, conn.clone());
    tracing::info!(executor, pid, slots, %block_node, "executor registered");
    shared.handler.executor_registered(executor, &block_node);
    Ok((executor, conn))
}

fn dispatch(shared: &Shared, executor: ExecutorId, conn: &Conn, msg: ToDriver) {
    match msg {
        ToDriver::AddBlock { request, info } => {
            let error = shared.handler.add_block(executor, info).err();
            let reply = ToExecutor::AddBlockReply { request, error };
            if let Err(e) = write_frame(&mut *conn.writer.lock(), &reply.encode()) {
                tracing::warn!(executor, error = %e, "cannot answer a block report");
            }
        }
        ToDriver::Receiver { stream_id, status } => {
            shared.handler.receiver_status(executor, stream_id, status)
        }
        ToDriver::TaskDone { attempt, outcome } => {
            let result = match outcome {
                TaskOutcome::Done(out) => Ok(out),
                TaskOutcome::Failed(why) => Err(TaskFailure::Failed(why)),
                TaskOutcome::Cancelled => Err(TaskFailure::Cancelled),
            };
            complete(shared, attempt, result);
        }
        ToDriver::Register { .. } => tracing::warn!(
            executor,
            "a second registration on one connection is ignored"
        ),
    }
}

/// Removes the executor (unless a newer connection replaced it) and fails its attempts.
fn lose(shared: &Shared, executor: ExecutorId, conn: &Conn, why: &str) {
    let removed = {
        let mut executors = shared.executors.lock();
        let current = executors
            .get(&executor)
            .is_some_and(|c| c.serial == conn.serial);
        current && executors.remove(&executor).is_some()
    };
    if !removed {
        return;
    }
    tracing::warn!(executor, %why, "executor lost");
    let orphans: Vec<AttemptId> = shared
        .attempts
        .lock()
        .iter()
        .filter(|(_, (e, _))| *e == executor)
        .map(|(a, _)| *a)
        .collect();
    for attempt in orphans {
        complete(
            shared,
            attempt,
            Err(TaskFailure::ExecutorLost(format!(
                "executor {executor}: {why}"
            ))),
        );
    }
    shared.handler.executor_lost(executor, why);
}

fn complete(shared: &Shared, attempt: AttemptId, result: Result<Bytes, TaskFailure>) {
    if let Some((_, done)) = shared.attempts.lock().remove(&attempt) {
        let _ = done.send(Completion { attempt, result });
    }
}
