//! Connection limits, timers and close codes, each observed by a real
//! client against the real binary: a raw client where the protocol has to
//! be broken on purpose, tokio-tungstenite elsewhere. The handler is the
//! test-only `handler-probe` (it echoes), so no broker is needed here.

mod support;

use std::time::Duration;

use support::Sluice;
use support::raw::{BINARY, CONTINUATION, RawClient, TEXT};
use tokio_tungstenite::tungstenite::Message;

/// A probe pipeline on `/p/{channel}`; `listener` and `pipeline` are extra
/// keys of each table.
fn start(dir: &std::path::Path, listener: &str, pipeline: &str) -> (Sluice, String) {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    let file = format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
{listener}

[[pipelines]]
name = "probe"
path = "/p/{{channel}}"
{pipeline}

[pipelines.handler]
plugin = "{probe}"
"#
    );
    let sluice = Sluice::start(dir, "limits", &file, &[]);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();
    (sluice, addr)
}

/// Opens a raw connection and reads the probe's `open ID` greeting.
async fn raw(addr: &str) -> RawClient {
    let mut client = RawClient::connect(addr, "/p/x", "").await.expect("upgrade");
    let greeting = client.next().await.expect("greeting");
    assert!(greeting.payload.starts_with(b"open "));
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_listener_or_pipeline_cap_handshakes_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path(), "max_connections = 3", "max_connections = 2");
    let a = raw(&addr).await;
    let _b = raw(&addr).await;
    // The pipeline's cap (2) is reached first.
    let refused = RawClient::connect(&addr, "/p/x", "")
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // A slot is given back when a connection ends.
    drop(a);
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(client) = RawClient::connect(&addr, "/p/x", "").await {
            reopened = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "the freed slot was never given back");

    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path(), "max_connections = 1", "");
    let _only = raw(&addr).await;
    let refused = RawClient::connect(&addr, "/p/x", "")
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_get_1009_whole_or_in_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path(), "", "max_message_size = 1024");
    // Exactly the cap is fine.
    let mut client = raw(&addr).await;
    client.send(true, 0, BINARY, &[7u8; 1024]).await;
    assert_eq!(client.next().await.unwrap().payload.len(), 1024);
    client.send(true, 0, BINARY, &[7u8; 1025]).await;
    assert_eq!(client.expect_close().await, 1009);

    // A message in small fragments that add up past the cap.
    let mut client = raw(&addr).await;
    client.send(false, 0, BINARY, &[1u8; 500]).await;
    client.send(false, 0, CONTINUATION, &[1u8; 500]).await;
    client.send(true, 0, CONTINUATION, &[1u8; 500]).await;
    assert_eq!(client.expect_close().await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_gets_1007_and_protocol_violations_get_1002() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path(), "", "");
    let mut client = raw(&addr).await;
    client.send(true, 0, TEXT, &[0xff, 0xfe]).await;
    assert_eq!(client.expect_close().await, 1007);

    // Split inside a multi-byte character is fine; the whole must be UTF-8.
    let mut client = raw(&addr).await;
    let snowman = "☃".as_bytes();
    client.send(false, 0, TEXT, &snowman[..1]).await;
    client.send(true, 0, CONTINUATION, &snowman[1..]).await;
    assert_eq!(client.next().await.unwrap().payload, snowman);
    client.send(false, 0, TEXT, b"ok").await;
    client.send(true, 0, CONTINUATION, &[0xc3]).await;
    assert_eq!(client.expect_close().await, 1007);

    // A reserved bit without an extension that defines it.
    let mut client = raw(&addr).await;
    client.send(true, 0b100, TEXT, b"x").await;
    assert_eq!(client.expect_close().await, 1002);

    // A new message while a fragmented one is unfinished.
    let mut client = raw(&addr).await;
    client.send(false, 0, TEXT, b"a").await;
    client.send(true, 0, TEXT, b"b").await;
    assert_eq!(client.expect_close().await, 1002);

    // A close frame with a code nobody may send.
    let mut client = raw(&addr).await;
    client.send(true, 0, 8, &1005u16.to_be_bytes()).await;
    assert_eq!(client.expect_close().await, 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaccepted_message_kinds_get_1003() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path(), "", r#"accept = "text""#);
    let mut client = raw(&addr).await;
    client.send(true, 0, TEXT, b"fine").await;
    assert_eq!(client.next().await.unwrap().payload, b"fine");
    client.send(true, 0, BINARY, b"not here").await;
    assert_eq!(client.expect_close().await, 1003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_rate_drops_or_closes_with_1008() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "",
        r#"message_rate = { per_second = 1, burst = 3, when_exceeded = "close" }"#,
    );
    let mut client = raw(&addr).await;
    for n in 0..3 {
        client.send(true, 0, TEXT, format!("m{n}").as_bytes()).await;
    }
    client.send(true, 0, TEXT, b"one too many").await;
    let mut echoed = 0;
    loop {
        let frame = client.next().await.expect("a frame");
        if frame.opcode == 8 {
            assert_eq!(frame.close_code(), Some(1008));
            break;
        }
        echoed += 1;
    }
    assert_eq!(echoed, 3, "the burst passes, the fourth closes");

    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "",
        r#"message_rate = { per_second = 1, burst = 3 }"#,
    );
    let mut client = raw(&addr).await;
    for n in 0..10 {
        client.send(true, 0, TEXT, format!("m{n}").as_bytes()).await;
    }
    for n in 0..3 {
        assert_eq!(
            client.next().await.unwrap().payload,
            format!("m{n}").as_bytes()
        );
    }
    // The other seven were dropped; the next allowed message is answered.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.send(true, 0, TEXT, b"count").await;
    assert_eq!(client.next().await.unwrap().payload, b"4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocols_are_negotiated_in_the_pipeline_order_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "",
        "subprotocols = [\"v2.probe\", \"v1.probe\"]\nrequire_subprotocol = true",
    );
    let ok = RawClient::connect(
        &addr,
        "/p/x",
        "Sec-WebSocket-Protocol: v1.probe, v2.probe\r\n",
    )
    .await;
    assert!(ok.is_ok());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/p/x"
        ))
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "v1.probe, v2.probe".parse().unwrap(),
    );
    let (_ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "v2.probe");

    let refused = RawClient::connect(&addr, "/p/x", "Sec-WebSocket-Protocol: v3\r\n")
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    assert!(RawClient::connect(&addr, "/p/x", "").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_pings_is_dropped_one_that_does_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "ping_interval_ms = 200\nping_timeout_ms = 300",
        "",
    );
    // tokio-tungstenite answers pings while it reads: keep it reading.
    let (polite, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/p/x"))
        .await
        .unwrap();
    let (mut polite_tx, mut polite_rx) = futures_util::StreamExt::split(polite);
    let (texts, mut received) = tokio::sync::mpsc::unbounded_channel();
    let pinged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let pinged = pinged.clone();
        async move {
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut polite_rx).await {
                match message {
                    Message::Ping(_) => pinged.store(true, std::sync::atomic::Ordering::SeqCst),
                    Message::Text(text) => texts.send(text.to_string()).unwrap(),
                    _ => {}
                }
            }
        }
    });
    assert!(received.recv().await.unwrap().starts_with("open "));

    // The raw client reads but never answers.
    let mut silent = raw(&addr).await;
    let mut pings = 0;
    while let Some(frame) = silent.next().await {
        assert_eq!(
            frame.opcode, 9,
            "only pings, then the connection is dropped: {frame:?}"
        );
        pings += 1;
    }
    assert!(pings >= 1);

    // Meanwhile the polite client was pinged too, answered, and is served.
    assert!(pinged.load(std::sync::atomic::Ordering::SeqCst));
    futures_util::SinkExt::send(&mut polite_tx, Message::text("still here"))
        .await
        .unwrap();
    assert_eq!(received.recv().await.unwrap(), "still here");
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_with_1000() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "idle_timeout_ms = 300\nping_interval_ms = 0",
        "",
    );
    let mut client = raw(&addr).await;
    assert_eq!(client.expect_close().await, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_request_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path(), "handshake_timeout_ms = 300", "");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /p/x HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(support::ws::PATIENCE, stream.read_to_end(&mut rest))
        .await
        .expect("the server hangs up before the hang guard");
    // hyper answers 408 or just closes; either way the socket is freed.
    assert!(read.is_ok() || rest.is_empty());
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_closes_with_1001_or_1012_for_a_restart() {
    for (setting, code) in [("", 1001), (r#"on_shutdown = "restart""#, 1012)] {
        let dir = tempfile::tempdir().unwrap();
        let (sluice, addr) = start(dir.path(), setting, "");
        let mut client = raw(&addr).await;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &sluice.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(client.expect_close().await, code, "{setting:?}");
    }
}

/// Whether the server closes `socket` (EOF or reset) within `patience`.
async fn closed_within(socket: &mut tokio::net::TcpStream, patience: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(patience, socket.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("the server sent bytes to a silent client"),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ip_holds_at_most_pending_per_ip_unfinished_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "pending_per_ip = 3\nhandshake_timeout_ms = 60000",
        "",
    );
    let connect = || tokio::net::TcpStream::connect(addr.clone());
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(connect().await.unwrap());
    }
    // The fourth silent socket is closed at once; the three stay open.
    let mut fourth = connect().await.unwrap();
    assert!(closed_within(&mut fourth, Duration::from_secs(5)).await);
    assert!(!closed_within(&mut idle[0], Duration::from_millis(300)).await);
    // One finishing gives its place back (once the server has seen it go:
    // until then a new socket is still closed at once), and that new
    // connection gets its upgrade.
    drop(idle.pop());
    let mut socket = loop {
        let mut socket = connect().await.unwrap();
        if !closed_within(&mut socket, Duration::from_secs(1)).await {
            break socket;
        }
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "GET /p/c HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_stops_accepting_until_a_connection_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(
        dir.path(),
        "max_connections = 2\nhandshake_timeout_ms = 60000",
        "",
    );
    let mut idle = vec![
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
    ];
    // The third waits in the kernel's backlog: nobody answers it...
    let third = tokio::spawn({
        let addr = addr.clone();
        async move { support::http_get(&addr, "/healthz").await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    // ... until one of the first two goes.
    drop(idle.pop());
    let (status, _) = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a permit was free")
        .unwrap();
    assert_eq!(status, 200);
    assert!(!closed_within(&mut idle[0], Duration::from_millis(100)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_when_the_token_that_admitted_it_expires() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use support::ws::Client;
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    const SECRET: &str = "expiry-secret-expiry-secret-0123";
    let pipeline = |name: &str, grace: i64| {
        format!(
            r#"
[[pipelines]]
name = "{name}"
path = "/{name}/{{channel}}"
token_expiry_grace_ms = {grace}
[pipelines.auth]
plugin = "jwt-auth"
config = {{ algorithms = ["HS256"], secret = "{SECRET}" }}
[pipelines.handler]
plugin = "{probe}"
"#
        )
    };
    let file = format!(
        "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n{}{}",
        pipeline("strict", 0),
        pipeline("lenient", -1)
    );
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "expiry", &file, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({ "sub": "alice", "exp": now + 2 });
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str())];
    let (strict_url, lenient_url) = (
        format!("{}/strict/c", sluice.base),
        format!("{}/lenient/c", sluice.base),
    );
    let mut strict = Client::connect_with(&strict_url, &headers).await.unwrap();
    let mut lenient = Client::connect_with(&lenient_url, &headers).await.unwrap();
    for client in [&mut strict, &mut lenient] {
        assert!(matches!(client.next().await, Message::Text(t) if t.starts_with("open ")));
    }
    // At `exp` (whole seconds, so within 2 s from now) the strict pipeline
    // closes; the other keeps its connection.
    let started = std::time::Instant::now();
    assert_eq!(strict.expect_close().await, (1008, "token expired".into()));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    lenient.send(Message::text("still here")).await;
    assert_eq!(lenient.next().await, Message::text("still here"));
}
