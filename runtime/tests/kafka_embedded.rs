//! The Kafka module against the embedded broker (librdkafka's mock cluster):
//! producer -> consumer with keys, headers and offsets, start positions,
//! stopping, offsets committed only for handled batches, and broadcast
//! mode's direct consumer (no group, handed-over positions, late topics).
//!
//! A consumer group's first join takes ~3 s on the mock cluster, so these
//! tests wait for assignments rather than sleeping.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::{ClientConfig, Message};
use sluice_runtime::config::StartFrom;
use sluice_runtime::kafka::{
    BatchVerdict, ClientSettings, ConsumerExit, ConsumerHandle, ConsumerOptions, ConsumerStatus,
    Delivered, EmbeddedBroker, KafkaError, Membership, Positions, Producer, ProducerOptions,
    Subscription, spawn_consumer,
};
use sluice_runtime::record::Record;

const WAIT: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn subscription(topic: &str, group: &str, start: StartFrom) -> Subscription {
    Subscription {
        topics: vec![topic.to_owned()],
        group_id: group.to_owned(),
        start,
        membership: Membership::Group,
    }
}

/// Broadcast mode's subscription: every partition of `topics`, no group.
fn direct(topics: &[&str], start: StartFrom, resume: Positions) -> Subscription {
    Subscription {
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        group_id: "broadcast".to_owned(),
        start,
        membership: Membership::Direct { resume },
    }
}

fn wait_positioned(handle: &ConsumerHandle) {
    wait_until("fixed start positions", || {
        handle.progress().positioned.load(Ordering::Acquire)
    });
}

fn payloads(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect()
}

/// A consumer that sends every record it is handed to a channel.
fn collecting(
    settings: &ClientSettings,
    subscription: Subscription,
    pipeline: &str,
) -> (ConsumerHandle, mpsc::Receiver<Record>) {
    let (tx, rx) = mpsc::channel();
    let handle = spawn_consumer(
        settings,
        subscription,
        ConsumerOptions::new(pipeline),
        move |batch| {
            for record in batch {
                let _ = tx.send(record.clone());
            }
            BatchVerdict::Continue
        },
    )
    .unwrap();
    (handle, rx)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_assigned(handle: &ConsumerHandle) {
    wait_until("a partition assignment", || {
        handle
            .progress()
            .assigned_partitions
            .load(Ordering::Acquire)
            > 0
    });
}

fn receive(rx: &mpsc::Receiver<Record>, count: usize) -> Vec<Record> {
    let deadline = Instant::now() + WAIT;
    let mut records = Vec::new();
    while records.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(record) => records.push(record),
            Err(_) => panic!("received {} of {count} records", records.len()),
        }
    }
    records
}

fn produce(producer: &Producer, topic: &str, payloads: &[String]) -> Vec<Delivered> {
    runtime().block_on(async {
        let mut delivered = Vec::new();
        for payload in payloads {
            let to = producer.send(topic, None, payload.as_bytes(), &[]).await;
            delivered.push(to.unwrap());
        }
        delivered
    })
}

#[test]
fn the_embedded_broker_serves_independent_clients() {
    init_tracing();
    let broker = EmbeddedBroker::start(2).unwrap();
    assert!(broker.bootstrap_servers().starts_with("127.0.0.1:"));
    assert!(broker.ensure_topic("plain").unwrap());
    assert!(!broker.ensure_topic("plain").unwrap());
    assert!(matches!(
        broker.create_topic("plain", 1),
        Err(KafkaError::TopicExists(_))
    ));

    // Plain rdkafka clients that know nothing of Sluice, only the address.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    let headers = OwnedHeaders::new().insert(Header {
        key: "origin",
        value: Some("outside"),
    });
    producer
        .send(
            BaseRecord::to("plain")
                .key("k")
                .payload("hello")
                .headers(headers),
        )
        .map_err(|(error, _)| error)
        .unwrap();
    producer.flush(WAIT).unwrap();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "outside")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["plain"]).unwrap();
    let deadline = Instant::now() + WAIT;
    let message = loop {
        assert!(
            Instant::now() < deadline,
            "the outside consumer got nothing"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            break message.unwrap().detach();
        }
    };
    assert_eq!(message.key(), Some(&b"k"[..]));
    assert_eq!(message.payload(), Some(&b"hello"[..]));
    let header = message.headers().unwrap().get(0);
    assert_eq!(
        (header.key, header.value),
        ("origin", Some(&b"outside"[..]))
    );
}

#[test]
fn every_produced_record_arrives_once_with_key_headers_and_offset() {
    init_tracing();
    const N: usize = 300;
    let broker = EmbeddedBroker::start(3).unwrap();
    broker.ensure_topic("orders").unwrap();
    let settings = ClientSettings::for_embedded(&broker);
    let producer = Producer::new(&settings, ProducerOptions::new("test")).unwrap();

    let sent: Vec<Delivered> = runtime().block_on(async {
        let mut sent = Vec::new();
        for i in 0..N {
            let key = format!("key-{}", i % 7);
            let headers = [
                ("index".to_owned(), Bytes::from(i.to_string())),
                ("empty".to_owned(), Bytes::new()),
            ];
            let payload = format!("payload-{i}");
            let delivered = producer
                .send("orders", Some(key.as_bytes()), payload.as_bytes(), &headers)
                .await
                .unwrap();
            sent.push(delivered);
        }
        sent
    });
    // Every send resolved on its delivery report; librdkafka's own count of
    // queued messages drops just after the report, so flush before checking.
    producer.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(producer.in_flight(), 0);

    let (tx, rx) = mpsc::channel();
    let metrics = sluice_runtime::metrics::Metrics::new();
    let handle = spawn_consumer(
        &settings,
        subscription("orders", "orders-bridge", StartFrom::Earliest),
        ConsumerOptions::new("orders").counted_in(metrics.consumer("t", "orders")),
        move |batch| {
            let thread = std::thread::current();
            assert_eq!(thread.name(), Some("sluice-consume-orders"));
            assert!(
                tokio::runtime::Handle::try_current().is_err(),
                "not on a tokio thread"
            );
            for record in batch {
                let _ = tx.send(record.clone());
            }
            BatchVerdict::Continue
        },
    )
    .unwrap();
    let records = receive(&rx, N);
    // Nothing more arrives: each record exactly once.
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());

    let mut by_index = BTreeMap::new();
    for record in records {
        let index: usize = std::str::from_utf8(record.header("index").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            by_index.insert(index, record).is_none(),
            "record {index} twice"
        );
    }
    assert_eq!(by_index.len(), N);
    let partitions: std::collections::BTreeSet<i32> = sent.iter().map(|d| d.partition).collect();
    assert!(
        partitions.len() > 1,
        "keys spread over partitions: {partitions:?}"
    );
    for (index, record) in &by_index {
        assert_eq!(&*record.topic, "orders");
        assert_eq!(
            record.key.as_deref(),
            Some(format!("key-{}", index % 7).as_bytes())
        );
        assert_eq!(record.payload, format!("payload-{index}").as_bytes());
        assert_eq!(
            record.headers,
            vec![
                ("index".to_owned(), Bytes::from(index.to_string())),
                ("empty".to_owned(), Bytes::new()),
            ]
        );
        assert_eq!(
            (record.partition, record.offset),
            (sent[*index].partition, sent[*index].offset)
        );
        assert!(record.timestamp_ms.is_some());
    }
    let series = |name: &str| {
        let series = format!("{name}{{tenant=\"t\",pipeline=\"orders\"}}");
        metrics.value(&series).unwrap_or(0.0)
    };
    assert!(series("kafka_consumer_assigned_partitions") >= 1.0);
    assert!(matches!(handle.shutdown(), ConsumerExit::Stopped));
    assert_eq!(series("kafka_records_consumed_total"), N as f64);
    assert!(series("kafka_consumer_batches_total") >= 1.0);
    // The assignment, and its revocation when the consumer left the group.
    assert!(series("kafka_consumer_rebalances_total") >= 2.0);
    assert_eq!(series("kafka_consumer_assigned_partitions"), 0.0);
}

#[test]
fn latest_skips_what_came_before_and_earliest_reads_it() {
    init_tracing();
    let broker = EmbeddedBroker::start(1).unwrap();
    broker.ensure_topic("ticks").unwrap();
    let settings = ClientSettings::for_embedded(&broker);
    let producer = Producer::new(&settings, ProducerOptions::new("test")).unwrap();
    let before: Vec<String> = (0..5).map(|i| format!("before-{i}")).collect();
    produce(&producer, "ticks", &before);

    let (latest, latest_rx) = collecting(
        &settings,
        subscription("ticks", "live", StartFrom::Latest),
        "latest",
    );
    let (earliest, earliest_rx) = collecting(
        &settings,
        subscription("ticks", "replay", StartFrom::Earliest),
        "earliest",
    );
    wait_assigned(&latest);
    wait_assigned(&earliest);

    // The latest consumer's start is fixed some time after its assignment:
    // produce probes until it sees one, then check it never saw the past.
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    for probe in 0.. {
        assert!(
            Instant::now() < deadline,
            "the latest consumer saw no probe"
        );
        produce(&producer, "ticks", &[format!("after-{probe}")]);
        seen.extend(
            latest_rx
                .try_iter()
                .map(|r| String::from_utf8(r.payload.to_vec()).unwrap()),
        );
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    seen.extend(
        latest_rx
            .try_iter()
            .map(|r| String::from_utf8(r.payload.to_vec()).unwrap()),
    );
    assert!(
        seen.iter().all(|p| p.starts_with("after-")),
        "latest saw {seen:?}"
    );

    let replayed: Vec<String> = receive(&earliest_rx, 5)
        .into_iter()
        .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(replayed, before);
    assert!(matches!(latest.shutdown(), ConsumerExit::Stopped));
    assert!(matches!(earliest.shutdown(), ConsumerExit::Stopped));
}

#[test]
fn stop_ends_the_thread_promptly() {
    init_tracing();
    let broker = EmbeddedBroker::start(1).unwrap();
    broker.ensure_topic("quiet").unwrap();
    let settings = ClientSettings::for_embedded(&broker);
    let (handle, _rx) = collecting(
        &settings,
        subscription("quiet", "quiet", StartFrom::Latest),
        "quiet",
    );
    wait_assigned(&handle);
    assert!(matches!(handle.status(), ConsumerStatus::Running));
    let started = Instant::now();
    handle.stop();
    wait_until("the consumer to finish", || {
        matches!(handle.status(), ConsumerStatus::Finished(_))
    });
    let took = started.elapsed();
    assert!(matches!(handle.join(), ConsumerExit::Stopped));
    // One poll (100 ms), a commit and leaving the group.
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
}

/// Offsets of a batch are stored only once its callback returned: a
/// consumer that stops (verdict) or whose callback panics leaves its group
/// where the next consumer must begin.
#[test]
fn a_group_resumes_after_the_last_handled_batch() {
    init_tracing();
    let broker = EmbeddedBroker::start(1).unwrap();
    broker.create_topic("events", 1).unwrap();
    let settings = ClientSettings::for_embedded(&broker);
    let producer = Producer::new(&settings, ProducerOptions::new("test")).unwrap();
    let payloads: Vec<String> = (0..40).map(|i| format!("event-{i}")).collect();
    produce(&producer, "events", &payloads);
    let options = || ConsumerOptions {
        max_batch: 5,
        ..ConsumerOptions::new("events")
    };
    let group = || subscription("events", "events-bridge", StartFrom::Earliest);

    // 1. Stops on its first batch: that batch is not committed.
    let (tx, rx) = mpsc::channel();
    let first = spawn_consumer(&settings, group(), options(), move |batch| {
        let _ = tx.send(batch.iter().map(|r| r.offset).collect::<Vec<_>>());
        BatchVerdict::Stop("enough".into())
    })
    .unwrap();
    match first.join() {
        ConsumerExit::Verdict(reason) => assert_eq!(reason, "enough"),
        other => panic!("unexpected exit: {other}"),
    }
    let handled: Vec<i64> = rx.try_iter().flatten().collect();
    assert!(!handled.is_empty() && handled.len() <= 5, "{handled:?}");
    assert_eq!(handled, (0..handled.len() as i64).collect::<Vec<_>>());
    let resume = 0;

    // 2. Handles one batch, panics on the next: that one is not committed.
    let (tx, rx) = mpsc::channel();
    let mut calls = 0;
    let second = spawn_consumer(&settings, group(), options(), move |batch| {
        calls += 1;
        let _ = tx.send((calls, batch.iter().map(|r| r.offset).collect::<Vec<_>>()));
        assert!(calls < 2, "plugin blew up");
        BatchVerdict::Continue
    })
    .unwrap();
    match second.join() {
        ConsumerExit::Panicked(message) => assert!(message.contains("plugin blew up")),
        other => panic!("unexpected exit: {other}"),
    }
    let batches: Vec<(i32, Vec<i64>)> = rx.try_iter().collect();
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert_eq!(
        batches[0].1.first(),
        Some(&resume),
        "resumed at the first record of the stopped batch"
    );
    let unhandled = batches[1].1[0];
    assert_eq!(unhandled, batches[0].1.last().unwrap() + 1);

    // 3. Starts at the first record of the batch that panicked.
    let (third, rx) = collecting(&settings, group(), "events");
    let rest = receive(&rx, (40 - unhandled) as usize);
    assert_eq!(rest.first().map(|r| r.offset), Some(unhandled));
    assert_eq!(rest.last().map(|r| r.offset), Some(39));
    assert!(rest.iter().all(|r| r.key.is_none() && r.headers.is_empty()));
    assert!(matches!(third.shutdown(), ConsumerExit::Stopped));
}

#[test]
fn a_bad_property_fails_at_spawn() {
    init_tracing();
    let settings =
        ClientSettings::for_bootstrap("127.0.0.1:1").with_property("no.such.property", "1");
    let result = spawn_consumer(
        &settings,
        subscription("t", "g", StartFrom::Latest),
        ConsumerOptions::new("bad"),
        |_| BatchVerdict::Continue,
    );
    match result {
        Err(KafkaError::Client { client, source }) => {
            assert_eq!(client, "consumer");
            assert!(source.to_string().contains("no.such.property"), "{source}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[test]
fn a_send_without_a_broker_fails_after_the_message_timeout() {
    init_tracing();
    // Nothing listens on port 1.
    let settings = ClientSettings::for_bootstrap("127.0.0.1:1");
    let options = ProducerOptions {
        message_timeout: Duration::from_millis(500),
        ..ProducerOptions::new("test")
    };
    let producer = Producer::new(&settings, options).unwrap();
    let started = Instant::now();
    let result = runtime().block_on(producer.send("nowhere", None, b"x", &[]));
    assert!(
        matches!(result, Err(KafkaError::Produce { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Broadcast mode: positioned without joining a group, every record
/// produced after that arrives, and a consumer handed the stopped one's
/// positions gets exactly what came in between. Nothing is committed.
#[test]
fn a_direct_consumer_reads_everything_and_its_successor_resumes_exactly() {
    init_tracing();
    let broker = EmbeddedBroker::start(1).unwrap();
    broker.create_topic("feed", 3).unwrap();
    let settings = ClientSettings::for_embedded(&broker);
    let producer = Producer::new(&settings, ProducerOptions::new("test")).unwrap();
    let numbered =
        |from: usize, to: usize| -> Vec<String> { (from..to).map(|i| format!("r-{i}")).collect() };
    produce(&producer, "feed", &numbered(0, 10));

    let (first, rx) = collecting(
        &settings,
        direct(&["feed"], StartFrom::Latest, Positions::new()),
        "feed",
    );
    wait_positioned(&first);
    assert_eq!(
        first.progress().assigned_partitions.load(Ordering::Acquire),
        3
    );
    produce(&producer, "feed", &numbered(10, 40));
    let mut got = payloads(&receive(&rx, 30));
    got.sort_by_key(|p| p[2..].parse::<u32>().unwrap());
    assert_eq!(got, numbered(10, 40), "from the start on, nothing before");
    let watch = first.watch();
    assert!(matches!(first.shutdown(), ConsumerExit::Stopped));
    let positions = watch.positions();
    assert_eq!(positions.len(), 3, "{positions:?}");

    produce(&producer, "feed", &numbered(40, 55));
    let (second, rx) = collecting(
        &settings,
        direct(&["feed"], StartFrom::Latest, positions),
        "feed",
    );
    let mut missed = payloads(&receive(&rx, 15));
    missed.sort_by_key(|p| p[2..].parse::<u32>().unwrap());
    assert_eq!(missed, numbered(40, 55), "exactly what came while none ran");
    produce(&producer, "feed", &["last".to_owned()]);
    assert_eq!(
        payloads(&receive(&rx, 1)),
        ["last"],
        "no duplicate before it"
    );
    assert!(matches!(second.shutdown(), ConsumerExit::Stopped));

    // The group a direct consumer names holds no offsets: a member joining
    // it from the earliest record reads everything.
    let (group, rx) = collecting(
        &settings,
        subscription("feed", "broadcast", StartFrom::Earliest),
        "group",
    );
    assert_eq!(receive(&rx, 56).len(), 56);
    assert!(matches!(group.shutdown(), ConsumerExit::Stopped));
}

/// A topic that does not exist yet does not hold up the start, and is read
/// from its first record once it appears.
#[test]
fn a_topic_created_after_a_direct_consumer_started_is_read_from_its_first_record() {
    init_tracing();
    let broker = EmbeddedBroker::start(1).unwrap();
    broker.create_topic("early", 1).unwrap();
    let settings = ClientSettings::for_embedded(&broker);
    let producer = Producer::new(&settings, ProducerOptions::new("test")).unwrap();
    let (handle, rx) = collecting(
        &settings,
        direct(&["early", "late"], StartFrom::Latest, Positions::new()),
        "late",
    );
    wait_positioned(&handle);
    assert_eq!(
        handle
            .progress()
            .assigned_partitions
            .load(Ordering::Acquire),
        1
    );
    broker.create_topic("late", 2).unwrap();
    let sent: Vec<String> = (0..6).map(|i| format!("late-{i}")).collect();
    produce(&producer, "late", &sent);
    let mut got = payloads(&receive(&rx, 6));
    got.sort();
    assert_eq!(got, sent);
    assert_eq!(
        handle
            .progress()
            .assigned_partitions
            .load(Ordering::Acquire),
        3
    );
    assert!(matches!(handle.shutdown(), ConsumerExit::Stopped));
}
