//! Closes the server starts on a client -> Kafka pipeline lose nothing and
//! duplicate nothing, against a real broker process: every message the
//! server took before it closed (a `message_rate` close, a SIGTERM) gets
//! its ACK before the close frame, and exactly the ACKed messages are in
//! the topic. A client that resends what was not ACKed therefore never
//! makes a duplicate. The client here keeps sending through the close, so
//! these also show the server reads on until the client's close: a socket
//! dropped with unread data is reset by the kernel, and the last ACKs and
//! the close frame would be lost with it.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sluice_tests::Broker;
use sluice_tests::kafka::Consumer;
use support::Sluice;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn pipeline(bootstrap: &str, keys: &str) -> String {
    let preamble = support::pipeline_file::on_broker(bootstrap);
    format!(
        r#"
{preamble}
[[pipelines]]
name = "bridge"
path = "/ws"
{keys}
[pipelines.sink]
topic = "in"
"#
    )
}

fn message(i: usize) -> String {
    format!(r#"{{"id":"m-{i}"}}"#)
}

/// Sends `count` messages as fast as the socket takes them (stopping
/// quietly once the server has closed), and collects replies until the
/// close frame: (ACKed ids in order, the close code).
async fn exchange(
    url: &str,
    count: usize,
    mut when: impl FnMut(usize) + Send,
) -> (Vec<String>, Option<u16>) {
    // A small receive buffer: the server's replies back up in its send
    // queue whenever the client is slow to read, as over a real network.
    let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..count {
            if tx.send(Message::Text(message(i).into())).await.is_err() {
                return;
            }
        }
    });
    let mut acked = Vec::new();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let reply: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(reply["messageType"], "ACK", "{reply}");
                acked.push(reply["id"].as_str().unwrap().to_owned());
                when(acked.len());
            }
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("after {} ACKs: {other:?}", acked.len()),
        }
    };
    sender.abort();
    (acked, code)
}

/// The ACKs name the first messages sent, each once and in order, and the
/// topic holds exactly those.
fn only_the_acked_were_produced(broker: &Broker, acked: &[String]) {
    let expected: Vec<String> = (0..acked.len()).map(|i| format!("m-{i}")).collect();
    assert_eq!(acked, expected);
    assert_eq!(
        produced(broker, acked.len()),
        acked,
        "exactly the ACKed messages"
    );
}

/// Every id in the topic, in order, once nothing more arrives.
fn produced(broker: &Broker, expect: usize) -> Vec<String> {
    let consumer = Consumer::new(&broker.bootstrap(), "check", &["in"]).unwrap();
    let mut records = consumer.collect(expect, Duration::from_secs(30)).unwrap();
    records.extend(consumer.poll_for(Duration::from_secs(1)));
    records
        .iter()
        .map(|r| {
            let value: Value = serde_json::from_str(r.payload_str().unwrap()).unwrap();
            value["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_close_acks_every_message_taken_and_produces_nothing_else() {
    let broker = Broker::start().unwrap();
    broker.create_topic("in", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = r#"message_rate = { per_second = 1, burst = 40, when_exceeded = "close" }"#;
    let sluice = Sluice::start(
        dir.path(),
        "rate",
        &pipeline(&broker.bootstrap(), keys),
        &[],
    );
    let (acked, code) = exchange(&format!("{}/ws", sluice.base), 500, |_| {}).await;
    assert_eq!(code, Some(u16::from(CloseCode::Policy)), "1008");
    // The burst, perhaps one more refilled: each ACKed once, in order.
    assert!((40..=42).contains(&acked.len()), "{} ACKs", acked.len());
    only_the_acked_were_produced(&broker, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_acks_every_message_taken_before_going_away() {
    let broker = Broker::start().unwrap();
    broker.create_topic("in", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "term", &pipeline(&broker.bootstrap(), ""), &[]);
    let pid = sluice.child.id().to_string();
    let mut signalled = false;
    let (acked, code) = exchange(&format!("{}/ws", sluice.base), 20_000, |n| {
        // Mid-stream: hundreds ACKed, many more in flight.
        if n == 300 && !signalled {
            signalled = true;
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(status.success());
            // Stop reading for a while, sending on: the server's last ACKs
            // and its close wait in its send queue while the client's
            // messages pile up unread, which is when a server that drops
            // its socket too early resets it and loses them.
            std::thread::sleep(Duration::from_millis(500));
        }
    })
    .await;
    assert!(signalled, "only {} ACKs before the close", acked.len());
    assert_eq!(code, Some(u16::from(CloseCode::Away)), "1001");
    assert!(acked.len() < 20_000, "the close came mid-stream");
    only_the_acked_were_produced(&broker, &acked);
}
