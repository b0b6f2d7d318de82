//! Every compression codec librdkafka has, end to end: records produced by
//! an independent producer (Python confluent-kafka) with gzip, lz4 and
//! zstd through the tansu broker process, and with snappy through the
//! embedded broker (tansu 0.6 refuses snappy batches in its own storage,
//! `UnexpectedType("Snappy")`; librdkafka's mock cluster keeps them as
//! sent), reach WebSocket clients byte for byte. What Sluice itself
//! produces with `compression = "zstd"` reaches Kafka and is read back.

mod support;

use std::time::Duration;

use base64::Engine as _;
use sluice_tests::Broker;
use sluice_tests::kafka::Consumer;
use sluice_tests::python::{self, PyClient};
use support::Sluice;
use support::pipeline_file::Preamble;

const TOPIC: &str = "codecs";

/// Payloads that compress (repeated text) and that do not (every byte
/// value, in a pseudo-random order), so each codec's frames carry both.
fn payloads() -> Vec<Vec<u8>> {
    let mut random = Vec::with_capacity(4096);
    let mut x: u32 = 0x2545_f491;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        random.push(x as u8);
    }
    vec![
        "tick ".repeat(400).into_bytes(),
        random,
        (0..=255u8).collect(),
        b"{\"id\":1}".to_vec(),
    ]
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A pipeline that sends every record of `codecs` as a binary frame to
/// every client of `/feed`, with `poison` (`, on_poison = ...` or "").
fn feed_pipeline(brokers: &str, poison: &str) -> String {
    Preamble {
        brokers: Some(brokers),
        ..Preamble::default()
    }
    .then(&format!(
        r#"
[[pipelines]]
name = "feed"
path = "/feed"
source = {{ topics = ["{TOPIC}"], start = "earliest", format = "binary"{poison} }}
"#
    ))
}

/// Produces `payloads` with `codec` from Python, then checks a client of
/// `/feed` receives exactly them, in order.
fn produce_and_receive(sluice: &Sluice, bootstrap: &str, codec: &str) {
    let expected = payloads();
    let url = format!("{}/feed", sluice.base);
    let client =
        PyClient::connected_collector(&url, expected.len(), Duration::from_secs(30), &[]).unwrap();

    let mut args = vec![
        bootstrap.to_owned(),
        TOPIC.to_owned(),
        "--compression".into(),
        codec.into(),
    ];
    for payload in &expected {
        args.push("--value-b64".into());
        args.push(b64(payload));
    }
    let produced = python::run("kafka_produce.py", &args, Duration::from_secs(60)).unwrap();
    assert_eq!(
        produced.event("done").unwrap()["delivered"],
        expected.len(),
        "{codec}: {produced}"
    );

    let output = client.finish(Duration::from_secs(40)).unwrap();
    let received: Vec<Vec<u8>> = output
        .events_named("message")
        .map(|m| {
            assert_eq!(m["type"], "binary", "{codec}: {output}");
            base64::engine::general_purpose::STANDARD
                .decode(m["data_b64"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert!(
        received == expected,
        "{codec}: payloads changed or missing:\n{output}"
    );
}

#[test]
fn gzip_lz4_and_zstd_batches_through_tansu_reach_clients_byte_for_byte() {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "codecs",
        &feed_pipeline(&broker.bootstrap(), ""),
        &[],
    );
    for codec in ["gzip", "lz4", "zstd"] {
        produce_and_receive(&sluice, &broker.bootstrap(), codec);
    }
}

#[test]
fn snappy_batches_through_the_embedded_broker_reach_clients_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "snappy", &feed_pipeline("embedded", ""), &[]);
    let embedded = sluice
        .embedded
        .clone()
        .expect("sluice printed its embedded broker");
    produce_and_receive(&sluice, &embedded, "snappy");
}

#[test]
fn what_sluice_produces_with_zstd_reaches_kafka() {
    let broker = Broker::start().unwrap();
    broker.create_topic("inbound", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = Preamble {
        brokers: Some(&broker.bootstrap()),
        kafka: "compression = \"zstd\"",
        ..Preamble::default()
    }
    .then(
        r#"
[[pipelines]]
name = "inbound"
path = "/in"
sink = { topic = "inbound", reply = "json" }
"#,
    );
    let sluice = Sluice::start(dir.path(), "zstd-sink", &file, &[]);

    let message = "x".repeat(2000);
    let output = python::run(
        "ws_collect.py",
        &[
            format!("{}/in", sluice.base),
            "--send".into(),
            message.clone(),
            "--count".into(),
            "1".into(),
            "--timeout".into(),
            "20".into(),
        ],
        Duration::from_secs(40),
    )
    .unwrap();
    let reply = output.event("message").unwrap();
    let ack: serde_json::Value = serde_json::from_str(reply["data"].as_str().unwrap()).unwrap();
    assert_eq!(ack["type"], "ack", "{output}");

    let consumer = Consumer::new(&broker.bootstrap(), "check", &["inbound"]).unwrap();
    let records = consumer.collect(1, Duration::from_secs(20)).unwrap();
    assert_eq!(records[0].payload.as_deref(), Some(message.as_bytes()));
}

/// A batch Sluice cannot decode (corrupt zstd data, sent by a raw Produce
/// to the embedded broker, which stores batches as sent) does not stall
/// its partition: each of its offsets follows the poison policy (here to a
/// dead-letter topic, with the reason), and the record after it arrives.
#[test]
fn an_undecodable_batch_follows_the_poison_policy_and_the_partition_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = feed_pipeline(
        "embedded",
        r#", on_poison = { dead-letter = "codecs.dlq" }"#,
    );
    let sluice = Sluice::start(dir.path(), "undecodable", &file, &[]);
    let embedded = sluice
        .embedded
        .clone()
        .expect("sluice printed its embedded broker");

    let corrupt = python::run(
        "kafka_corrupt_batch.py",
        &[embedded.as_str(), TOPIC, "--records", "3"],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(
        corrupt.event("produced").unwrap()["error_code"],
        0,
        "{corrupt}"
    );

    let url = format!("{}/feed", sluice.base);
    let client = PyClient::connected_collector(&url, 1, Duration::from_secs(40), &[]).unwrap();
    let args = [
        embedded.as_str(),
        TOPIC,
        "--value-b64",
        &b64(b"after the bad batch"),
    ];
    let produced = python::run("kafka_produce.py", &args, Duration::from_secs(30)).unwrap();
    assert_eq!(
        produced.event("done").unwrap()["delivered"],
        1,
        "{produced}"
    );

    let output = client.finish(Duration::from_secs(60)).unwrap();
    let message = output.event("message").unwrap();
    assert_eq!(message["data_b64"], b64(b"after the bad batch"), "{output}");

    let dlq = Consumer::new(&embedded, "check", &["codecs.dlq"]).unwrap();
    let dead = dlq.collect(3, Duration::from_secs(20)).unwrap();
    // Unkeyed dead letters spread over the topic's partitions: compare as a set.
    let mut origins: Vec<String> = dead
        .iter()
        .map(|r| {
            let header = |name: &str| {
                r.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, v)| v.clone())
                    .map(|v| String::from_utf8(v).unwrap())
                    .unwrap_or_default()
            };
            assert!(
                header("sluice-error").contains("cannot be decoded"),
                "{r:?}"
            );
            header("sluice-origin")
        })
        .collect();
    origins.sort();
    assert_eq!(
        origins,
        [
            format!("{TOPIC}/0@0"),
            format!("{TOPIC}/0@1"),
            format!("{TOPIC}/0@2")
        ]
    );
}
