//! A real browser end to end: headless Chromium loads a page the test
//! serves, connects with its own `WebSocket` from an allowed Origin,
//! receives a record produced to a real broker (tansu) and closes with 1000;
//! the same page from an Origin not in `allowed_origins` cannot connect.
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
