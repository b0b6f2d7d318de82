//! The handler runtime end to end: the real binary runs the test-only
//! `handler-probe` plugin (plugins/handler-probe) with a sink on a real
//! broker process, and real WebSocket clients drive each action and fault.

mod support;

use std::time::Duration;

use sluice_tests::Broker;
use sluice_tests::kafka::Consumer;
use support::Sluice;
use support::probe::{ask, text};
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

fn pipeline(bootstrap: &str, config: &str, keys: &str) -> String {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    let preamble = support::pipeline_file::on_broker(bootstrap);
    format!(
        r#"
{preamble}
[[pipelines]]
name = "probe"
path = "/rooms/{{channel}}"
{keys}
[pipelines.sink]
topic = "handler-out"

[pipelines.handler]
plugin = "{probe}"
config = {config}
limits = {{ deadline_ms = 100 }}
"#
    )
}

/// Connects to room `channel` and reads the probe's greeting.
async fn open(base: &str, channel: &str) -> (Client, u64) {
    support::probe::open(&format!("{base}/rooms/{channel}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_reach_their_targets_and_publish_reaches_kafka() {
    let broker = Broker::start().unwrap();
    broker.create_topic("handler-out", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(&broker.bootstrap(), "{}", "");
    let sluice = Sluice::start(dir.path(), "probe", &file, &[]);

    let (mut a, _) = open(&sluice.base, "lobby").await;
    let (mut b, _) = open(&sluice.base, "lobby").await;
    let (mut c, c_id) = open(&sluice.base, "other").await;

    // The host's presence counts every connection of the pipeline, not
    // those of the instance asked (the pool runs two).
    let (a_id, b_id) = (c_id - 2, c_id - 1);
    assert_eq!(
        ask(&mut a, "presence lobby").await,
        format!("presence lobby 2 of 3: {a_id}@0,{b_id}@0")
    );

    // The connection as the handler sees it.
    let whoami = ask(&mut a, "whoami").await;
    assert!(
        whoami.ends_with(" /rooms/lobby - channel=lobby"),
        "{whoami}"
    );

    // Rooms: join, broadcast to members only, leave.
    assert_eq!(ask(&mut a, "join r1").await, "joined r1");
    assert_eq!(ask(&mut b, "join r1").await, "joined r1");
    a.send(Message::text("broadcast r1 hello")).await;
    assert_eq!(text(&mut a).await, "hello");
    assert_eq!(text(&mut b).await, "hello");
    assert_eq!(ask(&mut b, "leave r1").await, "left r1");
    a.send(Message::text("broadcast r1 again")).await;
    assert_eq!(text(&mut a).await, "again");
    // b left r1 and c never joined: their next message is their own reply.
    assert_eq!(ask(&mut b, "count").await, "3");
    assert_eq!(ask(&mut c, "count").await, "1");

    // A direct message to another connection, and a delayed reply.
    a.send(Message::text(format!("send {c_id} psst"))).await;
    assert_eq!(text(&mut c).await, "psst");
    assert_eq!(ask(&mut a, "later 50 late").await, "late");

    // Binary frames reach the handler as binary.
    a.send(Message::binary(vec![0u8, 1, 2])).await;
    assert_eq!(a.next().await, Message::binary(vec![0u8, 1, 2]));

    // Publish: produced to the sink topic.
    assert_eq!(ask(&mut a, "publish hello kafka").await, "published");
    let consumer = Consumer::new(&broker.bootstrap(), "probe-check", &["handler-out"]).unwrap();
    let records = consumer.collect(1, Duration::from_secs(30)).unwrap();
    assert_eq!(records[0].payload_str(), Some("hello kafka"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_closes_only_its_connection_with_1011() {
    let broker = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(&broker.bootstrap(), "{}", "");
    let sluice = Sluice::start(dir.path(), "probe", &file, &[]);
    let (mut bystander, _) = open(&sluice.base, "x").await;

    for fault in ["trap", "loop", "bad-channel"] {
        let (mut victim, _) = open(&sluice.base, "x").await;
        victim.send(Message::text(fault)).await;
        assert_eq!(
            victim.expect_close().await,
            (1011, "handler failed".into()),
            "{fault}"
        );
        // Everyone else is still served, and new connections open.
        assert_eq!(ask(&mut bystander, "ping").await, "ping", "after {fault}");
        let (mut next, _) = open(&sluice.base, "x").await;
        assert_eq!(ask(&mut next, "ping").await, "ping");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_carry_codes_both_ways_and_on_close_replies_come_first() {
    let broker = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(&broker.bootstrap(), "{}", "");
    let sluice = Sluice::start(dir.path(), "probe", &file, &[]);

    // The handler closes with its own code and reason.
    let (mut client, _) = open(&sluice.base, "x").await;
    client.send(Message::text("close 4000 see you")).await;
    assert_eq!(client.expect_close().await, (4000, "see you".into()));

    // The peer closes: on-close's reply arrives before the echoed close.
    let (mut client, _) = open(&sluice.base, "x").await;
    client.close(4001, "leaving").await;
    assert_eq!(text(&mut client).await, "bye");
    assert_eq!(client.expect_close().await, (4001, "leaving".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_reach_every_open_connection() {
    let broker = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(&broker.bootstrap(), "{ ticks = true }", "tick_ms = 20");
    let sluice = Sluice::start(dir.path(), "probe", &file, &[]);
    let (mut a, _) = open(&sluice.base, "x").await;
    let (mut b, _) = open(&sluice.base, "y").await;
    for client in [&mut a, &mut b] {
        // Numbered per instance: increasing on each connection.
        let first = text(client).await;
        let second = text(client).await;
        let n = |s: &str| -> u64 { s.strip_prefix("tick ").unwrap().parse().unwrap() };
        assert!(n(&second) > n(&first), "{first} then {second}");
    }
}
