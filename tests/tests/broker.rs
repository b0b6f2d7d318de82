//! The harness itself: a real tansu broker process keeps records, consumer
//! group commits and both across a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Result, ensure};
use sluice_tests::Broker;
use sluice_tests::kafka::{Consumer, Delivered, Outgoing, Producer, Record};

const TOPIC: &str = "harness";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 100;
const KEYS: usize = 10;
/// Generous bound for any one wait; the whole test takes a few seconds.
const WAIT: Duration = Duration::from_secs(30);

fn outgoing() -> Vec<Outgoing> {
    (0..RECORDS)
        .map(|i| {
            Outgoing::new(format!("value-{i}"))
                .key(format!("key-{}", i % KEYS))
                .header("seq", i.to_string())
        })
        .collect()
}

/// Every produced record exactly once, with its key and header, and each
/// key's records in the order they were produced.
fn check_all_back(records: &[Record]) -> Result<()> {
    ensure!(records.len() == RECORDS, "got {} records", records.len());
    let mut seen = BTreeSet::new();
    let mut last_per_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for record in &sorted {
        let value = record.payload_str().unwrap_or_default();
        let i: usize = value.strip_prefix("value-").unwrap_or("x").parse()?;
        ensure!(seen.insert(i), "value-{i} received twice");
        let key = record.key_str().unwrap_or_default().to_owned();
        ensure!(key == format!("key-{}", i % KEYS), "{value} has key {key}");
        ensure!(
            record.headers == vec![("seq".to_owned(), Some(i.to_string().into_bytes()))],
            "{value} has headers {:?}",
            record.headers
        );
        if let Some(previous) = last_per_key.insert(key.clone(), i) {
            ensure!(previous < i, "{key}: value-{i} after value-{previous}");
        }
    }
    Ok(())
}

/// The offset to commit per partition after reading everything delivered.
fn end_offsets(delivered: &[Delivered]) -> Vec<Option<i64>> {
    (0..PARTITIONS)
        .map(|p| {
            delivered
                .iter()
                .filter(|d| d.partition == p)
                .map(|d| d.offset + 1)
                .max()
        })
        .collect()
}

#[test]
fn records_and_group_offsets_survive_a_restart() -> Result<()> {
    let mut broker = Broker::start()?;
    broker.create_topic(TOPIC, PARTITIONS)?;
    let bootstrap = broker.bootstrap();

    let producer = Producer::new(&bootstrap)?;
    let delivered = producer.send_all(TOPIC, &outgoing())?;
    let mut partitions_of_key: BTreeMap<usize, BTreeSet<i32>> = BTreeMap::new();
    for (i, d) in delivered.iter().enumerate() {
        partitions_of_key
            .entry(i % KEYS)
            .or_default()
            .insert(d.partition);
    }
    ensure!(
        partitions_of_key.values().all(|p| p.len() == 1),
        "a key went to several partitions: {partitions_of_key:?}"
    );
    let used: BTreeSet<i32> = delivered.iter().map(|d| d.partition).collect();
    ensure!(
        used.len() > 1,
        "every key hashed to one partition: {used:?}"
    );

    let consumer = Consumer::new(&bootstrap, "harness-group", &[TOPIC])?;
    check_all_back(&consumer.collect(RECORDS, WAIT)?)?;
    consumer.commit()?;
    let expected = end_offsets(&delivered);
    ensure!(consumer.committed_offsets(TOPIC, PARTITIONS)? == expected);
    drop(consumer);
    drop(producer);

    broker.stop();
    ensure!(!broker.is_running());
    ensure!(
        TcpStream::connect(broker.addr()).is_err(),
        "port still open after stop"
    );
    broker.restart()?;
    ensure!(broker.bootstrap() == bootstrap, "restart changed the port");

    // The group's commits were kept: it resumes after everything it read...
    let resumed = Consumer::new(&bootstrap, "harness-group", &[TOPIC])?;
    ensure!(resumed.committed_offsets(TOPIC, PARTITIONS)? == expected);
    // ...and the records were kept: a new group reads them all again.
    let fresh = Consumer::new(&bootstrap, "harness-after-restart", &[TOPIC])?;
    check_all_back(&fresh.collect(RECORDS, WAIT)?)?;

    // The restarted broker takes new records; the old group gets only those.
    let producer = Producer::new(&bootstrap)?;
    let late = producer.send(TOPIC, &Outgoing::new("late").key("key-late"))?;
    let records = resumed.collect(1, WAIT)?;
    ensure!(records[0].payload_str() == Some("late"), "{records:?}");
    ensure!((records[0].partition, records[0].offset) == (late.partition, late.offset));
    let extra = resumed.poll_for(Duration::from_millis(500));
    ensure!(extra.is_empty(), "records read twice: {extra:?}");
    Ok(())
}

#[test]
fn brokers_are_independent() -> Result<()> {
    let one = Broker::start()?;
    let two = Broker::start()?;
    ensure!(one.bootstrap() != two.bootstrap());
    one.create_topic("only-on-one", 1)?;
    two.create_topic("only-on-two", 2)?;
    Producer::new(&one.bootstrap())?.send("only-on-one", &Outgoing::new("x"))?;
    let consumer = Consumer::new(&two.bootstrap(), "g", &["only-on-two"])?;
    ensure!(consumer.poll_for(Duration::from_millis(500)).is_empty());
    Ok(())
}
