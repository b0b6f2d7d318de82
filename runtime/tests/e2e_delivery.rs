//! Kafka -> WebSocket delivery end to end against a real broker process
//! (tansu): the catch-all channel, query strings, JWT channel permissions,
//! poison records, two processes on one pipeline, and a stalled client
//! among fifty readers.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::{Sluice, pipeline};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, headers: &[(&'static str, String)]) -> Result<Client, u16> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("connect {url}: {other}"),
    }
}

/// The next `n` text messages, failing after `wait` of silence.
async fn texts(client: &mut Client, n: usize, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(wait, client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => out.push(text.to_string()),
            Ok(Some(Ok(_))) => {}
            other => panic!("after {} of {n} messages: {other:?}", out.len()),
        }
    }
    out
}

/// True if nothing arrives within `wait`.
async fn silent(client: &mut Client, wait: Duration) -> bool {
    tokio::time::timeout(wait, client.next()).await.is_err()
}

fn produce(broker: &Broker, topic: &str, records: &[(&[u8], String)]) {
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let records: Vec<Outgoing> = records
        .iter()
        .map(|(k, v)| Outgoing::new(v.clone()).key(k.to_vec()))
        .collect();
    producer.send_all(topic, &records).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catch_all_channel_gets_every_key_and_query_strings_are_ignored() {
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "p",
        &pipeline(
            &broker.bootstrap(),
            "events",
            r#"{ all_channel = "*" }"#,
            "",
            "",
        ),
        &[],
    );
    let mut all = connect(&format!("{}/*", sluice.base), &[]).await.unwrap();
    let mut one = connect(&format!("{}/channel1?x=1", sluice.base), &[])
        .await
        .unwrap();
    produce(
        &broker,
        "events",
        &[
            (b"channel1", "a".into()),
            (b"channel2", "b".into()),
            (b"channel3", "c".into()),
        ],
    );
    let mut got = texts(&mut all, 3, Duration::from_secs(20)).await;
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
    assert_eq!(texts(&mut one, 1, Duration::from_secs(20)).await, ["a"]);
    assert!(silent(&mut one, Duration::from_millis(500)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_allows_its_channels_only() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = r#"
[pipelines.auth]
plugin = "jwt-auth"
config = { algorithms = ["HS256"], secret = "e2e-secret-e2e-secret-e2e-secret", issuer = "tests", audience = "sluice" }
"#;
    let sluice = Sluice::start(
        dir.path(),
        "p",
        &pipeline(&broker.bootstrap(), "events", "{}", "", auth),
        &[],
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({ "sub": "alice", "iss": "tests", "aud": "sluice", "exp": exp, "channels": ["a"] });
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"e2e-secret-e2e-secret-e2e-secret"),
    )
    .unwrap();
    let bearer = [("authorization", format!("Bearer {token}"))];
    assert_eq!(
        connect(&format!("{}/b", sluice.base), &bearer).await.err(),
        Some(403)
    );
    assert_eq!(
        connect(&format!("{}/a", sluice.base), &[]).await.err(),
        Some(401)
    );
    let mut a = connect(&format!("{}/a", sluice.base), &bearer)
        .await
        .unwrap();
    produce(
        &broker,
        "events",
        &[(b"b", "not yours".into()), (b"a", "yours".into())],
    );
    assert_eq!(texts(&mut a, 1, Duration::from_secs(20)).await, ["yours"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_does_not_stop_the_records_after_it() {
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "p",
        &pipeline(&broker.bootstrap(), "events", "{}", "", ""),
        &[],
    );
    let mut client = connect(&format!("{}/room", sluice.base), &[])
        .await
        .unwrap();
    produce(
        &broker,
        "events",
        &[
            (b"room", "before".into()),
            (b"\xff\xfe", "poison: key is not UTF-8".into()),
            (b"room", "after".into()),
        ],
    );
    assert_eq!(
        texts(&mut client, 2, Duration::from_secs(20)).await,
        ["before", "after"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_pipeline_each_deliver_every_record_once() {
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(&broker.bootstrap(), "events", "{}", "", "");
    let first = Sluice::start(dir.path(), "first", &config, &[]);
    let second = Sluice::start(dir.path(), "second", &config, &[]);
    let mut on_first = connect(&format!("{}/channel1", first.base), &[])
        .await
        .unwrap();
    let mut on_second = connect(&format!("{}/channel1", second.base), &[])
        .await
        .unwrap();
    let records: Vec<(&[u8], String)> = (0..20)
        .map(|i| (&b"channel1"[..], format!("r{i}")))
        .collect();
    produce(&broker, "events", &records);
    let expected: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    assert_eq!(
        texts(&mut on_first, 20, Duration::from_secs(20)).await,
        expected
    );
    assert_eq!(
        texts(&mut on_second, 20, Duration::from_secs(20)).await,
        expected
    );
    assert!(
        silent(&mut on_first, Duration::from_millis(500)).await,
        "no duplicates"
    );
    assert!(
        silent(&mut on_second, Duration::from_millis(100)).await,
        "no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_costs_fifty_readers_nothing_and_memory_stays_bounded() {
    const RECORDS: usize = 3000;
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The default outbox (1024 frames, drop-oldest): readers that keep up
    // never lose a frame; the stalled client's queue stops at 1024.
    let keys = "";
    // 51 clients from one IP: lift the per-IP handshake limit (burst 50).
    let config = pipeline(&broker.bootstrap(), "events", "{}", keys, "").replace(
        "address = \"127.0.0.1:0\"",
        "address = \"127.0.0.1:0\"\nconnections_per_ip = { per_second = 1000, burst = 1000 }",
    );
    let sluice = Sluice::start(dir.path(), "p", &config, &[]);
    // Connected and not read from until the end: with a small receive
    // buffer its socket fills at once, then its outbox.
    let mut stalled = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let address = sluice.base.trim_start_matches("ws://").parse().unwrap();
        let stream = socket.connect(address).await.unwrap();
        let request = format!("{}/feed", sluice.base)
            .into_client_request()
            .unwrap();
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap()
            .0
    };
    let mut readers = Vec::new();
    for _ in 0..50 {
        readers.push(
            connect(&format!("{}/feed", sluice.base), &[])
                .await
                .unwrap(),
        );
    }
    let before = sluice.rss_kib();
    let payload = "x".repeat(4 * 1024);
    let records: Vec<(&[u8], String)> = (0..RECORDS)
        .map(|i| (&b"feed"[..], format!("{i:06}{payload}")))
        .collect();
    // Paced (about 500 records/s) so the fifty readers, which share this
    // test's two cores with the broker and sluice, can keep up: the point is
    // the stalled client, not a race between readers and the producer.
    let producer = std::thread::spawn({
        let bootstrap = broker.bootstrap();
        move || {
            let producer = Producer::new(&bootstrap).unwrap();
            for chunk in records.chunks(100) {
                let chunk: Vec<Outgoing> = chunk
                    .iter()
                    .map(|(k, v)| Outgoing::new(v.clone()).key(k.to_vec()))
                    .collect();
                producer.send_all("events", &chunk).unwrap();
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            tokio::spawn(async move {
                let got = texts(&mut reader, RECORDS, Duration::from_secs(30)).await;
                got.iter()
                    .enumerate()
                    .all(|(i, t)| t.starts_with(&format!("{i:06}")))
            })
        })
        .collect();
    producer.join().unwrap();
    for task in tasks {
        assert!(task.await.unwrap(), "a reader missed or reordered records");
    }
    // Drop-oldest: the stalled client missed records, and what it has left
    // ends with the newest one.
    let mut late = Vec::new();
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_secs(2), stalled.next()).await
    {
        late.push(text[..6].to_owned());
    }
    assert!(
        late.len() < RECORDS,
        "the stalled client lost nothing: not stalled?"
    );
    assert_eq!(
        late.last().map(String::as_str),
        Some(&*format!("{:06}", RECORDS - 1))
    );
    // 3000 x 4 KiB = 12 MiB went to each of 51 clients; the stalled one holds
    // at most 1024 queued frames (bytes shared with the readers' frames)
    // plus its socket buffers.
    let grown = sluice.rss_kib().saturating_sub(before);
    assert!(grown < 96 * 1024, "RSS grew by {grown} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_dead_letter_topic_with_the_reason() {
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 1).unwrap();
    broker.create_topic("events.dlq", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(&broker.bootstrap(), "events", "{}", "", "").replace(
        "[pipelines.router]",
        "on_poison = { dead-letter = \"events.dlq\" }\n[pipelines.router]",
    );
    let sluice = Sluice::start(dir.path(), "p", &config, &[]);
    let mut client = connect(&format!("{}/room", sluice.base), &[])
        .await
        .unwrap();
    produce(
        &broker,
        "events",
        &[
            (b"room", "before".into()),
            (b"\xff\xfe", "poison".into()),
            (b"room", "after".into()),
        ],
    );
    assert_eq!(
        texts(&mut client, 2, Duration::from_secs(20)).await,
        ["before", "after"]
    );
    let dlq =
        sluice_tests::kafka::Consumer::new(&broker.bootstrap(), "dlq-reader", &["events.dlq"])
            .unwrap();
    let dead = dlq.collect(1, Duration::from_secs(20)).unwrap();
    assert_eq!(dead[0].payload_str(), Some("poison"));
    assert_eq!(dead[0].key.as_deref(), Some(&b"\xff\xfe"[..]));
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8(v).unwrap())
    };
    assert_eq!(header("sluice-error").as_deref(), Some("key is not UTF-8"));
    assert_eq!(header("sluice-origin").as_deref(), Some("events/0@1"));
}
