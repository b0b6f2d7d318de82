//! Seed 001's smoke-test transcripts against `examples/seed001-diagnostics.toml`
//! run by the real binary, with real WebSocket clients. The heartbeat
//! interval is shortened to 1 s by editing the example's config.

mod support;

use serde_json::{Value, json};
use support::Sluice;
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

fn start(dir: &std::path::Path) -> Sluice {
    let file = support::example(
        "seed001-diagnostics.toml",
        &[
            ("127.0.0.1:9000", "127.0.0.1:0"),
            ("ping_interval = 30", "ping_interval = 1"),
        ],
    );
    Sluice::start(dir, "seed001", &file, &[])
}

fn seconds(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number of seconds"))
}

/// Seconds since the epoch now, as the server writes times.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_welcomes_then_echoes_with_latency_info_and_closes_with_1000() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let before = now();
    let mut client = Client::connect(&format!("{}/ws/echo", sluice.base)).await;

    let welcome = client.next_json().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["endpoint"], "/ws/echo");
    let id = welcome["client_id"].as_str().expect("client_id").to_owned();
    assert!(id.starts_with("echo_client_"), "{id}");
    let server_time = seconds(&welcome["server_time"]);
    assert!(server_time >= before - 1.0 && server_time <= now() + 1.0);
    assert_eq!(
        welcome["config"],
        json!({"ping_interval": 1, "ping_timeout": 10})
    );

    let sent = json!({"type": "test", "data": "hello"});
    client.send_json(&sent).await;
    let echo = client.next_json().await;
    assert_eq!(echo["type"], "echo");
    assert_eq!(echo["original"], sent);
    assert_eq!(echo["client_id"], id.as_str());
    assert!(seconds(&echo["server_timestamp"]) >= server_time);
    assert!(seconds(&echo["latency_info"]["received_at"]) >= server_time);
    assert!(echo["latency_info"]["connection_age_ms"].as_f64().unwrap() >= 0.0);

    client.send_json(&json!({"type": "ping"})).await;
    let echo = client.next_json().await;
    assert_eq!(echo["type"], "echo");
    assert_eq!(echo["original"], json!({"type": "ping"}));

    client.close(1000, "").await;
    assert_eq!(client.expect_close().await.0, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_config_then_numbered_heartbeats_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let mut client = Client::connect(&format!("{}/ws/health", sluice.base)).await;

    let status = client.next_json().await;
    assert_eq!(status["type"], "health_status");
    assert_eq!(status["status"], "connected");
    let id = status["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("health_client_"), "{id}");
    assert_eq!(
        status["config"],
        json!({"ping_interval": 1, "ping_timeout": 10, "expected_min_connection_duration": 30})
    );
    assert_eq!(
        status["environment"],
        json!({
            "allowed_origins": ["http://localhost:3000", "http://127.0.0.1:3000"],
            "public_base_url": "http://localhost:9000",
            "ws_public_url": "ws://localhost:9000/ws",
        })
    );

    for n in 1..=2 {
        let beat = client.next_json().await;
        assert_eq!(beat["type"], "heartbeat", "{beat}");
        assert_eq!(beat["ping_number"], n);
        assert_eq!(beat["client_id"], id.as_str());
        // Due at n intervals after the connection opened, and sent on the
        // first tick after that.
        assert!(
            seconds(&beat["connection_age_seconds"]) >= n as f64,
            "{beat}"
        );
    }

    client.send_json(&json!({"type": "get_status"})).await;
    // A third heartbeat may be due by now; the status reply follows it.
    let mut reply = client.next_json().await;
    while reply["type"] == "heartbeat" {
        reply = client.next_json().await;
    }
    assert_eq!(reply["type"], "health_status");
    assert_eq!(reply["status"], "healthy");
    assert_eq!(reply["client_id"], id.as_str());
    assert!(reply["ping_count"].as_u64().unwrap() >= 2, "{reply}");
    assert_eq!(reply["pong_count"], 0);
    assert!(seconds(&reply["connection_age_seconds"]) >= 2.0);

    client.close(1000, "").await;
    loop {
        match client.next().await {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1000);
                break;
            }
            // Heartbeats sent before the server saw our close.
            Message::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_endpoint_answers_ping_with_pong_and_echoes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let mut client = Client::connect(&format!("{}/ws", sluice.base)).await;

    // No welcome on /ws: the first thing received is the answer to ping.
    client.send_json(&json!({"type": "ping"})).await;
    let pong = client.next_json().await;
    assert_eq!(pong["type"], "pong");
    let id = pong["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ws_client_"), "{id}");
    seconds(&pong["timestamp"]);

    let sent = json!({"type": "custom", "data": "test"});
    client.send_json(&sent).await;
    let echo = client.next_json().await;
    assert_eq!(echo["type"], "echo");
    assert_eq!(echo["data"], sent);
    assert_eq!(echo["client_id"], id.as_str());
    assert!(echo["server_processing_ms"].as_f64().unwrap() >= 0.0);

    client.close(1000, "done").await;
    assert_eq!(client.expect_close().await, (1000, "done".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_may_connect() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let url = format!("{}/ws/echo", sluice.base);
    let refused = Client::connect_with(&url, &[("origin", "http://evil.example")])
        .await
        .err()
        .expect("a foreign origin is refused");
    assert_eq!(refused.status, 403);
    let mut client = Client::connect_with(&url, &[("origin", "http://localhost:3000")])
        .await
        .expect("an allowed origin connects");
    assert_eq!(client.next_json().await["type"], "welcome");
}
