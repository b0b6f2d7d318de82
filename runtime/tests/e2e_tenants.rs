//! Many tenants in one `sluice` process against a real broker: each
//! tenant's clients get only its own records, and a cross-tenant probe on
//! every tenant (another tenant's path, another tenant's channel name,
//! another tenant's pipeline through the admin API) finds nothing or is
//! refused. Counts come from real clients, Kafka and `/metrics`.

mod support;

use std::fmt::Write as _;

use futures_util::future::join_all;
use serde_json::Value;
use sluice_tests::Broker;
use sluice_tests::kafka::{Consumer, Outgoing, Producer};
use support::Sluice;
use support::metrics::{value, wait_until};
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

const TENANTS: usize = 50;
const OPERATOR: &str = "tenants-operator-token-0123";
/// A listener that lets the tests' many clients in.
const GENEROUS: &str = "connections_per_ip = { per_second = 1000, burst = 1000 }";

/// `Authorization: Basic` for `user:password` (RFC 7617; base64 by hand:
/// the tests have no base64 crate).
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut encoded = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, b)| n | u32::from(*b) << (16 - 8 * k));
        for k in 0..4 {
            if k <= chunk.len() {
                encoded.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                encoded.push('=');
            }
        }
    }
    format!("Basic {encoded}")
}

fn credentials(i: usize) -> String {
    basic(&format!("user{i}"), &format!("pass-{i}"))
}

fn admin_token(i: usize) -> String {
    format!("tenant-{i:02}-admin-token-abcdef")
}

/// Tenant `t{i}` owns `/t{i}/...` and the topics `t{i}.*`; its pipeline
/// routes key `K` to channel `t{i}-K` (a per-tenant router config) and
/// lets only `user{i}` in (a per-tenant authenticator config).
fn pipeline_file(bootstrap: &str) -> String {
    let mut file = support::pipeline_file::Preamble {
        brokers: Some(bootstrap),
        admin_token: Some(OPERATOR),
        listener: GENEROUS,
        ..Default::default()
    }
    .text();
    for i in 0..TENANTS {
        write!(
            file,
            r#"
[[tenants]]
name = "t{i}"
path_prefix = "/t{i}"
topics = ["t{i}.*"]
admin_token = "{token}"
quotas = {{ max_connections = 10 }}

[[pipelines]]
name = "p{i}"
tenant = "t{i}"
path = "/t{i}/{{channel}}"
source = {{ topics = ["t{i}.in"] }}
sink = {{ topic = "t{i}.out", reply = "none" }}
router = {{ plugin = "key-router", config = {{ template = "t{i}-{{key}}" }} }}
auth = {{ plugin = "basic-auth", config = {{ users = {{ user{i} = "pass-{i}" }} }} }}
"#,
            token = admin_token(i)
        )
        .unwrap();
    }
    file
}

#[test]
fn basic_credentials_encode_like_rfc_7617() {
    assert_eq!(
        basic("testuser", "testpass"),
        "Basic dGVzdHVzZXI6dGVzdHBhc3M="
    );
    assert_eq!(basic("a", "b"), "Basic YTpi");
}

fn series(name: &str, i: usize, extra: &str) -> String {
    format!("{name}{{tenant=\"t{i}\",pipeline=\"p{i}\"{extra}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tenants_see_only_their_own_records_and_channels() {
    let broker = Broker::start().unwrap();
    for i in 0..TENANTS {
        broker.create_topic(&format!("t{i}.in"), 1).unwrap();
        broker.create_topic(&format!("t{i}.out"), 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "tenants",
        &pipeline_file(&broker.bootstrap()),
        &[],
    );
    let admin = sluice.admin.clone().expect("admin API address");
    let base = sluice.base.clone();

    // Each tenant: its own client on its channel, and a probe client of
    // the same tenant subscribed to the *name* of the next tenant's
    // channel inside its own pipeline (channels are per pipeline).
    let connect = |i: usize, channel: String| {
        let url = format!("{base}/t{i}/{channel}");
        async move {
            Client::connect_with(&url, &[("authorization", &credentials(i))])
                .await
                .unwrap_or_else(|r| panic!("{url}: {r:?}"))
        }
    };
    let mut own = join_all((0..TENANTS).map(|i| connect(i, format!("t{i}-news")))).await;
    let probes =
        join_all((0..TENANTS).map(|i| connect(i, format!("t{}-news", (i + 1) % TENANTS)))).await;

    // Probe: tenant i's credentials on tenant j's path are refused.
    for i in 0..TENANTS {
        let j = (i + 1) % TENANTS;
        let url = format!("{base}/t{j}/t{j}-news");
        let refused = Client::connect_with(&url, &[("authorization", &credentials(i))]).await;
        assert_eq!(refused.err().map(|r| r.status), Some(401), "t{i} -> {url}");
    }

    // Probe: tenant i's admin token cannot broadcast into tenant j's
    // pipeline (nor see it).
    for i in 0..TENANTS {
        let j = (i + 1) % TENANTS;
        let bearer = format!("Bearer {}", admin_token(i));
        let response = support::http::request(
            &admin,
            "POST",
            &format!("/pipelines/p{j}/broadcast?channel=t{j}-news"),
            &[("authorization", &bearer), ("content-type", "text/plain")],
            b"cross-tenant",
        )
        .await;
        assert_eq!(response.status, 404, "t{i} -> p{j}: {}", response.text());
        let listed = support::http::request(
            &admin,
            "GET",
            "/pipelines",
            &[("authorization", &bearer)],
            b"",
        )
        .await
        .json();
        assert_eq!(listed["count"], 1, "t{i} sees {listed}");
    }

    // Two records per tenant, each on the tenant's own topic, key `news`.
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    for round in 0..2 {
        for i in 0..TENANTS {
            producer
                .send(
                    &format!("t{i}.in"),
                    &Outgoing::new(format!("t{i}-record-{round}")).key("news"),
                )
                .unwrap();
        }
    }
    for (i, client) in own.iter_mut().enumerate() {
        for round in 0..2 {
            assert_eq!(
                client.next_data().await,
                Message::text(format!("t{i}-record-{round}")),
                "tenant t{i}"
            );
        }
    }

    // Each client publishes once: it lands in its own tenant's topic.
    for (i, client) in own.iter_mut().enumerate() {
        client.send(Message::text(format!("from-t{i}"))).await;
    }
    let outs: Vec<String> = (0..TENANTS).map(|i| format!("t{i}.out")).collect();
    let topics: Vec<&str> = outs.iter().map(String::as_str).collect();
    let consumer = Consumer::new(&broker.bootstrap(), "tenants-check", &topics).unwrap();
    let mut produced = consumer
        .collect(TENANTS, std::time::Duration::from_secs(60))
        .unwrap();
    produced.extend(consumer.poll_for(std::time::Duration::from_millis(500)));
    assert_eq!(produced.len(), TENANTS, "one record per tenant, no more");
    for record in &produced {
        let tenant = record.topic.trim_end_matches(".out");
        assert_eq!(
            record.payload_str(),
            Some(format!("from-{tenant}").as_str())
        );
    }

    // Nothing else reached anyone: each pipeline wrote exactly its own
    // client's two records (so the probe subscribed to the next tenant's
    // channel name got none), and received exactly one message.
    let samples = wait_until(&admin, "every client message counted", |s| {
        (0..TENANTS).all(|i| value(s, &series("ws_messages_received_total", i, "")) == 1.0)
    })
    .await;
    for i in 0..TENANTS {
        assert_eq!(
            value(&samples, &series("ws_messages_sent_total", i, "")),
            2.0,
            "p{i}"
        );
        assert_eq!(
            value(&samples, &series("ws_connections_active", i, "")),
            2.0,
            "p{i}"
        );
        assert_eq!(
            value(
                &samples,
                &series(
                    "ws_connections_rejected_total",
                    i,
                    ",reason=\"auth_denied\""
                )
            ),
            1.0,
            "p{i}"
        );
    }
    drop(probes);
}

/// Tenant `noisy` floods at 10x its inbound and outbound quotas, opens
/// more connections than it may, and runs a router that spins until its
/// deadline on every call; tenant `quiet` shares the process.
fn noisy_neighbour_file(bootstrap: &str) -> String {
    let faults = sluice_runtime::builtin::artifact("faults").expect("faults is built");
    let preamble = support::pipeline_file::Preamble {
        brokers: Some(bootstrap),
        admin_token: Some(OPERATOR),
        listener: GENEROUS,
        ..Default::default()
    }
    .text();
    format!(
        r#"
{preamble}
[[tenants]]
name = "noisy"
path_prefix = "/noisy"
topics = ["noisy.*"]
[tenants.quotas]
max_connections = 3
inbound_messages_per_second = 20
outbound_deliveries_per_second = 20
plugin_deadline_ms = 10
plugin_cpu_share = 0.05

[[tenants]]
name = "quiet"
path_prefix = "/quiet"
topics = ["quiet.*"]
quotas = {{ outbound_deliveries_per_second = 100000, plugin_cpu_share = 0.5 }}

[[pipelines]]
name = "noisy-loop"
tenant = "noisy"
path = "/noisy/loop/{{channel}}"
source = {{ topics = ["noisy.loop"] }}
router = {{ plugin = "{faults}" }}

[[pipelines]]
name = "noisy-feed"
tenant = "noisy"
path = "/noisy/feed"
source = {{ topics = ["noisy.feed"] }}

[[pipelines]]
name = "noisy-sink"
tenant = "noisy"
path = "/noisy/sink"
sink = {{ topic = "noisy.out", reply = "none" }}

[[pipelines]]
name = "quiet-feed"
tenant = "quiet"
path = "/quiet/{{channel}}"
source = {{ topics = ["quiet.in"] }}
router = {{ plugin = "key-router" }}
"#
    )
}

fn of(name: &str, tenant: &str, pipeline: &str, extra: &str) -> String {
    format!("{name}{{tenant=\"{tenant}\",pipeline=\"{pipeline}\"{extra}}}")
}

fn throttled(tenant: &str, quota: &str) -> String {
    format!("tenant_quota_throttled_total{{tenant=\"{tenant}\",quota=\"{quota}\"}}")
}

const QUOTAS: [&str; 4] = [
    "max_connections",
    "inbound_messages_per_second",
    "outbound_deliveries_per_second",
    "plugin_cpu_share",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_neighbour_is_throttled_while_the_quiet_one_gets_everything() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const FLOOD: usize = 200; // 10x the noisy tenant's rates, at once
    const QUIET_RECORDS: usize = 100;

    let broker = Broker::start().unwrap();
    for topic in ["noisy.loop", "noisy.feed", "noisy.out", "quiet.in"] {
        broker.create_topic(topic, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "noisy",
        &noisy_neighbour_file(&broker.bootstrap()),
        &[],
    );
    let admin = sluice.admin.clone().expect("admin API address");
    let base = sluice.base.clone();

    // The noisy router spins to its deadline on every record, for as long
    // as the test runs.
    let spinning = Arc::new(AtomicBool::new(true));
    let spinner = {
        let (bootstrap, spinning) = (broker.bootstrap(), spinning.clone());
        std::thread::spawn(move || {
            let producer = Producer::new(&bootstrap).unwrap();
            let mut sent = 0;
            while spinning.load(Ordering::Relaxed) {
                producer
                    .send("noisy.loop", &Outgoing::new("spin").key("loop"))
                    .unwrap();
                sent += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            sent
        })
    };

    // Three connections are the noisy tenant's quota; the fourth is refused
    // before the upgrade.
    let mut feed = Client::connect(&format!("{base}/noisy/feed")).await;
    let mut flooder = Client::connect(&format!("{base}/noisy/sink")).await;
    let _looped = Client::connect(&format!("{base}/noisy/loop/x")).await;
    let refused = Client::connect_with(&format!("{base}/noisy/feed"), &[]).await;
    let refused = refused.err().expect("over max_connections");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("tenant"), "{}", refused.body);

    // Inbound and outbound floods.
    for n in 0..FLOOD {
        flooder.send(Message::text(format!("flood-{n}"))).await;
    }
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let records: Vec<Outgoing> = (0..FLOOD)
        .map(|n| Outgoing::new(format!("feed-{n}")))
        .collect();
    producer.send_all("noisy.feed", &records).unwrap();

    // Meanwhile the quiet tenant gets every record, in order.
    let mut quiet = Client::connect(&format!("{base}/quiet/news")).await;
    let records: Vec<Outgoing> = (0..QUIET_RECORDS)
        .map(|n| Outgoing::new(format!("quiet-{n}")).key("news"))
        .collect();
    producer.send_all("quiet.in", &records).unwrap();
    for n in 0..QUIET_RECORDS {
        assert_eq!(quiet.next_data().await, Message::text(format!("quiet-{n}")));
    }

    // Every noisy feed record was either delivered or dropped by the
    // quota; every flooded message either taken or dropped by it; and the
    // spinning router was made to wait for its CPU share.
    let fed = |s: &std::collections::HashMap<String, f64>| {
        value(s, &of("ws_messages_sent_total", "noisy", "noisy-feed", ""))
    };
    let feed_dropped = of(
        "messages_dropped_total",
        "noisy",
        "noisy-feed",
        ",reason=\"tenant_quota\"",
    );
    let samples = wait_until(&admin, "noisy feed records all accounted for", |s| {
        fed(s) + value(s, &feed_dropped) == FLOOD as f64
            && value(
                s,
                &of("ws_messages_received_total", "noisy", "noisy-sink", ""),
            ) == FLOOD as f64
            && value(s, &throttled("noisy", "plugin_cpu_share")) > 0.0
    })
    .await;
    spinning.store(false, Ordering::Relaxed);
    let spun = spinner.join().unwrap();
    assert!(spun > 0);

    let delivered = fed(&samples) as usize;
    for n in 0..delivered {
        assert_eq!(feed.next_data().await, Message::text(format!("feed-{n}")));
    }
    // A record goes to its one subscriber or is dropped: the first
    // second's worth (the burst) always fits.
    assert!((20..FLOOD).contains(&delivered), "delivered {delivered}");
    assert_eq!(
        value(
            &samples,
            &throttled("noisy", "outbound_deliveries_per_second")
        ),
        value(&samples, &feed_dropped)
    );
    let inbound_dropped = value(
        &samples,
        &of(
            "messages_dropped_total",
            "noisy",
            "noisy-sink",
            ",reason=\"tenant_quota\"",
        ),
    );
    assert!(
        (1.0..=(FLOOD - 20) as f64).contains(&inbound_dropped),
        "inbound dropped {inbound_dropped}"
    );
    assert_eq!(
        value(&samples, &throttled("noisy", "inbound_messages_per_second")),
        inbound_dropped
    );
    assert_eq!(value(&samples, &throttled("noisy", "max_connections")), 1.0);
    assert_eq!(
        value(
            &samples,
            &of(
                "ws_connections_rejected_total",
                "noisy",
                "noisy-feed",
                ",reason=\"tenant_quota\""
            )
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "tenant_connections_active{tenant=\"noisy\"}"),
        3.0
    );
    // Every call of the spinning router failed at its (capped) deadline.
    let faults = sluice_runtime::builtin::artifact("faults").unwrap();
    let calls = |result: &str| {
        of(
            "plugin_calls_total",
            "noisy",
            "noisy-loop",
            &format!(",plugin=\"{faults}\",result=\"{result}\""),
        )
    };
    assert!(value(&samples, &calls("error")) > 0.0);
    assert_eq!(value(&samples, &calls("ok")), 0.0);

    // The admin API's tenant view says the same.
    let tenants = support::http::request(
        &admin,
        "GET",
        "/tenants",
        &[("authorization", &format!("Bearer {OPERATOR}"))],
        b"",
    )
    .await
    .json();
    assert_eq!(tenants["count"], 2, "{tenants}");
    let noisy = &tenants["tenants"][0];
    assert_eq!(noisy["name"], "noisy");
    assert_eq!(noisy["quotas"]["plugin_cpu_share"], 0.05);
    assert_eq!(noisy["quotas"]["max_connections"], 3);
    assert_eq!(noisy["connections"], 3);
    assert_eq!(noisy["throttled"]["max_connections"], 1);
    assert!(noisy["throttled"]["plugin_cpu_share"].as_u64() > Some(0));
    assert!(noisy["plugin_seconds"].as_f64() > Some(0.0));
    assert_eq!(
        tenants["tenants"][1]["quotas"]["max_connections"],
        Value::Null
    );

    // The quiet tenant lost nothing and was never throttled.
    for quota in QUOTAS {
        assert_eq!(value(&samples, &throttled("quiet", quota)), 0.0, "{quota}");
    }
    assert_eq!(
        value(
            &samples,
            &of(
                "messages_dropped_total",
                "quiet",
                "quiet-feed",
                ",reason=\"tenant_quota\""
            )
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            &of("ws_messages_sent_total", "quiet", "quiet-feed", "")
        ),
        QUIET_RECORDS as f64
    );
}

/// Two tenants serve the same paths on two host names: a handshake goes to
/// the tenant its `Host` header names, and to no one for another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_header_picks_the_tenant() {
    let broker = Broker::start().unwrap();
    for topic in ["alpha.in", "beta.in"] {
        broker.create_topic(topic, 1).unwrap();
    }
    let mut file = support::pipeline_file::on_broker(&broker.bootstrap());
    for tenant in ["alpha", "beta"] {
        write!(
            file,
            r#"
[[tenants]]
name = "{tenant}"
host = "{tenant}.example.com"
topics = ["{tenant}.*"]

[[pipelines]]
name = "{tenant}-feed"
tenant = "{tenant}"
path = "/{{channel}}"
source = {{ topics = ["{tenant}.in"] }}
router = {{ plugin = "key-router" }}
"#
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "hosts", &file, &[]);
    let port = sluice.base.rsplit(':').next().unwrap().to_owned();
    let url = format!("{}/news", sluice.base);
    let as_host = |host: &str| format!("{host}:{port}");
    let mut alpha = Client::connect_with(&url, &[("host", &as_host("alpha.example.com"))])
        .await
        .unwrap();
    // Host names compare without case.
    let mut beta = Client::connect_with(&url, &[("host", &as_host("BETA.example.com"))])
        .await
        .unwrap();
    let nobody = Client::connect_with(&url, &[("host", &as_host("gamma.example.com"))]).await;
    assert_eq!(nobody.err().map(|r| r.status), Some(404));

    let producer = Producer::new(&broker.bootstrap()).unwrap();
    for round in 0..2 {
        for tenant in ["alpha", "beta"] {
            producer
                .send(
                    &format!("{tenant}.in"),
                    &Outgoing::new(format!("{tenant}-{round}")).key("news"),
                )
                .unwrap();
        }
    }
    for round in 0..2 {
        assert_eq!(
            alpha.next_data().await,
            Message::text(format!("alpha-{round}"))
        );
        assert_eq!(
            beta.next_data().await,
            Message::text(format!("beta-{round}"))
        );
    }
}
