//! `[pipelines.chaos]` end to end, with real clients on the real binary:
//! over 10,000 echoed messages the drops, duplicates and reorders a client
//! sees are what `/metrics` counts and within statistical bounds of the
//! configured rates (and the same seed hits the same messages in another
//! process); disconnects come at their probability; delays are never
//! shorter than `min_ms`; a slow consumer's overflow is dropped and
//! counted; and a Kafka-fed pipeline gets the same treatment.
//!
//! Bounds are six standard deviations of the binomial either side of the
//! expected count: a correct host fails them about once in 500 million
//! runs, a host that ignores a rate (or doubles it) fails every time.

mod support;

use std::collections::{BTreeSet, HashMap};

use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::metrics::{scrape, value, wait_until};
use support::pipeline_file::Preamble;
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "chaos-admin-token-0123";

/// `count` draws at probability `p`: the counts a correct host stays in.
fn bounds(count: u64, p: f64) -> std::ops::RangeInclusive<u64> {
    let mean = count as f64 * p;
    let sd = (count as f64 * p * (1.0 - p)).sqrt();
    ((mean - 6.0 * sd).max(0.0) as u64)..=((mean + 6.0 * sd) as u64)
}

/// An echo mock at `/echo` with `chaos` (the keys of `[pipelines.chaos]`).
fn echo(chaos: &str) -> String {
    Preamble {
        admin_token: Some(TOKEN),
        listener: "connections_per_ip = { per_second = 1000, burst = 1000 }",
        ..Preamble::default()
    }
    .then(&format!(
        r#"
[[pipelines]]
name = "echo"
path = "/echo"
# Never the outbox's drops: every loss here is chaos's.
outbox = {{ capacity = 100000 }}
[pipelines.handler]
plugin = "mock"
config = {{ kind = "echo" }}
[pipelines.chaos]
{chaos}
"#
    ))
}

fn chaos_count(samples: &HashMap<String, f64>, pipeline: &str, action: &str) -> u64 {
    value(
        samples,
        &format!(
            r#"chaos_actions_total{{tenant="default",pipeline="{pipeline}",action="{action}"}}"#
        ),
    ) as u64
}

fn sent(samples: &HashMap<String, f64>, pipeline: &str) -> u64 {
    value(
        samples,
        &format!(r#"ws_messages_sent_total{{tenant="default",pipeline="{pipeline}"}}"#),
    ) as u64
}

/// What one client saw of 10,000 numbered messages echoed through chaos,
/// and what the server counted.
struct Seen {
    received: Vec<u64>,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
}

async fn echo_ten_thousand(sluice: &Sluice) -> Seen {
    const N: u64 = 10_000;
    let admin = sluice.admin.as_deref().unwrap();
    let mut client = Client::connect(&format!("{}/echo", sluice.base)).await;
    for i in 0..N {
        client.send(Message::text(i.to_string())).await;
    }
    // Every echo has passed chaos once what was written is what survived
    // it: sent can only reach N - dropped + duplicated when all N are through.
    let samples = wait_until(admin, "every echo through chaos", |s| {
        sent(s, "echo") + chaos_count(s, "echo", "dropped")
            == N + chaos_count(s, "echo", "duplicated")
    })
    .await;
    let expected = sent(&samples, "echo");
    let mut received = Vec::with_capacity(expected as usize);
    for _ in 0..expected {
        match client.next_data().await {
            Message::Text(text) => received.push(text.parse().unwrap()),
            other => panic!("expected an echoed number, got {other:?}"),
        }
    }
    Seen {
        received,
        dropped: chaos_count(&samples, "echo", "dropped"),
        duplicated: chaos_count(&samples, "echo", "duplicated"),
        reordered: chaos_count(&samples, "echo", "reordered"),
    }
}

/// Which of 0..10,000 never came, and which came twice (none may come
/// three times).
fn missing_and_doubled(received: &[u64]) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for n in received {
        *counts.entry(*n).or_default() += 1;
    }
    assert!(
        counts.values().all(|c| *c <= 2),
        "nothing is sent three times"
    );
    let missing = (0..10_000).filter(|n| !counts.contains_key(n)).collect();
    let doubled = counts
        .iter()
        .filter(|(_, c)| **c == 2)
        .map(|(n, _)| *n)
        .collect();
    (missing, doubled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_duplicates_and_reorders_are_counted_within_bounds_and_seeded() {
    let chaos = "seed = 2026\nmessage_drop_rate = 0.02\nmessage_duplicate_rate = 0.02\nmessage_reorder_rate = 0.02";
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let sluice = Sluice::start(dir.path(), "chaos", &echo(chaos), &[]);
        echo_ten_thousand(&sluice).await
    };

    let (missing, doubled) = missing_and_doubled(&first.received);
    // What the client saw is what the server counted, exactly.
    assert_eq!(missing.len() as u64, first.dropped);
    assert_eq!(doubled.len() as u64, first.duplicated);
    // A reorder swaps a message with the next: one adjacent inversion each,
    // unless the next was its own duplicate.
    let inversions = first.received.windows(2).filter(|w| w[0] > w[1]).count() as u64;
    assert!(
        inversions <= first.reordered && inversions + first.duplicated >= first.reordered,
        "{inversions} inversions, {} reorders counted",
        first.reordered
    );
    // And each within the bounds of its rate.
    assert!(
        bounds(10_000, 0.02).contains(&first.dropped),
        "{}",
        first.dropped
    );
    assert!(
        bounds(10_000 - first.dropped, 0.02).contains(&first.duplicated),
        "{}",
        first.duplicated
    );
    assert!(
        bounds(10_000, 0.02).contains(&first.reordered),
        "{}",
        first.reordered
    );

    // Another process, the same seed: the same messages are dropped and doubled.
    let again = {
        let sluice = Sluice::start(dir.path(), "chaos-again", &echo(chaos), &[]);
        echo_ten_thousand(&sluice).await
    };
    let (missing_again, doubled_again) = missing_and_doubled(&again.received);
    assert_eq!(missing, missing_again);
    assert_eq!(doubled, doubled_again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnects_come_at_their_probability_delays_at_least_min() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "flaky",
        &echo("seed = 7\ndisconnect_probability = 0.05"),
        &[],
    );
    let url = format!("{}/echo", sluice.base);
    const ATTEMPTS: u64 = 2_000;
    let (mut answered, mut dropped) = (0u64, 0u64);
    let mut client = Client::connect(&url).await;
    for i in 0..ATTEMPTS {
        client.send(Message::text(i.to_string())).await;
        match client.next_data_or_end().await {
            Some(message) => {
                assert_eq!(message, Message::text(i.to_string()));
                answered += 1;
            }
            None => {
                dropped += 1;
                client = Client::connect(&url).await;
            }
        }
    }
    let samples = scrape(sluice.admin.as_deref().unwrap()).await;
    assert_eq!(answered + dropped, ATTEMPTS);
    assert_eq!(chaos_count(&samples, "echo", "disconnected"), dropped);
    assert!(
        bounds(ATTEMPTS, 0.05).contains(&dropped),
        "{dropped} of {ATTEMPTS}"
    );
    drop(sluice);

    // Delays: no echo comes back sooner than min_ms (later is the machine's
    // doing, so only a gross overshoot fails).
    let sluice = Sluice::start(
        dir.path(),
        "delayed",
        &echo("delay = { min_ms = 40, max_ms = 80 }"),
        &[],
    );
    let mut client = Client::connect(&format!("{}/echo", sluice.base)).await;
    for i in 0..20 {
        let sent_at = std::time::Instant::now();
        client.send(Message::text(format!("d{i}"))).await;
        assert_eq!(client.next_data().await, Message::text(format!("d{i}")));
        let took = sent_at.elapsed();
        assert!(took >= std::time::Duration::from_millis(40), "{took:?}");
        assert!(
            took < std::time::Duration::from_millis(80 + 5_000),
            "{took:?}"
        );
    }
    let samples = scrape(sluice.admin.as_deref().unwrap()).await;
    assert_eq!(chaos_count(&samples, "echo", "delayed"), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_drops_what_overflows_its_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "slow",
        &echo("slow_consumer = { delay_ms = 50, buffer_size = 5, drop_when_full = true }"),
        &[],
    );
    let admin = sluice.admin.as_deref().unwrap();
    let mut client = Client::connect(&format!("{}/echo", sluice.base)).await;
    for i in 0..50 {
        client.send(Message::text(i.to_string())).await;
    }
    let samples = wait_until(admin, "the slow lane drained", |s| {
        sent(s, "echo") + chaos_count(s, "echo", "slow_consumer_dropped") == 50
    })
    .await;
    let delivered = sent(&samples, "echo");
    let overflow = chaos_count(&samples, "echo", "slow_consumer_dropped");
    // Fifty at once into a buffer of five: most overflow, and what was
    // taken comes in order.
    assert!(
        overflow >= 30 && delivered >= 5,
        "{delivered} delivered, {overflow} dropped"
    );
    let mut last = None;
    for _ in 0..delivered {
        let n: u64 = match client.next_data().await {
            Message::Text(text) => text.parse().unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(last < Some(n), "in order");
        last = Some(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_fed_pipeline_gets_chaos_too() {
    const RECORDS: u64 = 2_000;
    let broker = Broker::start().unwrap();
    broker.create_topic("ticks", 1).unwrap();
    let file = Preamble {
        brokers: Some(&broker.bootstrap()),
        admin_token: Some(TOKEN),
        ..Preamble::default()
    }
    .then(
        r#"
[[pipelines]]
name = "ticks"
path = "/ticks"
outbox = { capacity = 100000 }
[pipelines.source]
topics = ["ticks"]
[pipelines.chaos]
seed = 11
message_drop_rate = 0.1
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "fed", &file, &[]);
    let admin = sluice.admin.as_deref().unwrap();
    let mut client = Client::connect(&format!("{}/ticks", sluice.base)).await;
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let records: Vec<Outgoing> = (0..RECORDS).map(|i| Outgoing::new(i.to_string())).collect();
    producer.send_all("ticks", &records).unwrap();
    let samples = wait_until(admin, "every record through chaos", |s| {
        sent(s, "ticks") + chaos_count(s, "ticks", "dropped") == RECORDS
    })
    .await;
    let delivered = sent(&samples, "ticks");
    let dropped = chaos_count(&samples, "ticks", "dropped");
    assert!(
        bounds(RECORDS, 0.1).contains(&dropped),
        "{dropped} of {RECORDS}"
    );
    let mut seen = Vec::new();
    for _ in 0..delivered {
        match client.next_data().await {
            Message::Text(text) => seen.push(text.parse::<u64>().unwrap()),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "drops only: the rest in order"
    );
    assert_eq!(seen.len() as u64, RECORDS - dropped);
}
