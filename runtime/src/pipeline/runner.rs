//! Builds a running process from a checked config: the embedded broker if
//! asked for, each pipeline's plugins, hub, consumer and endpoint, and the
//! listeners. Everything is built before anything serves, so a bad plugin or
//! an unreachable port fails the start, not the first client.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::inbound::Inbound;
use super::record_path::{DeadLetter, PathStats, RecordPath};
use crate::config::{Brokers, Config, Pipeline, PluginConfig, PoisonPolicy, SourceMode};
use crate::hub::Hub;
use crate::kafka::{
    ClientSettings, ConsumerHandle, ConsumerOptions, EmbeddedBroker, Producer, ProducerOptions,
    Subscription, spawn_consumer,
};
use crate::plugin::{LoadedPlugin, PluginHost, PluginPool};
use crate::ws::{self, Endpoint, Gate, PerIpLimit, Routes};

/// Auth calls waiting for a worker before handshakes are shed with 503.
const AUTH_QUEUE: usize = 1024;
/// How long a start waits for consumers to be assigned partitions.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Worker threads per authenticator.
const AUTH_WORKERS: usize = 2;

/// A started process.
pub struct Running {
    /// The embedded broker, when the file asked for one.
    pub embedded: Option<EmbeddedBroker>,
    /// Where each listener is bound, by name (port 0 resolved).
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
    let wants_embedded = config
        .tenants
        .iter()
        .any(|t| t.kafka.brokers == Brokers::Embedded);
    let embedded = if wants_embedded {
        let broker = EmbeddedBroker::start(3).context("cannot start the embedded Kafka broker")?;
        for pipeline in &config.pipelines {
            if let Some(sink) = &pipeline.sink {
                broker
                    .ensure_topic(&sink.topic)
                    .with_context(|| format!("cannot create topic `{}`", sink.topic))?;
            }
            for topic in &pipeline.source.topics {
                broker
                    .ensure_topic(topic)
                    .with_context(|| format!("cannot create topic `{topic}`"))?;
            }
            if let PoisonPolicy::DeadLetter(topic) = &pipeline.source.on_poison {
                broker
                    .ensure_topic(topic)
                    .with_context(|| format!("cannot create topic `{topic}`"))?;
            }
        }
        Some(broker)
    } else {
        None
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut routes: HashMap<String, Routes> = HashMap::new();
    let mut consumers = Vec::new();
    let mut stats = Vec::new();
    for pipeline in &config.pipelines {
        let tenant = config
            .tenant(&pipeline.tenant)
            .context("pipeline names an unknown tenant")?;
        let settings = ClientSettings::new(&tenant.kafka, embedded.as_ref())
            .with_context(|| format!("pipeline `{}`: Kafka settings", pipeline.name))?;
        let hub = Arc::new(Hub::new());
        let path = record_path(pipeline, host, hub.clone(), &settings)?;
        stats.push((pipeline.name.clone(), path.stats()));
        let mut path = path;
        let consumer = spawn_consumer(
            &settings,
            subscription(&pipeline.source),
            ConsumerOptions::new(pipeline.name.clone()),
            move |records| path.on_batch(records),
        )
        .with_context(|| {
            format!(
                "pipeline `{}`: cannot start its Kafka consumer",
                pipeline.name
            )
        })?;
        consumers.push(consumer);
        let auth = match &pipeline.auth {
            Some(plugin) => Some(
                PluginPool::start(&load(host, pipeline, plugin)?, AUTH_WORKERS, AUTH_QUEUE)
                    .with_context(|| {
                        format!(
                            "pipeline `{}`: cannot start its authenticator",
                            pipeline.name
                        )
                    })?,
            ),
            None => None,
        };
        let inbound = match &pipeline.sink {
            Some(sink) => Some(Arc::new(inbound(host, pipeline, &settings, sink)?)),
            None => None,
        };
        routes
            .entry(pipeline.listener.clone())
            .or_default()
            .add(Endpoint::new(pipeline, hub, auth, inbound));
    }

    wait_for_assignments(&consumers).await;

    let mut servers = JoinSet::new();
    let mut bound = Vec::new();
    for listener in &config.listeners {
        let Some(listener_routes) = routes.remove(&listener.name) else {
            continue;
        };
        let tls = match &listener.tls {
            Some(files) => Some(
                ws::tls_acceptor(&files.cert, &files.key)
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
        });
        servers.spawn(ws::serve(socket, tls, gate, shutdown_rx.clone()));
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

/// The consumer group of a pipeline's source: in broadcast mode, one of
/// this process's own, so it reads every partition.
fn subscription(source: &crate::config::Source) -> Subscription {
    let mut subscription = Subscription::from(source);
    if source.mode == SourceMode::Broadcast {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        subscription.group_id =
            format!("{}.{}-{nanos:x}", subscription.group_id, std::process::id());
    }
    subscription
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

fn load(
    host: &PluginHost,
    pipeline: &Pipeline,
    plugin: &PluginConfig,
) -> anyhow::Result<LoadedPlugin> {
    let spec = crate::plugin::PluginSpec {
        id: plugin.id(&pipeline.name, &pipeline.tenant),
        role: plugin.role,
        bytes: plugin.bytes.clone(),
        config_json: plugin.config_json.clone(),
        limits: plugin.limits,
    };
    Ok(host.load(spec)?)
}

/// The sink: its producer and its own transform instances (in pools:
/// inbound messages arrive on the async side).
fn inbound(
    host: &PluginHost,
    pipeline: &Pipeline,
    settings: &ClientSettings,
    sink: &crate::config::Sink,
) -> anyhow::Result<Inbound> {
    let producer = Producer::new(settings, ProducerOptions::new(pipeline.name.clone()))
        .with_context(|| {
            format!(
                "pipeline `{}`: cannot create the sink producer",
                pipeline.name
            )
        })?;
    let transforms = pipeline
        .transforms
        .iter()
        .map(|plugin| -> anyhow::Result<PluginPool> {
            Ok(PluginPool::start(
                &load(host, pipeline, plugin)?,
                AUTH_WORKERS,
                AUTH_QUEUE,
            )?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Inbound::new(
        producer,
        sink.topic.clone(),
        sink.key.clone(),
        transforms,
    ))
}

fn record_path(
    pipeline: &Pipeline,
    host: &PluginHost,
    hub: Arc<Hub>,
    settings: &ClientSettings,
) -> anyhow::Result<RecordPath> {
    let instance = |plugin: &PluginConfig| -> anyhow::Result<_> {
        Ok(load(host, pipeline, plugin)?.instantiate()?)
    };
    let transforms = pipeline
        .transforms
        .iter()
        .map(instance)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let router = pipeline.router.as_ref().map(instance).transpose()?;
    let dead_letter = match &pipeline.source.on_poison {
        PoisonPolicy::DeadLetter(topic) => Some(dead_letter(pipeline, settings, topic)?),
        _ => None,
    };
    Ok(RecordPath::new(
        &pipeline.name,
        transforms,
        router,
        hub,
        pipeline.source.format,
        pipeline.source.on_poison.clone(),
        dead_letter,
    ))
}

/// Produces poison records to `topic` with headers saying why, waiting for
/// the broker's acknowledgement (the consumer thread may block; it is not a
/// tokio worker).
fn dead_letter(
    pipeline: &Pipeline,
    settings: &ClientSettings,
    topic: &str,
) -> anyhow::Result<DeadLetter> {
    let producer = Producer::new(settings, ProducerOptions::new(pipeline.name.clone()))
        .with_context(|| {
            format!(
                "pipeline `{}`: cannot create the dead-letter producer",
                pipeline.name
            )
        })?;
    let runtime = tokio::runtime::Handle::current();
    let topic = topic.to_owned();
    let name = pipeline.name.clone();
    Ok(Box::new(move |record, reason| {
        let mut headers = record.headers.clone();
        headers.push(("sluice-error".into(), Bytes::from(reason.to_owned())));
        headers.push(("sluice-pipeline".into(), Bytes::from(name.clone())));
        headers.push((
            "sluice-origin".into(),
            Bytes::from(format!(
                "{}/{}@{}",
                record.topic, record.partition, record.offset
            )),
        ));
        runtime
            .block_on(producer.send(&topic, record.key.as_deref(), &record.payload, &headers))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }))
}
