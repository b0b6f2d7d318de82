//! WebSocket -> Kafka with delivery ACKs against a real broker process
//! (seed 002): each client message passes the envelope transform, is
//! produced, and is ACKed with its offset only after the broker's delivery
//! report; an invalid envelope gets an ERROR and nothing is produced.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sluice_tests::Broker;
use sluice_tests::kafka::Consumer;
use support::Sluice;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: usize = 1000;

fn pipeline(bootstrap: &str) -> String {
    with_welcome(bootstrap, false)
}

fn with_welcome(bootstrap: &str, welcome: bool) -> String {
    let preamble = support::pipeline_file::on_broker(bootstrap);
    format!(
        r#"
{preamble}
[[pipelines]]
name = "bridge"
path = "/ws"
welcome = {welcome}
[pipelines.source]
topics = ["broadcast"]
[pipelines.sink]
topic = "websocket-messages"
key = {{ json = "/content" }}
[[pipelines.transforms]]
plugin = "envelope"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_acked_once_with_its_offset_and_is_in_the_topic() {
    let broker = Broker::start().unwrap();
    broker.create_topic("broadcast", 1).unwrap();
    broker.create_topic("websocket-messages", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "bridge", &pipeline(&broker.bootstrap()), &[]);
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}/ws", sluice.base))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();

    let bad =
        r#"{"messageType":"SHOUT","content":"x","timestamp":"2024-01-01T12:00:00Z","id":"bad-1"}"#;
    tx.send(Message::Text(bad.into())).await.unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let msg = format!(
                r#"{{"messageType":"USER","content":"c{}","timestamp":"2024-01-01T12:00:00Z","id":"m-{i}"}}"#,
                i % 10
            );
            tx.send(Message::Text(msg.into())).await.unwrap();
        }
        tx
    });

    let mut replies = Vec::new();
    while replies.len() < MESSAGES + 1 {
        match tokio::time::timeout(Duration::from_secs(30), rx.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                replies.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            other => panic!("after {} replies: {other:?}", replies.len()),
        }
    }
    let _tx = sender.await.unwrap();
    // Replies come in the order the messages were sent.
    assert_eq!(replies[0]["messageType"], "ERROR");
    assert_eq!(replies[0]["id"], "bad-1");
    assert!(
        replies[0]["content"]
            .as_str()
            .unwrap()
            .contains("messageType"),
        "{}",
        replies[0]
    );
    let mut offsets = Vec::new();
    for (i, reply) in replies[1..].iter().enumerate() {
        assert_eq!(reply["messageType"], "ACK", "{reply}");
        assert_eq!(reply["id"], format!("m-{i}"), "each ACK once, in order");
        assert_eq!(reply["topic"], "websocket-messages");
        offsets.push(reply["offset"].as_i64().unwrap());
    }
    assert_eq!(offsets, (0..MESSAGES as i64).collect::<Vec<_>>());

    let consumer = Consumer::new(&broker.bootstrap(), "check", &["websocket-messages"]).unwrap();
    let records = consumer.collect(MESSAGES, Duration::from_secs(30)).unwrap();
    assert!(
        consumer.poll_for(Duration::from_millis(500)).is_empty(),
        "the invalid envelope was not produced"
    );
    for (i, record) in records.iter().enumerate() {
        let payload: Value = serde_json::from_str(record.payload_str().unwrap()).unwrap();
        assert_eq!(payload["id"], format!("m-{i}"));
        assert_eq!(
            record.key_str(),
            Some(format!("c{}", i % 10).as_str()),
            "keyed by /content"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acked_message_is_lost_when_the_broker_restarts_mid_stream() {
    const TOTAL: usize = 200;
    let mut broker = Broker::start().unwrap();
    broker.create_topic("broadcast", 1).unwrap();
    broker.create_topic("websocket-messages", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "bridge", &pipeline(&broker.bootstrap()), &[]);
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}/ws", sluice.base))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..TOTAL {
            let msg = format!(
                r#"{{"messageType":"USER","content":"c","timestamp":"2024-01-01T12:00:00Z","id":"m-{i}"}}"#
            );
            tx.send(Message::Text(msg.into())).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx
    });
    let mut replies = Vec::new();
    let mut restarted = false;
    while replies.len() < TOTAL {
        if replies.len() == TOTAL / 4 && !restarted {
            broker.stop();
            tokio::time::sleep(Duration::from_secs(2)).await;
            broker.restart().unwrap();
            restarted = true;
        }
        match tokio::time::timeout(Duration::from_secs(60), rx.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                replies.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            other => panic!("after {} replies: {other:?}", replies.len()),
        }
    }
    let _tx = sender.await.unwrap();
    let acked: Vec<String> = replies
        .iter()
        .filter(|r| r["messageType"] == "ACK")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let errors = replies
        .iter()
        .filter(|r| r["messageType"] == "ERROR")
        .count();
    assert_eq!(
        acked.len() + errors,
        TOTAL,
        "every message got exactly one reply"
    );
    let consumer = Consumer::new(&broker.bootstrap(), "check", &["websocket-messages"]).unwrap();
    let records = consumer
        .collect(acked.len(), Duration::from_secs(30))
        .unwrap();
    let mut in_topic: Vec<String> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r.payload_str().unwrap()).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    in_topic.extend(
        consumer
            .poll_for(Duration::from_millis(500))
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(r.payload_str().unwrap()).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }),
    );
    for id in &acked {
        assert!(in_topic.contains(id), "ACKed {id} is not in the topic");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_welcomed_with_their_own_id_and_get_every_broadcast_record() {
    let broker = Broker::start().unwrap();
    broker.create_topic("broadcast", 2).unwrap();
    broker.create_topic("websocket-messages", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "bridge",
        &with_welcome(&broker.bootstrap(), true),
        &[],
    );
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/ws", sluice.base))
            .await
            .unwrap();
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("no welcome")
        };
        let welcome: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(welcome["messageType"], "SYSTEM");
        assert_eq!(welcome["content"], "welcome");
        ids.push(welcome["clientId"].as_str().unwrap().to_owned());
        clients.push(ws);
    }
    assert_ne!(ids[0], ids[1], "each client gets its own id");

    // No router: every record on the source topic goes to every client
    // (as an envelope: the pipeline's envelope transform checks both ways).
    let producer = sluice_tests::kafka::Producer::new(&broker.bootstrap()).unwrap();
    for i in 0..4 {
        producer
            .send(
                "broadcast",
                &sluice_tests::kafka::Outgoing::new(format!(
                    r#"{{"messageType":"SYSTEM","content":"news {i}","timestamp":"2024-01-01T12:00:00Z"}}"#
                ))
                .key(format!("k{i}")),
            )
            .unwrap();
    }
    for client in &mut clients {
        let mut got = Vec::new();
        while got.len() < 4 {
            match tokio::time::timeout(Duration::from_secs(20), client.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    got.push(value["content"].as_str().unwrap().to_owned());
                }
                other => panic!("after {got:?}: {other:?}"),
            }
        }
        got.sort();
        assert_eq!(got, ["news 0", "news 1", "news 2", "news 3"]);
    }
}
