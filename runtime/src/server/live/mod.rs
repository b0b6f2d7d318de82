//! The pipelines a process runs now, and how a config replaces them.
//!
//! A start and a live reload are the same operation: [`Live::apply`]
//! prepares everything the new config needs that is not already running
//! (plugins compiled and instantiated, `init` run, producers created) and
//! only then commits, so a config that fails to prepare changes nothing.
//! The commit keeps each pipeline's hub, so open sockets stay subscribed;
//! a changed router or transform reaches the consumer thread as a new
//! [`Stages`] taken between two batches, so a record never sees two versions.
//!
//! - [`plan`]: what each pipeline of the new config keeps, swaps or starts.
//! - [`commit`]: swapping it in: consumers started and stopped, removed
//!   pipelines' connections closed, the change lines.
//! - [`probes`]: a broker probe per tenant that uses Kafka.
//! - [`buses`]: the cluster bus of each tenant with pipelines (with `[cluster]`).
//! - [`publish`]: what the listeners, `/readyz` and the admin API read.
//!
//! [`Stages`]: crate::pipeline::Stages

mod buses;
mod commit;
mod plan;
mod probes;
mod publish;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::parts::Feed;
use crate::cluster::Cluster;
use crate::config::{Brokers, Config, Kafka, Pipeline};
use crate::hub::Hub;
use crate::kafka::EmbeddedBroker;
use crate::metrics::PipelineMetrics;
use crate::plugin::PluginHost;
use crate::tenant::{TenantState, Tenants};
use crate::ws::{Endpoint, Gate, Health, Routes};

/// How long a shutdown waits for the consumers' last commits.
const SHUTDOWN_COMMIT: Duration = Duration::from_secs(10);

/// One running pipeline.
struct Active {
    config: Pipeline,
    /// The tenant's Kafka settings it was built with (when it uses Kafka).
    kafka: Option<Kafka>,
    hub: Arc<Hub>,
    metrics: Arc<PipelineMetrics>,
    /// Its tenant's live quotas.
    tenant: Arc<TenantState>,
    endpoint: Arc<Endpoint>,
    feed: Option<Feed>,
}

/// Everything running, and what the listeners and the admin API read.
pub struct Live {
    config: Option<Config>,
    active: Vec<Active>,
    tenants: Tenants,
    probes: Vec<probes::Probe>,
    embedded: Option<EmbeddedBroker>,
    /// This process as a node (of no cluster without `[cluster]`); its
    /// registry lists the open connections.
    cluster: Arc<Cluster>,
    health: Arc<ArcSwap<Health>>,
    gates: Vec<(String, Arc<Gate>)>,
    admin: Option<Arc<crate::admin::State>>,
    shutdown: watch::Receiver<bool>,
}

impl Live {
    /// Nothing running yet, on node `cluster` (whose registry lists the
    /// connections); tickers stop when `shutdown` turns true.
    pub fn new(
        embedded: Option<EmbeddedBroker>,
        cluster: Arc<Cluster>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config: None,
            active: Vec::new(),
            tenants: Tenants::default(),
            probes: Vec::new(),
            embedded,
            cluster,
            health: Arc::new(ArcSwap::from_pointee(Health::default())),
            gates: Vec::new(),
            admin: None,
            shutdown,
        }
    }

    /// The embedded broker, when the config asked for one.
    pub fn embedded(&self) -> Option<&EmbeddedBroker> {
        self.embedded.as_ref()
    }

    /// The config running now.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// What `/readyz` and `/health` read, swapped by every apply.
    pub fn health(&self) -> Arc<ArcSwap<Health>> {
        self.health.clone()
    }

    /// The routes of `listener` now.
    pub fn routes(&self, listener: &str) -> Routes {
        let mut routes = Routes::default();
        for active in self
            .active
            .iter()
            .filter(|a| a.config.serving.listener == listener)
        {
            routes.add_shared(active.endpoint.clone());
        }
        routes
    }

    /// Each pipeline's hub and tenant state, by name (for the admin API).
    pub fn served(&self) -> Vec<crate::admin::Served> {
        self.active
            .iter()
            .map(|a| crate::admin::Served {
                name: a.config.name.clone(),
                hub: a.hub.clone(),
                tenant: a.tenant.clone(),
            })
            .collect()
    }

    /// Pipelines whose consumer has ended, with the reason.
    pub fn failed_consumers(&self) -> Vec<(String, String)> {
        self.active
            .iter()
            .filter_map(|a| match a.feed.as_ref()?.handle.status() {
                crate::kafka::ConsumerStatus::Running => None,
                crate::kafka::ConsumerStatus::Finished(exit) => {
                    Some((a.config.name.clone(), exit.to_string()))
                }
            })
            .collect()
    }

    /// The listeners whose routes every apply replaces, and the admin API
    /// whose pipelines it replaces.
    pub fn attach(
        &mut self,
        gates: Vec<(String, Arc<Gate>)>,
        admin: Option<Arc<crate::admin::State>>,
    ) {
        self.gates = gates;
        self.admin = admin;
    }

    /// Makes `config` the running config: prepares every pipeline that is
    /// new or changed (an error here leaves everything as it was), then
    /// swaps them in. Returns what changed, one line each.
    pub async fn apply(
        &mut self,
        config: Config,
        host: &PluginHost,
    ) -> anyhow::Result<Vec<String>> {
        if let Some(refusal) = self.cluster.refuses(config.cluster.as_ref()) {
            anyhow::bail!(refusal);
        }
        let tenants = self.tenants.next(&config);
        let next = tokio::task::block_in_place(|| self.prepare(&config, &tenants, host))?;
        let probes = self.next_probes(&config)?;
        let buses = self.next_buses(&config, &next)?;
        self.tenants = tenants;
        let changes = self.commit(config, next, probes).await;
        if let Err(error) = self.cluster.apply(buses) {
            tracing::error!(%error, "Cluster bus not started: this node serves its own clients only.");
        }
        Ok(changes)
    }

    /// Stops every consumer, committing what was handled, for at most
    /// [`SHUTDOWN_COMMIT`]: with the broker gone a commit would wait for it
    /// (librdkafka retries for minutes). Records handled but not committed
    /// are read again after a restart (at least once), never lost.
    pub async fn shutdown(&mut self) {
        self.cluster.leave().await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_COMMIT;
        for active in std::mem::take(&mut self.active) {
            if let Some(recorder) = active.endpoint.recorder.clone() {
                // Connections are closed by now: their files end here.
                let _ = tokio::task::spawn_blocking(move || recorder.finish()).await;
            }
            let name = active.config.name.clone();
            let stopped = commit::stop_feed(&active.config, active.feed);
            if tokio::time::timeout_at(deadline, stopped).await.is_err() {
                tracing::warn!(pipeline = %name, "Consumer did not close in time (is the broker reachable?); exiting without its last commit: records since the previous commit will be read again.");
            }
        }
    }
}

/// Whether a config needs the embedded broker (a pipeline, or the cluster
/// bus of a tenant with pipelines, uses it).
pub fn wants_embedded(config: &Config) -> bool {
    config.pipelines.iter().any(|p| {
        (p.source.is_some() || p.serving.sink.is_some() || config.cluster.is_some())
            && config
                .tenant(&p.tenant)
                .is_some_and(|t| t.kafka.brokers == Brokers::Embedded)
    })
}
