//! Seed 000 end to end against a real broker process (tansu on loopback,
//! installed by scripts/install-broker.sh): the `sluice` binary consumes a
//! topic and routes each record by key to the Python `websockets` client
//! connected at `/<key>` with Basic auth; wrong credentials get 401. The
//! same scenario runs with the built-in `native:` router and authenticator,
//! and with `examples/seed000-env.toml`, configured by seed 000's own
//! environment variables and nothing else.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use sluice_tests::python::PyClient;

const TOPIC: &str = "test-websocket-input";

struct Sluice(Child);

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The WebAssembly router and authenticator of seed 000.
const WASM: (&str, &str) = ("key-router", "basic-auth");
/// Their built-in twins.
const NATIVE: (&str, &str) = ("native:key-router", "native:basic-auth");

/// Starts `sluice run` on a pipeline reading `broker` with this router and
/// authenticator; returns it and its ws:// base.
fn start_sluice(
    broker: &Broker,
    dir: &std::path::Path,
    (router, auth): (&str, &str),
) -> (Sluice, String) {
    let file = dir.join("pipeline.toml");
    std::fs::write(
        &file,
        format!(
            r#"
{}
[[pipelines]]
name = "destination"
path = "/{{channel}}"
[pipelines.source]
topics = ["{TOPIC}"]
[pipelines.router]
plugin = "{router}"
[pipelines.auth]
plugin = "{auth}"
config = {{ users = {{ testuser = {{ env = "E2E_WS_PASSWORD" }} }} }}
"#,
            support::pipeline_file::on_broker(&broker.bootstrap())
        ),
    )
    .unwrap();
    run_sluice(&file, dir, &[("E2E_WS_PASSWORD", "testpass")])
}

/// Runs `sluice run file` with `env`; returns it and its ws:// base once
/// it printed `ready`.
fn run_sluice(
    file: &std::path::Path,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (Sluice, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(["run", file.to_str().unwrap()])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut base = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((_, url)) = line.split_once(": ws://") {
            base = Some(format!("ws://{}", url.split('/').next().unwrap()));
        }
        if line == "ready" {
            break;
        }
    }
    (Sluice(child), base.expect("sluice printed its address"))
}

#[test]
fn records_are_routed_by_key_to_basic_authenticated_python_clients() {
    routed_by_key_to_basic_authenticated_clients(WASM);
}

#[test]
fn built_in_router_and_authenticator_behave_like_the_plugins() {
    routed_by_key_to_basic_authenticated_clients(NATIVE);
}

#[test]
fn the_env_only_example_runs_seed_000s_scenario() {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = sluice_tests::ports::free_port().to_string();
    let example = sluice_tests::repo_root().join("examples/seed000-env.toml");
    let (_sluice, base) = run_sluice(
        &example,
        dir.path(),
        &[
            ("Quix__Broker__Address", &broker.bootstrap()),
            ("input", TOPIC),
            ("WS_USERNAME", "testuser"),
            ("WS_PASSWORD", "testpass"),
            ("WS_PORT", &port),
        ],
    );
    // It listens on 0.0.0.0 at WS_PORT.
    assert!(base.ends_with(&format!(":{port}")), "{base}");
    scenario(&broker, &format!("ws://127.0.0.1:{port}"));
}

fn routed_by_key_to_basic_authenticated_clients(plugins: (&str, &str)) {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, base) = start_sluice(&broker, dir.path(), plugins);
    scenario(&broker, &base);
}

/// Seed 000's scenario against a destination at `base` reading `TOPIC`:
/// wrong or no credentials get 401, `testuser:testpass` clients get the
/// records keyed with their path, in order, unchanged.
fn scenario(broker: &Broker, base: &str) {
    let refused = PyClient::spawn(
        "ws_collect.py",
        &[
            format!("{base}/channel1"),
            "--basic".into(),
            "testuser:wrong".into(),
            "--count".into(),
            "1".into(),
        ],
    )
    .unwrap()
    .wait_for("refused", Duration::from_secs(20))
    .unwrap();
    assert_eq!(refused["status"], 401);
    assert_eq!(
        refused["headers"]["www-authenticate"],
        r#"Basic realm="sluice""#
    );

    let anonymous = PyClient::spawn(
        "ws_collect.py",
        &[format!("{base}/channel1"), "--count".into(), "1".into()],
    )
    .unwrap()
    .wait_for("refused", Duration::from_secs(20))
    .unwrap();
    assert_eq!(anonymous["status"], 401);

    // Connected to another channel: it must get none of channel1's records.
    let _other = PyClient::connected_collector(
        &format!("{base}/channel2?x=1"),
        6,
        Duration::from_secs(15),
        &["--basic", "testuser:testpass"],
    )
    .unwrap();
    let client = PyClient::connected_collector(
        &format!("{base}/channel1"),
        5,
        Duration::from_secs(30),
        &["--basic", "testuser:testpass"],
    )
    .unwrap();

    let producer = Producer::new(&broker.bootstrap()).unwrap();
    for i in 0..5 {
        let record = Outgoing::new(format!(r#"{{"id":{i},"data":"message {i}"}}"#)).key("channel1");
        producer.send(TOPIC, &record).unwrap();
        producer
            .send(TOPIC, &Outgoing::new("for channel2").key("channel2"))
            .unwrap();
    }
    let output = client.finish(Duration::from_secs(40)).unwrap();
    let done = output.event("done").unwrap();
    assert_eq!(done["why"], "count", "{output}");
    let texts: Vec<String> = output
        .events_named("message")
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"id":{i},"data":"message {i}"}}"#))
        .collect();
    assert_eq!(
        texts, expected,
        "payloads unchanged, in order, none from channel2"
    );
}

#[test]
fn delivery_resumes_after_the_broker_goes_away_and_comes_back() {
    let mut broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut sluice, base) = start_sluice(&broker, dir.path(), WASM);

    let mut client = PyClient::connected_collector(
        &format!("{base}/room"),
        10,
        Duration::from_secs(90),
        &["--basic", "testuser:testpass"],
    )
    .unwrap();
    let send = |broker: &Broker, range: std::ops::Range<i32>| {
        let producer = Producer::new(&broker.bootstrap()).unwrap();
        for i in range {
            producer
                .send(TOPIC, &Outgoing::new(format!("m{i}")).key("room"))
                .unwrap();
        }
    };
    send(&broker, 0..5);
    for _ in 0..5 {
        client.wait_for("message", Duration::from_secs(20)).unwrap();
    }

    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        sluice.0.try_wait().unwrap().is_none(),
        "sluice must survive the outage"
    );
    broker.restart().unwrap();
    send(&broker, 5..10);

    let output = client.finish(Duration::from_secs(90)).unwrap();
    let texts: Vec<&str> = output
        .events_named("message")
        .map(|m| m["data"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "{output}");
}
