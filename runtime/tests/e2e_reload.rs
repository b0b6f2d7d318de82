//! Live reload end to end, against a broker process and real WebSocket
//! clients: a reload while 100 clients are connected and records flow
//! closes no socket, loses and duplicates no record, and the records after
//! it show the new plugin's behaviour, also across a consumer restart; a reload with a broken plugin
//! changes nothing and is reported; pipelines and tenants come and go live;
//! what cannot change live (a listener) is refused.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::http::request;
use support::ws::{Client, PATIENCE};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "operator-token-for-reload-tests";
const CHANNELS: usize = 10;
const CLIENTS_PER_CHANNEL: usize = 10;

/// A pipeline file: `name` reads `topic` on tenant `tenant` at
/// `/{prefix}{channel}`, with key-router configured by `router`.
fn pipeline(name: &str, tenant: &str, topic: &str, prefix: &str, router: &str) -> String {
    format!(
        r#"
[[pipelines]]
name = "{name}"
tenant = "{tenant}"
path = "/{prefix}{{channel}}"
outbox = {{ capacity = 100000, when_full = "close" }}
[pipelines.source]
topics = ["{topic}"]
group_id = "{name}-group"
[pipelines.router]
plugin = "key-router"
config = {router}
"#
    )
}

/// The file's fixed part: broker, one listener on `address`, the admin API,
/// and the tenants.
fn head(broker: &Broker, address: &str, tenants: &[&str]) -> String {
    let mut text = format!(
        r#"
[kafka]
brokers = "{}"

[admin]
address = "127.0.0.1:0"
token = "{TOKEN}"

[[listeners]]
name = "public"
address = "{address}"
connections_per_ip = {{ per_second = 1000, burst = 1000 }}
"#,
        broker.bootstrap()
    );
    for tenant in tenants {
        text.push_str(&format!("\n[[tenants]]\nname = \"{tenant}\"\n"));
    }
    text
}

/// `METHOD /reload` with the operator's token: status and body.
async fn reload_call(sluice: &Sluice, method: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let admin = sluice.admin.as_ref().unwrap();
    let response = request(admin, method, "/reload", &[("authorization", &auth)], b"").await;
    let body = if response.body.is_empty() {
        Value::Null
    } else {
        response.json()
    };
    (response.status, body)
}

/// `POST /reload`: status and outcome.
async fn reload_now(sluice: &Sluice) -> (u16, Value) {
    reload_call(sluice, "POST").await
}

/// `GET /reload` until an outcome other than `after` appears (outcomes
/// differ at least in their `at`).
async fn next_outcome(sluice: &Sluice, after: Option<&Value>) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, outcome) = reload_call(sluice, "GET").await;
        if status == 200 && after != Some(&outcome) {
            return outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new reload outcome"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `config_reloads_total{result}` from `/metrics`.
async fn reloads_counted(sluice: &Sluice, result: &str) -> u64 {
    let (_, body) = support::http_get(sluice.admin.as_ref().unwrap(), "/metrics").await;
    let series = format!("config_reloads_total{{result=\"{result}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Reads text messages until one whose `seq` is `end`; panics on a close.
async fn collect_until(client: &mut Client, end: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        match client.next().await {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                let seq = value["seq"].as_u64().unwrap();
                if seq == end {
                    return seqs;
                }
                seqs.push(seq);
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("a client got {other:?} during the reload"),
        }
    }
}

/// The end marker of a channel: after every record of the run.
fn end_marker(channel: usize) -> u64 {
    1_000_000 + channel as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_keeps_every_socket_and_record_and_switches_the_router() {
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let head = head(&broker, "127.0.0.1:0", &["acme"]);
    let before = head.clone() + &pipeline("live", "acme", "feed", "", "{}");
    // After: every record also reaches channel `all`.
    let after = head + &pipeline("live", "acme", "feed", "", "{ all_channel = \"all\" }");
    // Reloaded by the admin API only, so the test knows which reload swapped.
    let sluice = Sluice::start_with_args(dir.path(), "reload", &before, &[], &["--no-watch"]);

    let mut tasks = Vec::new();
    for channel in 0..CHANNELS {
        for _ in 0..CLIENTS_PER_CHANNEL {
            let mut client = Client::connect(&format!("{}/c{channel}", sluice.base)).await;
            tasks.push(tokio::spawn(async move {
                (
                    channel,
                    collect_until(&mut client, end_marker(channel)).await,
                )
            }));
        }
    }
    let mut all = Client::connect(&format!("{}/all", sluice.base)).await;

    // Records flow from a producer thread, before, during and after.
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicU64::new(0));
    let flow = {
        let (stop, produced) = (stop.clone(), produced.clone());
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Acquire) {
                let batch: Vec<Outgoing> = (seq..seq + 10)
                    .map(|s| {
                        let channel = format!("c{}", s as usize % CHANNELS);
                        Outgoing::new(json!({ "seq": s }).to_string()).key(channel)
                    })
                    .collect();
                producer.send_all("feed", &batch).unwrap();
                seq += 10;
                produced.store(seq, Ordering::Release);
            }
            producer
        })
    };
    while produced.load(Ordering::Acquire) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::write(dir.path().join("reload.toml"), &after).unwrap();
    let (status, outcome) = reload_now(&sluice).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["ok"], true, "{outcome}");
    let changes = outcome["changes"].to_string();
    assert!(
        changes.contains("router and transforms replaced"),
        "{outcome}"
    );
    // Every record produced from now on was produced after the swap.
    // (The batch being sent as the reload answered may predate the swap.)
    let swapped_at = produced.load(Ordering::Acquire) + 10;
    while produced.load(Ordering::Acquire) < swapped_at + 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A changed source restarts the consumer: the new one (broadcast mode,
    // no group) resumes at the positions the old one reached.
    let restarted = after.replace(
        "topics = [\"feed\"]",
        "topics = [\"feed\"]\nformat = \"text\"",
    );
    assert_ne!(restarted, after);
    std::fs::write(dir.path().join("reload.toml"), &restarted).unwrap();
    let (status, outcome) = reload_now(&sluice).await;
    assert_eq!(status, 200, "{outcome}");
    assert!(
        outcome["changes"]
            .to_string()
            .contains("consumer restarted"),
        "{outcome}"
    );
    let restarted_at = produced.load(Ordering::Acquire);
    while produced.load(Ordering::Acquire) < restarted_at + 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Release);
    let producer = flow.join().unwrap();
    let total = produced.load(Ordering::Acquire);
    let ends: Vec<Outgoing> = (0..CHANNELS)
        .map(|c| Outgoing::new(json!({ "seq": end_marker(c) }).to_string()).key(format!("c{c}")))
        .collect();
    producer.send_all("feed", &ends).unwrap();

    for task in tasks {
        let (channel, seqs) = tokio::time::timeout(PATIENCE * 3, task)
            .await
            .expect("every client got its end marker")
            .unwrap();
        let expected: Vec<u64> = (0..total)
            .filter(|s| *s as usize % CHANNELS == channel)
            .collect();
        // Keyed records keep their partition's order: exactly this list.
        assert_eq!(
            seqs, expected,
            "client of c{channel}: records lost, duplicated or reordered"
        );
    }
    // The new router's behaviour: every record after the swap reached `all`.
    let mut seen = BTreeMap::new();
    let mut ends_seen = 0;
    while ends_seen < CHANNELS {
        match all.next().await {
            Message::Text(text) => {
                let seq = serde_json::from_str::<Value>(&text).unwrap()["seq"]
                    .as_u64()
                    .unwrap();
                if seq >= end_marker(0) {
                    ends_seen += 1;
                } else {
                    *seen.entry(seq).or_insert(0) += 1;
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("the `all` client got {other:?}"),
        }
    }
    for seq in swapped_at..total {
        assert_eq!(seen.get(&seq), Some(&1), "record {seq} after the swap");
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "a record reached `all` twice"
    );
    assert_eq!(reloads_counted(&sluice, "ok").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_plugin_or_a_listener_change_is_refused_and_changes_nothing() {
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = head(&broker, "127.0.0.1:0", &[]) + &pipeline("p", "default", "feed", "", "{}");
    let sluice = Sluice::start(dir.path(), "reload", &good, &[]);
    let mut client = Client::connect(&format!("{}/c1", sluice.base)).await;
    let producer = Producer::new(&broker.bootstrap()).unwrap();

    // A component that does not compile, noticed by the file watcher.
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm not really").unwrap();
    let broken = good.replace("plugin = \"key-router\"", "plugin = \"broken.wasm\"");
    std::fs::write(dir.path().join("reload.toml"), &broken).unwrap();
    let outcome = next_outcome(&sluice, None).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(outcome["trigger"], "file-change", "{outcome}");
    let error = outcome["error"].as_str().unwrap();
    assert!(error.contains("broken.wasm"), "{error}");
    assert!(reloads_counted(&sluice, "failed").await >= 1);

    // A plugin whose init refuses its config.
    let refused = good.replace("config = {}", "config = { no_such_setting = 1 }");
    std::fs::write(dir.path().join("reload.toml"), &refused).unwrap();
    let (status, outcome) = reload_now(&sluice).await;
    assert_eq!(status, 422, "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("no_such_setting"),
        "{outcome}"
    );

    // A listener change needs a restart.
    let moved = good.replace(
        "address = \"127.0.0.1:0\"\nconnections",
        "address = \"127.0.0.1:1\"\nconnections",
    );
    assert_ne!(moved, good);
    std::fs::write(dir.path().join("reload.toml"), &moved).unwrap();
    let (status, outcome) = reload_now(&sluice).await;
    assert_eq!(status, 422, "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("listener `public` changed"),
        "{outcome}"
    );

    // A plugin loaded from a file is watched too: replacing the component
    // with a broken one is seen, refused, and changes nothing.
    let router = sluice_runtime::builtin::artifact("key-router").expect("key-router is built");
    std::fs::copy(router, dir.path().join("router.wasm")).unwrap();
    let from_file = good.replace("plugin = \"key-router\"", "plugin = \"router.wasm\"");
    std::fs::write(dir.path().join("reload.toml"), &from_file).unwrap();
    let (status, outcome) = reload_now(&sluice).await;
    assert_eq!(status, 200, "{outcome}");
    let last = next_outcome(&sluice, None).await;
    std::fs::write(dir.path().join("router.wasm"), b"\0asm rebuilt badly").unwrap();
    let mut outcome = next_outcome(&sluice, Some(&last)).await;
    // (The watcher's own reload of the file written above may come first.)
    while outcome["ok"] == true {
        outcome = next_outcome(&sluice, Some(&outcome)).await;
    }
    assert_eq!(outcome["trigger"], "file-change", "{outcome}");
    assert!(
        outcome["error"].as_str().unwrap().contains("router.wasm"),
        "{outcome}"
    );

    // The running version still serves, unchanged.
    producer
        .send("feed", &Outgoing::new(r#"{"seq":1}"#).key("c1"))
        .unwrap();
    assert_eq!(client.next_json().await, json!({ "seq": 1 }));
    let generation = outcome["generation"].as_u64().unwrap();
    let (_, outcome) = reload_now(&sluice).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(
        outcome["generation"].as_u64(),
        Some(generation),
        "no reload succeeded since: {outcome}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_and_tenants_come_and_go_on_sighup() {
    let broker = Broker::start().unwrap();
    for topic in ["a", "b", "c"] {
        broker.create_topic(topic, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let first = head(&broker, "127.0.0.1:0", &["t1", "t2"])
        + &pipeline("a", "t1", "a", "a/", "{}")
        + &pipeline("b", "t2", "b", "b/", "{}");
    let second = head(&broker, "127.0.0.1:0", &["t1", "t3"])
        + &pipeline("a", "t1", "a", "a/", "{}")
        + &pipeline("c", "t3", "c", "c/", "{}");
    let sluice = Sluice::start_with_args(dir.path(), "reload", &first, &[], &["--no-watch"]);
    let mut a = Client::connect(&format!("{}/a/x", sluice.base)).await;
    let mut b = Client::connect(&format!("{}/b/x", sluice.base)).await;
    let refused = Client::connect_with(&format!("{}/c/x", sluice.base), &[]).await;
    assert_eq!(refused.err().map(|r| r.status), Some(404));

    std::fs::write(dir.path().join("reload.toml"), &second).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &sluice.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let outcome = next_outcome(&sluice, None).await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(outcome["trigger"], "signal", "{outcome}");
    let changes = outcome["changes"].to_string();
    assert!(changes.contains("pipeline `c` added"), "{outcome}");
    assert!(
        changes.contains("pipeline `b` removed (1 connection(s) closed with 1012)"),
        "{outcome}"
    );

    assert_eq!(
        b.expect_close().await,
        (1012, "pipeline removed by a reload".to_owned())
    );
    let mut c = Client::connect(&format!("{}/c/x", sluice.base)).await;
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    producer
        .send("c", &Outgoing::new(r#"{"n":3}"#).key("x"))
        .unwrap();
    producer
        .send("a", &Outgoing::new(r#"{"n":1}"#).key("x"))
        .unwrap();
    assert_eq!(c.next_json().await, json!({ "n": 3 }));
    assert_eq!(a.next_json().await, json!({ "n": 1 }));
    let refused = Client::connect_with(&format!("{}/b/x", sluice.base), &[]).await;
    assert_eq!(refused.err().map(|r| r.status), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_handler_serves_new_connections_while_open_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let file = |version: &str| {
        format!(
            r#"
[admin]
address = "127.0.0.1:0"
token = "{TOKEN}"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[pipelines]]
name = "status"
path = "/status"
[pipelines.handler]
plugin = "mock"
config = {{ kind = "static", on_message = {{ version = "{version}" }} }}
"#
        )
    };
    let sluice = Sluice::start_with_args(dir.path(), "reload", &file("v1"), &[], &["--no-watch"]);
    let mut old = Client::connect(&format!("{}/status", sluice.base)).await;
    old.send(Message::text("hi")).await;
    assert_eq!(old.next_json().await, json!({ "version": "v1" }));

    std::fs::write(dir.path().join("reload.toml"), file("v2")).unwrap();
    let (status, outcome) = reload_now(&sluice).await;
    assert_eq!(status, 200, "{outcome}");
    assert!(
        outcome["changes"]
            .to_string()
            .contains("open connections keep the version they opened with"),
        "{outcome}"
    );
    let mut new = Client::connect(&format!("{}/status", sluice.base)).await;
    new.send(Message::text("hi")).await;
    assert_eq!(new.next_json().await, json!({ "version": "v2" }));
    old.send(Message::text("hi")).await;
    assert_eq!(old.next_json().await, json!({ "version": "v1" }));
}
