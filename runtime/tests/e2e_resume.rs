//! Clients that reconnect without losing records, end to end: a tansu
//! broker process, two Sluice processes with the same pipeline file and
//! key, and real WebSocket clients of the `sluice.resume.v1` subprotocol
//! (docs/resume.md). A client dropped while 500 records flow on its
//! channel comes back, to the same process or the other one, with the
//! tokens it kept, and gets exactly what it missed, in order, then the live
//! records; a changed token is refused; a position past the bounds is told
//! so, then gets the live records, and so is one whose records were
//! deleted since (retention); a thousand clients back at once share the
//! catch-up reader's passes.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::ws::Client;

const PROTOCOL: &str = "sluice.resume.v1";
const KEY_VAR: &str = "FEED_RESUME_KEY";
const KEY: &str = "an-example-resume-key-of-32-chars-at-least";

fn file(broker: &Broker) -> String {
    format!(
        r#"
[kafka]
brokers = "{}"

[admin]
address = "127.0.0.1:0"
token = "an-operator-token-for-resume-tests"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
connections_per_ip = {{ per_second = 100000, burst = 100000 }}
pending_per_ip = 2000

[[pipelines]]
name = "feed"
path = "/{{channel}}"
[pipelines.source]
topics = ["feed"]
[pipelines.source.resume]
keys = [{{ id = "k1", secret = {{ env = "{KEY_VAR}" }} }}]
[pipelines.router]
plugin = "key-router"

[[pipelines]]
name = "tight"
path = "/tight/{{channel}}"
[pipelines.source]
topics = ["tight"]
[pipelines.source.resume]
keys = [{{ id = "k1", secret = {{ env = "{KEY_VAR}" }} }}]
max_records = 10
max_age_ms = 1000
[pipelines.router]
plugin = "key-router"
"#,
        broker.bootstrap()
    )
}

/// What a client of the resume subprotocol keeps to present when it
/// comes back: the latest `position`, and the latest record token per
/// partition since (docs/resume.md).
#[derive(Debug, Default)]
struct Kept {
    position: String,
    records: BTreeMap<(String, i64), String>,
}

/// A connected client of the resume subprotocol.
struct Resumer {
    ws: Client,
    kept: Kept,
}

/// What a returning client read before `recovered`, in order.
#[derive(Debug, PartialEq)]
enum Got {
    Record(u64),
    Recovered(Value),
}

impl Kept {
    fn tokens(&self) -> String {
        let mut tokens = vec![self.position.clone()];
        tokens.extend(self.records.values().cloned());
        tokens.join(",")
    }

    /// Keeps a message's token; a record's `seq`.
    fn keep(&mut self, message: &Value) -> Option<u64> {
        let token = message["position"].as_str().unwrap().to_owned();
        match message["type"].as_str() {
            Some("position") => {
                self.position = token;
                self.records.clear();
                None
            }
            Some("record") => {
                let partition = (
                    message["topic"].as_str().unwrap().to_owned(),
                    message["partition"].as_i64().unwrap(),
                );
                self.records.insert(partition, token);
                let data: Value = serde_json::from_str(message["data"].as_str().unwrap()).unwrap();
                Some(data["seq"].as_u64().unwrap())
            }
            _ => None,
        }
    }

    /// Comes back to `base` + `path` with what it kept: what it read until
    /// `recovered` (and the position after it, kept).
    async fn resume(self, base: &str, path: &str) -> (Resumer, Vec<Got>) {
        let url = format!("{base}{path}?resume={}", self.tokens());
        let ws = open(&url).await;
        let mut client = Resumer { ws, kept: self };
        let mut got = Vec::new();
        loop {
            let message = client.ws.next_json().await;
            match message["type"].as_str() {
                Some("record") => got.push(Got::Record(client.kept.keep(&message).unwrap())),
                Some("recovered") => {
                    got.push(Got::Recovered(message));
                    let position = client.ws.next_json().await;
                    assert_eq!(position["type"], "position", "{position}");
                    client.kept.keep(&position);
                    return (client, got);
                }
                _ => panic!("unexpected before `recovered`: {message}"),
            }
        }
    }
}

async fn open(url: &str) -> Client {
    Client::connect_with(url, &[("sec-websocket-protocol", PROTOCOL)])
        .await
        .unwrap_or_else(|r| panic!("{url} refused: {r:?}"))
}

impl Resumer {
    /// A first connection: it is told where it stands.
    async fn connect(url: &str) -> Resumer {
        let mut client = Resumer {
            ws: open(url).await,
            kept: Kept::default(),
        };
        let first = client.ws.next_json().await;
        assert_eq!(first["type"], "position", "{first}");
        client.kept.keep(&first);
        client
    }

    /// Drops the connection (no close handshake), keeping the tokens.
    fn leave(self) -> Kept {
        drop(self.ws);
        self.kept
    }

    /// The next `count` records' `seq`, keeping their tokens (positions
    /// passing by are kept too).
    async fn records(&mut self, count: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        while seqs.len() < count {
            let message = self.ws.next_json().await;
            match message["type"].as_str() {
                Some("record") => seqs.push(self.kept.keep(&message).unwrap()),
                Some("position") => {
                    self.kept.keep(&message);
                }
                _ => panic!("unexpected: {message}"),
            }
        }
        seqs
    }
}

/// `count` records for `channel` numbered from `first`, with noise for
/// another channel between them.
fn produce(producer: &Producer, topic: &str, channel: &str, first: u64, count: u64) {
    let mut batch = Vec::new();
    for seq in first..first + count {
        batch.push(Outgoing::new(json!({ "seq": seq }).to_string()).key(channel));
        if seq % 2 == 0 {
            batch
                .push(Outgoing::new(json!({ "seq": seq, "noise": true }).to_string()).key("other"));
        }
    }
    producer.send_all(topic, &batch).unwrap();
}

fn recovered(got: &[Got]) -> (Vec<u64>, &Value) {
    let Some(Got::Recovered(outcome)) = got.last() else {
        panic!("no outcome: {got:?}")
    };
    let records = got
        .iter()
        .filter_map(|g| match g {
            Got::Record(seq) => Some(*seq),
            Got::Recovered(_) => None,
        })
        .collect();
    (records, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_on_any_process_gets_exactly_what_it_missed_then_live_records() {
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 3).unwrap();
    broker.create_topic("tight", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [(KEY_VAR, KEY)];
    let a = Sluice::start(dir.path(), "a", &file(&broker), &env);
    let b = Sluice::start(dir.path(), "b", &file(&broker), &env);
    let producer = Producer::new(&broker.bootstrap()).unwrap();

    for (back_to, name) in [(&a, "the same process"), (&b, "another process")] {
        let channel = format!("c-{}", back_to.base.len() + name.len());
        let mut client = Resumer::connect(&format!("{}/{channel}", a.base)).await;
        produce(&producer, "feed", &channel, 0, 100);
        assert_eq!(client.records(100).await, (0..100).collect::<Vec<_>>());
        let kept = client.leave();
        // 500 records on its channel while it is away, the last 200 of
        // them while it comes back: some reach it live.
        produce(&producer, "feed", &channel, 100, 300);
        let flow = {
            let (producer, channel) =
                (Producer::new(&broker.bootstrap()).unwrap(), channel.clone());
            std::thread::spawn(move || {
                for first in (400..600).step_by(10) {
                    produce(&producer, "feed", &channel, first, 10);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            })
        };
        let (mut client, got) = kept.resume(&back_to.base, &format!("/{channel}")).await;
        flow.join().unwrap();
        let (mut seqs, outcome) = recovered(&got);
        assert_eq!(outcome["complete"], true, "{name}: {outcome}");
        assert_eq!(outcome["records"], seqs.len(), "{name}: {outcome}");
        // Then live ones, without a record twice or a gap at the switch.
        produce(&producer, "feed", &channel, 600, 10);
        let wanted = (100..610).collect::<Vec<_>>();
        seqs.extend(client.records(wanted.len() - seqs.len()).await);
        assert_eq!(seqs, wanted, "{name}: missed, repeated or reordered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_token_is_refused_and_a_position_past_the_bounds_is_told_so() {
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 1).unwrap();
    broker.create_topic("tight", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "r", &file(&broker), &[(KEY_VAR, KEY)]);
    let producer = Producer::new(&broker.bootstrap()).unwrap();

    // Tampered: one character of the signature changed (the first: every
    // value of it is valid base64url, unlike the last one's).
    let client = Resumer::connect(&format!("{}/c1", sluice.base)).await;
    let token = &client.kept.position;
    let at = token.rfind('.').unwrap() + 1;
    let mut forged = token.clone().into_bytes();
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = Client::connect_with(
        &format!("{}/c1?resume={forged}", sluice.base),
        &[("sec-websocket-protocol", PROTOCOL)],
    )
    .await
    .err()
    .expect("a tampered position is refused");
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("bad signature"), "{}", refused.body);
    // Another pipeline's token, valid there, means nothing here.
    let refused = Client::connect_with(
        &format!("{}/tight/c1?resume={}", sluice.base, client.kept.position),
        &[("sec-websocket-protocol", PROTOCOL)],
    )
    .await
    .err()
    .expect("a token of another pipeline is refused");
    assert_eq!(refused.status, 400, "{}", refused.body);

    // More missed than `max_records = 10`: told, then live records.
    let mut tight = Resumer::connect(&format!("{}/tight/t1", sluice.base)).await;
    produce(&producer, "tight", "t1", 0, 1);
    assert_eq!(tight.records(1).await, [0]);
    let kept = tight.leave();
    produce(&producer, "tight", "t1", 1, 20);
    let (mut tight, got) = kept.resume(&sluice.base, "/tight/t1").await;
    let (seqs, outcome) = recovered(&got);
    assert!(seqs.is_empty(), "{got:?}");
    assert_eq!(outcome["complete"], false, "{outcome}");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap()
            .contains("more than this pipeline recovers (10)"),
        "{outcome}"
    );
    produce(&producer, "tight", "t1", 100, 1);
    assert_eq!(tight.records(1).await, [100]);

    // Older than `max_age_ms = 1000`.
    let kept = tight.leave();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (mut tight, got) = kept.resume(&sluice.base, "/tight/t1").await;
    let (_, outcome) = recovered(&got);
    assert_eq!(outcome["complete"], false, "{outcome}");
    assert!(
        outcome["reason"].as_str().unwrap().contains("s old"),
        "{outcome}"
    );
    produce(&producer, "tight", "t1", 101, 1);
    assert_eq!(tight.records(1).await, [101]);
}

/// A deploy's worth of reconnects at once: 1,000 clients of 10 channels,
/// each with its own position, all get exactly what their channel missed,
/// and the catch-up reader serves them in shared passes, reading far less
/// than a read per client would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_back_at_once_share_the_catch_up() {
    const CLIENTS: usize = 1000;
    const CHANNELS: usize = 10;
    const MISSED: u64 = 50;
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 3).unwrap();
    broker.create_topic("tight", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "burst", &file(&broker), &[(KEY_VAR, KEY)]);
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let base = Arc::new(sluice.base.clone());

    let mut kept = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let client = Resumer::connect(&format!("{base}/b{}", i % CHANNELS)).await;
        kept.push((i % CHANNELS, client.leave()));
    }
    for channel in 0..CHANNELS {
        produce(&producer, "feed", &format!("b{channel}"), 0, MISSED);
    }
    let mut back = Vec::with_capacity(CLIENTS);
    for (channel, kept) in kept {
        let base = base.clone();
        back.push(tokio::spawn(async move {
            let (_client, got) = kept.resume(&base, &format!("/b{channel}")).await;
            got
        }));
    }
    for task in back {
        let got = tokio::time::timeout(support::ws::PATIENCE * 6, task)
            .await
            .expect("every client recovered")
            .unwrap();
        let (seqs, outcome) = recovered(&got);
        assert_eq!(outcome["complete"], true, "{outcome}");
        assert_eq!(seqs, (0..MISSED).collect::<Vec<_>>());
    }
    let admin = sluice.admin.as_ref().unwrap();
    let samples = support::metrics::scrape(admin).await;
    let series = |name: &str, extra: &str| {
        let value = support::metrics::value(
            &samples,
            &format!("{name}{{tenant=\"default\",pipeline=\"feed\"{extra}}}"),
        );
        value as usize
    };
    assert_eq!(
        series("resume_recoveries_total", ",outcome=\"complete\""),
        CLIENTS
    );
    let passes = series("resume_catch_up_passes_total", "");
    let read = series("resume_catch_up_records_read_total", "");
    println!("{CLIENTS} recoveries: {passes} catch-up passes, {read} records read");
    assert!(
        (1..=CLIENTS / 2).contains(&passes),
        "{passes} passes for {CLIENTS} clients"
    );
    // Each client's gap holds every record of the topic since its position
    // (its channel's and the others'): one read per client would be
    // CLIENTS times that.
    let gap = CHANNELS * (MISSED as usize) * 3 / 2;
    assert!(
        read <= passes * gap,
        "{read} records read in {passes} passes"
    );
    assert_eq!(
        series("resume_records_recovered_total", ""),
        CLIENTS * MISSED as usize
    );
}

/// Records deleted since the position (retention) are not skipped
/// silently. The embedded broker (librdkafka's mock cluster) keeps at most
/// 5 MiB per partition and deletes the oldest records beyond that: the
/// retention this test needs, which tansu cannot do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_whose_records_were_deleted_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = format!(
        r#"
[kafka]
brokers = "embedded"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[pipelines]]
name = "feed"
path = "/{{channel}}"
[pipelines.source]
topics = ["kept"]
[pipelines.source.resume]
keys = [{{ id = "k1", secret = {{ env = "{KEY_VAR}" }} }}]
[pipelines.router]
plugin = "key-router"
"#
    );
    let sluice = Sluice::start(dir.path(), "retention", &embedded, &[(KEY_VAR, KEY)]);
    let broker = sluice.embedded.clone().expect("an embedded broker");
    let producer = Producer::new(&broker).unwrap();
    let mut client = Resumer::connect(&format!("{}/r1", sluice.base)).await;
    producer
        .send(
            "kept",
            &Outgoing::new(json!({ "seq": 0 }).to_string()).key("r1"),
        )
        .unwrap();
    assert_eq!(client.records(1).await, [0]);
    let kept = client.leave();
    // 7 MiB after its position: the oldest records go.
    let filler = "x".repeat(10 * 1024);
    for first in (1..=700).step_by(50) {
        let batch: Vec<Outgoing> = (first..first + 50)
            .map(|seq| Outgoing::new(json!({ "seq": seq, "filler": filler }).to_string()).key("r1"))
            .collect();
        producer.send_all("kept", &batch).unwrap();
    }
    let (mut client, got) = kept.resume(&sluice.base, "/r1").await;
    let (seqs, outcome) = recovered(&got);
    assert!(seqs.is_empty(), "nothing from a gap with a hole: {got:?}");
    assert_eq!(outcome["complete"], false, "{outcome}");
    assert!(
        outcome["reason"].as_str().unwrap().contains("deleted"),
        "{outcome}"
    );
    producer
        .send(
            "kept",
            &Outgoing::new(json!({ "seq": 1000 }).to_string()).key("r1"),
        )
        .unwrap();
    // Then the live records (the tail of the filler may still be on its
    // way live: the consumer delivers it as the client comes back).
    loop {
        let seq = client.records(1).await[0];
        if seq == 1000 {
            break;
        }
        assert!((1..=700).contains(&seq), "unexpected record {seq}");
    }
}

/// Authentication applies to a reconnect with a position exactly as to a
/// first connect: a valid position does not let a client in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_a_position_is_authenticated_like_a_first_connect() {
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 1).unwrap();
    broker.create_topic("tight", 1).unwrap();
    let file = file(&broker).replacen(
        "[pipelines.router]\nplugin = \"key-router\"\n",
        "[pipelines.router]\nplugin = \"key-router\"\n[pipelines.auth]\nplugin = \"basic-auth\"\nconfig = { users = { ann = \"ann-pass\" } }\n",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "auth", &file, &[(KEY_VAR, KEY)]);
    // ann:ann-pass
    let auth = ("authorization", "Basic YW5uOmFubi1wYXNz");
    let protocol = ("sec-websocket-protocol", PROTOCOL);
    let mut ws = Client::connect_with(&format!("{}/a1", sluice.base), &[protocol, auth])
        .await
        .unwrap();
    let position = ws.next_json().await;
    assert_eq!(position["type"], "position", "{position}");
    drop(ws);
    let url = format!(
        "{}/a1?resume={}",
        sluice.base,
        position["position"].as_str().unwrap()
    );
    let refused = Client::connect_with(&url, &[protocol])
        .await
        .err()
        .expect("no credentials");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let wrong = ("authorization", "Basic YW5uOndyb25n");
    let refused = Client::connect_with(&url, &[protocol, wrong])
        .await
        .err()
        .expect("a wrong password");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let mut ws = Client::connect_with(&url, &[protocol, auth]).await.unwrap();
    let outcome = ws.next_json().await;
    assert_eq!(outcome["type"], "recovered", "{outcome}");
    assert_eq!(outcome["complete"], true, "{outcome}");
}

/// A reload that changes the router reaches the catch-up reader too: a
/// returning client's missed records are routed by the router in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catch_up_routes_with_the_router_a_reload_put_in() {
    let broker = Broker::start().unwrap();
    broker.create_topic("feed", 1).unwrap();
    broker.create_topic("tight", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = file(&broker);
    let sluice = Sluice::start_with_args(
        dir.path(),
        "routed",
        &before,
        &[(KEY_VAR, KEY)],
        &["--no-watch"],
    );
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let client = Resumer::connect(&format!("{}/all", sluice.base)).await;
    let kept = client.leave();
    // Keyed `x`: the running router sends them to `x` only (a client there
    // sees them, so they were consumed before the reload).
    let mut on_x = Resumer::connect(&format!("{}/x", sluice.base)).await;
    produce(&producer, "feed", "x", 0, 5);
    assert_eq!(on_x.records(5).await, [0, 1, 2, 3, 4]);
    let after = before.replacen(
        "[pipelines.router]\nplugin = \"key-router\"\n",
        "[pipelines.router]\nplugin = \"key-router\"\nconfig = { all_channel = \"all\" }\n",
        1,
    );
    assert_ne!(after, before);
    std::fs::write(dir.path().join("routed.toml"), &after).unwrap();
    let auth = "Bearer an-operator-token-for-resume-tests";
    let admin = sluice.admin.as_ref().unwrap();
    let response =
        support::http::request(admin, "POST", "/reload", &[("authorization", auth)], b"").await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let (_client, got) = kept.resume(&sluice.base, "/all").await;
    let (seqs, outcome) = recovered(&got);
    assert_eq!(outcome["complete"], true, "{outcome}");
    // The new router sends every record to `all`: the five for `x` and the
    // noise for `other` after each even one, in the order produced.
    assert_eq!(seqs, [0, 0, 1, 2, 2, 3, 4, 4], "{got:?}");
}
