//! `/metrics` over HTTP after a scripted scenario against a real broker
//! process: each metric moves by what the scenario did (connect, send,
//! reject, drop, error, plugin failure), read as deltas so nothing else in
//! the process matters.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::raw::{BINARY, RawClient};
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "Basic dGVzdHVzZXI6dGVzdHBhc3M="; // testuser:testpass

fn pipeline(bootstrap: &str) -> String {
    let faults = sluice_runtime::builtin::artifact("faults").expect("faults is built");
    let preamble = support::pipeline_file::Preamble {
        brokers: Some(bootstrap),
        admin_token: Some("metrics-test-token-0123456789"),
        ..Default::default()
    }
    .text();
    format!(
        r#"
{preamble}
[[pipelines]]
name = "feed"
path = "/{{channel}}"
max_message_size = 1024
message_rate = {{ per_second = 1, burst = 1 }}

[pipelines.source]
topics = ["metrics-in"]

[pipelines.sink]
topic = "metrics-out"

[pipelines.router]
plugin = "{faults}"

[pipelines.auth]
plugin = "basic-auth"
config = {{ users = {{ testuser = "testpass" }} }}
"#
    )
}

/// Samples by full series (`name{labels}`), from the OpenMetrics text.
async fn scrape(admin: &str) -> HashMap<String, f64> {
    let (status, body) = support::http_get(admin, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Scrapes until `series` reaches `value` (a hang guard, not a timing).
async fn wait_until(admin: &str, series: &str, value: f64) {
    let mut last = None;
    for _ in 0..100 {
        last = scrape(admin).await.get(series).copied();
        if last == Some(value) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{series} never reached {value}; last {last:?}");
}

fn feed(name: &str, extra: &str) -> String {
    format!("{name}{{tenant=\"default\",pipeline=\"feed\"{extra}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_metric_moves_by_what_the_scenario_did() {
    let broker = Broker::start().unwrap();
    for topic in ["metrics-in", "metrics-out"] {
        broker.create_topic(topic, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "metrics", &pipeline(&broker.bootstrap()), &[]);
    let admin = sluice.admin.clone().expect("admin API address");
    let before = scrape(&admin).await;
    let delta = |after: &HashMap<String, f64>, series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };

    // Connect one client; refuse two handshakes (bad password, no path).
    let url = format!("{}/news", sluice.base);
    let mut client = Client::connect_with(&url, &[("authorization", PASSWORD)])
        .await
        .unwrap();
    let bad = Client::connect_with(&url, &[("authorization", "Basic eDp5")]).await;
    assert_eq!(bad.err().unwrap().status, 401);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();
    assert!(RawClient::connect(&addr, "/", "").await.is_err());

    // Two messages at once: the rate (burst 1) takes the first, drops the
    // second; the first goes to Kafka and comes back as an ACK.
    client.send(Message::text("hello")).await;
    client.send(Message::text("over the rate")).await;
    assert_eq!(client.next_json().await["messageType"], "ACK");

    // Records: one for the client, one for nobody, one that makes the
    // router trap (a plugin error; the record is skipped as poison). The
    // faults router looks at the first key of a batch, so each record is
    // seen handled before the next is produced.
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let send = |payload: &str, key: &str| {
        producer
            .send("metrics-in", &Outgoing::new(payload).key(key))
            .unwrap();
    };
    send("for you", "news");
    assert_eq!(client.next().await, Message::text("for you"));
    send("for nobody", "empty");
    let nobody = feed("messages_dropped_total", ",reason=\"no_subscriber\"");
    wait_until(
        &admin,
        &nobody,
        before.get(&nobody).copied().unwrap_or(0.0) + 1.0,
    )
    .await;
    send("boom", "trap");
    let poison = feed("messages_dropped_total", ",reason=\"poison\"");
    wait_until(
        &admin,
        &poison,
        before.get(&poison).copied().unwrap_or(0.0) + 1.0,
    )
    .await;
    send("after", "news");
    assert_eq!(client.next().await, Message::text("after"));

    // A raw client sends a message over max_message_size: closed with 1009.
    let mut big = RawClient::connect(&addr, "/news", &format!("Authorization: {PASSWORD}\r\n"))
        .await
        .unwrap();
    big.send(true, 0, BINARY, &[0u8; 2000]).await;
    assert_eq!(big.expect_close().await, 1009);
    drop(big);

    let after = scrape(&admin).await;
    let expect = |series: String, moved: f64| {
        assert_eq!(delta(&after, &series), moved, "{series}");
    };
    expect(feed("ws_connections_total", ""), 2.0);
    expect(
        feed("ws_connections_rejected_total", ",reason=\"auth_denied\""),
        1.0,
    );
    expect(
        "ws_connections_rejected_total{tenant=\"\",pipeline=\"\",reason=\"not_found\"}".into(),
        1.0,
    );
    // Both arrived (the rate drops after receiving); the oversized one
    // never became a message.
    expect(feed("ws_messages_received_total", ""), 2.0);
    expect(feed("ws_messages_bytes_received_total", ""), 18.0);
    // The ACK and two records.
    expect(feed("ws_messages_sent_total", ""), 3.0);
    expect(
        feed("messages_dropped_total", ",reason=\"rate_limit\""),
        1.0,
    );
    expect(
        feed("messages_dropped_total", ",reason=\"no_subscriber\""),
        1.0,
    );
    expect(feed("messages_dropped_total", ",reason=\"poison\""), 1.0);
    expect(feed("ws_errors_total", ",type=\"too_big\""), 1.0);
    let faults = sluice_runtime::builtin::artifact("faults").unwrap();
    let router = |result: &str| {
        feed(
            "plugin_calls_total",
            &format!(",plugin=\"{faults}\",result=\"{result}\""),
        )
    };
    assert_eq!(delta(&after, &router("error")), 1.0);
    assert!(delta(&after, &router("ok")) >= 2.0);
    let auth_time = feed(
        "plugin_call_duration_seconds_count",
        ",plugin=\"basic-auth\"",
    );
    assert_eq!(
        delta(&after, &auth_time),
        3.0,
        "three handshakes authenticated"
    );
    // The client has the 1009 close before the server's side of that
    // connection has ended (and left the gauge): wait for it.
    wait_until(&admin, &feed("ws_connections_active", ""), 1.0).await;

    // Consumer lag comes from librdkafka's statistics, every 5 s.
    let lag = feed(
        "kafka_consumer_lag",
        ",topic=\"metrics-in\",partition=\"0\"",
    );
    let mut seen = None;
    for _ in 0..40 {
        if let Some(value) = scrape(&admin).await.get(&lag) {
            seen = Some(*value);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(seen, Some(0.0), "{lag} caught up");

    drop(client);
    let mut active = 1.0;
    for _ in 0..40 {
        active = scrape(&admin).await[&feed("ws_connections_active", "")];
        if active == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active, 0.0);
}
