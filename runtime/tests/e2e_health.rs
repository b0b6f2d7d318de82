//! The plain-HTTP health endpoints against a real broker process: ready
//! while the broker answers, not ready (with the reason) while it is gone,
//! ready again after it comes back.

mod support;

use std::time::Duration;

use serde_json::Value;
use sluice_tests::Broker;
use support::Sluice;
use support::ws::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_and_health_counts_connections() {
    let mut broker = Broker::start().unwrap();
    broker.create_topic("ticks", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = support::pipeline(&broker.bootstrap(), "ticks", "{}", "", "");
    let sluice = Sluice::start(dir.path(), "health", &file, &[]);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();

    assert_eq!(
        support::http_get(&addr, "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(
        support::http_get(&addr, "/readyz").await,
        (200, "ready\n".into())
    );
    let _client = Client::connect(&format!("{}/c1", sluice.base)).await;
    let (status, body) = support::http_get(&addr, "/health").await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["connections"], 1);
    assert_eq!(health["pipelines"][0]["name"], "destination");
    assert_eq!(health["pipelines"][0]["connections"], 1);

    broker.stop();
    let (status, body) = wait_for(&addr, "/readyz", 503).await;
    assert_eq!(status, 503);
    assert!(body.contains("pipeline `destination`: Kafka"), "{body}");
    let (_, body) = support::http_get(&addr, "/health").await;
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "unhealthy");
    // The process itself is fine.
    assert_eq!(support::http_get(&addr, "/healthz").await.0, 200);

    broker.restart().unwrap();
    assert_eq!(
        wait_for(&addr, "/readyz", 200).await,
        (200, "ready\n".into())
    );
}

/// Polls `path` until it answers `status` (the probe caches for a second
/// and a broker takes a moment to be noticed gone or back).
async fn wait_for(addr: &str, path: &str, status: u16) -> (u16, String) {
    let mut last = (0, String::new());
    for _ in 0..60 {
        last = support::http_get(addr, path).await;
        if last.0 == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{path} never answered {status}; last: {last:?}");
}
