//! The load generator end to end: the real broker (tansu), the ceiling
//! bridge (run in-process through its library), and `sluice_loadgen::run`.
//! Checks what the generator counts (every record exactly once on every
//! client of its channel) and that the report has its fields; no test
//! asserts a time.

use std::net::SocketAddr;

use clap::Parser as _;
use serde_json::Value;
use sluice_tests::Broker;

fn bridge(broker: &Broker, topic: &str) -> sluice_native_bridge::Bridge {
    let args = sluice_native_bridge::Args::parse_from([
        "native-bridge",
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        topic,
        "--listen",
        "127.0.0.1:0",
    ]);
    sluice_native_bridge::start(&args).expect("the bridge starts")
}

fn loadgen(addr: SocketAddr, broker: &Broker, topic: &str, more: &[&str]) -> Value {
    let url = format!("ws://{addr}/{{channel}}");
    let bootstrap = broker.bootstrap();
    let mut argv = vec![
        "sluice-loadgen",
        "--ws-url",
        &url,
        "--bootstrap",
        &bootstrap,
        "--topic",
        topic,
        "--drain-ms",
        "15000",
    ];
    argv.extend_from_slice(more);
    let args = sluice_loadgen::Args::parse_from(argv);
    let report = sluice_loadgen::run(&args).expect("the run completes");
    eprint!("{}", report.summary());
    serde_json::from_str(&report.to_json()).expect("the report is JSON")
}

fn number(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

#[test]
fn open_loop_fanout_through_the_native_bridge_delivers_every_record_once() {
    let broker = Broker::start().unwrap();
    broker.create_topic("smoke", 2).unwrap();
    let bridge = bridge(&broker, "smoke");
    let pid = std::process::id().to_string();
    let report = loadgen(
        bridge.local_addr(),
        &broker,
        "smoke",
        &[
            "--clients",
            "4",
            "--channels",
            "2",
            "--rate",
            "200",
            "--duration",
            "2",
            "--size",
            "100",
            "--server-pid",
            &pid,
        ],
    );

    assert_eq!(number(&report, "/connect/connected"), 4, "{report}");
    assert_eq!(number(&report, "/produce/records"), 400);
    assert_eq!(number(&report, "/produce/failed"), 0);
    assert_eq!(number(&report, "/produce/payload_bytes"), 100);
    // 200 records per channel, two clients per channel.
    assert_eq!(number(&report, "/deliveries/expected"), 800);
    assert_eq!(number(&report, "/deliveries/received"), 800, "{report}");
    for field in [
        "lost",
        "duplicates",
        "out_of_order",
        "misrouted",
        "unstamped",
        "ended_early",
    ] {
        assert_eq!(
            number(&report, &format!("/deliveries/{field}")),
            0,
            "{field}"
        );
    }
    let clients = report["per_client"].as_array().unwrap();
    assert_eq!(clients.len(), 4);
    for client in clients {
        assert_eq!(client["expected"], 200, "{client}");
        assert_eq!(client["received"], 200, "{client}");
        assert_eq!(client["lost"], 0, "{client}");
        assert_eq!(client["duplicates"], 0, "{client}");
    }
    assert_eq!(clients[1]["channel"], "ch-1");
    assert_eq!(number(&report, "/latency_us/count"), 800);
    for field in ["min", "p50", "p90", "p99", "p99_9", "max"] {
        assert!(
            number(&report, &format!("/latency_us/{field}")) > 0,
            "{field}"
        );
    }
    assert!(number(&report, "/latency_us/p50") <= number(&report, "/latency_us/p99_9"));
    assert!(
        report
            .pointer("/deliveries/per_sec")
            .unwrap()
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(number(&report, "/memory/end_kib") > 0);
    assert!(report.pointer("/memory/per_connection_kib").is_some());
    assert_eq!(report["params"]["rate"], 200.0);
    assert_eq!(report["params"]["auth"], "none");
}

#[test]
fn closed_loop_fanout_counts_records_and_idle_mode_holds_connections() {
    let broker = Broker::start().unwrap();
    broker.create_topic("smoke-max", 1).unwrap();
    let bridge = bridge(&broker, "smoke-max");
    let report = loadgen(
        bridge.local_addr(),
        &broker,
        "smoke-max",
        &[
            "--clients",
            "3",
            "--channel-names",
            "alpha",
            "--rate",
            "max",
            "--records",
            "1000",
            "--max-in-flight",
            "50",
            "--size",
            "1024",
        ],
    );
    assert_eq!(number(&report, "/produce/records"), 1000);
    assert_eq!(number(&report, "/deliveries/expected"), 3000);
    assert_eq!(number(&report, "/deliveries/received"), 3000, "{report}");
    assert_eq!(number(&report, "/deliveries/duplicates"), 0);
    assert_eq!(number(&report, "/deliveries/out_of_order"), 0);
    assert_eq!(report["params"]["rate"], "max");
    assert_eq!(report["per_client"][2]["channel"], "alpha");

    let report = loadgen(
        bridge.local_addr(),
        &broker,
        "smoke-max",
        &[
            "--mode",
            "idle",
            "--clients",
            "50",
            "--channels",
            "5",
            "--duration",
            "0.5",
            "--server-pid",
            &std::process::id().to_string(),
        ],
    );
    assert_eq!(number(&report, "/connect/connected"), 50, "{report}");
    assert_eq!(number(&report, "/idle/still_open"), 50);
    assert_eq!(number(&report, "/memory/connections"), 50);
    assert!(report.get("deliveries").is_none());
}

#[test]
fn a_refused_handshake_is_counted_not_fatal() {
    let broker = Broker::start().unwrap();
    broker.create_topic("smoke-refused", 1).unwrap();
    let bridge = bridge(&broker, "smoke-refused");
    // The bridge answers 404 for a path with more than one segment.
    let url = format!("ws://{}/a/{{channel}}", bridge.local_addr());
    let args = sluice_loadgen::Args::parse_from([
        "sluice-loadgen",
        "--mode",
        "idle",
        "--ws-url",
        &url,
        "--clients",
        "2",
        "--duration",
        "0",
    ]);
    let report: Value =
        serde_json::from_str(&sluice_loadgen::run(&args).unwrap().to_json()).unwrap();
    assert_eq!(number(&report, "/connect/connected"), 0);
    assert_eq!(number(&report, "/connect/failed"), 2);
    assert_eq!(report["connect"]["errors"]["HTTP 404"], 2, "{report}");
}

#[test]
fn topic_mode_creates_a_topic_once() {
    let broker = Broker::start().unwrap();
    let run = |expected: &str| {
        let args = sluice_loadgen::Args::parse_from([
            "sluice-loadgen",
            "--mode",
            "topic",
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            "made-here",
            "--partitions",
            "3",
        ]);
        let report = sluice_loadgen::run(&args).unwrap();
        assert_eq!(report.topic.as_deref(), Some(expected));
    };
    run("created");
    run("exists");
}

/// A WebSocket server that welcomes each client, then answers each message
/// with an ACK carrying its `id`: seed 002's envelope for even ids, the flat
/// `{"type":"ack"}` for odd ones. Runs on its own thread until the test ends.
fn ack_server() -> SocketAddr {
    use fastwebsockets::{Frame, OpCode, Payload, upgrade};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = service_fn(|mut request| async move {
                        let (response, socket) = upgrade::upgrade(&mut request)?;
                        tokio::spawn(async move {
                            let mut ws = socket.await.unwrap();
                            let welcome = br#"{"messageType":"SYSTEM","content":"welcome"}"#;
                            ws.write_frame(Frame::text(Payload::Borrowed(welcome)))
                                .await
                                .unwrap();
                            while let Ok(frame) = ws.read_frame().await {
                                if frame.opcode != OpCode::Text {
                                    break;
                                }
                                let message: Value = serde_json::from_slice(&frame.payload).unwrap();
                                assert_eq!(message["messageType"], "USER");
                                let id = message["id"].clone();
                                let seq: u64 = id.as_str().unwrap().parse().unwrap();
                                let reply = if seq.is_multiple_of(2) {
                                    serde_json::json!({"messageType": "ACK", "content": "delivered", "id": id})
                                } else {
                                    serde_json::json!({"type": "ack", "id": seq})
                                };
                                let reply = reply.to_string();
                                if ws
                                    .write_frame(Frame::text(Payload::Borrowed(reply.as_bytes())))
                                    .await
                                    .is_err()
                                {
                                    break;
                                }
                            }
                        });
                        Ok::<_, fastwebsockets::WebSocketError>(response)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
    });
    addr
}

#[test]
fn inbound_mode_counts_acks_by_id() {
    let addr = ack_server();
    let url = format!("ws://{addr}/inbound");
    let args = sluice_loadgen::Args::parse_from([
        "sluice-loadgen",
        "--mode",
        "inbound",
        "--ws-url",
        &url,
        "--clients",
        "3",
        "--rate",
        "300",
        "--records",
        "301",
        "--size",
        "200",
        "--bearer",
        "token",
    ]);
    let report = sluice_loadgen::run(&args).unwrap();
    eprint!("{}", report.summary());
    let report: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(number(&report, "/inbound/sent"), 301, "{report}");
    assert_eq!(number(&report, "/inbound/acked"), 301, "{report}");
    for field in [
        "errors",
        "unacked",
        "duplicate_acks",
        "unknown_acks",
        "send_failures",
    ] {
        assert_eq!(number(&report, &format!("/inbound/{field}")), 0, "{field}");
    }
    assert_eq!(
        number(&report, "/inbound/other_frames"),
        3,
        "one welcome each"
    );
    assert_eq!(number(&report, "/latency_us/count"), 301);
    assert!(number(&report, "/latency_us/p99") > 0);
    assert_eq!(report["params"]["auth"], "bearer");

    // Closed loop: one message in flight per client.
    let args = sluice_loadgen::Args::parse_from([
        "sluice-loadgen",
        "--mode",
        "inbound",
        "--ws-url",
        &url,
        "--clients",
        "2",
        "--rate",
        "max",
        "--records",
        "200",
        "--max-in-flight",
        "1",
    ]);
    let report: Value =
        serde_json::from_str(&sluice_loadgen::run(&args).unwrap().to_json()).unwrap();
    assert_eq!(number(&report, "/inbound/sent"), 200, "{report}");
    assert_eq!(number(&report, "/inbound/acked"), 200, "{report}");
}
