//! A handshake flood on loopback, bounded in count: thousands of upgrade
//! attempts from one IP over its limit are refused with 429 before any
//! plugin runs, while a client from another address keeps receiving its
//! records from a real broker process, every one of them, in order.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::raw::RawClient;
use tokio_tungstenite::tungstenite::Message;

const ATTEMPTS: usize = 3000;
const CONCURRENCY: usize = 64;
const RECORDS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_is_refused_while_another_client_keeps_its_records() {
    let broker = Broker::start().unwrap();
    broker.create_topic("flood", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The default per-IP limit (20/s, bursts of 50) and Basic auth, so an
    // admitted handshake would cost a plugin call.
    let file = support::pipeline(
        &broker.bootstrap(),
        "flood",
        "{}",
        "",
        "[pipelines.auth]\nplugin = \"basic-auth\"\nconfig = { users = { testuser = \"testpass\" } }",
    );
    let sluice = Sluice::start(dir.path(), "flood", &file, &[]);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();

    // The bystander connects from 127.0.0.2: another client IP.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/quiet"
        ))
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        "Basic dGVzdHVzZXI6dGVzdHBhc3M=".parse().unwrap(),
    );
    let (bystander, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();

    let refused = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let flood = tokio::spawn({
        let (addr, refused, other) = (addr.clone(), refused.clone(), other.clone());
        async move {
            futures_util::stream::iter(0..ATTEMPTS)
                .for_each_concurrent(CONCURRENCY, |_| {
                    let (addr, refused, other) = (addr.clone(), refused.clone(), other.clone());
                    async move {
                        match RawClient::connect(&addr, "/noisy", "").await {
                            Err(head) if head.starts_with("HTTP/1.1 429") => {
                                refused.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => other.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
                .await;
        }
    });

    // Records for the bystander, produced while the flood runs.
    let producer = tokio::task::spawn_blocking({
        let bootstrap = broker.bootstrap();
        move || {
            let producer = Producer::new(&bootstrap).unwrap();
            for n in 0..RECORDS {
                let record = Outgoing::new(format!("r{n}")).key("quiet");
                producer.send("flood", &record).unwrap();
            }
        }
    });
    let mut bystander = bystander;
    for n in 0..RECORDS {
        let message = tokio::time::timeout(support::ws::PATIENCE, bystander.next())
            .await
            .expect("records keep coming during the flood")
            .unwrap()
            .unwrap();
        assert_eq!(message, Message::text(format!("r{n}")));
    }
    producer.await.unwrap();
    flood.await.unwrap();

    let (refused, other) = (
        refused.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    );
    assert_eq!(refused + other, ATTEMPTS);
    // Only the burst, plus what the rate refilled meanwhile, got past the
    // limit (and then the authenticator said 401: no credentials).
    assert!(
        refused >= ATTEMPTS - 500,
        "{refused} of {ATTEMPTS} refused with 429"
    );
}
