//! One cluster of Sluice processes, through Kafka: processes whose
//! `[cluster]` has the same name share rooms, admin actions and presence.
//!
//! Each tenant has a bus topic (`sluice.cluster.<cluster>.<tenant>` or its
//! `cluster_topic`, on the tenant's own Kafka) that every node writes to
//! and reads whole (`bus.rs`). What a node's clients or operators start is
//! done locally first, then sent to the others: a handler's `broadcast`,
//! an admin broadcast, an admin `send` or `close` of a connection on
//! another node. Presence (`presence.rs`) is each node's connections as
//! the others last heard them. The records are in `wire.rs`.
//!
//! A process without `[cluster]` is node 0, has no buses and sends nothing.

mod bus;
mod presence;
mod wire;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config;
use crate::connections::{ConnInfo, Registry};
use crate::hub::{Frame, Hub};
use crate::kafka::{ClientSettings, KafkaError};

pub use wire::Member;

use bus::{Bus, BusSpec};
use wire::{Body, Sender};

/// What a tenant's bus is built from at an apply.
pub struct TenantBus {
    /// The tenant.
    pub tenant: String,
    /// Its bus topic ([`config::Cluster::bus_topic`]).
    pub topic: String,
    /// Its Kafka settings as written.
    pub kafka: config::Kafka,
    /// Its client settings.
    pub settings: ClientSettings,
    /// Its pipelines' hubs, by name.
    pub hubs: HashMap<String, Arc<Hub>>,
}

/// A connection somewhere in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The node it is open on.
    pub node: u16,
    /// It, as presence shows it.
    pub member: Member,
}

/// This process as a node, and its tenants' buses.
pub struct Cluster {
    /// `[cluster]`, when the process is in one.
    config: Option<config::Cluster>,
    me: Sender,
    registry: Arc<Registry>,
    buses: ArcSwap<HashMap<String, Arc<Bus>>>,
}

impl Cluster {
    /// Node 0 of no cluster: no buses, nothing sent.
    pub fn standalone() -> Arc<Self> {
        Self::new(None)
    }

    /// This process as a node of `config` (`None`: of no cluster), with its
    /// configured node id or one drawn at random.
    pub fn new(config: Option<&config::Cluster>) -> Arc<Self> {
        let node = match config {
            None => 0,
            Some(c) => c.node_id.unwrap_or_else(|| (random() % 65_535 + 1) as u16),
        };
        let me = Sender {
            node,
            incarnation: random(),
        };
        if let Some(c) = config {
            tracing::info!(cluster = %c.name, node, drawn = c.node_id.is_none(), "Cluster node.");
            crate::metrics::global().cluster_node(&c.name, node);
        }
        Arc::new(Self {
            config: config.cloned(),
            me,
            registry: Arc::new(Registry::new(node)),
            buses: ArcSwap::default(),
        })
    }

    /// The process's open connections (their ids carry the node).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// This node's id (0: no cluster).
    pub fn node(&self) -> u16 {
        self.me.node
    }

    /// The cluster's name, when the process is in one.
    pub fn name(&self) -> Option<&str> {
        self.config.as_ref().map(|c| c.name.as_str())
    }

    /// Why a reload with `next` as its `[cluster]` cannot be applied: the
    /// node's identity is in every open connection's id.
    pub fn refuses(&self, next: Option<&config::Cluster>) -> Option<String> {
        let same = match (&self.config, next) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.name == b.name
                    && (b.node_id.is_none() || b.node_id == Some(self.me.node))
                    && a.presence_interval == b.presence_interval
            }
            _ => false,
        };
        (!same).then(|| "`[cluster]` changed: a node's cluster, node id and presence interval are fixed for the life of the process (restart it to change them)".to_owned())
    }

    /// Makes the buses those of `tenants`: a bus whose topic and Kafka
    /// settings did not change is kept (with the new hubs), the others are
    /// started or stopped. Nothing without `[cluster]`.
    pub fn apply(&self, tenants: Vec<TenantBus>) -> Result<(), KafkaError> {
        let Some(config) = &self.config else {
            return Ok(());
        };
        let current = self.buses.load();
        let mut next = HashMap::new();
        for t in tenants {
            let topic = t.topic;
            let bus = match current.get(&t.tenant) {
                Some(bus) if bus.topic == topic && bus.kafka == t.kafka => {
                    bus.inbound().hubs.store(Arc::new(t.hubs));
                    bus.clone()
                }
                _ => {
                    tracing::info!(tenant = %t.tenant, %topic, "Cluster bus starting.");
                    Bus::start(
                        BusSpec {
                            tenant: t.tenant.clone(),
                            topic,
                            kafka: t.kafka,
                            settings: t.settings,
                        },
                        self.me,
                        (self.registry.clone(), config.presence_interval),
                        t.hubs,
                    )?
                }
            };
            next.insert(t.tenant, bus);
        }
        self.buses.store(Arc::new(next));
        Ok(())
    }

    fn bus(&self, tenant: &str) -> Option<Arc<Bus>> {
        self.buses.load().get(tenant).cloned()
    }

    /// Sends a broadcast to `pipeline`'s `channel` to the other nodes (the
    /// caller has delivered it here).
    pub fn broadcast(&self, tenant: &str, pipeline: &str, channel: &str, frame: &Frame) {
        if let Some(bus) = self.bus(tenant) {
            bus.send(&Body::Broadcast {
                pipeline: pipeline.to_owned(),
                channel: channel.to_owned(),
                kind: frame.kind,
                payload: frame.payload.clone(),
            });
        }
    }

    /// Sends `frame` to connection `conn` on another node, if presence
    /// knows it there (in `pipeline`, if given); returns its node.
    pub fn send(
        &self,
        tenant: &str,
        pipeline: Option<&str>,
        conn: u64,
        frame: &Frame,
    ) -> Option<u16> {
        let bus = self.bus(tenant)?;
        let (node, member) = bus.inbound().presence.find(conn)?;
        if pipeline.is_some_and(|p| member.pipeline != p) {
            return None;
        }
        bus.send(&Body::Send {
            conn,
            pipeline: pipeline.map(str::to_owned),
            kind: frame.kind,
            payload: frame.payload.clone(),
        });
        Some(node)
    }

    /// Asks the node of connection `conn` to close it, if presence knows it
    /// on another node; returns that node.
    pub fn close(&self, tenant: &str, conn: u64, code: u16, reason: &str) -> Option<u16> {
        let bus = self.bus(tenant)?;
        let (node, _) = bus.inbound().presence.find(conn)?;
        bus.send(&Body::Close {
            conn,
            code,
            reason: reason.to_owned(),
        });
        Some(node)
    }

    /// Whether presence has a subscriber of `pipeline`'s `channel` on
    /// another node.
    pub fn subscribed_elsewhere(&self, tenant: &str, pipeline: &str, channel: &str) -> bool {
        self.bus(tenant)
            .is_some_and(|bus| bus.inbound().presence.elsewhere(pipeline, channel))
    }

    /// Connection `conn` of `tenant` on another node, if presence knows it.
    pub fn find(&self, tenant: &str, conn: u64) -> Option<Placed> {
        let (node, member) = self.bus(tenant)?.inbound().presence.find(conn)?;
        Some(Placed { node, member })
    }

    /// The connections of `tenant` on the other nodes that `keep` accepts.
    pub fn elsewhere(&self, tenant: &str, keep: impl Fn(&Member) -> bool) -> Vec<Placed> {
        self.bus(tenant).map_or_else(Vec::new, |bus| {
            bus.inbound()
                .presence
                .members(keep)
                .into_iter()
                .map(|(node, member)| Placed { node, member })
                .collect()
        })
    }

    /// The subscribers of `pipeline`'s `channel` on every node, by id.
    pub fn channel_members(&self, tenant: &str, pipeline: &str, channel: &str) -> Vec<Placed> {
        let mut all: Vec<Placed> = self
            .local(tenant)
            .into_iter()
            .filter(|c| c.pipeline == pipeline && c.channels().iter().any(|c| c == channel))
            .map(|c| Placed {
                node: self.me.node,
                member: member(&c),
            })
            .collect();
        all.extend(self.elsewhere(tenant, |m| m.subscribed(pipeline, channel)));
        all.sort_by_key(|p| p.member.id);
        all
    }

    /// How many connections `pipeline` has on every node.
    pub fn connection_count(&self, tenant: &str, pipeline: &str) -> usize {
        let here = self
            .local(tenant)
            .iter()
            .filter(|c| c.pipeline == pipeline)
            .count();
        here + self.connections_elsewhere(tenant, pipeline)
    }

    /// How many connections `pipeline` has on the other nodes.
    pub fn connections_elsewhere(&self, tenant: &str, pipeline: &str) -> usize {
        self.count_elsewhere(tenant, |m| m.pipeline == pipeline)
    }

    /// How many subscribers `pipeline`'s `channel` has on the other nodes.
    pub fn subscribers_elsewhere(&self, tenant: &str, pipeline: &str, channel: &str) -> usize {
        self.count_elsewhere(tenant, |m| m.subscribed(pipeline, channel))
    }

    /// How many subscribers `pipeline`'s `channel` has on every node.
    pub fn channel_count(&self, tenant: &str, pipeline: &str, channel: &str) -> usize {
        let here = self
            .local(tenant)
            .iter()
            .filter(|c| c.pipeline == pipeline && c.channels().iter().any(|c| c == channel))
            .count();
        here + self.subscribers_elsewhere(tenant, pipeline, channel)
    }

    fn count_elsewhere(&self, tenant: &str, keep: impl Fn(&Member) -> bool) -> usize {
        self.bus(tenant)
            .map_or(0, |bus| bus.inbound().presence.count(keep))
    }

    fn local(&self, tenant: &str) -> Vec<Arc<ConnInfo>> {
        self.registry
            .all()
            .into_iter()
            .filter(|c| c.tenant == tenant)
            .collect()
    }

    /// The nodes `tenant`'s bus hears, this one included, in order.
    pub fn nodes(&self, tenant: &str) -> Vec<u16> {
        let mut nodes = self
            .bus(tenant)
            .map_or_else(Vec::new, |bus| bus.inbound().presence.nodes());
        nodes.push(self.me.node);
        nodes.sort_unstable();
        nodes
    }

    /// Why `tenant`'s bus does not work now (`None`: it does, or there is
    /// no cluster).
    pub fn problem(&self, tenant: &str) -> Option<String> {
        self.bus(tenant)?.problem()
    }

    /// Tells the other nodes this one is stopping (they forget its
    /// connections at once) and stops the buses.
    pub async fn leave(&self) {
        let buses = self.buses.swap(Arc::default());
        for bus in buses.values() {
            bus.leave().await;
        }
    }
}

/// A connection as presence shows it.
pub(crate) fn member(conn: &ConnInfo) -> Member {
    Member {
        id: conn.id,
        pipeline: conn.pipeline.clone(),
        principal: conn.principal.clone(),
        channels: conn.channels(),
    }
}

/// A random number from the standard library's per-process random keys.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cluster(name: &str, node_id: Option<u16>) -> config::Cluster {
        config::Cluster {
            name: name.into(),
            node_id,
            presence_interval: Duration::from_secs(5),
        }
    }

    #[test]
    fn ids_carry_the_node_and_a_reload_keeps_the_identity() {
        let node = Cluster::new(Some(&cluster("eu", Some(7))));
        assert_eq!(node.node(), 7);
        let id = node.registry().next_id();
        assert_eq!(crate::connections::node_of(id), 7);
        assert!(id < 1 << 53, "exact in JSON");
        assert_eq!(node.refuses(Some(&cluster("eu", Some(7)))), None);
        assert!(node.refuses(Some(&cluster("eu", Some(8)))).is_some());
        assert!(node.refuses(Some(&cluster("us", Some(7)))).is_some());
        assert!(node.refuses(None).is_some());

        // A drawn id is kept by a reload that still draws one.
        let drawn = Cluster::new(Some(&cluster("eu", None)));
        assert_ne!(drawn.node(), 0);
        assert_eq!(drawn.refuses(Some(&cluster("eu", None))), None);

        let alone = Cluster::standalone();
        assert_eq!(alone.registry().next_id(), 1);
        assert!(alone.refuses(Some(&cluster("eu", None))).is_some());
        assert_eq!(alone.refuses(None), None);
    }
}
