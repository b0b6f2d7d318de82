//! Fuzzing with an in-tree harness (`harness/`; cargo-fuzz needs a
//! nightly compiler): the WebSocket frame parser and the handshake path of
//! the real binary, and the config loader and route templates in-process.
//!
//! Every case is generated from the seed and its index alone. Over the
//! network the server's answer is checked against a model of the contract
//! (README, "Connection lifecycle and close codes"; RFC 6455): the messages
//! the echo handler sends back, the pongs, and the close code or the drop
//! the connection ends with; never a hang. After each batch of cases a
//! well-behaved client must still get its echo and `/healthz` answer 200.
//!
//! The budget is bounded: by default up to 5000 frame cases and 1000
//! handshakes (10 s each at most, run side by side), 2000 pipeline files
//! and 20000 templates (a second or two).
//! The seed is fixed (20261122) so the test command is deterministic;
//! `SLUICE_FUZZ_SEED=random` explores, `SLUICE_FUZZ_SEED=N` replays a run
//! (the seed is printed), `SLUICE_FUZZ_CASES`
//! and `SLUICE_FUZZ_SECS` set its size, and `SLUICE_FUZZ_ONLY=frames:12,frames:40`
//! runs just those cases.
//!
//! The `#[test]`s are here; their case generators and models are in
//! `frames/`, `handshake/`, `config.rs` and `templates.rs`.

#[path = "../support/mod.rs"]
mod support;

mod config;
mod frames;
mod handshake;
mod harness;
mod templates;

use std::path::Path;

use harness::{self as fuzz, Len, Prepared, Rng, Settings};
use support::Sluice;

/// `max_message_size` of the fuzzed pipelines.
const MAX: usize = 4096;

/// The host tenant `acme`'s pipeline (`/h/{channel}`) answers.
const HOSTED: &str = "acme.example";

/// The server under test: one listener, five pipelines with the echo
/// handler: `/p/{channel}` plain, `/z/{channel}` with permessage-deflate,
/// `/s/{channel}` requiring a subprotocol (at most 2 connections),
/// `/a/{channel}` behind basic-auth (user `fuzz`, channel `ok` only), and
/// `/h/{channel}` of tenant `acme`, served only to host `acme.example`.
fn start(dir: &Path) -> (Sluice, String) {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    let file = format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
allowed_origins = ["http://ok.example"]
connections_per_ip = {{ per_second = 1000000, burst = 1000000 }}
handshake_timeout_ms = 1000
ping_interval_ms = 0

[[tenants]]
name = "default"

[[tenants]]
name = "acme"
host = "{HOSTED}"

[[pipelines]]
name = "plain"
path = "/p/{{channel}}"
max_message_size = {MAX}
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "deflate"
path = "/z/{{channel}}"
max_message_size = {MAX}
compression = true
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "protocols"
path = "/s/{{channel}}"
subprotocols = ["v2.fuzz", "v1.fuzz"]
require_subprotocol = true
max_connections = 2
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "guarded"
path = "/a/{{channel}}"
[pipelines.auth]
plugin = "basic-auth"
config = {{ users = {{ fuzz = "secret" }}, channels = {{ fuzz = ["ok"] }} }}
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "hosted"
tenant = "acme"
path = "/h/{{channel}}"
[pipelines.handler]
plugin = "{probe}"
"#
    );
    let sluice = Sluice::start(dir, "fuzz", &file, &[]);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();
    (sluice, addr)
}

/// Runs a network target: the server, then the cases in batches of
/// `batch`, `concurrency` at a time, with the liveness check after each.
async fn fuzz_server(
    settings: Settings,
    (batch, concurrency): (usize, usize),
    case: fn(&str, Rng) -> Prepared,
) {
    if settings.indices().is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sluice, addr) = start(dir.path());
    let pid = sluice.child.id();
    // Generous: the point is to catch an allocation sized by a lying length.
    let max_rss = sluice.rss_kib() + 256 * 1024;
    fuzz::drive(
        &settings,
        batch,
        concurrency,
        |_, rng| case(&addr, rng),
        || fuzz::alive(addr.clone(), pid, max_rss),
    )
    .await;
    drop(sluice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_frames() {
    fuzz_server(
        Settings::from_env("frames", 5000, 10.0),
        (50, 8),
        frames::case,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_handshake() {
    // The digests the oracle relies on (RFC 6455 §1.3's example).
    assert_eq!(
        fuzz::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    fuzz_server(
        Settings::from_env("handshake", 1000, 10.0),
        (150, 16),
        handshake::case,
    )
    .await;
}

/// Found by `fuzz_frames` (in its first batch, whatever the seed): a close
/// frame over 125 bytes (RFC 6455 §5.5: control frames carry at most 125)
/// is taken, and the server's answer is then itself a control frame over
/// 125 bytes: the echo of a valid code with a long reason, or 1002 with the
/// client's long reason after a forbidden code. Expected: a close with 1002
/// (as for a ping over 125 bytes), and never an invalid frame from the
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_close_frames_over_125_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path());
    for code in [1000u16, 1005] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.resize(126, b'a');
        // Masked with a zero key, so the hex reads as the payload.
        let bytes = fuzz::frame(true, 0, 8, Some([0; 4]), Len::Minimal, &payload);
        let (stream, _, greeting) = fuzz::upgrade(&addr, "/p/x", "").await.unwrap();
        let wire = fuzz::converse(stream, greeting, bytes.clone(), vec![bytes.len()], true)
            .await
            .unwrap();
        let heard = fuzz::hear(&wire.bytes, false, |c| c == 1002, wire.reset);
        let replay = format!(
            "after the upgrade, the client sent a close frame with code {code} and a 124-byte \
             reason (126 bytes):\n{}\nthe server answered:\n{}",
            fuzz::hex_block(&bytes),
            fuzz::hex_block(&wire.bytes)
        );
        match heard {
            Ok(heard) => assert_eq!(heard.close_code(), Some(1002), "{replay}"),
            Err(error) => panic!("{error}\n{replay}"),
        }
    }
}

/// Found by `cargo fuzz` (fuzz/, target `handshake`): a request target in
/// authority form (`GET host:port`, meant for CONNECT) has an empty path
/// and was upgraded. Expected: 400, as for any target that is neither a
/// path nor an absolute URL (`*` too), through a raw socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_targets_that_are_not_paths() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path());
    for target in [addr.as_str(), "one2ws", "*"] {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0; 512];
        let n = stream.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
    }
}

/// The config loader on mutated pipeline files: `Ok` or diagnostics that
/// point inside the file, never a panic (cases from `config.rs`).
#[test]
fn fuzz_config() {
    let settings = Settings::from_env("config", 2000, 8.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus: Vec<String> = [
        "tests/config/valid_every_key.toml",
        "tests/config/valid_seed000.toml",
        "../examples/seed001-diagnostics.toml",
        "../examples/seed003-mock.toml",
        "../pipeline.toml",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
    .collect();
    assert!(!corpus.is_empty(), "no seed files");
    let mut keys: Vec<String> = corpus
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| {
            let (key, _) = line.split_once('=')?;
            let key = key.trim();
            (!key.is_empty() && !key.starts_with('#') && !key.contains(' ')).then(|| key.to_owned())
        })
        .collect();
    keys.sort();
    keys.dedup();
    // Relative plugin and TLS paths resolve as for the fixtures.
    let fixture = root.join("tests/config/fuzz-mutated.toml");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fuzz.toml");
    fuzz::run_cases(
        &settings,
        move |rng| config::mutate_config(rng, &corpus, &keys),
        move |bytes, rng| config::check_config(bytes, rng.chance(0.25), &fixture, &file),
    );
}

/// Route templates: a parsed one prints back as itself and matches paths
/// built from it; nothing panics (cases from `templates.rs`).
#[test]
fn fuzz_route_templates() {
    let settings = Settings::from_env("route_templates", 20000, 4.0);
    fuzz::run_cases(
        &settings,
        |rng| {
            let template = templates::template(rng);
            let about = format!("template {template:?}");
            (template.into_bytes(), about)
        },
        |bytes, rng| templates::check_template(rng, &String::from_utf8_lossy(bytes)),
    );
}
