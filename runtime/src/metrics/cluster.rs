//! The cluster bus's families: whether each tenant's bus works, the nodes
//! it sees, the connections presence shows, and the records it carried.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::PipelineLabels;

/// The cluster families of one registry.
#[derive(Debug, Default)]
pub(super) struct ClusterFamilies {
    up: Family<TenantLabels, Gauge>,
    nodes: Family<TenantLabels, Gauge>,
    connections: Family<PipelineLabels, Gauge>,
    records: Family<OpLabels, Counter>,
    node: Family<NodeLabels, Gauge>,
}

/// cluster + node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    cluster: String,
    node: String,
}

/// tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// tenant + operation + direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    tenant: String,
    op: String,
    direction: String,
}

impl ClusterFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "cluster_node_info",
            "1, labelled with this process's cluster and node id (with `[cluster]` only)",
            self.node.clone(),
        );
        registry.register(
            "cluster_bus_up",
            "1 while the tenant's cluster bus can be written and read, 0 while it cannot (local delivery goes on)",
            self.up.clone(),
        );
        registry.register(
            "cluster_nodes",
            "Nodes of the cluster this node hears on the tenant's bus, itself included",
            self.nodes.clone(),
        );
        registry.register(
            "cluster_connections",
            "Open connections of the pipeline on every node of the cluster",
            self.connections.clone(),
        );
        registry.register(
            "cluster_records",
            "Records on the tenant's cluster bus, by operation and direction (sent, received, failed, invalid)",
            self.records.clone(),
        );
    }

    pub(super) fn node(&self, cluster: &str, node: u16) {
        self.node
            .get_or_create(&NodeLabels {
                cluster: cluster.to_owned(),
                node: node.to_string(),
            })
            .set(1);
    }

    pub(super) fn cluster(&self, tenant: &str) -> ClusterMetrics {
        let labels = TenantLabels {
            tenant: tenant.to_owned(),
        };
        ClusterMetrics {
            up: self.up.get_or_create(&labels).clone(),
            nodes: self.nodes.get_or_create(&labels).clone(),
            connections: self.connections.clone(),
            records: self.records.clone(),
            tenant: tenant.to_owned(),
        }
    }
}

/// One tenant's cluster handles.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    up: Gauge,
    nodes: Gauge,
    connections: Family<PipelineLabels, Gauge>,
    records: Family<OpLabels, Counter>,
    tenant: String,
}

impl ClusterMetrics {
    /// Whether the bus works now.
    pub fn up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// How many nodes are heard, this one included.
    pub fn nodes(&self, nodes: usize) {
        self.nodes.set(nodes as i64);
    }

    /// `pipeline` has `count` connections over the cluster.
    pub fn connections(&self, pipeline: &str, count: usize) {
        self.connections
            .get_or_create(&PipelineLabels {
                tenant: self.tenant.clone(),
                pipeline: pipeline.to_owned(),
            })
            .set(count as i64);
    }

    /// A record of operation `op` went `direction`.
    pub fn record(&self, op: &str, direction: &str) {
        self.records
            .get_or_create(&OpLabels {
                tenant: self.tenant.clone(),
                op: op.to_owned(),
                direction: direction.to_owned(),
            })
            .inc();
    }
}
