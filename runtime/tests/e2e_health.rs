//! The plain-HTTP health endpoints against a real broker process: ready
//! while the broker answers, not ready (with the reason) while it is gone,
//! ready again after it comes back. The public `/health` gives the verdict
//! alone; the admin API's `GET /health` names the pipelines and counts
//! their connections.

mod support;

use std::time::Duration;

use serde_json::Value;
use sluice_tests::Broker;
use support::Sluice;
use support::ws::Client;

const TOKEN: &str = "health-operator-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_and_health_counts_connections() {
    let mut broker = Broker::start().unwrap();
    broker.create_topic("ticks", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n{}",
        support::pipeline(&broker.bootstrap(), "ticks", "{}", "", "")
    );
    let sluice = Sluice::start(dir.path(), "health", &file, &[]);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();
    let admin = sluice.admin.clone().expect("an admin API");
    let detail = || async {
        let bearer = format!("Bearer {TOKEN}");
        let reply =
            support::http::request(&admin, "GET", "/health", &[("authorization", &bearer)], b"")
                .await;
        (
            reply.status,
            serde_json::from_str::<Value>(&reply.text()).unwrap(),
        )
    };

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
    // Anyone may ask: the verdict only, no pipeline names or counts.
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health, serde_json::json!({ "status": "healthy" }));
    let (status, health) = detail().await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["connections"], 1);
    assert_eq!(health["pipelines"][0]["name"], "destination");
    assert_eq!(health["pipelines"][0]["connections"], 1);

    broker.stop();
    let (status, body) = wait_for(&addr, "/readyz", 503).await;
    // Anyone may ask: not which pipeline, nor what the brokers said.
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready (the admin API's GET /health says why)\n")
    );
    let (status, body) = support::http_get(&addr, "/health").await;
    assert_eq!(status, 503);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health, serde_json::json!({ "status": "unhealthy" }));
    let (status, health) = detail().await;
    assert_eq!(
        (status, &health["status"]),
        (503, &Value::from("unhealthy"))
    );
    let problem = health["pipelines"][0]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(problem.starts_with("Kafka"), "{health}");
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
