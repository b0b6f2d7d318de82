//! The pipelines a process runs now, and how a config replaces them.
//!
//! A start and a live reload are the same operation: [`Live::apply`]
//! prepares everything the new config needs that is not already running
//! (plugins compiled and instantiated, `init` run, producers created) and
//! only then commits, so a config that fails to prepare changes nothing.
//! The commit keeps each pipeline's hub, so open sockets stay subscribed;
//! a changed router or transform reaches the consumer thread as a new
//! [`Stages`] taken between two batches, so a record never sees two versions.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::parts::{self, Feed};
use super::stages::Stages;
use crate::config::{Brokers, Config, Kafka, Pipeline};
use crate::hub::{CloseRequest, Hub};
use crate::kafka::{ClientSettings, EmbeddedBroker, Producer, ProducerOptions};
use crate::metrics::PipelineMetrics;
use crate::plugin::PluginHost;
use crate::session::Sessions;
use crate::tenant::{TenantState, Tenants};
use crate::ws::{self, Endpoint, Gate, Health, Registry, Routes};

/// How long a shutdown waits for the consumers' last commits.
const SHUTDOWN_COMMIT: Duration = Duration::from_secs(10);

/// How long a new consumer may take to be assigned partitions.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The close code for clients of a pipeline a reload removed: 1012 (service
/// restart) tells them to reconnect, which may find another pipeline.
const REMOVED: (u16, &str) = (1012, "pipeline removed by a reload");

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

/// What happens to a pipeline's consumer.
enum FeedPlan {
    /// Nothing changes (or it has no source).
    Keep,
    /// New plugins for the running consumer.
    Swap(Stages),
    /// A new consumer (a new source, or the source changed).
    Start(Stages),
    /// The source is gone.
    Stop,
}

/// One pipeline of the new config, prepared.
struct Next {
    config: Pipeline,
    kafka: Option<Kafka>,
    settings: Option<ClientSettings>,
    hub: Arc<Hub>,
    metrics: Arc<PipelineMetrics>,
    tenant: Arc<TenantState>,
    endpoint: Arc<Endpoint>,
    endpoint_rebuilt: bool,
    feed: FeedPlan,
    /// Its running version, by index into `Live::active`.
    old: Option<usize>,
}

/// Everything running, and what the listeners and the admin API read.
pub struct Live {
    config: Option<Config>,
    active: Vec<Active>,
    tenants: Tenants,
    probes: Vec<(String, Kafka, Arc<ws::BrokerProbe>)>,
    embedded: Option<EmbeddedBroker>,
    registry: Arc<Registry>,
    health: Arc<ArcSwap<Health>>,
    gates: Vec<(String, Arc<Gate>)>,
    admin: Option<Arc<crate::admin::State>>,
    shutdown: watch::Receiver<bool>,
}

impl Live {
    /// Nothing running yet; tickers stop when `shutdown` turns true.
    pub fn new(
        embedded: Option<EmbeddedBroker>,
        registry: Arc<Registry>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config: None,
            active: Vec::new(),
            tenants: Tenants::default(),
            probes: Vec::new(),
            embedded,
            registry,
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
        for active in self.active.iter().filter(|a| a.config.listener == listener) {
            routes.add_shared(active.endpoint.clone());
        }
        routes
    }

    /// Each pipeline's hub, by name (for the admin API).
    pub fn hubs(&self) -> Vec<(String, Arc<Hub>)> {
        self.active
            .iter()
            .map(|a| (a.config.name.clone(), a.hub.clone()))
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
        let tenants = self.tenants.next(&config);
        let next = tokio::task::block_in_place(|| self.prepare(&config, &tenants, host))?;
        let probes = self.next_probes(&config)?;
        self.tenants = tenants;
        Ok(self.commit(config, next, probes).await)
    }

    /// Builds what `config` needs and is not running. Compiles and
    /// instantiates plugins, so it blocks.
    fn prepare(
        &self,
        config: &Config,
        tenants: &Tenants,
        host: &PluginHost,
    ) -> anyhow::Result<Vec<Next>> {
        if let Some(broker) = &self.embedded {
            for topic in config.pipelines.iter().flat_map(parts::topics) {
                broker
                    .ensure_topic(topic)
                    .with_context(|| format!("cannot create topic `{topic}`"))?;
            }
        }
        config
            .pipelines
            .iter()
            .map(|pipeline| {
                self.prepare_one(config, pipeline, tenants.get(&pipeline.tenant), host)
                    .with_context(|| format!("pipeline `{}`", pipeline.name))
            })
            .collect()
    }

    fn prepare_one(
        &self,
        config: &Config,
        pipeline: &Pipeline,
        tenant_state: Arc<TenantState>,
        host: &PluginHost,
    ) -> anyhow::Result<Next> {
        let tenant = config
            .tenant(&pipeline.tenant)
            .context("names an unknown tenant")?;
        let uses_kafka = pipeline.source.is_some() || pipeline.sink.is_some();
        let kafka = uses_kafka.then(|| tenant.kafka.clone());
        let settings = match &kafka {
            Some(kafka) => Some(
                ClientSettings::new(kafka, self.embedded.as_ref()).context("its Kafka settings")?,
            ),
            None => None,
        };
        let old = self
            .active
            .iter()
            .position(|a| a.config.name == pipeline.name && a.config.tenant == pipeline.tenant);
        let running = old.map(|i| &self.active[i]);
        let (hub, metrics) = match running {
            Some(active) => (active.hub.clone(), active.metrics.clone()),
            None => {
                let metrics = crate::metrics::global().pipeline(&pipeline.tenant, &pipeline.name);
                let hub = Arc::new(Hub::new());
                hub.count_drops_in(metrics.clone());
                (hub, metrics)
            }
        };
        let kafka_same = running.is_some_and(|a| a.kafka == kafka);
        // New quotas mean new limiters, and a new CPU budget to charge.
        let tenant_same = running.is_some_and(|a| Arc::ptr_eq(&a.tenant, &tenant_state));
        let (endpoint, endpoint_rebuilt) = match running {
            Some(active)
                if kafka_same && tenant_same && same_endpoint(&active.config, pipeline) =>
            {
                (active.endpoint.clone(), false)
            }
            _ => {
                let mut endpoint = parts::endpoint(
                    pipeline,
                    host,
                    settings.as_ref(),
                    (hub.clone(), metrics.clone()),
                    &tenant_state,
                )?;
                if let Some(active) = running {
                    // Connections already open stay counted.
                    endpoint.slots = active.endpoint.slots.clone();
                    endpoint.slots.set_max(pipeline.policy.max_connections);
                }
                (Arc::new(endpoint), true)
            }
        };
        let feed = match (running, &pipeline.source) {
            (_, None) => match running.and_then(|a| a.feed.as_ref()) {
                Some(_) => FeedPlan::Stop,
                None => FeedPlan::Keep,
            },
            (Some(active), Some(source))
                if active.feed.is_some()
                    && kafka_same
                    && active.config.source.as_ref() == Some(source) =>
            {
                if tenant_same
                    && active.config.transforms == pipeline.transforms
                    && active.config.router == pipeline.router
                {
                    FeedPlan::Keep
                } else {
                    FeedPlan::Swap(parts::stages(pipeline, host, Some(tenant_state.cpu()))?)
                }
            }
            (_, Some(_)) => {
                FeedPlan::Start(parts::stages(pipeline, host, Some(tenant_state.cpu()))?)
            }
        };
        Ok(Next {
            config: pipeline.clone(),
            kafka,
            settings,
            hub,
            metrics,
            tenant: tenant_state,
            endpoint,
            endpoint_rebuilt,
            feed,
            old,
        })
    }

    /// A broker probe per tenant that uses Kafka: kept when its settings
    /// did not change.
    fn next_probes(
        &self,
        config: &Config,
    ) -> anyhow::Result<Vec<(String, Kafka, Arc<ws::BrokerProbe>)>> {
        let mut probes: Vec<(String, Kafka, Arc<ws::BrokerProbe>)> = Vec::new();
        for pipeline in &config.pipelines {
            if (pipeline.source.is_none() && pipeline.sink.is_none())
                || probes.iter().any(|(t, _, _)| *t == pipeline.tenant)
            {
                continue;
            }
            let tenant = config
                .tenant(&pipeline.tenant)
                .context("pipeline names an unknown tenant")?;
            if let Some(kept) = self
                .probes
                .iter()
                .find(|(t, k, _)| *t == tenant.name && *k == tenant.kafka)
            {
                probes.push(kept.clone());
                continue;
            }
            let settings = ClientSettings::new(&tenant.kafka, self.embedded.as_ref())
                .with_context(|| format!("tenant `{}`: Kafka settings", tenant.name))?;
            let producer = Producer::new(
                &settings,
                ProducerOptions::new(format!("health-{}", tenant.name)),
            )
            .with_context(|| format!("tenant `{}`: broker probe", tenant.name))?;
            probes.push((
                tenant.name.clone(),
                tenant.kafka.clone(),
                Arc::new(ws::BrokerProbe::new(producer)),
            ));
        }
        Ok(probes)
    }

    /// Swaps the prepared pipelines in. Only starting a consumer can still
    /// fail here; that pipeline then serves its sockets without records
    /// (`/readyz` says so) and the line says why.
    async fn commit(
        &mut self,
        config: Config,
        next: Vec<Next>,
        probes: Vec<(String, Kafka, Arc<ws::BrokerProbe>)>,
    ) -> Vec<String> {
        let mut changes = Vec::new();
        let mut old: Vec<Option<Active>> = std::mem::take(&mut self.active)
            .into_iter()
            .map(Some)
            .collect();
        let mut started = Vec::new();
        let mut active = Vec::with_capacity(next.len());
        for mut n in next {
            let previous = n.old.and_then(|i| old[i].take());
            n.hub.limit_deliveries_by(n.tenant.clone());
            let name = n.config.name.clone();
            let mut feed = previous.and_then(|a| a.feed);
            let mut notes = Vec::new();
            match std::mem::replace(&mut n.feed, FeedPlan::Keep) {
                FeedPlan::Keep => {}
                FeedPlan::Swap(stages) => {
                    if let Some(feed) = &feed {
                        // A consumer that ended has dropped its receiver;
                        // `/readyz` already reports it.
                        let _ = feed.stages.send(stages);
                    }
                    notes.push("router and transforms replaced");
                }
                FeedPlan::Stop => {
                    stop_feed(&n.config, feed.take()).await;
                    notes.push("consumer stopped");
                }
                FeedPlan::Start(stages) => {
                    // A changed source keeps a broadcast-mode group, so the
                    // new consumer resumes where the old one committed.
                    let group = feed.as_ref().map(|f| f.group_id.clone()).filter(|_| {
                        n.config
                            .source
                            .as_ref()
                            .is_some_and(|s| s.mode == crate::config::SourceMode::Broadcast)
                    });
                    let had_feed = feed.is_some();
                    stop_feed(&n.config, feed.take()).await;
                    feed = self.start_feed(&n, stages, group, &mut changes);
                    if let Some(f) = &feed {
                        started.push(f.handle.watch());
                    }
                    notes.push(if had_feed {
                        "consumer restarted"
                    } else {
                        "consumer started"
                    });
                }
            }
            if n.endpoint_rebuilt {
                if let (Some(sessions), Some(every)) = (&n.endpoint.sessions, n.config.tick) {
                    tokio::spawn(Sessions::run_ticker(
                        Arc::downgrade(sessions),
                        every,
                        self.shutdown.clone(),
                    ));
                }
                if n.old.is_some() {
                    notes.push(
                        "endpoint rebuilt (open connections keep the version they opened with)",
                    );
                }
            }
            match n.old {
                None => changes.push(format!("pipeline `{name}` added")),
                Some(_) if !notes.is_empty() => {
                    changes.push(format!("pipeline `{name}`: {}", notes.join("; ")));
                }
                Some(_) => {}
            }
            active.push(Active {
                config: n.config,
                kafka: n.kafka,
                hub: n.hub,
                metrics: n.metrics,
                tenant: n.tenant,
                endpoint: n.endpoint,
                feed,
            });
        }
        for removed in old.into_iter().flatten() {
            let closed = self.close_connections(&removed.config);
            stop_feed(&removed.config, removed.feed).await;
            changes.push(format!(
                "pipeline `{}` removed ({closed} connection(s) closed with {})",
                removed.config.name, REMOVED.0
            ));
        }
        self.active = active;
        self.probes = probes;
        self.config = Some(config);
        self.publish();
        wait_for_assignments(&started).await;
        changes
    }

    fn start_feed(
        &self,
        n: &Next,
        stages: Stages,
        group: Option<String>,
        changes: &mut Vec<String>,
    ) -> Option<Feed> {
        let (source, settings) = (n.config.source.as_ref()?, n.settings.as_ref()?);
        let started = parts::feed(
            (&n.config, source),
            stages,
            (n.hub.clone(), n.metrics.clone()),
            settings,
            group,
        );
        match started {
            Ok(feed) => {
                let lag = crate::metrics::global().lag();
                lag.remove(&n.config.tenant, &n.config.name);
                lag.add(
                    &n.config.tenant,
                    &n.config.name,
                    feed.handle.metrics().lag.clone(),
                );
                Some(feed)
            }
            Err(error) => {
                tracing::error!(pipeline = %n.config.name, error = %format!("{error:#}"), "Consumer did not start.");
                changes.push(format!(
                    "pipeline `{}`: consumer did not start: {error:#}",
                    n.config.name
                ));
                None
            }
        }
    }

    /// Closes the open connections of a removed pipeline; returns how many.
    fn close_connections(&self, pipeline: &Pipeline) -> usize {
        let mut closed = 0;
        for conn in self.registry.all() {
            if conn.tenant == pipeline.tenant && conn.pipeline == pipeline.name {
                conn.outbox.close(CloseRequest {
                    code: REMOVED.0,
                    reason: REMOVED.1.into(),
                });
                closed += 1;
            }
        }
        closed
    }

    /// Hands the new routes, health snapshot and admin view to the readers.
    fn publish(&self) {
        for (listener, gate) in &self.gates {
            gate.routes.store(Arc::new(self.routes(listener)));
        }
        let mut health = Health::default();
        for a in &self.active {
            health.pipelines.push(ws::PipelineHealth {
                name: a.config.name.clone(),
                tenant: a.config.tenant.clone(),
                consumer: a.feed.as_ref().map(|f| f.handle.watch()),
                uses_kafka: a.kafka.is_some(),
                slots: a.endpoint.slots.clone(),
            });
        }
        health.probes = self
            .probes
            .iter()
            .map(|(tenant, _, probe)| (tenant.clone(), probe.clone()))
            .collect();
        self.health.store(Arc::new(health));
        if let (Some(admin), Some(config)) = (&self.admin, &self.config) {
            admin.update(config, &self.hubs());
        }
    }

    /// Stops every consumer, committing what was handled.
    /// Stops every consumer, committing what was handled, for at most
    /// [`SHUTDOWN_COMMIT`]: with the broker gone a commit would wait for it
    /// (librdkafka retries for minutes). Records handled but not committed
    /// are read again after a restart (at least once), never lost.
    pub async fn shutdown(&mut self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_COMMIT;
        for active in std::mem::take(&mut self.active) {
            let name = active.config.name.clone();
            let stopped = stop_feed(&active.config, active.feed);
            if tokio::time::timeout_at(deadline, stopped).await.is_err() {
                tracing::warn!(pipeline = %name, "Consumer did not close in time (is the broker reachable?); exiting without its last commit: records since the previous commit will be read again.");
            }
        }
    }
}

/// Whether a config needs the embedded broker.
pub fn wants_embedded(config: &Config) -> bool {
    config.pipelines.iter().any(|p| {
        (p.source.is_some() || p.sink.is_some())
            && config
                .tenant(&p.tenant)
                .is_some_and(|t| t.kafka.brokers == Brokers::Embedded)
    })
}

/// Whether two versions of a pipeline serve sockets the same way (only the
/// record path may differ: its source, router or transforms).
fn same_endpoint(old: &Pipeline, new: &Pipeline) -> bool {
    old.listener == new.listener
        && old.path == new.path
        && old.sink == new.sink
        && old.auth == new.auth
        && old.handler == new.handler
        && old.transforms == new.transforms
        && old.outbox == new.outbox
        && old.welcome == new.welcome
        && old.tick == new.tick
        && old.policy == new.policy
}

/// Stops a consumer (it commits what it handled), off the async workers.
async fn stop_feed(pipeline: &Pipeline, feed: Option<Feed>) {
    let Some(feed) = feed else { return };
    crate::metrics::global()
        .lag()
        .remove(&pipeline.tenant, &pipeline.name);
    let name = pipeline.name.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let exit = feed.handle.shutdown();
        tracing::info!(pipeline = %name, %exit, "Consumer ended.");
    })
    .await;
}

/// Waits until every consumer owns partitions and has fixed where it starts
/// reading them, so that "started" means a record produced from now on
/// reaches its subscribers.
async fn wait_for_assignments(consumers: &[crate::kafka::ConsumerWatch]) {
    let deadline = tokio::time::Instant::now() + ASSIGNMENT_TIMEOUT;
    loop {
        let waiting = consumers
            .iter()
            .filter(|c| !c.metrics().positioned.load(Ordering::Acquire))
            .count();
        if waiting == 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                consumers = waiting,
                "No partitions assigned yet; serving anyway (records produced before the assignment are not delivered)."
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
