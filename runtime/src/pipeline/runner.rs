//! Builds a running process from a checked config: the embedded broker if
//! asked for, each pipeline (see [`super::parts`]), and the listeners. Everything is built before anything serves, so a bad plugin or
//! an unreachable port fails the start, not the first client.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::parts;
use super::record_path::PathStats;
use crate::config::{Brokers, Config};
use crate::kafka::{ClientSettings, ConsumerHandle, EmbeddedBroker, Producer, ProducerOptions};
use crate::plugin::PluginHost;
use crate::ws::{self, Gate, PerIpLimit, Routes};

/// How long a start waits for consumers to be assigned partitions.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A started process.
pub struct Running {
    /// The embedded broker, when the file asked for one.
    pub embedded: Option<EmbeddedBroker>,
    /// Where each listener is bound, by name (port 0 resolved); the admin
    /// API last, as `admin`.
    pub bound: Vec<(String, std::net::SocketAddr)>,
    /// Each pipeline's record-path counters.
    pub stats: Vec<(String, Arc<PathStats>)>,
    consumers: Vec<ConsumerHandle>,
    servers: JoinSet<()>,
    shutdown: watch::Sender<bool>,
}

impl Running {
    /// Closes every connection with 1001, stops the consumers (committing
    /// what was handled) and waits for all of it.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.servers.join_next().await.is_some() {}
        let consumers = std::mem::take(&mut self.consumers);
        let _ = tokio::task::spawn_blocking(move || {
            for consumer in consumers {
                let pipeline = consumer.pipeline().to_owned();
                let exit = consumer.shutdown();
                tracing::info!(%pipeline, %exit, "Consumer ended.");
            }
        })
        .await;
    }

    /// Pipelines whose consumer has ended, with the reason.
    pub fn failed_consumers(&self) -> Vec<(String, String)> {
        self.consumers
            .iter()
            .filter_map(|c| match c.status() {
                crate::kafka::ConsumerStatus::Running => None,
                crate::kafka::ConsumerStatus::Finished(exit) => {
                    Some((c.pipeline().to_owned(), exit.to_string()))
                }
            })
            .collect()
    }
}

/// Starts everything `config` describes. Call from inside a tokio runtime.
pub async fn start(config: &Config, host: &PluginHost) -> anyhow::Result<Running> {
    // Only pipelines that read or write Kafka need a broker.
    let wants_embedded = config.pipelines.iter().any(|p| {
        (p.source.is_some() || p.sink.is_some())
            && config
                .tenant(&p.tenant)
                .is_some_and(|t| t.kafka.brokers == Brokers::Embedded)
    });
    let embedded = if wants_embedded {
        let broker = EmbeddedBroker::start(3).context("cannot start the embedded Kafka broker")?;
        for topic in config.pipelines.iter().flat_map(parts::topics) {
            broker
                .ensure_topic(topic)
                .with_context(|| format!("cannot create topic `{topic}`"))?;
        }
        Some(broker)
    } else {
        None
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut routes: HashMap<String, Routes> = HashMap::new();
    let mut consumers = Vec::new();
    let mut stats = Vec::new();
    let mut servers = JoinSet::new();
    let mut health = ws::Health::default();
    // Each pipeline's hub, for the admin API's broadcasts.
    let mut hubs = Vec::new();
    let tenants = crate::tenant::Tenants::new(config);
    for pipeline in &config.pipelines {
        let tenant = config
            .tenant(&pipeline.tenant)
            .context("pipeline names an unknown tenant")?;
        let settings = if pipeline.source.is_some() || pipeline.sink.is_some() {
            Some(
                ClientSettings::new(&tenant.kafka, embedded.as_ref())
                    .with_context(|| format!("pipeline `{}`: Kafka settings", pipeline.name))?,
            )
        } else {
            None
        };
        let built = parts::build(
            pipeline,
            host,
            settings.as_ref(),
            &tenants.get(&pipeline.tenant),
        )
        .with_context(|| format!("pipeline `{}`", pipeline.name))?;
        if let Some(settings) = &settings
            && !health.probes.iter().any(|(t, _)| *t == pipeline.tenant)
        {
            let producer = Producer::new(
                settings,
                ProducerOptions::new(format!("health-{}", pipeline.tenant)),
            )
            .with_context(|| format!("tenant `{}`: broker probe", pipeline.tenant))?;
            health.probes.push((
                pipeline.tenant.clone(),
                Arc::new(ws::BrokerProbe::new(producer)),
            ));
        }
        health.pipelines.push(ws::PipelineHealth {
            name: pipeline.name.clone(),
            tenant: pipeline.tenant.clone(),
            consumer: built.consumer.as_ref().map(|(handle, _)| handle.watch()),
            uses_kafka: settings.is_some(),
            slots: built.endpoint.slots.clone(),
        });
        if let Some((handle, _)) = &built.consumer {
            crate::metrics::global().lag().add(
                &pipeline.tenant,
                &pipeline.name,
                handle.metrics().lag.clone(),
            );
        }
        if let Some((handle, path_stats)) = built.consumer {
            consumers.push(handle);
            stats.push((pipeline.name.clone(), path_stats));
        }
        if let (Some(sessions), Some(every)) = (&built.endpoint.sessions, pipeline.tick) {
            servers.spawn(sessions.clone().run_ticker(every, shutdown_rx.clone()));
        }
        hubs.push((pipeline.name.clone(), built.endpoint.hub.clone()));
        routes
            .entry(pipeline.listener.clone())
            .or_default()
            .add(built.endpoint);
    }

    wait_for_assignments(&consumers).await;

    let health = Arc::new(health);
    let registry = Arc::new(ws::Registry::default());
    let mut bound = Vec::new();
    for listener in &config.listeners {
        let Some(listener_routes) = routes.remove(&listener.name) else {
            continue;
        };
        let tls = match &listener.tls {
            Some(files) => Some(
                ws::tls_reloading(&files.cert, &files.key)
                    .with_context(|| format!("listener `{}`: TLS", listener.name))?,
            ),
            None => None,
        };
        let socket = TcpListener::bind(listener.address).await.with_context(|| {
            format!(
                "listener `{}`: cannot bind {}",
                listener.name, listener.address
            )
        })?;
        let address = socket.local_addr()?;
        bound.push((listener.name.clone(), address));
        let gate = Arc::new(Gate {
            allowed_origins: listener.allowed_origins.clone(),
            per_ip: PerIpLimit::new(listener.connections_per_ip),
            routes: listener_routes,
            limits: listener.limits,
            slots: ws::Slots::new(Some(listener.limits.max_connections)),
            health: health.clone(),
            registry: registry.clone(),
        });
        let shutdown = shutdown_rx.clone();
        servers.spawn(async move {
            // The watcher reloads the certificate while the listener serves.
            let acceptor = tls.as_ref().map(|tls| tls.acceptor.clone());
            ws::serve(socket, acceptor, gate, shutdown).await;
            drop(tls);
        });
    }
    if let Some(admin) = &config.admin {
        let socket = TcpListener::bind(admin.address)
            .await
            .with_context(|| format!("admin API: cannot bind {}", admin.address))?;
        bound.push(("admin".to_owned(), socket.local_addr()?));
        let state = Arc::new(crate::admin::State::new(config, registry.clone(), &hubs));
        servers.spawn(crate::admin::serve(socket, state, shutdown_rx.clone()));
    }
    Ok(Running {
        embedded,
        bound,
        stats,
        consumers,
        servers,
        shutdown,
    })
}

/// Waits until every consumer owns partitions and has fixed where it starts
/// reading them, so that "started" means a record produced from now on
/// reaches its subscribers.
async fn wait_for_assignments(consumers: &[ConsumerHandle]) {
    let deadline = tokio::time::Instant::now() + ASSIGNMENT_TIMEOUT;
    loop {
        let waiting: Vec<&str> = consumers
            .iter()
            .filter(|c| !c.metrics().positioned.load(Ordering::Acquire))
            .map(ConsumerHandle::pipeline)
            .collect();
        if waiting.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(pipelines = ?waiting, "No partitions assigned yet; serving anyway (records produced before the assignment are not delivered).");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
