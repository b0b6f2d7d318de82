//! Plain-HTTP health endpoints, answered on every listener for requests
//! that are not upgrades: `/healthz` (the process answers), `/readyz`
//! (every pipeline can do its job) and `/health` (the verdict as JSON);
//! the admin API's `GET /health` shows each pipeline's verdict with its
//! connection counts, as seed 001's service offers.
//!
//! Ready means: each pipeline's plugins are loaded (true once serving), its
//! consumer (if any) runs and has its partitions, and a broker of its
//! tenant answers a metadata request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::kafka::{ClientSettings, ConsumerStatus, ConsumerWatch, Producer};

use crate::connections::Slots;

/// How long a broker has to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A broker answer is reused this long, so a burst of probes costs one
/// metadata request.
const PROBE_CACHE: Duration = Duration::from_secs(1);

/// One pipeline as the health check sees it.
pub struct PipelineHealth {
    /// Its name.
    pub name: String,
    /// Its tenant, whose broker probe it uses (if it uses Kafka).
    pub tenant: String,
    /// Its consumer, if it has a source.
    pub consumer: Option<ConsumerWatch>,
    /// Whether it reads or writes Kafka.
    pub uses_kafka: bool,
    /// Its open connections.
    pub slots: Arc<Slots>,
}

/// A tenant's broker probe.
pub struct BrokerProbe {
    producer: Producer,
    /// What the producer was built from: where a protocol probe asks.
    settings: ClientSettings,
    last: Mutex<Option<(Instant, Result<(), ProbeFailure>)>>,
    /// What asking the broker found in the current failure streak (`None`:
    /// not asked yet): asked once per streak, not at every probe, so a
    /// readiness check each second does not send the broker a TLS hello
    /// each second.
    asked: Mutex<Option<Option<String>>>,
}

/// Why a probe failed.
#[derive(Debug, Clone)]
struct ProbeFailure {
    /// The whole line for `/readyz`.
    text: String,
    /// A protocol mismatch the probe found by asking the broker directly
    /// (librdkafka names none): a better reason for a consumer's wait too.
    mismatch: Option<String>,
}

impl BrokerProbe {
    /// A probe asking through `producer`, built from `settings`.
    pub fn new(producer: Producer, settings: ClientSettings) -> Self {
        Self {
            producer,
            settings,
            last: Mutex::new(None),
            asked: Mutex::new(None),
        }
    }

    /// Asks the brokers (at most once per [`PROBE_CACHE`]).
    async fn check(self: &Arc<Self>) -> Result<(), ProbeFailure> {
        if let Some((at, result)) = &*self.last.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < PROBE_CACHE
        {
            return result.clone();
        }
        let probe = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let reached = probe.producer.reachable(PROBE_TIMEOUT);
            let mut asked = probe.asked.lock().unwrap_or_else(|e| e.into_inner());
            reached.map(|()| *asked = None).map_err(|e| {
                // librdkafka's own reason (a refused password, an untrusted
                // certificate) says more than the timeout does; without a
                // configuration reason, ask the broker what it speaks.
                let mismatch = if probe.producer.misconfigured() {
                    None
                } else {
                    asked
                        .get_or_insert_with(|| probe.settings.protocol_mismatch())
                        .clone()
                };
                let reason = mismatch.clone().or_else(|| probe.producer.client_problem());
                let text = match reason {
                    Some(reason) => format!("{e}: {reason}"),
                    None => e.to_string(),
                };
                ProbeFailure { text, mismatch }
            })
        })
        .await
        .unwrap_or_else(|e| {
            Err(ProbeFailure {
                text: format!("probe failed: {e}"),
                mismatch: None,
            })
        });
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), result.clone()));
        result
    }
}

/// Everything the health endpoints look at.
#[derive(Default)]
pub struct Health {
    /// Every pipeline of the process.
    pub pipelines: Vec<PipelineHealth>,
    /// A broker probe per tenant that uses Kafka.
    pub probes: Vec<(String, Arc<BrokerProbe>)>,
    /// This node, when it is one of a cluster: a bus that fails degrades
    /// the node (it serves its own clients only) without making it
    /// unready, or a broker outage would take every node out of the load
    /// balancer at once.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The verdict on one pipeline.
struct Verdict<'a> {
    pipeline: &'a PipelineHealth,
    problem: Option<String>,
}

impl Health {
    async fn verdicts(&self) -> Vec<Verdict<'_>> {
        let mut verdicts = Vec::new();
        for pipeline in &self.pipelines {
            let mut problem = match &pipeline.consumer {
                Some(watch) => match watch.status() {
                    ConsumerStatus::Finished(exit) => Some(format!("consumer ended: {exit}")),
                    ConsumerStatus::Running
                        if !watch
                            .progress()
                            .positioned
                            .load(std::sync::atomic::Ordering::Acquire) =>
                    {
                        let progress = watch.progress();
                        let mismatch = match self.probes.iter().find(|(t, _)| *t == pipeline.tenant)
                        {
                            Some((_, probe)) if !progress.misconfigured() => {
                                probe.check().await.err().and_then(|f| f.mismatch)
                            }
                            _ => None,
                        };
                        Some(match mismatch.or_else(|| progress.client_problem()) {
                            Some(problem) => format!("consumer has no partitions yet: {problem}"),
                            None => "consumer has no partitions yet".to_owned(),
                        })
                    }
                    ConsumerStatus::Running => None,
                },
                None => None,
            };
            if problem.is_none() && pipeline.uses_kafka {
                let probe = self.probes.iter().find(|(t, _)| *t == pipeline.tenant);
                if let Some((_, probe)) = probe
                    && let Err(failure) = probe.check().await
                {
                    problem = Some(format!("Kafka: {}", failure.text));
                }
            }
            verdicts.push(Verdict { pipeline, problem });
        }
        verdicts
    }

    /// Whether every pipeline can do its job: the verdict the public
    /// listeners give anyone who asks.
    async fn ready(&self) -> bool {
        self.verdicts().await.iter().all(|v| v.problem.is_none())
    }

    /// This node's cluster, when it is in one.
    fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.cluster.as_deref().filter(|c| c.name().is_some())
    }

    /// The tenants of the pipelines, once each, in order.
    fn tenants(&self) -> Vec<&str> {
        let mut tenants: Vec<&str> = self.pipelines.iter().map(|p| p.tenant.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        tenants
    }

    /// Whether a tenant's cluster bus fails (the node serves its own
    /// clients only).
    fn degraded(&self) -> bool {
        self.cluster()
            .is_some_and(|c| self.tenants().iter().any(|t| c.problem(t).is_some()))
    }

    /// `/readyz` on a public listener: 200 "ready" (or "ready, degraded"
    /// when a cluster bus fails: this node serves its own clients only),
    /// or 503 "not ready". Which pipelines fail and why (their names, their
    /// tenants, what the brokers said) is for operators: the admin API's
    /// `GET /health`.
    pub async fn readyz(&self) -> (u16, String) {
        if self.ready().await {
            if self.degraded() {
                return (
                    200,
                    "ready, degraded: the cluster bus is down, rooms reach this node's clients only (the admin API's GET /health says why)\n".into(),
                );
            }
            (200, "ready\n".into())
        } else {
            (
                503,
                "not ready (the admin API's GET /health says why)\n".into(),
            )
        }
    }

    /// `/health` on a public listener: the verdict alone, as JSON. What
    /// runs here and for whom is not an anonymous caller's business; the
    /// admin API's `GET /health` has the detail.
    pub async fn status(&self) -> (u16, String) {
        let ready = self.ready().await;
        let body = serde_json::json!({ "status": if ready { "healthy" } else { "unhealthy" } });
        (if ready { 200 } else { 503 }, body.to_string() + "\n")
    }

    /// The verdicts of the pipelines whose tenant `visible` accepts, as
    /// JSON with connection counts (seed 001's `/health`, for the admin
    /// API); the status covers those pipelines only.
    pub async fn detail(&self, visible: impl Fn(&str) -> bool) -> (u16, serde_json::Value) {
        let verdicts: Vec<Verdict<'_>> = self
            .verdicts()
            .await
            .into_iter()
            .filter(|v| visible(&v.pipeline.tenant))
            .collect();
        let ready = verdicts.iter().all(|v| v.problem.is_none());
        let pipelines: Vec<serde_json::Value> = verdicts
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": v.pipeline.name,
                    "tenant": v.pipeline.tenant,
                    "status": if v.problem.is_none() { "ok" } else { "unavailable" },
                    "problem": v.problem,
                    "connections": v.pipeline.slots.open(),
                })
            })
            .collect();
        let mut body = serde_json::json!({
            "status": if ready { "healthy" } else { "unhealthy" },
            "connections": verdicts.iter().map(|v| v.pipeline.slots.open()).sum::<usize>(),
            "pipelines": pipelines,
        });
        if let Some(cluster) = self.cluster() {
            let buses: Vec<serde_json::Value> = self
                .tenants()
                .into_iter()
                .filter(|t| visible(t))
                .map(|t| {
                    let problem = cluster.problem(t);
                    serde_json::json!({
                        "tenant": t,
                        "status": if problem.is_none() { "ok" } else { "degraded" },
                        "problem": problem,
                        "nodes": cluster.nodes(t),
                    })
                })
                .collect();
            let degraded = buses.iter().any(|b| b["status"] == "degraded");
            body["cluster"] = serde_json::json!({
                "name": cluster.name(),
                "node": cluster.node(),
                "status": if degraded { "degraded" } else { "ok" },
                "buses": buses,
            });
        }
        (if ready { 200 } else { 503 }, body)
    }
}
