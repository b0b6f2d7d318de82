//! One pipeline's parts: its plugins, hub, consumer and record path, sink,
//! handler sessions and endpoint. All built before anything serves.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;

use super::inbound::Inbound;
use super::record_path::{DeadLetter, PathStats, RecordPath};
use crate::config::{Pipeline, PluginConfig, PoisonPolicy, Source, SourceMode};
use crate::hub::Hub;
use crate::kafka::{
    ClientSettings, ConsumerHandle, ConsumerOptions, Producer, ProducerOptions, Subscription,
    spawn_consumer,
};
use crate::metrics::PipelineMetrics;
use crate::plugin::{LoadedPlugin, PluginHost, PluginPool};
use crate::session::{Publisher, Sessions};
use crate::ws::Endpoint;

/// Auth and inbound-transform calls waiting for a worker before requests
/// are shed.
const POOL_QUEUE: usize = 1024;
/// Worker threads (each with its own instance) per pooled plugin.
const POOL_WORKERS: usize = 2;

/// A built pipeline.
pub struct Built {
    /// What its listener serves.
    pub endpoint: Endpoint,
    /// Its consumer, when it has a source.
    pub consumer: Option<(ConsumerHandle, Arc<PathStats>)>,
}

/// Every topic a pipeline reads or writes (for the embedded broker).
pub fn topics(pipeline: &Pipeline) -> Vec<&str> {
    let mut topics = Vec::new();
    if let Some(sink) = &pipeline.sink {
        topics.push(sink.topic.as_str());
        topics.extend(sink.extra_topics.iter().map(String::as_str));
    }
    if let Some(source) = &pipeline.source {
        topics.extend(source.topics.iter().map(String::as_str));
        if let PoisonPolicy::DeadLetter(topic) = &source.on_poison {
            topics.push(topic);
        }
    }
    topics
}

/// Builds `pipeline` with plugins from `host` and Kafka clients from
/// `settings` (present when it has a source or a sink).
pub fn build(
    pipeline: &Pipeline,
    host: &PluginHost,
    settings: Option<&ClientSettings>,
) -> anyhow::Result<Built> {
    let kafka = || settings.context("a pipeline with a source or a sink needs Kafka settings");
    let hub = Arc::new(Hub::new());
    // One handle per pipeline, shared by its hub, record path, sink,
    // handler and endpoint.
    let metrics = crate::metrics::global().pipeline(&pipeline.tenant, &pipeline.name);
    hub.count_drops_in(metrics.clone());
    let consumer = match &pipeline.source {
        Some(source) => Some(consumer(
            pipeline,
            source,
            host,
            (hub.clone(), metrics.clone()),
            kafka()?,
        )?),
        None => None,
    };
    let auth = match &pipeline.auth {
        Some(plugin) => Some(
            PluginPool::start(&load(host, pipeline, plugin)?, POOL_WORKERS, POOL_QUEUE)
                .context("cannot start its authenticator")?,
        ),
        None => None,
    };
    let producer = match &pipeline.sink {
        Some(_) => Some(
            Producer::new(kafka()?, ProducerOptions::new(pipeline.name.clone()))
                .context("cannot create the sink producer")?,
        ),
        None => None,
    };
    let sessions = match &pipeline.handler {
        Some(plugin) => {
            let publisher = pipeline
                .sink
                .as_ref()
                .zip(producer.clone())
                .map(|(sink, p)| {
                    Publisher::new(
                        p,
                        (sink.topic.clone(), sink.extra_topics.clone()),
                        metrics.clone(),
                    )
                });
            Some(
                Sessions::start(
                    &pipeline.name,
                    &load(host, pipeline, plugin)?,
                    POOL_WORKERS,
                    hub.clone(),
                    publisher,
                )
                .context("cannot start its handler")?,
            )
        }
        None => None,
    };
    // A handler takes the client messages; otherwise the sink does.
    let inbound = match (&pipeline.sink, producer, &sessions) {
        (Some(sink), Some(producer), None) => Some(Arc::new(
            inbound(host, pipeline, producer, sink)?.with_metrics(metrics.clone()),
        )),
        _ => None,
    };
    Ok(Built {
        endpoint: Endpoint::new(pipeline, hub, auth, inbound, sessions, metrics),
        consumer,
    })
}

fn consumer(
    pipeline: &Pipeline,
    source: &Source,
    host: &PluginHost,
    shared: (Arc<Hub>, Arc<PipelineMetrics>),
    settings: &ClientSettings,
) -> anyhow::Result<(ConsumerHandle, Arc<PathStats>)> {
    let mut path = record_path(pipeline, source, host, shared, settings)?;
    let stats = path.stats();
    let handle = spawn_consumer(
        settings,
        subscription(source),
        ConsumerOptions::new(pipeline.name.clone()),
        move |records| path.on_batch(records),
    )
    .context("cannot start its Kafka consumer")?;
    Ok((handle, stats))
}

/// The consumer group of a pipeline's source: in broadcast mode, one of
/// this process's own, so it reads every partition.
fn subscription(source: &Source) -> Subscription {
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

fn load(
    host: &PluginHost,
    pipeline: &Pipeline,
    plugin: &PluginConfig,
) -> anyhow::Result<LoadedPlugin> {
    let spec = plugin.spec(&pipeline.name, &pipeline.tenant);
    Ok(match plugin.native() {
        Some(native) => LoadedPlugin::native(native, spec)?,
        None => host.load(spec)?,
    })
}

/// The sink: its producer and its own transform instances (in pools:
/// inbound messages arrive on the async side).
fn inbound(
    host: &PluginHost,
    pipeline: &Pipeline,
    producer: Producer,
    sink: &crate::config::Sink,
) -> anyhow::Result<Inbound> {
    let transforms = pipeline
        .transforms
        .iter()
        .map(|plugin| -> anyhow::Result<PluginPool> {
            Ok(PluginPool::start(
                &load(host, pipeline, plugin)?,
                POOL_WORKERS,
                POOL_QUEUE,
            )?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Inbound::new(
        producer,
        sink.topic.clone(),
        sink.key.clone(),
        sink.reply,
        transforms,
    ))
}

fn record_path(
    pipeline: &Pipeline,
    source: &Source,
    host: &PluginHost,
    (hub, metrics): (Arc<Hub>, Arc<PipelineMetrics>),
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
    let dead_letter = match &source.on_poison {
        PoisonPolicy::DeadLetter(topic) => Some(dead_letter(pipeline, settings, topic)?),
        _ => None,
    };
    Ok(RecordPath::new(
        &pipeline.name,
        transforms,
        router,
        hub,
        source.format,
        source.on_poison.clone(),
        dead_letter,
    )
    .with_metrics(metrics))
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
