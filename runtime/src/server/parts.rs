//! One pipeline's parts: its endpoint (authenticator, sink, handler), the
//! plugin stage of its record path, and the consumer feeding it. A start
//! builds them all; a live reload rebuilds only what changed.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;

use crate::cluster::Cluster;
use crate::config::{Pipeline, PluginConfig, PoisonPolicy, Source};
use crate::hub::Hub;
use crate::kafka::{
    ClientSettings, ConsumerHandle, ConsumerOptions, Membership, Positions, Producer,
    ProducerOptions, Reader, Subscription, spawn_consumer,
};
use crate::metrics::PipelineMetrics;
use crate::pipeline::{DeadLetter, InboundPath, RecordPath, StageSender, Stages};
use crate::plugin::{CpuBudget, LoadedPlugin, PluginHost, PluginPool};
use crate::recording::Recorder;
use crate::resume::Resume;
use crate::session::{Publisher, Sessions};
use crate::tenant::TenantState;
use crate::ws::Endpoint;

/// Auth and inbound-transform calls waiting for a worker before requests
/// are shed.
const POOL_QUEUE: usize = 1024;
/// Worker threads (each with its own instance) per pooled plugin.
const POOL_WORKERS: usize = 2;

/// Every topic a pipeline reads or writes (for the embedded broker).
pub fn topics(pipeline: &Pipeline) -> Vec<&str> {
    let mut topics = Vec::new();
    if let Some(sink) = &pipeline.serving.sink {
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

/// What a pipeline's WebSocket side serves: its authenticator, sink
/// producer and inbound transforms, and handler, around `hub`. Kafka
/// clients come from `settings` (present when it has a source or a sink);
/// connections, messages and plugin time count against `tenant`'s quotas;
/// its handler reaches other nodes' connections through `cluster`.
pub fn endpoint(
    pipeline: &Pipeline,
    host: &PluginHost,
    settings: Option<&ClientSettings>,
    (hub, metrics): (Arc<Hub>, Arc<PipelineMetrics>),
    (tenant, cluster): (&Arc<TenantState>, &Arc<Cluster>),
) -> anyhow::Result<Endpoint> {
    let host = &Budgeted {
        host,
        budget: Some(tenant.cpu()),
    };
    let kafka = || settings.context("a pipeline with a sink needs Kafka settings");
    let auth = match &pipeline.serving.auth {
        Some(plugin) => Some(
            PluginPool::start(&load(host, pipeline, plugin)?, POOL_WORKERS, POOL_QUEUE)
                .context("cannot start its authenticator")?,
        ),
        None => None,
    };
    let producer = match &pipeline.serving.sink {
        Some(_) => Some(
            Producer::new(kafka()?, ProducerOptions::new(pipeline.name.clone()))
                .context("cannot create the sink producer")?,
        ),
        None => None,
    };
    let sessions = match &pipeline.serving.handler {
        Some(plugin) => {
            let publisher =
                pipeline
                    .serving
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
                    (hub.clone(), metrics.clone(), cluster.clone()),
                    publisher,
                )
                .context("cannot start its handler")?,
            )
        }
        None => None,
    };
    // A handler takes the client messages; otherwise the sink does.
    let inbound = match (&pipeline.serving.sink, producer, &sessions) {
        (Some(sink), Some(producer), None) => Some(Arc::new(
            inbound(host, pipeline, producer, sink)?.with_metrics(metrics.clone()),
        )),
        _ => None,
    };
    let resume = match (&pipeline.source, settings) {
        (Some(source), Some(settings)) if source.resume.is_some() => {
            Some(resume(pipeline, source, host, settings, &hub)?)
        }
        _ => None,
    };
    let recorder = match &pipeline.serving.record {
        Some(plan) => Some(
            Recorder::start(plan.clone(), &pipeline.name, metrics.clone())
                .context("cannot start its recorder")?,
        ),
        None => None,
    };
    let mut endpoint =
        Endpoint::new(pipeline, hub, auth, inbound, sessions, metrics).with_tenant(tenant.clone());
    endpoint.recorder = recorder;
    Ok(match resume {
        Some(resume) => endpoint.with_resume(Arc::new(resume)),
        None => endpoint,
    })
}

/// The resume of a pipeline whose source has it: its catch-up reader gets
/// its own instances of the transforms and router, so recovered records
/// are routed exactly as live ones.
fn resume(
    pipeline: &Pipeline,
    source: &Source,
    host: &Budgeted<'_>,
    settings: &ClientSettings,
    hub: &Arc<Hub>,
) -> anyhow::Result<Resume> {
    let stages = stages(pipeline, host.host, host.budget)
        .context("cannot start the plugins of its catch-up reader")?;
    let (settings, group) = (settings.clone(), source.group_id.clone());
    let options = ConsumerOptions::new(pipeline.name.clone())
        .counted_in(crate::metrics::global().consumer(&pipeline.tenant, &pipeline.name));
    let config = source.resume.clone().context("resume settings")?;
    Resume::new(
        (&pipeline.tenant, &pipeline.name),
        config,
        hub.frontier().clone(),
        move || {
            let reader = Reader::new(&settings, &group, &options)
                .context("cannot create its Kafka reader")?;
            Ok((reader, stages))
        },
    )
    .context("resume needs at least one key")
}

/// Fresh instances of the pipeline's transforms and router, for its record
/// path (each instance's `init` has run: a plugin that fails it fails here),
/// their calls charged to `budget` (the tenant's plugin CPU time) if given.
pub fn stages(
    pipeline: &Pipeline,
    host: &PluginHost,
    budget: Option<&Arc<CpuBudget>>,
) -> anyhow::Result<Stages> {
    let host = &Budgeted { host, budget };
    let instance = |plugin: &PluginConfig| -> anyhow::Result<_> {
        Ok(load(host, pipeline, plugin)?.instantiate()?)
    };
    Ok(Stages {
        transforms: pipeline
            .outbound_transforms()
            .map(instance)
            .collect::<anyhow::Result<Vec<_>>>()?,
        router: pipeline.router.as_ref().map(instance).transpose()?,
        format: pipeline
            .source
            .as_ref()
            .map(|s| s.format)
            .unwrap_or_default(),
    })
}

/// A running consumer and the way to change its plugins.
pub struct Feed {
    /// The consumer thread.
    pub handle: ConsumerHandle,
    /// Where the next [`Stages`] go.
    pub stages: StageSender,
    /// The brokers it reads from.
    pub bootstrap_servers: String,
}

/// Starts the consumer of `pipeline`'s `source`, feeding `stages` and then
/// `hub`. In broadcast mode, partitions in `resume` (the positions of the
/// consumer a reload replaces) start there.
pub fn feed(
    (pipeline, source): (&Pipeline, &Source),
    stages: Stages,
    (hub, metrics): (Arc<Hub>, Arc<PipelineMetrics>),
    (settings, cluster): (&ClientSettings, &Arc<Cluster>),
    resume: Positions,
) -> anyhow::Result<Feed> {
    let dead_letter = match &source.on_poison {
        PoisonPolicy::DeadLetter(topic) => Some(dead_letter(pipeline, settings, topic)?),
        _ => None,
    };
    let frontier = source.resume.is_some().then(|| hub.frontier().clone());
    let mut path = RecordPath::new(
        &pipeline.name,
        stages.transforms,
        stages.router,
        hub,
        stages.format,
        source.on_poison.clone(),
        dead_letter,
    )
    .with_metrics(metrics);
    if source.mode == crate::config::SourceMode::Shared && cluster.name().is_some() {
        // Only this node reads these partitions: the pipeline's subscribers
        // on the other nodes get their records through the cluster bus.
        let (cluster, tenant, name) = (
            cluster.clone(),
            pipeline.tenant.clone(),
            pipeline.name.clone(),
        );
        path = path.forwarding(Box::new(move |channel, frame| {
            let elsewhere = cluster.subscribed_elsewhere(&tenant, &name, channel);
            if elsewhere {
                cluster.broadcast(&tenant, &name, channel, frame);
            }
            elsewhere
        }));
    }
    let next = path.swappable();
    let mut subscription = Subscription::from(source);
    if let Membership::Direct { resume: start_at } = &mut subscription.membership {
        *start_at = resume;
    }
    let mut options = ConsumerOptions::new(pipeline.name.clone())
        .counted_in(crate::metrics::global().consumer(&pipeline.tenant, &pipeline.name));
    options.frontier = frontier;
    let handle = spawn_consumer(settings, subscription, options, move |records| {
        path.on_batch(records)
    })
    .context("cannot start its Kafka consumer")?;
    Ok(Feed {
        handle,
        stages: next,
        bootstrap_servers: settings.bootstrap_servers().to_owned(),
    })
}

/// Loads one of `pipeline`'s plugins, a component or a built-in, its calls
/// charged to `budget` if given (what `sluice test` shares with a run).
pub fn load_plugin(
    host: &PluginHost,
    pipeline: &Pipeline,
    plugin: &PluginConfig,
    budget: Option<&Arc<CpuBudget>>,
) -> anyhow::Result<LoadedPlugin> {
    load(&Budgeted { host, budget }, pipeline, plugin)
}

/// The plugin host, and the budget of the tenant whose plugins it loads.
struct Budgeted<'a> {
    host: &'a PluginHost,
    budget: Option<&'a Arc<CpuBudget>>,
}

fn load(
    host: &Budgeted<'_>,
    pipeline: &Pipeline,
    plugin: &PluginConfig,
) -> anyhow::Result<LoadedPlugin> {
    let place = (pipeline.name.as_str(), pipeline.tenant.as_str());
    Ok(host
        .host
        .load_configured(plugin, place, host.budget.cloned())?)
}

/// The sink: its producer and its own transform instances (in pools:
/// inbound messages arrive on the async side).
fn inbound(
    host: &Budgeted<'_>,
    pipeline: &Pipeline,
    producer: Producer,
    sink: &crate::config::Sink,
) -> anyhow::Result<InboundPath> {
    let transforms = pipeline
        .inbound_transforms()
        .map(|plugin| -> anyhow::Result<PluginPool> {
            Ok(PluginPool::start(
                &load(host, pipeline, plugin)?,
                POOL_WORKERS,
                POOL_QUEUE,
            )?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(InboundPath::new(
        producer,
        sink.topic.clone(),
        sink.key.clone(),
        sink.reply,
        transforms,
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
