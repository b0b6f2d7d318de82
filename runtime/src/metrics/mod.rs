//! Prometheus metrics (prometheus-client): the one way the process counts
//! events. Typed families labelled by tenant and pipeline, and handles that
//! hold their label sets already resolved, so the hot paths only touch an
//! atomic. The process uses one registry ([`global`]); a test makes its
//! own ([`Metrics::new`]), hands its handles to the part under test and
//! reads them back with [`Metrics::value`]. Rendered as OpenMetrics text by
//! [`render`] (counters get the `_total` suffix there).

mod chaos;
mod cluster;
mod consumer;
mod lag;
mod resume;
mod tenant;

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use chaos::ChaosCounters;
pub use cluster::ClusterMetrics;
pub use consumer::ConsumerMetrics;
pub use lag::{LagMap, LagSource};
pub use resume::ResumeMetrics;
pub use tenant::{Quota, TenantMetrics};

/// tenant + pipeline.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    /// The pipeline's tenant ("" when no pipeline was found).
    pub tenant: String,
    /// The pipeline ("" when no pipeline was found).
    pub pipeline: String,
}

/// tenant + pipeline + why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    tenant: String,
    pipeline: String,
    reason: String,
}

/// How a config reload ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// tenant + pipeline + kind of error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    tenant: String,
    pipeline: String,
    r#type: String,
}

/// tenant + pipeline + plugin + outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tenant: String,
    pipeline: String,
    plugin: String,
    result: String,
}

/// tenant + pipeline + plugin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    tenant: String,
    pipeline: String,
    plugin: String,
}

/// Plugin call durations from 10 µs to ~5 s.
#[derive(Clone)]
struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.000_01, 2.5, 15))
    }
}

/// Every family the process exports.
pub struct Metrics {
    registry: Registry,
    connections_active: Family<PipelineLabels, Gauge>,
    connections: Family<PipelineLabels, Counter>,
    connections_rejected: Family<ReasonLabels, Counter>,
    messages_received: Family<PipelineLabels, Counter>,
    messages_sent: Family<PipelineLabels, Counter>,
    bytes_received: Family<PipelineLabels, Counter>,
    bytes_sent: Family<PipelineLabels, Counter>,
    errors: Family<TypeLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    produce_errors: Family<PipelineLabels, Counter>,
    records_routed: Family<PipelineLabels, Counter>,
    records_poisoned: Family<PipelineLabels, Counter>,
    deliveries: Family<PipelineLabels, Counter>,
    refused_actions: Family<PipelineLabels, Counter>,
    plugin_calls: Family<CallLabels, Counter>,
    plugin_duration: Family<PluginLabels, Histogram, DurationBuckets>,
    reloads: Family<ResultLabels, Counter>,
    chaos: chaos::ChaosFamily,
    lag: LagSource,
    tenants: tenant::TenantFamilies,
    consumers: consumer::ConsumerFamilies,
    resume: resume::ResumeFamilies,
    cluster: cluster::ClusterFamilies,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry of its own, with every family (the process has
    /// [`global`]; tests make their own).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Self {
            registry: Registry::default(),
            connections_active: Family::default(),
            connections: Family::default(),
            connections_rejected: Family::default(),
            messages_received: Family::default(),
            messages_sent: Family::default(),
            bytes_received: Family::default(),
            bytes_sent: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            produce_errors: Family::default(),
            records_routed: Family::default(),
            records_poisoned: Family::default(),
            deliveries: Family::default(),
            refused_actions: Family::default(),
            plugin_calls: Family::default(),
            plugin_duration: Family::new_with_constructor(DurationBuckets),
            reloads: Family::default(),
            chaos: Family::default(),
            lag: LagSource::default(),
            tenants: tenant::TenantFamilies::default(),
            consumers: consumer::ConsumerFamilies::default(),
            resume: resume::ResumeFamilies::default(),
            cluster: cluster::ClusterFamilies::default(),
        };
        let m = &metrics;
        registry.register(
            "ws_connections_active",
            "Open WebSocket connections",
            m.connections_active.clone(),
        );
        registry.register(
            "ws_connections",
            "WebSocket connections opened",
            m.connections.clone(),
        );
        registry.register(
            "ws_connections_rejected",
            "Handshakes refused, by reason",
            m.connections_rejected.clone(),
        );
        registry.register(
            "ws_messages_received",
            "Messages received from clients",
            m.messages_received.clone(),
        );
        registry.register(
            "ws_messages_sent",
            "Messages written to clients",
            m.messages_sent.clone(),
        );
        registry.register(
            "ws_messages_bytes_received",
            "Payload bytes received from clients",
            m.bytes_received.clone(),
        );
        registry.register(
            "ws_messages_bytes_sent",
            "Payload bytes written to clients",
            m.bytes_sent.clone(),
        );
        registry.register(
            "ws_errors",
            "Connections closed for an error, by type",
            m.errors.clone(),
        );
        registry.register(
            "messages_dropped",
            "Messages dropped, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "kafka_produce_errors",
            "Records Kafka did not accept",
            m.produce_errors.clone(),
        );
        registry.register(
            "records_routed",
            "Records queued for at least one subscriber",
            m.records_routed.clone(),
        );
        registry.register(
            "records_poisoned",
            "Records the poison policy handled (skipped, dead-lettered or stopping the pipeline)",
            m.records_poisoned.clone(),
        );
        registry.register(
            "deliveries",
            "Messages queued for a subscriber (a record to ten subscribers is ten)",
            m.deliveries.clone(),
        );
        registry.register(
            "handler_actions_refused",
            "Handler actions the host did not carry out (an unknown connection, a channel or topic not allowed, a record Kafka refused)",
            m.refused_actions.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls, by result",
            m.plugin_calls.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Time spent in plugin calls",
            m.plugin_duration.clone(),
        );
        registry.register(
            "config_reloads",
            "Live reloads of the pipeline file, by result (ok, failed)",
            m.reloads.clone(),
        );
        registry.register(
            "chaos_actions",
            "What `[pipelines.chaos]` did on purpose, by action (dropped, duplicated, reordered, delayed, disconnected, slow_consumer_dropped)",
            m.chaos.clone(),
        );
        registry.register_collector(Box::new(m.lag.clone()));
        m.tenants.register(&mut registry);
        m.consumers.register(&mut registry);
        m.resume.register(&mut registry);
        m.cluster.register(&mut registry);
        Self {
            registry,
            ..metrics
        }
    }

    /// The handles of one pipeline.
    pub fn pipeline(&self, tenant: &str, pipeline: &str) -> Arc<PipelineMetrics> {
        let labels = PipelineLabels {
            tenant: tenant.to_owned(),
            pipeline: pipeline.to_owned(),
        };
        Arc::new(PipelineMetrics {
            connections_active: self.connections_active.get_or_create(&labels).clone(),
            connections: self.connections.get_or_create(&labels).clone(),
            messages_received: self.messages_received.get_or_create(&labels).clone(),
            messages_sent: self.messages_sent.get_or_create(&labels).clone(),
            bytes_received: self.bytes_received.get_or_create(&labels).clone(),
            bytes_sent: self.bytes_sent.get_or_create(&labels).clone(),
            produce_errors: self.produce_errors.get_or_create(&labels).clone(),
            records_routed: self.records_routed.get_or_create(&labels).clone(),
            records_poisoned: self.records_poisoned.get_or_create(&labels).clone(),
            deliveries: self.deliveries.get_or_create(&labels).clone(),
            refused_actions: self.refused_actions.get_or_create(&labels).clone(),
            errors: self.errors.clone(),
            dropped: self.dropped.clone(),
            rejected: self.connections_rejected.clone(),
            chaos: self.chaos.clone(),
            labels,
        })
    }

    /// The handles of one pipeline's Kafka consumer.
    pub fn consumer(&self, tenant: &str, pipeline: &str) -> ConsumerMetrics {
        self.consumers.consumer(&PipelineLabels {
            tenant: tenant.to_owned(),
            pipeline: pipeline.to_owned(),
        })
    }

    /// The handles of one pipeline's resume (recoveries, catch-up reads).
    pub fn resume(&self, tenant: &str, pipeline: &str) -> ResumeMetrics {
        self.resume.resume(&PipelineLabels {
            tenant: tenant.to_owned(),
            pipeline: pipeline.to_owned(),
        })
    }

    /// Says which cluster and node this process is (`cluster_node_info`).
    pub fn cluster_node(&self, cluster: &str, node: u16) {
        self.cluster.node(cluster, node);
    }

    /// The handles of one tenant's cluster bus.
    pub fn cluster(&self, tenant: &str) -> ClusterMetrics {
        self.cluster.cluster(tenant)
    }

    /// Everything in this registry, as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The value of one series as [`Metrics::render`] writes it, e.g.
    /// `messages_dropped_total{tenant="",pipeline="p",reason="poison"}`
    /// (`None`: no such series yet).
    pub fn value(&self, series: &str) -> Option<f64> {
        self.render().lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }

    /// Counts a refused handshake (`pipeline` is `None` before routing).
    pub fn rejected(&self, pipeline: Option<&PipelineLabels>, reason: &str) {
        let (tenant, pipeline) = pipeline.map_or((String::new(), String::new()), |p| {
            (p.tenant.clone(), p.pipeline.clone())
        });
        self.connections_rejected
            .get_or_create(&ReasonLabels {
                tenant,
                pipeline,
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a live reload.
    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The handles of one tenant.
    pub fn tenant(&self, tenant: &str) -> TenantMetrics {
        self.tenants.tenant(tenant)
    }

    /// Where consumer lag is read from at each scrape.
    pub fn lag(&self) -> &LagSource {
        &self.lag
    }

    /// The handles of one plugin in one pipeline.
    pub fn plugin(&self, tenant: &str, pipeline: &str, plugin: &str) -> PluginMetrics {
        let call = |result: &str| {
            self.plugin_calls
                .get_or_create(&CallLabels {
                    tenant: tenant.to_owned(),
                    pipeline: pipeline.to_owned(),
                    plugin: plugin.to_owned(),
                    result: result.to_owned(),
                })
                .clone()
        };
        PluginMetrics {
            ok: call("ok"),
            error: call("error"),
            duration: self
                .plugin_duration
                .get_or_create(&PluginLabels {
                    tenant: tenant.to_owned(),
                    pipeline: pipeline.to_owned(),
                    plugin: plugin.to_owned(),
                })
                .clone(),
        }
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Everything the process counts, as OpenMetrics text.
pub fn render() -> String {
    global().render()
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One pipeline's handles, labels resolved.
#[derive(Debug)]
pub struct PipelineMetrics {
    labels: PipelineLabels,
    connections_active: Gauge,
    connections: Counter,
    messages_received: Counter,
    messages_sent: Counter,
    bytes_received: Counter,
    bytes_sent: Counter,
    produce_errors: Counter,
    records_routed: Counter,
    records_poisoned: Counter,
    deliveries: Counter,
    refused_actions: Counter,
    // Families of its registry whose labels vary per call.
    errors: Family<TypeLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    chaos: chaos::ChaosFamily,
}

impl PipelineMetrics {
    /// Its labels.
    pub fn labels(&self) -> &PipelineLabels {
        &self.labels
    }

    /// Its chaos counters (series made on first use: only pipelines with
    /// `[pipelines.chaos]` have them).
    pub fn chaos(&self) -> ChaosCounters {
        ChaosCounters::of(&self.chaos, &self.labels)
    }

    /// A connection opened; the returned guard counts it closed when dropped.
    pub fn opened(self: &Arc<Self>) -> OpenConnection {
        self.connections.inc();
        self.connections_active.inc();
        OpenConnection(self.clone())
    }

    /// A client message of `bytes` arrived.
    pub fn received(&self, bytes: usize) {
        self.messages_received.inc();
        self.bytes_received.inc_by(bytes as u64);
    }

    /// A message of `bytes` was written to a client.
    pub fn sent(&self, bytes: usize) {
        self.messages_sent.inc();
        self.bytes_sent.inc_by(bytes as u64);
    }

    /// A connection was closed for an error of this type.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&TypeLabels {
                tenant: self.labels.tenant.clone(),
                pipeline: self.labels.pipeline.clone(),
                r#type: kind.to_owned(),
            })
            .inc();
    }

    /// `count` messages were dropped for `reason`.
    pub fn dropped(&self, reason: &str, count: u64) {
        self.dropped
            .get_or_create(&ReasonLabels {
                tenant: self.labels.tenant.clone(),
                pipeline: self.labels.pipeline.clone(),
                reason: reason.to_owned(),
            })
            .inc_by(count);
    }

    /// A handshake to this pipeline was refused for `reason`.
    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabels {
                tenant: self.labels.tenant.clone(),
                pipeline: self.labels.pipeline.clone(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A record was queued for at least one subscriber.
    pub fn routed(&self) {
        self.records_routed.inc();
    }

    /// The poison policy handled a record.
    pub fn poisoned(&self) {
        self.records_poisoned.inc();
    }

    /// The host refused `count` of a handler's actions.
    pub fn refused_actions(&self, count: u64) {
        self.refused_actions.inc_by(count);
    }

    /// `count` messages were queued for subscribers.
    pub fn delivered(&self, count: u64) {
        self.deliveries.inc_by(count);
    }

    /// Kafka refused or failed a record.
    pub fn produce_error(&self) {
        self.produce_errors.inc();
    }
}

/// Counts an open connection closed when dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<PipelineMetrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_active.dec();
    }
}

/// One plugin's handles.
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    ok: Counter,
    error: Counter,
    duration: Histogram,
}

impl PluginMetrics {
    /// Records a call that took `seconds` and succeeded or not.
    pub fn call(&self, seconds: f64, ok: bool) {
        if ok { &self.ok } else { &self.error }.inc();
        self.duration.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_show_up_in_the_text_with_their_labels() {
        let pipeline = global().pipeline("acme", "metrics-test");
        let open = pipeline.opened();
        pipeline.received(10);
        pipeline.sent(7);
        pipeline.dropped("slow_client", 3);
        pipeline.error("protocol");
        pipeline.rejected("origin");
        global()
            .plugin("acme", "metrics-test", "p")
            .call(0.001, false);
        let text = render();
        let line = |name: &str, extra: &str| {
            format!("{name}{{tenant=\"acme\",pipeline=\"metrics-test\"{extra}}}")
        };
        for expected in [
            format!("{} 1", line("ws_connections_active", "")),
            format!("{} 1", line("ws_connections_total", "")),
            format!("{} 10", line("ws_messages_bytes_received_total", "")),
            format!("{} 7", line("ws_messages_bytes_sent_total", "")),
            format!(
                "{} 3",
                line("messages_dropped_total", ",reason=\"slow_client\"")
            ),
            format!("{} 1", line("ws_errors_total", ",type=\"protocol\"")),
            format!(
                "{} 1",
                line("ws_connections_rejected_total", ",reason=\"origin\"")
            ),
            format!(
                "{} 1",
                line("plugin_calls_total", ",plugin=\"p\",result=\"error\"")
            ),
        ] {
            assert!(text.contains(&expected), "{expected} not in:\n{text}");
        }
        drop(open);
        assert!(render().contains(&format!("{} 0", line("ws_connections_active", ""))));
    }
}
