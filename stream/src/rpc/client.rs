//! The executor's end: registers with the driver, answers its orders through
//! an [`ExecutorHandler`], and reports blocks, receivers and task outcomes.
//!
//! [`DriverClient::add_block`] waits for the driver's answer (Spark's
//! `askSync(AddBlock)`): when it returns Ok the driver has logged the block,
//! so a reliable receiver may then acknowledge its source. When the
//! connection drops, every waiting call fails and
//! [`DriverClient::wait_closed`] returns: an executor without its driver stops.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::frame::{read_frame, write_frame};
use super::message::{ReceiverStatus, TaskOutcome, ToDriver, ToExecutor};
use crate::block::ReceivedBlockInfo;
use crate::error::StreamError;
use crate::scheduler::AttemptId;

/// What an executor does on the driver's orders. Called from the connection's
/// reader thread: return quickly (start threads for long work).
pub trait ExecutorHandler: Send + Sync + 'static {
    /// Start the receiver of `stream_id` with block-id epoch `epoch`.
    fn start_receiver(&self, stream_id: u32, epoch: u32);
    /// Stop it gracefully.
    fn stop_receiver(&self, stream_id: u32);
    /// Run a task; report its outcome with [`DriverClient::task_done`].
    fn run_task(&self, attempt: AttemptId, task: Bytes);
    /// Stop a running task.
    fn cancel_task(&self, attempt: AttemptId);
    /// Stop everything gracefully; the process should then exit.
    fn shutdown(&self);
}

/// Who this executor is, told to the driver when it connects.
#[derive(Clone, Debug)]
pub struct Registration {
    /// Its id.
    pub executor: u32,
    /// Task attempts it runs at once.
    pub slots: u32,
    /// Where its block manager listens.
    pub block_node: String,
}

type Pending = HashMap<u64, Sender<Option<String>>>;

/// A connection to the driver.
pub struct DriverClient {
    writer: Mutex<TcpStream>,
    pending: Mutex<Pending>,
    next_request: AtomicU64,
    closed: Mutex<Option<String>>,
    closed_cv: Condvar,
}

impl DriverClient {
    /// Connects to the driver at `addr`, registers, and serves its orders on a thread.
    pub fn connect(
        addr: SocketAddr,
        me: &Registration,
        handler: Arc<dyn ExecutorHandler>,
    ) -> Result<Arc<DriverClient>, StreamError> {
        let stream = TcpStream::connect(addr)
            .map_err(StreamError::io(format!("connect to the driver at {addr}")))?;
        let _ = stream.set_nodelay(true);
        let reader = stream
            .try_clone()
            .map_err(StreamError::io("clone the driver connection"))?;
        let client = Arc::new(DriverClient {
            writer: Mutex::new(stream),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            closed: Mutex::new(None),
            closed_cv: Condvar::new(),
        });
        client.send(&ToDriver::Register {
            executor: me.executor,
            pid: std::process::id(),
            slots: me.slots,
            block_node: me.block_node.clone(),
        })?;
        let serving = client.clone();
        std::thread::Builder::new()
            .name("tidemark-executor-conn".into())
            .spawn(move || serving.serve(reader, handler.as_ref()))
            .map_err(StreamError::io("start the driver connection thread"))?;
        Ok(client)
    }

    fn send(&self, msg: &ToDriver) -> Result<(), StreamError> {
        write_frame(&mut *self.writer.lock(), &msg.encode())
            .map_err(StreamError::io("send to the driver"))
    }

    /// Reports a stored block and waits (up to `timeout`) until the driver logged it.
    pub fn add_block(&self, info: ReceivedBlockInfo, timeout: Duration) -> Result<(), StreamError> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        self.pending.lock().insert(request, tx);
        if let Some(why) = self.closed.lock().clone() {
            self.pending.lock().remove(&request);
            return Err(StreamError::DriverGone(why));
        }
        let block = info.block;
        if let Err(e) = self.send(&ToDriver::AddBlock { request, info }) {
            self.pending.lock().remove(&request);
            return Err(e);
        }
        match rx.recv_timeout(timeout) {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(StreamError::BlockRefused {
                block,
                reason: error,
            }),
            Err(_) => {
                self.pending.lock().remove(&request);
                let why = self
                    .closed
                    .lock()
                    .clone()
                    .unwrap_or_else(|| format!("no answer in {timeout:?}"));
                Err(StreamError::DriverGone(why))
            }
        }
    }

    /// Reports a receiver's news.
    pub fn receiver_status(
        &self,
        stream_id: u32,
        status: ReceiverStatus,
    ) -> Result<(), StreamError> {
        self.send(&ToDriver::Receiver { stream_id, status })
    }

    /// Reports how a task attempt ended.
    pub fn task_done(&self, attempt: AttemptId, outcome: TaskOutcome) -> Result<(), StreamError> {
        self.send(&ToDriver::TaskDone { attempt, outcome })
    }

    /// Blocks until the connection to the driver is gone; returns why.
    pub fn wait_closed(&self) -> String {
        let mut closed = self.closed.lock();
        while closed.is_none() {
            self.closed_cv.wait(&mut closed);
        }
        closed.clone().unwrap_or_default()
    }

    fn serve(&self, mut reader: TcpStream, handler: &dyn ExecutorHandler) {
        let why = loop {
            match read_frame(&mut reader) {
                Ok(Some(buf)) => match ToExecutor::decode(&buf) {
                    Ok(msg) => self.dispatch(msg, handler),
                    Err(e) => break format!("bad message from the driver: {e}"),
                },
                Ok(None) => break "the driver closed the connection".to_string(),
                Err(e) => break format!("the driver connection failed: {e}"),
            }
        };
        tracing::warn!(%why, "driver connection gone");
        *self.closed.lock() = Some(why);
        // Fail every waiting report: dropping their senders wakes them.
        self.pending.lock().clear();
        self.closed_cv.notify_all();
    }

    fn dispatch(&self, msg: ToExecutor, handler: &dyn ExecutorHandler) {
        match msg {
            ToExecutor::AddBlockReply { request, error } => {
                if let Some(waiter) = self.pending.lock().remove(&request) {
                    let _ = waiter.send(error);
                }
            }
            ToExecutor::StartReceiver { stream_id, epoch } => {
                handler.start_receiver(stream_id, epoch)
            }
            ToExecutor::StopReceiver { stream_id } => handler.stop_receiver(stream_id),
            ToExecutor::RunTask { attempt, task } => handler.run_task(attempt, task),
            ToExecutor::CancelTask { attempt } => handler.cancel_task(attempt),
            ToExecutor::Shutdown => handler.shutdown(),
        }
    }
}
