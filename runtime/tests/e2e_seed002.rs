//! Seed 002 end to end: `examples/seed002-bridge.toml` as it is, configured
//! by seed 002's environment variables, against a tansu broker process and
//! real WebSocket clients: a welcome with the client id, envelopes produced
//! and ACKed after delivery, an ERROR with the reason for anything else,
//! and every record of the topic broadcast to every client, envelope or
//! not (the `envelope` transform is inbound only).

mod support;

use serde_json::{Value, json};
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::ws::Client;

const TOPIC: &str = "websocket-messages";

fn envelope(kind: &str, content: &str) -> Value {
    json!({ "messageType": kind, "content": content, "timestamp": "2026-12-03T12:00:00Z" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_bridges_clients_and_the_topic_both_ways() {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = sluice_tests::ports::free_port().to_string();
    let example =
        std::fs::read_to_string(sluice_tests::repo_root().join("examples/seed002-bridge.toml"))
            .unwrap();
    let _sluice = Sluice::start(
        dir.path(),
        "seed002",
        &example,
        &[
            ("kafkaBootstrapServers", &broker.bootstrap()),
            ("websocketPort", &port),
        ],
    );
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut a = Client::connect(&url).await;
    let mut b = Client::connect(&url).await;
    for client in [&mut a, &mut b] {
        let welcome = client.next_json().await;
        assert_eq!(welcome["messageType"], "SYSTEM", "{welcome}");
        assert!(
            welcome["clientId"].is_string() || welcome["clientId"].is_number(),
            "{welcome}"
        );
    }

    // A's envelope: ACKed to A once delivered, and broadcast to both.
    let mut message = envelope("USER", "Hello from client!");
    message["id"] = json!("m-1");
    a.send_json(&message).await;
    let mut got = [a.next_json().await, a.next_json().await];
    got.sort_by_key(|m| m["messageType"] != "ACK");
    assert_eq!(got[0]["messageType"], "ACK", "{got:?}");
    assert_eq!(got[0]["id"], "m-1", "{got:?}");
    assert_eq!(got[0]["topic"], TOPIC, "{got:?}");
    assert_eq!(got[1]["content"], "Hello from client!", "{got:?}");
    assert_eq!(b.next_json().await["content"], "Hello from client!");

    // Not an envelope: an ERROR with the reason, nothing produced.
    a.send_json(&envelope("SHOUT", "hi")).await;
    let error = a.next_json().await;
    assert_eq!(error["messageType"], "ERROR", "{error}");
    assert!(
        error["content"].as_str().unwrap().contains("SHOUT"),
        "{error}"
    );

    // Records produced by someone else reach every client, the one that is
    // not an envelope too (and the refused message never did: it is not
    // before them).
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let notice = envelope("SYSTEM", "maintenance at noon").to_string();
    producer.send(TOPIC, &Outgoing::new(notice)).unwrap();
    let arbitrary = json!({ "symbol": "btc", "price": 42.5 });
    producer
        .send(TOPIC, &Outgoing::new(arbitrary.to_string()))
        .unwrap();
    for client in [&mut a, &mut b] {
        assert_eq!(client.next_json().await["content"], "maintenance at noon");
        assert_eq!(client.next_json().await, arbitrary);
    }
}
