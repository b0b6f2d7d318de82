//! `sluice run` end to end on the embedded broker (the zero-setup default):
//! the real binary, a Kafka producer in this process talking to the broker
//! address the binary prints, and a real WebSocket client. This is seed
//! 000's job: key-routed records to Basic-authenticated clients.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use sluice_runtime::kafka::{ClientSettings, Producer, ProducerOptions};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PIPELINE: &str = r#"
[kafka]
brokers = "embedded"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[pipelines]]
name = "destination"
path = "/{channel}"
[pipelines.source]
topics = ["test-websocket-input"]
[pipelines.router]
plugin = "key-router"
[pipelines.auth]
plugin = "basic-auth"
config = { users = { testuser = "testpass" } }
"#;

struct Sluice {
    child: Child,
    broker: String,
    ws: String,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Sluice {
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, PIPELINE).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", file.to_str().unwrap()])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut broker, mut ws) = (String::new(), String::new());
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("embedded Kafka broker at ") {
            broker = rest.split_whitespace().next().unwrap().to_owned();
        }
        if let Some((_, url)) = line.split_once(": ws://") {
            ws = format!("ws://{}", url.split('/').next().unwrap());
        }
        if line == "ready" {
            break;
        }
    }
    assert!(
        !broker.is_empty() && !ws.is_empty(),
        "sluice did not print its addresses"
    );
    Sluice { child, broker, ws }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_reach_the_authenticated_client_of_their_channel() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());

    let mut request = format!("{}/channel1", sluice.ws)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        "Basic dGVzdHVzZXI6dGVzdHBhc3M=".parse().unwrap(),
    );
    let (mut channel1, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let refused = tokio_tungstenite::connect_async(format!("{}/channel1", sluice.ws)).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "no credentials must be refused with 401"
    );
    // The server subscribes a client before it answers 101: no wait needed.

    let producer = Producer::new(
        &ClientSettings::for_bootstrap(&sluice.broker),
        ProducerOptions::new("test"),
    )
    .unwrap();
    for i in 0..5 {
        let payload = format!(r#"{{"n":{i}}}"#);
        producer
            .send(
                "test-websocket-input",
                Some(b"channel1"),
                payload.as_bytes(),
                &[],
            )
            .await
            .unwrap();
        producer
            .send(
                "test-websocket-input",
                Some(b"channel2"),
                b"not for channel1",
                &[],
            )
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let message = tokio::time::timeout(Duration::from_secs(10), channel1.next())
            .await
            .expect("records within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            got.push(text.to_string());
        }
    }
    // One key lands on one partition, so order is kept.
    let expected: Vec<String> = (0..5).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    assert_eq!(got, expected);
    // Nothing for channel2 arrives on channel1.
    let extra = tokio::time::timeout(Duration::from_millis(300), channel1.next()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");
}
