//! Plugins in other languages against the same WIT: the example routers in
//! Python (componentize-py) and JavaScript (jco / componentize-js) under
//! `examples/plugins/`, built here by `scripts/build-example-plugins.sh`,
//! route real records from a real broker to real WebSocket clients, pass
//! `sluice validate`, and follow the same routing rules record for record.
//!
//! The toolchains come from `scripts/install-plugin-toolchains.sh`
//! (`SLUICE_COMPONENTIZE_PY`, `SLUICE_JCO`); without them every test here
//! fails, saying to run it.
//!
//! `both_plugins_follow_the_same_rules` also prints what each plugin costs
//! next to the Rust json-router (load, instantiate + init, per-record
//! routing); see them with
//! `cargo test -p sluice-runtime --test e2e_language_plugins -- --nocapture same_rules`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sluice_runtime::builtin;
use sluice_runtime::plugin::{
    HostOptions, Limits, LoadedPlugin, PluginHost, PluginSpec, Role, Route,
};
use sluice_runtime::record::Record;
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use sluice_tests::toolchains::{ExamplePlugins, build_example_plugins};
use support::ws::Client;
use support::{Sluice, pipeline};
use tokio_tungstenite::tungstenite::Message;

/// The config every test gives the routers: channel from `dest`, prefixed.
const CONFIG_TOML: &str = r#"{ field = "dest", prefix = "room-" }"#;
const CONFIG_JSON: &str = r#"{"field":"dest","prefix":"room-"}"#;

/// The example plugins, built once per test process (the build script skips
/// a component whose inputs did not change since the last run).
fn plugins() -> &'static ExamplePlugins {
    static BUILT: OnceLock<ExamplePlugins> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-plugins");
        let built = build_example_plugins(&out).unwrap_or_else(|e| panic!("{e:#}"));
        // Compile each component once, into the cache every `sluice` here
        // shares, rather than in each test's process at the same time.
        std::thread::scope(|scope| {
            for (name, path) in [
                ("python-router", &built.python_router),
                ("js-router", &built.js_router),
            ] {
                scope.spawn(move || load(name, std::fs::read(path).unwrap(), CONFIG_JSON));
            }
        });
        built
    })
}

/// `XDG_CACHE_HOME` for every `sluice` started here: the compile cache is
/// keyed by the component's SHA-256, so sharing it is safe and saves
/// compiling the large components again in each test and run.
fn xdg_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("language-plugins-cache")
}

fn toml_string(path: &Path) -> String {
    let text = path.to_str().expect("UTF-8 path");
    assert!(
        !text.contains(['"', '\\']),
        "a path TOML needs no escapes for: {text}"
    );
    format!("\"{text}\"")
}

/// A pipeline reading `topic` at `/{channel}` whose router is the component
/// at `plugin` with [`CONFIG_TOML`].
fn pipeline_with(bootstrap: &str, topic: &str, plugin: &Path) -> String {
    let text = pipeline(bootstrap, topic, CONFIG_TOML, "", "");
    let default_router = r#"plugin = "key-router""#;
    assert!(text.contains(default_router));
    text.replace(default_router, &format!("plugin = {}", toml_string(plugin)))
}

fn text(message: Message) -> String {
    match message {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Produces records keyed `k1` to a one-partition topic (so in order) and
/// checks each lands where the plugin says: on the prefixed channel from the
/// payload's `dest`, else on the key's channel.
async fn routes_real_records(plugin: &Path) {
    let broker = Broker::start().unwrap();
    broker.create_topic("events", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = xdg_cache();
    let sluice = Sluice::start(
        dir.path(),
        "p",
        &pipeline_with(&broker.bootstrap(), "events", plugin),
        &[("XDG_CACHE_HOME", cache.to_str().unwrap())],
    );
    let url = |channel: &str| format!("{}/{channel}", sluice.base);
    let mut lobby = Client::connect(&url("room-lobby")).await;
    let mut seven = Client::connect(&url("room-7")).await;
    let mut key = Client::connect(&url("k1")).await;
    let mut unprefixed = Client::connect(&url("lobby")).await;

    let payloads: [&[u8]; 7] = [
        br#"{"dest":"lobby","n":1}"#,
        b"not json",
        br#"{"room":"lobby"}"#, // another field: the key's channel
        br#"{"dest":7}"#,
        br#"{"dest":""}"#,
        &[0xff, 0xfe, b'{'], // not UTF-8
        br#"{"dest":"lobby","n":2}"#,
    ];
    let records: Vec<Outgoing> = payloads
        .iter()
        .map(|p| Outgoing::new(p.to_vec()).key("k1"))
        .collect();
    let bootstrap = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        Producer::new(&bootstrap)
            .unwrap()
            .send_all("events", &records)
            .unwrap()
    })
    .await
    .unwrap();

    assert_eq!(text(lobby.next().await), r#"{"dest":"lobby","n":1}"#);
    assert_eq!(text(lobby.next().await), r#"{"dest":"lobby","n":2}"#);
    assert_eq!(text(seven.next().await), r#"{"dest":7}"#);
    assert_eq!(text(key.next().await), "not json");
    assert_eq!(text(key.next().await), r#"{"room":"lobby"}"#);
    assert_eq!(text(key.next().await), r#"{"dest":""}"#);
    match key.next().await {
        Message::Binary(bytes) => assert_eq!(&bytes[..], &[0xff, 0xfe, b'{']),
        other => panic!("expected the non-UTF-8 record as binary, got {other:?}"),
    }
    // Nothing else arrives anywhere (the prefix is applied: `lobby` is empty).
    for client in [&mut lobby, &mut seven, &mut key, &mut unprefixed] {
        let extra = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
        assert!(extra.is_err(), "unexpected message: {:?}", extra.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_router_routes_real_records() {
    let plugin = plugins().python_router.clone();
    routes_real_records(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_router_routes_real_records() {
    let plugin = plugins().js_router.clone();
    routes_real_records(&plugin).await;
}

/// `sluice validate` on a pipeline file naming the component.
fn validate(dir: &Path, name: &str, plugin: &Path, config: &str) -> std::process::Output {
    let file = dir.join(format!("{name}.toml"));
    let preamble = support::pipeline_file::listener_only();
    let text = format!(
        r#"
{preamble}
[[pipelines]]
name = "{name}"
path = "/{{channel}}"
[pipelines.source]
topics = ["events"]
[pipelines.router]
plugin = {}
config = {config}
"#,
        toml_string(plugin)
    );
    std::fs::write(&file, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .arg(&file)
        .env("XDG_CACHE_HOME", xdg_cache())
        .env_remove("RUST_LOG")
        .output()
        .expect("run sluice validate")
}

#[test]
fn sluice_validate_accepts_each_component_and_shows_its_init_errors() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins();
    for (name, plugin) in [
        ("python", &plugins.python_router),
        ("js", &plugins.js_router),
    ] {
        // Loading checks the component exports `routing` of world `router`
        // and runs its `init` on the config.
        let out = validate(dir.path(), name, plugin, CONFIG_TOML);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}\n{stderr}");
        assert!(
            stdout.starts_with(&format!(
                "ok: pipeline `{name}` (tenant `default`) at ws://127.0.0.1:0/{{channel}}: router {} [",
                plugin.display()
            )),
            "{name}: {stdout}"
        );

        // The plugin's own `init` error reaches the operator, at its table.
        let out = validate(dir.path(), name, plugin, "{ field = 3 }");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{name}.toml:11:1: plugin `{}` refused its configuration: `field` must be a non-empty string",
                plugin.display()
            )),
            "{name}: {stderr}"
        );
        let out = validate(dir.path(), name, plugin, "{ rooms = \"x\" }");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("unknown config key `rooms` (known: field, prefix)"),
            "{name}: {stderr}"
        );
    }
}

/// One host for the direct tests, sharing the compile cache of the `sluice`
/// processes above.
fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        PluginHost::new(HostOptions {
            cache_dir: Some(xdg_cache().join("sluice/compiled")),
            ..HostOptions::default()
        })
        .expect("plugin host")
    })
}

fn load(name: &str, bytes: Vec<u8>, config_json: &str) -> LoadedPlugin {
    load_with(name, bytes, config_json, Limits::default())
}

fn load_with(name: &str, bytes: Vec<u8>, config_json: &str, limits: Limits) -> LoadedPlugin {
    host()
        .load(PluginSpec {
            limits,
            ..support::plugins::spec_of(name, bytes, Role::Router, config_json)
        })
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn batch(payloads: &[Vec<u8>]) -> Arc<[Record]> {
    payloads
        .iter()
        .map(|p| Record::new("events", Some(b"k1".as_slice()), p))
        .collect::<Vec<_>>()
        .into()
}

/// A route as `(key_channel, channels)`, comparable.
type Plain = (bool, Vec<String>);

fn plain(route: &Route) -> Plain {
    (route.key_channel, route.channels.clone())
}

/// To this one channel.
fn to(channel: &str) -> Plain {
    (false, vec![channel.to_owned()])
}

/// To the key's channel.
const KEY: Plain = (true, Vec::new());

#[test]
fn both_plugins_follow_the_same_rules() {
    let long = format!(r#"{{"dest":"{}"}}"#, "x".repeat(251)); // "room-" + 251 > 255 bytes
    let longest = format!(r#"{{"dest":"{}"}}"#, "x".repeat(250));
    let cases: Vec<(Vec<u8>, Plain)> = vec![
        (br#"{"dest":"lobby"}"#.to_vec(), to("room-lobby")),
        (br#"{"dest":"caf\u00e9","x":[1]}"#.to_vec(), to("room-café")),
        (br#"{"dest":7}"#.to_vec(), to("room-7")),
        (br#"{"dest":-1.5}"#.to_vec(), to("room--1.5")),
        (br#"{"dest":7.0}"#.to_vec(), to("room-7")),
        (br#"{"dest":true}"#.to_vec(), to("room-true")),
        (br#"{"dest":NaN}"#.to_vec(), KEY),
        (b"\xff\xfe{\x00}\x00".to_vec(), KEY), // UTF-16 `{}`
        (b"not json".to_vec(), KEY),
        (b"".to_vec(), KEY),
        (vec![0xff, 0xfe], KEY),
        (br#"["dest"]"#.to_vec(), KEY),
        (br#""dest""#.to_vec(), KEY),
        (br#"{"room":"lobby"}"#.to_vec(), KEY),
        (br#"{"dest":""}"#.to_vec(), KEY),
        (br#"{"dest":null}"#.to_vec(), KEY),
        (br#"{"dest":["a"]}"#.to_vec(), KEY),
        (br#"{"dest":{"a":1}}"#.to_vec(), KEY),
        (br#"{"dest":"a\u0001b"}"#.to_vec(), KEY),
        (br#"{"dest":"a\u0085b"}"#.to_vec(), KEY),
        (br#"{"dest":"\ud800"}"#.to_vec(), KEY),
        (long.into_bytes(), KEY),
        (
            longest.into_bytes(),
            to(&format!("room-{}", "x".repeat(250))),
        ),
    ];
    let payloads: Vec<Vec<u8>> = cases.iter().map(|(p, _)| p.clone()).collect();
    let expected: Vec<_> = cases.iter().map(|(_, r)| r.clone()).collect();
    let plugins = plugins();
    for (name, path) in [
        ("python-router", &plugins.python_router),
        ("js-router", &plugins.js_router),
    ] {
        let bytes = std::fs::read(path).unwrap();
        let mut instance = load(name, bytes.clone(), CONFIG_JSON)
            .instantiate()
            .unwrap();
        let routes = instance.route_batch(batch(&payloads)).unwrap();
        let got: Vec<_> = routes.iter().map(plain).collect();
        for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                got,
                want,
                "{name}: payload {:?}",
                String::from_utf8_lossy(&payloads[i])
            );
        }
        assert_eq!(got.len(), expected.len());

        // The defaults: field `room`, no prefix.
        let mut defaults = load(name, bytes, "{}").instantiate().unwrap();
        let routes = defaults
            .route_batch(batch(&[br#"{"room":"lobby"}"#.to_vec()]))
            .unwrap();
        assert_eq!(plain(&routes[0]), to("lobby"), "{name}");
    }
    measure(plugins);
}

/// Prints load, instantiate and per-record costs of both plugins and of the
/// Rust json-router doing the same job. Numbers only: nothing is asserted
/// about time.
fn measure(plugins: &ExamplePlugins) {
    let json_router = builtin::artifact("json-router").expect("json-router is built");
    let subjects = [
        (
            "python-router",
            PathBuf::from(&plugins.python_router),
            CONFIG_JSON,
        ),
        ("js-router", PathBuf::from(&plugins.js_router), CONFIG_JSON),
        (
            "json-router (Rust)",
            PathBuf::from(json_router),
            r#"{"pointer":"/dest","prefix":"room-"}"#,
        ),
    ];
    let record = |i: usize| format!(r#"{{"dest":"lobby-{}","seq":{i},"text":"hello"}}"#, i % 10);
    eprintln!(
        "\n{:<20} {:>11} {:>15} {:>16} {:>11} {:>11}",
        "plugin", "bytes", "load (ms)", "instantiate (ms)", "batch 1", "batch 256"
    );
    for (name, path, config) in subjects {
        let bytes = std::fs::read(&path).unwrap();
        let cache_dir = xdg_cache().join("sluice/compiled");
        let cached_before = std::fs::read_dir(&cache_dir).map_or(0, |d| d.count());
        let started = Instant::now();
        // A long deadline: this measures the calls, where the default 50 ms
        // would cut a slow batch short.
        let limits = Limits {
            deadline_ms: 10_000,
            ..Limits::default()
        };
        let loaded = load_with(name, bytes.clone(), config, limits);
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let compiled = std::fs::read_dir(&cache_dir).map_or(0, |d| d.count()) > cached_before;
        // Loading a second time always reads the cache.
        let started = Instant::now();
        load(name, bytes.clone(), config);
        let warm_ms = started.elapsed().as_secs_f64() * 1e3;

        let started = Instant::now();
        let rounds = 10;
        for _ in 0..rounds {
            loaded.instantiate().unwrap();
        }
        let instantiate_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);

        let mut instance = loaded.instantiate().unwrap();
        let per_record = |size: usize, instance: &mut sluice_runtime::plugin::PluginInstance| {
            let input = batch(
                &(0..size)
                    .map(|i| record(i).into_bytes())
                    .collect::<Vec<_>>(),
            );
            let mut calls = 0u32;
            let started = Instant::now();
            while calls < 5 || started.elapsed() < Duration::from_millis(300) {
                let routes = instance.route_batch(input.clone()).unwrap();
                assert_eq!(routes[0].channels, ["room-lobby-0"], "{name}");
                calls += 1;
            }
            let records = f64::from(calls) * size as f64;
            started.elapsed().as_secs_f64() * 1e6 / records
        };
        let one = per_record(1, &mut instance);
        let many = per_record(256, &mut instance);
        eprintln!(
            "{name:<20} {:>11} {:>15} {instantiate_ms:>16.2} {:>8.1} us {:>8.2} us",
            bytes.len(),
            format!(
                "{load_ms:.0} {} / {warm_ms:.1}",
                if compiled { "cold" } else { "cached" }
            ),
            one,
            many,
        );
    }
    eprintln!(
        "load: first load in this process (`cold`: compiled; `cached`: the compile cache had it) / \
         a second load (cache); instantiate: fresh instance + init; batch N: route-batch cost per record\n"
    );
}
