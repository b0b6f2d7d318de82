//! A real browser end to end: headless Chromium loads a page the test
//! serves, connects with its own `WebSocket` from an allowed Origin,
//! receives a record produced to a real broker (tansu) and closes with 1000;
//! the same page from an Origin not in `allowed_origins` cannot connect;
//! the client library (`clients/js`) comes back after a drop without
//! losing a record.
//!
//! Needs Chromium from `scripts/install-browser.sh` (`SLUICE_CHROMIUM`) and
//! the broker from `scripts/install-broker.sh` (`SLUICE_TANSU`); fails, never
//! skips, without them.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use sluice_tests::Broker;
use sluice_tests::browser::{Chromium, PageServer};
use sluice_tests::kafka::{Outgoing, Producer};
use support::{Sluice, pipeline};

/// Only a guard against hangs: each wait normally takes well under a second.
const HANG_GUARD: Duration = Duration::from_secs(60);
const TOPIC: &str = "events";
/// Not plain ASCII, so a mangled encoding would show.
const RECORD: &str = "héllo from Kafka ✓";

/// Runs `pipeline.toml`'s shape (key-router on `/{channel}`) with the
/// listener allowing only `origin`.
fn start_sluice(broker: &Broker, dir: &Path, origin: &str) -> Sluice {
    let config = pipeline(&broker.bootstrap(), TOPIC, "{}", "", "");
    let listener = "address = \"127.0.0.1:0\"\n";
    assert!(config.contains(listener), "pipeline() changed:\n{config}");
    let config = config.replacen(
        listener,
        &format!("{listener}allowed_origins = [\"{origin}\"]\n"),
        1,
    );
    Sluice::start(dir, "browser", &config, &[])
}

/// The page: open `ws_url`, report each WebSocket event, close with 1000
/// after the first message.
fn websocket_page(ws_url: &str) -> String {
    let url = serde_json::to_string(ws_url).unwrap();
    format!(
        r#"
const ws = new WebSocket({url});
ws.onopen = () => report('open', {{ protocol: ws.protocol }});
ws.onmessage = (e) => {{
  report('message', {{ type: typeof e.data, data: String(e.data) }});
  ws.close(1000, 'done');
}};
ws.onerror = () => report('error', {{ readyState: ws.readyState }});
ws.onclose = (e) => report('close', {{ code: e.code, reason: e.reason, wasClean: e.wasClean }});
"#
    )
}

/// The HTTP status sluice answers a WebSocket handshake for `path` with,
/// sent with this `Origin` by a plain TCP client (no WebSocket library).
fn handshake_status(base: &str, path: &str, origin: &str) -> u16 {
    let host = base.strip_prefix("ws://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: {origin}\r\n\r\n"
    )
    .unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"))
}

#[test]
fn chromium_receives_a_record_over_its_own_websocket_and_closes_with_1000() {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 1).unwrap();
    let mut pages = PageServer::start().unwrap();
    let origin = format!("http://127.0.0.1:{}", pages.port());
    let dir = tempfile::tempdir().unwrap();
    let sluice = start_sluice(&broker, dir.path(), &origin);
    pages.page("/", &websocket_page(&format!("{}/ch1", sluice.base)));
    let mut chromium = Chromium::launch(&pages.url("127.0.0.1", "/")).unwrap();

    // A refused handshake ends in `close` without `open`: stop there.
    let open = pages
        .wait_for_any(&mut chromium, &["open", "close"], HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(open["event"], "open", "{}", pages.explain(&chromium));
    assert_eq!(
        open["origin"],
        origin.as_str(),
        "{}",
        pages.explain(&chromium)
    );

    // Subscribed before the 101, so a record produced now reaches the page.
    Producer::new(&broker.bootstrap())
        .unwrap()
        .send(TOPIC, &Outgoing::new(RECORD).key("ch1"))
        .unwrap();
    let message = pages
        .wait_for(&mut chromium, "message", HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let close = pages
        .wait_for(&mut chromium, "close", HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let explain = pages.explain(&chromium);
    assert_eq!(message["type"], "string", "{explain}");
    assert_eq!(message["data"], RECORD, "{explain}");
    assert_eq!(close["code"], 1000, "{explain}");
    assert_eq!(close["wasClean"], true, "{explain}");
    assert!(!pages.reported("error"), "{explain}");
    assert!(!pages.reported("page-error"), "{explain}");
}

#[test]
fn a_page_from_an_origin_not_allowed_cannot_open_a_websocket() {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 1).unwrap();
    let mut pages = PageServer::start().unwrap();
    let allowed = format!("http://127.0.0.1:{}", pages.port());
    // The same server, reached by another name: another origin.
    let refused = format!("http://localhost:{}", pages.port());
    let dir = tempfile::tempdir().unwrap();
    let sluice = start_sluice(&broker, dir.path(), &allowed);
    pages.page("/", &websocket_page(&format!("{}/ch1", sluice.base)));
    let mut chromium = Chromium::launch(&pages.url("localhost", "/")).unwrap();

    let close = pages
        .wait_for(&mut chromium, "close", HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let explain = pages.explain(&chromium);
    assert_eq!(close["origin"], refused.as_str(), "{explain}");
    assert!(!pages.reported("open"), "{explain}");
    assert!(pages.reported("error"), "{explain}");
    assert_eq!(close["code"], 1006, "{explain}");
    assert_eq!(close["wasClean"], false, "{explain}");
    assert!(!pages.reported("page-error"), "{explain}");

    // The refusal is sluice's Origin check: the same handshake from a plain
    // client is a 403 with the page's Origin and a 101 with the allowed one.
    assert_eq!(handshake_status(&sluice.base, "/ch1", &refused), 403);
    assert_eq!(handshake_status(&sluice.base, "/ch1", &allowed), 101);
}

/// The client library (`clients/js`) in Chromium against a real Sluice: it
/// negotiates `sluice.resume.v1`, receives records, is dropped, comes back
/// by itself with its position after a backoff while 500 records flow, and
/// has then received every record exactly once, in order.
#[test]
fn the_js_client_in_chromium_comes_back_after_a_drop_without_losing_a_record() {
    let broker = Broker::start().unwrap();
    broker.create_topic(TOPIC, 1).unwrap();
    let mut pages = PageServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let resume = "[pipelines.source.resume]\nkeys = [{ id = \"k1\", secret = { env = \"BROWSER_RESUME_KEY\" } }]\n";
    let config = pipeline(&broker.bootstrap(), TOPIC, "{}", "", "");
    let source = format!("topics = [\"{TOPIC}\"]\n");
    assert!(config.contains(&source), "pipeline() changed:\n{config}");
    let config = config.replacen(&source, &format!("{source}{resume}"), 1);
    // The router table comes after the resume table: keep TOML's order.
    let config = config.replacen(resume, "", 1).replacen(
        "[pipelines.router]",
        &format!("{resume}[pipelines.router]"),
        1,
    );
    let key = [(
        "BROWSER_RESUME_KEY",
        "a-browser-test-resume-key-of-32-chars+",
    )];
    let sluice = Sluice::start(dir.path(), "browser-resume", &config, &key);
    pages.asset("/sluice.js", include_str!("../../clients/js/src/index.js"));
    let url = serde_json::to_string(&format!("{}/ch1", sluice.base)).unwrap();
    pages.module_page(
        "/",
        &format!(
            r#"
import {{ connect }} from "/sluice.js";
const client = connect({url}, {{ backoff: {{ initialMs: 1500, maxMs: 1500, jitter: 0 }} }});
client.on("open", (e) => report("open", e));
client.on("recovered", (e) => report("recovered", e));
client.on("notRecovered", (e) => report("notRecovered", e));
client.on("reconnecting", (e) => report("reconnecting", e));
client.subscribe((data) => {{
  const seq = JSON.parse(data).seq;
  report("record", {{ n: seq }});
  // Dropped by the page after the 10th record: a network loss as the
  // client sees it (it did not ask to stop).
  if (seq === 9) client.socket.close(4000, "dropped by the test");
}});
"#
        ),
    );
    let mut chromium = Chromium::launch(&pages.url("127.0.0.1", "/")).unwrap();
    let explain = |pages: &PageServer, chromium: &Chromium| pages.explain(chromium);
    let open = pages
        .wait_for(&mut chromium, "open", HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(open["resumed"], false);
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    let send = |from: u64, to: u64| {
        let batch: Vec<Outgoing> = (from..to)
            .map(|seq| Outgoing::new(format!("{{\"seq\":{seq}}}")).key("ch1"))
            .collect();
        producer.send_all(TOPIC, &batch).unwrap();
    };
    send(0, 10);
    pages
        .wait_for(&mut chromium, "reconnecting", HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    send(10, 510);
    let outcome = pages
        .wait_for_any(&mut chromium, &["recovered", "notRecovered"], HANG_GUARD)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        outcome["event"],
        "recovered",
        "{}",
        explain(&pages, &chromium)
    );
    send(510, 520);
    let seqs = |pages: &PageServer| -> Vec<u64> {
        let records = pages.reports().iter().filter(|r| r["event"] == "record");
        // `seq` of a report is the page's report counter: ours is `n`.
        records.map(|r| r["n"].as_u64().unwrap()).collect()
    };
    while seqs(&pages).len() < 520 {
        if pages.next_report(HANG_GUARD).is_none() {
            panic!("records stopped coming: {}", explain(&pages, &chromium));
        }
    }
    assert_eq!(
        seqs(&pages),
        (0..520).collect::<Vec<_>>(),
        "lost, repeated or reordered"
    );
    // How many came from the catch-up and how many live depends on when it
    // came back; together they are exactly the 520.
    assert!(
        outcome["records"].as_u64().is_some_and(|n| n <= 500),
        "{outcome}"
    );
}
