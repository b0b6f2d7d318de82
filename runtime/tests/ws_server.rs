//! The WebSocket server with a real client (tokio-tungstenite) on loopback:
//! every handshake check answers with its HTTP status before any upgrade,
//! admitted clients receive what the hub publishes on their channel, and a
//! shutdown closes them with 1001.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sluice_runtime::builtin;
use sluice_runtime::config::FullPolicy;
use sluice_runtime::config::{ConnectionPolicy, ListenerLimits, OutboxDef, RateDef, RouteTemplate};
use sluice_runtime::connections::Slots;
use sluice_runtime::hub::{Frame, Hub, Kind};
use sluice_runtime::plugin::{
    HostOptions, Limits, PluginHost, PluginId, PluginPool, PluginSpec, Role,
};
use sluice_runtime::ws::{self, Endpoint, Gate, PerIpLimit, Routes};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const AUTH: &str =
    r#"{"users":{"testuser":"testpass","limited":"pw"},"channels":{"limited":["allowed"]}}"#;

struct Server {
    addr: SocketAddr,
    hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _host: PluginHost,
}

async fn start(origins: Option<Vec<String>>, rate: RateDef, when_full: FullPolicy) -> Server {
    start_with(origins, rate, when_full, None).await
}

async fn start_with(
    origins: Option<Vec<String>>,
    rate: RateDef,
    when_full: FullPolicy,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let host = PluginHost::new(HostOptions {
        cache_dir: None,
        ..HostOptions::default()
    })
    .unwrap();
    let auth = host
        .load(PluginSpec {
            id: PluginId {
                plugin: "basic-auth".into(),
                pipeline: "p".into(),
                tenant: "t".into(),
            },
            role: Role::Authenticator,
            bytes: builtin::embedded("basic-auth").unwrap().into(),
            config_json: AUTH.into(),
            limits: Limits::default(),
        })
        .unwrap();
    let hub = Arc::new(Hub::new());
    let mut routes = Routes::default();
    routes.add(Endpoint {
        pipeline: "p".into(),
        tenant: "t".into(),
        template: RouteTemplate::parse("/{channel}").unwrap(),
        hub: hub.clone(),
        auth: Some(PluginPool::start(&auth, 1, 64).unwrap()),
        outbox: OutboxDef {
            capacity: 4,
            when_full,
        },
        inbound: None,
        welcome: false,
        sessions: None,
        policy: ConnectionPolicy::default(),
        slots: Slots::new(None),
        metrics: sluice_runtime::metrics::global().pipeline("t", "p"),
        host: None,
        tenant_state: sluice_runtime::tenant::TenantState::unlimited("t"),
        resume: None,
        chaos: None,
        recorder: None,
    });
    let gate = Arc::new(Gate {
        allowed_origins: origins,
        per_ip: PerIpLimit::new(rate),
        routes: Arc::new(routes).into(),
        limits: ListenerLimits::default(),
        slots: Slots::new(None),
        health: Default::default(),
        registry: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(ws::serve(listener, tls, gate, rx));
    Server {
        addr,
        hub,
        shutdown,
        task,
        _host: host,
    }
}

fn generous() -> RateDef {
    RateDef {
        per_second: 1000,
        burst: 1000,
    }
}

/// "testuser:testpass", seed 000's credentials.
const GOOD: &str = "Basic dGVzdHVzZXI6dGVzdHBhc3M=";
/// "limited:pw".
const LIMITED: &str = "Basic bGltaXRlZDpwdw==";

async fn connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    (u16, String, Option<String>),
> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            Err((response.status().as_u16(), body, challenge))
        }
        Err(other) => panic!("connect failed: {other}"),
    }
}

/// The server subscribes a client before it answers 101, so a connected
/// client is always subscribed.
async fn wait_for_subscriber(hub: &Hub, channel: &str) {
    assert!(
        hub.subscribers(channel) > 0,
        "nobody subscribed to {channel}"
    );
}

async fn next(ws: &mut (impl StreamExt<Item = Result<Message, WsError>> + Unpin)) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message within 5 s")
        .expect("stream open")
        .expect("no protocol error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_client_receives_its_channel_only() {
    let server = start(None, generous(), FullPolicy::DropOldest).await;
    let mut one = connect(server.addr, "/channel1", &[("authorization", GOOD)])
        .await
        .unwrap();
    let mut two = connect(server.addr, "/channel2", &[("authorization", GOOD)])
        .await
        .unwrap();
    wait_for_subscriber(&server.hub, "channel1").await;
    wait_for_subscriber(&server.hub, "channel2").await;
    let text = Frame::new(Kind::Text, Bytes::from_static(br#"{"n":1}"#));
    let binary = Frame::new(Kind::Binary, Bytes::from_static(b"\x00\xff"));
    assert_eq!(server.hub.publish("channel1", &text), 1);
    assert_eq!(server.hub.publish("channel2", &binary), 1);
    assert_eq!(next(&mut one).await, Message::Text(r#"{"n":1}"#.into()));
    assert_eq!(
        next(&mut two).await,
        Message::Binary(Bytes::from_static(b"\x00\xff"))
    );
    let _ = server.shutdown.send(true);
    server.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_http_responses_before_the_upgrade() {
    let origins = Some(vec!["https://app.example.com".to_owned()]);
    let server = start(origins, generous(), FullPolicy::DropOldest).await;
    let (status, body, challenge) = connect(server.addr, "/channel1", &[]).await.err().unwrap();
    assert_eq!((status, body.trim()), (401, "missing credentials"));
    assert_eq!(challenge.as_deref(), Some(r#"Basic realm="sluice""#));
    let wrong = "Basic dGVzdHVzZXI6d3Jvbmc="; // testuser:wrong
    let (status, body, _) = connect(server.addr, "/channel1", &[("authorization", wrong)])
        .await
        .err()
        .unwrap();
    assert_eq!((status, body.trim()), (401, "invalid credentials"));
    let (status, _, _) = connect(server.addr, "/a/b/c", &[("authorization", GOOD)])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 404);
    let evil = [
        ("authorization", GOOD),
        ("origin", "https://evil.example.com"),
    ];
    let (status, body, _) = connect(server.addr, "/channel1", &evil)
        .await
        .err()
        .unwrap();
    assert_eq!((status, body.trim()), (403, "origin not allowed"));
    let (status, body, _) = connect(server.addr, "/other", &[("authorization", LIMITED)])
        .await
        .err()
        .unwrap();
    assert_eq!((status, body.trim()), (403, "channel not allowed"));
    // The allowed origin and the allowed channel get in.
    connect(
        server.addr,
        "/allowed",
        &[
            ("authorization", LIMITED),
            ("origin", "https://app.example.com"),
        ],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_handshakes_from_one_ip_get_429() {
    let server = start(
        None,
        RateDef {
            per_second: 1,
            burst: 3,
        },
        FullPolicy::DropOldest,
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            match connect(server.addr, "/c", &[("authorization", GOOD)]).await {
                Ok(_) => 101,
                Err((status, _, _)) => status,
            },
        );
    }
    assert_eq!(&statuses[..3], &[101, 101, 101], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_gets_426_and_healthz_answers() {
    let server = start(None, generous(), FullPolicy::DropOldest).await;
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(get("/channel1").await.starts_with("HTTP/1.1 426"));
    assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_clients_with_1001_and_a_slow_client_with_1008() {
    let server = start(None, generous(), FullPolicy::Close).await;
    let mut slow = connect(server.addr, "/slow", &[("authorization", GOOD)])
        .await
        .unwrap();
    wait_for_subscriber(&server.hub, "slow").await;
    // Fill the 4-frame outbox faster than it can drain: it closes with 1008.
    let big = Frame::new(Kind::Binary, Bytes::from(vec![0u8; 1 << 20]));
    for _ in 0..64 {
        server.hub.publish("slow", &big);
    }
    let code = loop {
        match next(&mut slow).await {
            Message::Close(Some(frame)) => break u16::from(frame.code),
            Message::Close(None) => panic!("close without a code"),
            _ => continue,
        }
    };
    assert_eq!(code, 1008);

    let mut client = connect(server.addr, "/c", &[("authorization", GOOD)])
        .await
        .unwrap();
    wait_for_subscriber(&server.hub, "c").await;
    let _ = server.shutdown.send(true);
    match next(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close, got {other:?}"),
    }
    server.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_listener_serves_wss() {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let acceptor = ws::tls_acceptor(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    let server = start_with(None, generous(), FullPolicy::DropOldest, Some(acceptor)).await;

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the listener's certificate");
    let mut request = format!("wss://localhost:{}/secure", server.addr.port())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", GOOD.parse().unwrap());
    let (mut client, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    wait_for_subscriber(&server.hub, "secure").await;
    let frame = Frame::new(Kind::Text, Bytes::from_static(b"over tls"));
    assert_eq!(server.hub.publish("secure", &frame), 1);
    assert_eq!(next(&mut client).await, Message::Text("over tls".into()));

    // A plain-text client gets nowhere on a TLS port.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/secure", server.addr))
            .await
            .is_err()
    );
}

/// The certificate a TLS client is shown by `addr`.
async fn served_certificate(addr: SocketAddr, ca: &std::path::Path) -> Vec<u8> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_to_new_connections_and_a_broken_one_is_not() {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let der = |name: &str| {
        CertificateDer::from_pem_file(fixtures.join(name))
            .unwrap()
            .to_vec()
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(fixtures.join("cert.pem"), &cert).unwrap();
    std::fs::copy(fixtures.join("key.pem"), &key).unwrap();
    let tls = ws::tls_reloading(&cert, &key).unwrap();
    let server = start_with(
        None,
        generous(),
        FullPolicy::DropOldest,
        Some(tls.acceptor.clone()),
    )
    .await;
    let ca = fixtures.join("ca.pem");
    assert_eq!(served_certificate(server.addr, &ca).await, der("cert.pem"));

    // Replace both files the way cert tools do: write aside, rename over.
    for (from, to) in [("key2.pem", &key), ("cert2.pem", &cert)] {
        let staged = dir.path().join(format!("{from}.new"));
        std::fs::copy(fixtures.join(from), &staged).unwrap();
        std::fs::rename(&staged, to).unwrap();
    }
    let mut served = Vec::new();
    for _ in 0..100 {
        served = served_certificate(server.addr, &ca).await;
        if served == der("cert2.pem") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served,
        der("cert2.pem"),
        "the new certificate was never served"
    );

    // A broken replacement is refused: the last good certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(served_certificate(server.addr, &ca).await, der("cert2.pem"));
    drop(tls);
}
