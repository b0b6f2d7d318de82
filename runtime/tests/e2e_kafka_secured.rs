//! Secured Kafka end to end, against the tansu broker process: TLS through
//! a TLS terminator on loopback (tests/fixtures/kafka-tls: a test CA, a
//! broker and a client certificate, and a rogue certificate nobody trusts),
//! mutual TLS, SASL/SCRAM-SHA-256 and -512 (tansu's `--authentication`),
//! and SCRAM over TLS. Records flow Kafka -> WebSocket and WebSocket ->
//! Kafka (ACKed) with `[kafka] security`; a refused client certificate, an
//! untrusted server certificate and a wrong password each show up in
//! the admin API's `GET /health` with what to check. (tansu's SASL sessions last 60 s and
//! librdkafka re-authenticates at about 54 s, which tansu 0.6 refuses:
//! each test here is over well before that.)

mod support;

use std::time::{Duration, Instant};

use sluice_tests::Broker;
use sluice_tests::broker::{Scram, ScramUser, Security, Tls};
use sluice_tests::kafka::{Consumer, Outgoing, Producer};
use sluice_tests::python::{self, PyClient};
use sluice_tests::tls_terminator::{ServerCert, fixture};
use support::Sluice;
use support::pipeline_file::Preamble;

const FEED: &str = "secured";
const INBOUND: &str = "secured-in";

/// `security = { ... }` for Sluice, as TOML, from its keys.
fn security_table(keys: &[(&str, String)]) -> String {
    let keys: Vec<String> = keys.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
    format!("security = {{ {} }}", keys.join(", "))
}

/// The test CA and client certificate, as `security` keys.
fn tls_keys(with_client_cert: bool) -> Vec<(&'static str, String)> {
    let path = |name: &str| fixture(name).display().to_string();
    let mut keys = vec![("ca", path("ca.pem"))];
    if with_client_cert {
        keys.push(("cert", path("client.pem")));
        keys.push(("key", path("client-key.pem")));
    }
    keys
}

/// The admin token of the test pipelines (`/metrics` is read through it).
const ADMIN_TOKEN: &str = "secured-test-admin-token-0123";

/// A pipeline file with a feed from `FEED` and a sink to `INBOUND`.
fn pipeline_file(broker: &Broker, security: &str) -> String {
    Preamble {
        brokers: Some(&broker.bootstrap()),
        kafka: security,
        admin_token: Some(ADMIN_TOKEN),
        ..Preamble::default()
    }
    .then(&format!(
        r#"
[[pipelines]]
name = "feed"
path = "/feed"
source = {{ topics = ["{FEED}"], start = "earliest" }}

[[pipelines]]
name = "inbound"
path = "/in"
sink = {{ topic = "{INBOUND}", reply = "json" }}
"#
    ))
}

fn secured_broker(security: Security) -> Broker {
    let broker = Broker::start_secured(security).unwrap();
    broker.create_topic(FEED, 1).unwrap();
    broker.create_topic(INBOUND, 1).unwrap();
    broker
}

/// A record produced to `FEED` reaches a client of `/feed`, and a client
/// message to `/in` is ACKed and lands in `INBOUND`.
fn records_flow_both_ways(broker: &Broker, security: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "secured", &pipeline_file(broker, security), &[]);

    let url = format!("{}/feed", sluice.base);
    let client = PyClient::connected_collector(&url, 1, Duration::from_secs(30), &[]).unwrap();
    let producer = Producer::with_config(broker.client_config()).unwrap();
    producer
        .send(FEED, &Outgoing::new("over the secured link"))
        .unwrap();
    let output = client.finish(Duration::from_secs(40)).unwrap();
    let message = output.event("message").unwrap();
    assert_eq!(message["data"], "over the secured link", "{output}");

    let output = python::run(
        "ws_collect.py",
        &[
            format!("{}/in", sluice.base),
            "--send".into(),
            "from a client".into(),
            "--count".into(),
            "1".into(),
            "--timeout".into(),
            "30".into(),
        ],
        Duration::from_secs(40),
    )
    .unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(output.event("message").unwrap()["data"].as_str().unwrap()).unwrap();
    assert_eq!(reply["type"], "ack", "{output}");
    let consumer = Consumer::with_config(broker.client_config(), "check", &[INBOUND]).unwrap();
    let records = consumer.collect(1, Duration::from_secs(20)).unwrap();
    assert_eq!(records[0].payload_str(), Some("from a client"));
}

/// Waits until the feed consumer has counted a client error of `kind`.
fn counts_client_errors(sluice: &Sluice, kind: &str) {
    let admin = sluice.admin.clone().expect("the admin API");
    let series = format!(
        "kafka_client_errors_total{{tenant=\"default\",pipeline=\"feed\",kind=\"{kind}\"}}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(support::metrics::wait_until(&admin, &series, |samples| {
        support::metrics::value(samples, &series) >= 1.0
    }));
}

/// Waits until the admin API's `GET /health` names a problem that contains
/// `expected`, and checks the public `/readyz` says only "not ready";
/// returns every problem, one ``pipeline `name`: problem`` line each.
fn health_says(sluice: &Sluice, expected: &str) -> String {
    let addr = sluice.base.trim_start_matches("ws://").to_owned();
    let admin = sluice.admin.clone().expect("the admin API");
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = runtime.block_on(support::http::request(
            &admin,
            "GET",
            "/health",
            &[("authorization", &bearer)],
            b"",
        ));
        let detail: serde_json::Value = serde_json::from_str(&health.text()).unwrap();
        let problems: Vec<String> = detail["pipelines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(format!(
                    "pipeline `{}`: {}",
                    p["name"].as_str()?,
                    p["problem"].as_str()?
                ))
            })
            .collect();
        let problem = problems.join("\n");
        if health.status == 503 && problem.contains(expected) {
            let readyz =
                runtime.block_on(support::http::request(&addr, "GET", "/readyz", &[], b""));
            assert_eq!(readyz.status, 503);
            assert!(!readyz.text().contains("feed"), "{}", readyz.text());
            return problem;
        }
        assert!(
            Instant::now() < deadline,
            "GET /health never said {expected:?}; last: {} {detail}",
            health.status
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn records_flow_both_ways_over_mutual_tls_and_a_missing_client_certificate_is_refused() {
    let broker = secured_broker(Security {
        tls: Some(Tls {
            cert: ServerCert::Trusted,
            require_client_cert: true,
        }),
        scram: None,
    });
    let mut keys = vec![("protocol", "ssl".to_owned())];
    keys.extend(tls_keys(true));
    records_flow_both_ways(&broker, &security_table(&keys));

    // Without a client certificate the terminator refuses the handshake.
    let mut keys = vec![("protocol", "ssl".to_owned())];
    keys.extend(tls_keys(false));
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "no-client-cert",
        &pipeline_file(&broker, &security_table(&keys)),
        &[],
    );
    let body = health_says(&sluice, "the TLS handshake failed");
    assert!(body.contains("pipeline `feed`"), "{body}");
}

#[test]
fn an_untrusted_broker_certificate_is_refused_with_a_clear_reason() {
    let broker = Broker::start_secured(Security {
        tls: Some(Tls {
            cert: ServerCert::Rogue,
            require_client_cert: false,
        }),
        scram: None,
    })
    .unwrap();
    let mut keys = vec![("protocol", "ssl".to_owned())];
    keys.extend(tls_keys(false));
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        dir.path(),
        "rogue",
        &pipeline_file(&broker, &security_table(&keys)),
        &[],
    );
    let body = health_says(&sluice, "the TLS handshake failed");
    assert!(body.contains("certificate verify failed"), "{body}");
    counts_client_errors(&sluice, "tls");
}

fn scram_user(mechanism: Scram) -> ScramUser {
    ScramUser {
        mechanism,
        username: "sluice".into(),
        password: "s3cret-pass".into(),
    }
}

fn scram_keys(mechanism: Scram, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("mechanism", mechanism.sluice_name().to_owned()),
        ("username", "sluice".to_owned()),
        ("password", password.to_owned()),
    ]
}

#[test]
fn scram_sha_256_and_512_over_plaintext_and_a_wrong_password_is_reported() {
    for mechanism in [Scram::Sha256, Scram::Sha512] {
        let broker = secured_broker(Security {
            tls: None,
            scram: Some(scram_user(mechanism)),
        });
        let mut keys = vec![("protocol", "sasl_plaintext".to_owned())];
        keys.extend(scram_keys(mechanism, "s3cret-pass"));
        records_flow_both_ways(&broker, &security_table(&keys));

        let mut keys = vec![("protocol", "sasl_plaintext".to_owned())];
        keys.extend(scram_keys(mechanism, "wrong-pass"));
        let dir = tempfile::tempdir().unwrap();
        let sluice = Sluice::start(
            dir.path(),
            "wrong-password",
            &pipeline_file(&broker, &security_table(&keys)),
            &[],
        );
        health_says(&sluice, "the brokers refused the credentials");
        counts_client_errors(&sluice, "authentication");
    }
}

#[test]
fn scram_over_tls_works_end_to_end() {
    let broker = secured_broker(Security {
        tls: Some(Tls {
            cert: ServerCert::Trusted,
            require_client_cert: false,
        }),
        scram: Some(scram_user(Scram::Sha512)),
    });
    // No `protocol`: a mechanism means sasl_ssl.
    let mut keys = scram_keys(Scram::Sha512, "s3cret-pass");
    keys.extend(tls_keys(false));
    records_flow_both_ways(&broker, &security_table(&keys));
}

/// librdkafka reports a TLS client of a plaintext listener, and a
/// plaintext client of a TLS listener, only as "all brokers are down";
/// The admin API's `GET /health` names the mismatch after asking the broker directly.
#[test]
fn tls_against_plaintext_and_plaintext_against_tls_are_named() {
    let plaintext = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = vec![("protocol", "ssl".to_owned())];
    let tls_client = Sluice::start(
        dir.path(),
        "tls-to-plaintext",
        &pipeline_file(&plaintext, &security_table(&keys)),
        &[],
    );
    let body = health_says(&tls_client, "does not answer a TLS handshake");
    counts_client_errors(&tls_client, "protocol_mismatch");
    assert!(
        body.contains("pipeline `feed`") && body.contains("pipeline `inbound`"),
        "{body}"
    );

    let tls = Broker::start_secured(Security {
        tls: Some(Tls {
            cert: ServerCert::Trusted,
            require_client_cert: false,
        }),
        scram: None,
    })
    .unwrap();
    let plain_client = Sluice::start(
        dir.path(),
        "plaintext-to-tls",
        &pipeline_file(&tls, ""),
        &[],
    );
    health_says(&plain_client, "answers in TLS; set `security.protocol`");
}
