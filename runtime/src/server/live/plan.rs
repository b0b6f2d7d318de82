//! Planning a config's pipelines against what runs: each keeps, shares or
//! rebuilds its hub, endpoint and consumer. Prepares what is new (plugins
//! compiled, `init` run), so a config that fails here changes nothing.

use std::sync::Arc;

use anyhow::Context as _;

use super::super::parts;
use super::Live;
use crate::config::{Config, Kafka, Pipeline};
use crate::hub::Hub;
use crate::kafka::ClientSettings;
use crate::metrics::PipelineMetrics;
use crate::pipeline::Stages;
use crate::plugin::PluginHost;
use crate::tenant::{TenantState, Tenants};
use crate::ws::Endpoint;

/// What happens to a pipeline's consumer.
pub(super) enum FeedPlan {
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
pub(super) struct Next {
    pub(super) config: Pipeline,
    pub(super) kafka: Option<Kafka>,
    pub(super) settings: Option<ClientSettings>,
    pub(super) hub: Arc<Hub>,
    pub(super) metrics: Arc<PipelineMetrics>,
    pub(super) tenant: Arc<TenantState>,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) endpoint_rebuilt: bool,
    pub(super) feed: FeedPlan,
    /// Its running version, by index into `Live::active`.
    pub(super) old: Option<usize>,
}

impl Live {
    /// Builds what `config` needs and is not running. Compiles and
    /// instantiates plugins, so it blocks.
    pub(super) fn prepare(
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
        let uses_kafka = pipeline.source.is_some() || pipeline.serving.sink.is_some();
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
        let changed = running.map(|a| Changed::between(&a.config, pipeline));
        // The catch-up reader of a resumable pipeline routes with its own
        // instances of the stages: new stages, new endpoint.
        let resumes = pipeline.source.as_ref().is_some_and(|s| s.resume.is_some());
        let (endpoint, endpoint_rebuilt) = match (running, &changed) {
            (Some(active), Some(changed))
                if kafka_same
                    && tenant_same
                    && !changed.endpoint
                    && !(resumes && (changed.stages || changed.source)) =>
            {
                (active.endpoint.clone(), false)
            }
            _ => {
                let mut endpoint = parts::endpoint(
                    pipeline,
                    host,
                    settings.as_ref(),
                    (hub.clone(), metrics.clone()),
                    (&tenant_state, &self.cluster),
                )?;
                if let Some(active) = running {
                    // Connections already open stay counted.
                    endpoint.slots = active.endpoint.slots.clone();
                    endpoint
                        .slots
                        .set_max(pipeline.serving.policy.max_connections);
                }
                (Arc::new(endpoint), true)
            }
        };
        let feed = match (running.zip(changed), &pipeline.source) {
            (_, None) => match running.and_then(|a| a.feed.as_ref()) {
                Some(_) => FeedPlan::Stop,
                None => FeedPlan::Keep,
            },
            (Some((active, changed)), Some(_))
                if active.feed.is_some() && kafka_same && !changed.source =>
            {
                if tenant_same && !changed.stages {
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
}

/// Which parts of a pipeline differ between its running and its next
/// version, each part compared whole.
struct Changed {
    /// How it serves sockets: the endpoint is rebuilt.
    endpoint: bool,
    /// Its source: the consumer restarts.
    source: bool,
    /// Its router or transforms: the record path gets new stages.
    stages: bool,
}

impl Changed {
    fn between(old: &Pipeline, new: &Pipeline) -> Self {
        // No `..`: a new field of `Pipeline` does not compile here until it
        // is given to the part a change of it must rebuild.
        let Pipeline {
            name: _,
            tenant: _,
            serving,
            source,
            router,
            transforms,
        } = new;
        Self {
            // Transforms run on client messages too, inside the endpoint.
            endpoint: old.serving != *serving || old.transforms != *transforms,
            source: old.source != *source,
            stages: old.router != *router || old.transforms != *transforms,
        }
    }
}
