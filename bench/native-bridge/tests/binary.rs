//! The `native-bridge` binary end to end on the real broker: it prints its
//! address and `ready`; records produced from then on reach every client of
//! their channel once; a client that does not read loses its oldest
//! frames without holding up the others.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser as _;
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};

/// The running binary, killed on drop.
struct NativeBridge {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
}

impl Drop for NativeBridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(broker: &Broker, topic: &str, more: &[&str]) -> NativeBridge {
    let mut child = Command::new(env!("CARGO_BIN_EXE_native-bridge"))
        .args(["--bootstrap", &broker.bootstrap(), "--topic", topic])
        .args(["--listen", "127.0.0.1:0"])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut addr = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split_once("ws://").map(|(_, rest)| rest) {
            addr = Some(rest.split('/').next().unwrap().to_owned());
        }
        if line == "ready" {
            break;
        }
    }
    NativeBridge {
        child,
        addr: addr.expect("the bridge printed its address before `ready`"),
    }
}

#[test]
fn records_produced_after_ready_reach_every_client_of_their_channel_once() {
    let broker = Broker::start().unwrap();
    broker.create_topic("live", 3).unwrap();
    // Records from before the bridge started are not delivered.
    Producer::new(&broker.bootstrap())
        .unwrap()
        .send("live", &Outgoing::new("old").key("ch-0"))
        .unwrap();
    let bridge = start(&broker, "live", &[]);
    let url = format!("ws://{}/{{channel}}", bridge.addr);
    let pid = bridge.child.id().to_string();
    let args = sluice_loadgen::Args::parse_from([
        "sluice-loadgen",
        "--ws-url",
        &url,
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "live",
        "--clients",
        "6",
        "--channels",
        "3",
        "--rate",
        "300",
        "--records",
        "300",
        "--drain-ms",
        "15000",
        "--server-pid",
        &pid,
    ]);
    let report = sluice_loadgen::run(&args).unwrap();
    eprint!("{}", report.summary());
    let deliveries = report.deliveries.as_ref().unwrap();
    assert_eq!(deliveries.expected, 600);
    assert_eq!(deliveries.received, 600);
    assert_eq!(deliveries.lost, 0);
    assert_eq!(deliveries.duplicates, 0);
    assert_eq!(deliveries.out_of_order, 0);
    assert_eq!(deliveries.unstamped, 0, "the old record was not delivered");
    let memory = report.memory.as_ref().unwrap();
    assert!(memory.after_connect_kib.unwrap() > 0);
}

#[test]
fn a_client_that_does_not_read_loses_its_oldest_frames_and_the_others_get_everything() {
    let broker = Broker::start().unwrap();
    broker.create_topic("flood", 1).unwrap();
    let bridge = start(&broker, "flood", &["--queue", "4096"]);

    // A client that completes the handshake and never reads, with a small
    // receive buffer so the bridge's writes to it block early.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let target =
        sluice_loadgen::args::Target::parse(&format!("ws://{}/ch-0", bridge.addr)).unwrap();
    let stalled = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(bridge.addr.parse().unwrap()).await.unwrap();
        sluice_loadgen::ws::handshake(stream, &target, "ch-0", None)
            .await
            .unwrap()
    });

    let url = format!("ws://{}/{{channel}}", bridge.addr);
    let args = sluice_loadgen::Args::parse_from([
        "sluice-loadgen",
        "--ws-url",
        &url,
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "flood",
        "--clients",
        "2",
        // Not `max`: the clients that read share two cores with the
        // bridge, the broker and each other, and at full speed one of them
        // can fall a whole queue (4096 frames) behind for a moment and
        // rightly lose frames. At 5,000/s a reader has 800 ms of slack; the
        // client that never reads still overflows.
        "--rate",
        "5000",
        "--records",
        "20000",
        "--size",
        "1024",
        "--drain-ms",
        "15000",
    ]);
    let report = sluice_loadgen::run(&args).unwrap();
    eprint!("{}", report.summary());
    let deliveries = report.deliveries.as_ref().unwrap();
    assert_eq!(deliveries.expected, 40_000);
    assert_eq!(deliveries.received, 40_000);
    assert_eq!(deliveries.ended_early, 0);
    assert_eq!(deliveries.duplicates, 0);

    // 20 MB is more than the stalled client's socket buffers and its queue
    // of 4096 frames hold: it lost frames, the oldest ones, so what it
    // finally reads ends with the last record.
    let (count, last) = runtime.block_on(async move {
        let mut socket = fastwebsockets::FragmentCollector::new(stalled);
        let (mut count, mut last) = (0u64, 0u64);
        while let Ok(frame) =
            tokio::time::timeout(Duration::from_secs(3), socket.read_frame()).await
        {
            let frame = frame.unwrap();
            assert_eq!(frame.opcode, fastwebsockets::OpCode::Text);
            let stamp = sluice_loadgen::payload::parse(&frame.payload).unwrap();
            assert!(count == 0 || stamp.seq > last, "in order");
            (count, last) = (count + 1, stamp.seq);
        }
        (count, last)
    });
    assert!(count < 20_000, "the stalled client lost frames ({count})");
    assert_eq!(last, 19_999, "and kept the newest");
}
