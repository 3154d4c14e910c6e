//! The TCP line receiver against real servers on 127.0.0.1, supervised, with
//! blocks in a real block manager: every line arrives in order, a lost
//! server is retried with backoff until it is back, and an oversize line is
//! counted, reported and skipped.

mod receiver_common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use receiver_common::{Recorder, block_manager, read_all, text};
use tidemark_blockstore::{BlockManager, StorageLevel};
use tidemark_stream::handler::BlockStoreHandler;
use tidemark_stream::receiver::{
    BlockGeneratorConfig, ReceiverSupervisor, SupervisorConfig, TcpLineConfig, TcpLineReceiver,
};

fn tcp_config(port: u16) -> TcpLineConfig {
    TcpLineConfig {
        max_line_len: 64,
        connect_timeout: Duration::from_secs(5),
        retry_delay: Duration::from_millis(10),
        max_retry_delay: Duration::from_millis(80),
        ..TcpLineConfig::new(format!("127.0.0.1:{port}"))
    }
}

fn supervise(
    receiver: TcpLineReceiver,
    bm: &Arc<BlockManager>,
    recorder: &Arc<Recorder>,
) -> ReceiverSupervisor {
    let config = SupervisorConfig {
        restart_delay: Duration::from_millis(10),
        generator: BlockGeneratorConfig {
            block_interval: Duration::from_millis(5),
            ..BlockGeneratorConfig::default()
        },
        ..SupervisorConfig::new(0, 1)
    };
    let handler = Arc::new(BlockStoreHandler::new(
        bm.clone(),
        StorageLevel::MEMORY_ONLY,
    ));
    ReceiverSupervisor::start(receiver, config, handler, recorder.clone()).expect("start")
}

/// Accepts one connection on `listener`, writes `payload`, then keeps the
/// connection open until `hold` is dropped.
fn serve_and_hold(listener: TcpListener, payload: Vec<u8>) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (hold, held) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.write_all(&payload).expect("write");
        let _ = held.recv();
    });
    (hold, server)
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn payload(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

#[test]
fn every_line_of_the_server_is_stored_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let recorder = Recorder::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let want = lines("line", 20_000);
    let (hold, server) = serve_and_hold(listener, payload(&want));

    let receiver = TcpLineReceiver::new(tcp_config(port));
    let counters = receiver.counters();
    let sup = supervise(receiver, &bm, &recorder);
    let heard = recorder.wait("every line", |h| h.records() == want.len() as u64);
    sup.stop();
    drop(hold);
    server.join().expect("server");

    assert_eq!(text(&read_all(&bm, &heard.blocks)), want);
    assert_eq!(counters.records(), want.len() as u64);
    assert_eq!((counters.connections(), counters.oversize_lines()), (1, 0));
    assert!(
        recorder.heard().restarts().is_empty(),
        "no restart while the server was up"
    );
}

#[test]
fn a_lost_server_is_retried_with_backoff_and_reconnected_when_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let recorder = Recorder::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let first = lines("a", 100);
    let server = std::thread::spawn({
        let data = payload(&first);
        move || {
            let (mut conn, _) = listener.accept().expect("accept");
            drop(listener); // Gone: reconnects are refused from now on.
            conn.write_all(&data).expect("write");
        }
    });

    let receiver = TcpLineReceiver::new(tcp_config(port));
    let counters = receiver.counters();
    let sup = supervise(receiver, &bm, &recorder);
    let refused = |h: &receiver_common::Heard| {
        h.restarts()
            .iter()
            .filter(|(reason, _)| reason.contains("cannot connect"))
            .count()
    };
    let heard = recorder.wait("the first lines and failed reconnects", |h| {
        h.records() == 100 && refused(h) >= 3
    });
    server.join().expect("server");
    let restarts = heard.restarts();
    assert!(
        restarts[0].0.contains("closed the connection"),
        "{restarts:?}"
    );
    let delays: Vec<Duration> = restarts.iter().map(|r| r.1).collect();
    let ms = Duration::from_millis;
    assert_eq!(
        delays[..4],
        [ms(10), ms(10), ms(20), ms(40)],
        "backoff doubles: {restarts:?}"
    );
    assert!(delays.iter().all(|&d| d <= ms(80)), "capped: {delays:?}");

    // The server comes back on the same port.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port again");
    let second = lines("b", 100);
    let (hold, server) = serve_and_hold(listener, payload(&second));
    let heard = recorder.wait("the lines after the reconnect", |h| h.records() == 200);
    sup.stop();
    drop(hold);
    server.join().expect("server");

    let all: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(text(&read_all(&bm, &heard.blocks)), all);
    assert_eq!(counters.connections(), 2);
    assert!(counters.failed_connects() >= 3);
}

#[test]
fn an_oversize_line_is_counted_reported_and_skipped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let recorder = Recorder::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut data = b"short-1\n".to_vec();
    data.extend(std::iter::repeat_n(b'y', 100_000));
    data.extend(b"\nshort-2\r\n");
    let (hold, server) = serve_and_hold(listener, data);

    let receiver = TcpLineReceiver::new(tcp_config(port));
    let counters = receiver.counters();
    let sup = supervise(receiver, &bm, &recorder);
    let heard = recorder.wait("both short lines and the error", |h| {
        h.records() == 2 && !h.errors().is_empty()
    });
    sup.stop();
    drop(hold);
    server.join().expect("server");

    assert_eq!(text(&read_all(&bm, &heard.blocks)), ["short-1", "short-2"]);
    assert_eq!((counters.records(), counters.oversize_lines()), (2, 1));
    let errors = heard.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("100000 bytes"), "{errors:?}");
    assert!(
        heard.restarts().is_empty(),
        "an oversize line is no reason to reconnect"
    );
}
