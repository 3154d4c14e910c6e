//! The driver–executor protocol over real TCP, with a real executor process:
//! tasks run through the hub, block reports are answered once logged, a
//! SIGKILLed executor's task runs again elsewhere, a vanished driver is seen.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tidemark_stream::rpc::{
    DriverClient, DriverHandler, ExecutorHandler, ExecutorHub, ReceiverStatus, Registration,
    TaskOutcome,
};
use tidemark_stream::scheduler::{AttemptId, SchedulerConf, run_task_set};
use tidemark_stream::{ReceivedBlockInfo, StreamBlockId, StreamError};
use tidemark_test_servers::child::rerun_self;

/// The driver side's record of what it heard.
#[derive(Default)]
struct Driver {
    blocks: Mutex<Vec<(u32, ReceivedBlockInfo)>>,
    registered: Mutex<Vec<u32>>,
    lost: Mutex<Vec<u32>>,
}

impl DriverHandler for Driver {
    fn executor_registered(&self, executor: u32, _block_node: &str) {
        self.registered.lock().push(executor);
    }
    fn add_block(&self, executor: u32, info: ReceivedBlockInfo) -> Result<(), String> {
        if info.block.stream_id == 666 {
            return Err("stream 666 is not in the graph".into());
        }
        self.blocks.lock().push((executor, info));
        Ok(())
    }
    fn receiver_status(&self, _executor: u32, _stream_id: u32, _status: ReceiverStatus) {}
    fn executor_lost(&self, executor: u32, _reason: &str) {
        self.lost.lock().push(executor);
    }
}

/// An executor whose tasks are `"<ms>:<answer>"`: wait `ms` (or until cancelled), answer.
#[derive(Default)]
struct Executor {
    client: OnceLock<Arc<DriverClient>>,
    cancels: Mutex<HashMap<AttemptId, Arc<AtomicBool>>>,
    /// Answers at once, whatever the task asks to wait.
    fast: bool,
}

impl ExecutorHandler for Executor {
    fn start_receiver(&self, _stream_id: u32, _epoch: u32) {}
    fn stop_receiver(&self, _stream_id: u32) {}
    fn run_task(&self, attempt: AttemptId, task: Bytes) {
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.lock().insert(attempt, cancel.clone());
        let Some(client) = self.client.get().cloned() else {
            return;
        };
        let fast = self.fast;
        std::thread::spawn(move || {
            let text = String::from_utf8_lossy(&task).to_string();
            let (ms, answer) = text.split_once(':').unwrap_or(("0", "?"));
            let ms = if fast { 0 } else { ms.parse().unwrap_or(0) };
            let until = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < until && !cancel.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(2));
            }
            let outcome = if cancel.load(Ordering::Acquire) {
                TaskOutcome::Cancelled
            } else {
                TaskOutcome::Done(Bytes::from(answer.to_string()))
            };
            let _ = client.task_done(attempt, outcome);
        });
    }
    fn cancel_task(&self, attempt: AttemptId) {
        if let Some(c) = self.cancels.lock().get(&attempt) {
            c.store(true, Ordering::Release);
        }
    }
    fn shutdown(&self) {}
}

fn connect_executor(addr: SocketAddr, id: u32) -> (Arc<Executor>, Arc<DriverClient>) {
    connect(addr, id, Executor::default())
}

fn connect(addr: SocketAddr, id: u32, handler: Executor) -> (Arc<Executor>, Arc<DriverClient>) {
    let handler = Arc::new(handler);
    let me = Registration {
        executor: id,
        slots: 2,
        block_node: format!("127.0.0.1:{}", 5000 + id),
    };
    let client = DriverClient::connect(addr, &me, handler.clone()).expect("connect");
    let _ = handler.client.set(client.clone());
    (handler, client)
}

fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn hub() -> (Arc<Driver>, ExecutorHub) {
    let driver = Arc::new(Driver::default());
    let hub =
        ExecutorHub::start("127.0.0.1:0".parse().expect("addr"), driver.clone()).expect("hub");
    (driver, hub)
}

fn no_speculation() -> SchedulerConf {
    SchedulerConf {
        speculation: None,
        ..SchedulerConf::default()
    }
}

#[test]
fn a_batch_runs_on_executor_connections_and_block_reports_are_answered() {
    let (driver, hub) = hub();
    let (_e1, c1) = connect_executor(hub.local_addr(), 1);
    let (_e2, _c2) = connect_executor(hub.local_addr(), 2);
    wait_until("two executors", || hub.executor_ids() == [1, 2]);
    let tasks: Vec<Bytes> = (0..10)
        .map(|i| Bytes::from(format!("{}:answer-{i}", i * 3)))
        .collect();
    let out = run_task_set(&hub, tasks, &no_speculation()).expect("batch");
    let want: Vec<Bytes> = (0..10)
        .map(|i| Bytes::from(format!("answer-{i}")))
        .collect();
    assert_eq!(out, want);

    let info = |stream_id| ReceivedBlockInfo {
        block: StreamBlockId {
            stream_id,
            unique_id: 1,
        },
        num_records: Some(10),
        wal: None,
    };
    c1.add_block(info(0), Duration::from_secs(10))
        .expect("logged");
    assert_eq!(
        driver.blocks.lock().as_slice(),
        &[(1, info(0))],
        "logged before add_block returned"
    );
    match c1.add_block(info(666), Duration::from_secs(10)) {
        Err(StreamError::BlockRefused { reason, .. }) => assert!(reason.contains("666")),
        other => panic!("expected BlockRefused, got {other:?}"),
    }
}

/// Set in the child: the driver's address.
const DRIVER_ENV: &str = "TIDEMARK_RPC_TEST_DRIVER";

/// The child side: an executor process (id 9) serving the driver until killed.
#[test]
fn executor_child() {
    let Ok(addr) = std::env::var(DRIVER_ENV) else {
        return;
    };
    let (_handler, client) = connect_executor(addr.parse().expect("driver address"), 9);
    client.wait_closed();
}

#[test]
fn a_killed_executor_process_loses_its_task_to_another_executor() {
    let (driver, hub) = hub();
    let hub = Arc::new(hub);
    let addr = hub.local_addr();
    let mut child = rerun_self("executor_child")
        .env(DRIVER_ENV, addr.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("executor process");
    wait_until("the executor process", || hub.executor_ids() == [9]);
    // The only task starts on executor 9, the only one; there it would take a minute.
    let runner = std::thread::spawn({
        let hub = hub.clone();
        move || {
            run_task_set(
                &*hub,
                vec![Bytes::from_static(b"60000:done")],
                &no_speculation(),
            )
        }
    });
    wait_until("the task to start", || !driver.registered.lock().is_empty());
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("SIGKILL the executor");
    let _ = child.wait();
    wait_until("the loss to be seen", || driver.lost.lock().contains(&9));
    // A replacement executor arrives; the task runs again there.
    let (_e, _c) = connect(
        addr,
        10,
        Executor {
            fast: true,
            ..Executor::default()
        },
    );
    let outputs = runner
        .join()
        .expect("runner")
        .expect("a lost attempt is not a failure");
    assert_eq!(outputs, vec![Bytes::from_static(b"done")]);
}

#[test]
fn an_executor_sees_its_driver_go_and_waiting_reports_fail() {
    let (_driver, hub) = hub();
    let (_e, client) = connect_executor(hub.local_addr(), 1);
    wait_until("registration", || hub.executor_ids() == [1]);
    drop(hub);
    let why = client.wait_closed();
    assert!(!why.is_empty());
    let info = ReceivedBlockInfo {
        block: StreamBlockId {
            stream_id: 0,
            unique_id: 0,
        },
        num_records: None,
        wal: None,
    };
    match client.add_block(info, Duration::from_secs(5)) {
        Err(StreamError::DriverGone(_)) | Err(StreamError::Io { .. }) => {}
        other => panic!("a report to a gone driver must fail, got {other:?}"),
    }
}

#[test]
fn garbage_on_the_driver_port_closes_that_connection_only() {
    let (_driver, hub) = hub();
    let mut raw = TcpStream::connect(hub.local_addr()).expect("connect");
    raw.write_all(&[0xFF; 64]).expect("garbage");
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .expect("more garbage");
    let (_e, _c) = connect_executor(hub.local_addr(), 4);
    wait_until("a proper executor after the garbage", || {
        hub.executor_ids() == [4]
    });
}
