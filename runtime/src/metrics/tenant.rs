//! Per-tenant metrics: how often each quota held something back, and what
//! the tenant uses (open connections, time in plugin calls).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// tenant + quota.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    tenant: String,
    quota: String,
}

/// The quotas, as their metric label says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// `max_connections`: a handshake refused.
    Connections,
    /// `inbound_messages_per_second`: a client message dropped (or its
    /// connection closed).
    Inbound,
    /// `outbound_deliveries_per_second`: a delivery dropped.
    Outbound,
    /// `plugin_cpu_share`: a plugin call made to wait.
    PluginCpu,
}

impl Quota {
    fn label(self) -> &'static str {
        match self {
            Quota::Connections => "max_connections",
            Quota::Inbound => "inbound_messages_per_second",
            Quota::Outbound => "outbound_deliveries_per_second",
            Quota::PluginCpu => "plugin_cpu_share",
        }
    }
}

/// The tenant families.
#[derive(Default)]
pub(super) struct TenantFamilies {
    throttled: Family<QuotaLabels, Counter>,
    throttled_seconds: Family<TenantLabels, Counter<f64, AtomicU64>>,
    plugin_seconds: Family<TenantLabels, Counter<f64, AtomicU64>>,
    connections: Family<TenantLabels, Gauge>,
}

impl TenantFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "tenant_quota_throttled",
            "Things a tenant quota held back: handshakes refused, messages or deliveries dropped, plugin calls delayed",
            self.throttled.clone(),
        );
        registry.register(
            "tenant_quota_throttled_seconds",
            "Time a tenant's plugin threads waited for its CPU share",
            self.throttled_seconds.clone(),
        );
        registry.register(
            "tenant_plugin_seconds",
            "Time spent in a tenant's plugin calls",
            self.plugin_seconds.clone(),
        );
        registry.register(
            "tenant_connections_active",
            "Open WebSocket connections of a tenant",
            self.connections.clone(),
        );
    }

    pub(super) fn tenant(&self, tenant: &str) -> TenantMetrics {
        let labels = TenantLabels {
            tenant: tenant.to_owned(),
        };
        let throttled = |quota: Quota| {
            self.throttled
                .get_or_create(&QuotaLabels {
                    tenant: tenant.to_owned(),
                    quota: quota.label().to_owned(),
                })
                .clone()
        };
        TenantMetrics {
            connections_refused: throttled(Quota::Connections),
            inbound: throttled(Quota::Inbound),
            outbound: throttled(Quota::Outbound),
            plugin_cpu: throttled(Quota::PluginCpu),
            throttled_seconds: self.throttled_seconds.get_or_create(&labels).clone(),
            plugin_seconds: self.plugin_seconds.get_or_create(&labels).clone(),
            connections: self.connections.get_or_create(&labels).clone(),
        }
    }
}

/// One tenant's handles, labels resolved.
#[derive(Debug, Clone)]
pub struct TenantMetrics {
    connections_refused: Counter,
    inbound: Counter,
    outbound: Counter,
    plugin_cpu: Counter,
    throttled_seconds: Counter<f64, AtomicU64>,
    plugin_seconds: Counter<f64, AtomicU64>,
    connections: Gauge,
}

impl TenantMetrics {
    /// `count` things held back by `quota`.
    pub fn throttled(&self, quota: Quota, count: u64) {
        match quota {
            Quota::Connections => &self.connections_refused,
            Quota::Inbound => &self.inbound,
            Quota::Outbound => &self.outbound,
            Quota::PluginCpu => &self.plugin_cpu,
        }
        .inc_by(count);
    }

    /// A plugin thread waited `seconds` for the CPU share.
    pub fn waited(&self, seconds: f64) {
        self.throttled_seconds.inc_by(seconds);
    }

    /// A plugin call took `seconds`.
    pub fn plugin_time(&self, seconds: f64) {
        self.plugin_seconds.inc_by(seconds);
    }

    /// Things each quota held back so far, by its label.
    pub fn throttled_counts(&self) -> Vec<(&'static str, u64)> {
        [
            (Quota::Connections, &self.connections_refused),
            (Quota::Inbound, &self.inbound),
            (Quota::Outbound, &self.outbound),
            (Quota::PluginCpu, &self.plugin_cpu),
        ]
        .into_iter()
        .map(|(quota, counter)| (quota.label(), counter.get()))
        .collect()
    }

    /// Seconds spent in plugin calls so far.
    pub fn plugin_seconds(&self) -> f64 {
        self.plugin_seconds.get()
    }

    /// Sets the open connections.
    pub fn set_connections(&self, open: usize) {
        self.connections.set(open as i64);
    }
}
