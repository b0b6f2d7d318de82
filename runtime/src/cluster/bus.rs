//! One tenant's cluster bus: a producer every node writes with, a direct
//! consumer that reads the whole topic from the end it found at start, and
//! the task that states this node's connections (presence).
//!
//! The bus never stands between a node and its own clients: everything is
//! delivered locally first, and what the bus adds is what the other nodes
//! sent. When it fails, local delivery goes on and [`Bus::problem`] says why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};

use super::presence::{Presence, Stated};
use super::wire::{self, Body, Member, PresenceUpdate, Sender};
use crate::config::{self, StartFrom};
use crate::connections::{Registry, node_of};
use crate::hub::{CloseRequest, Frame, Hub};
use crate::kafka::{
    BatchVerdict, ClientSettings, ConsumerHandle, ConsumerOptions, KafkaError, Membership,
    Positions, Producer, ProducerOptions, Subscription, spawn_consumer,
};
use crate::metrics::ClusterMetrics;
use crate::record::Record;

/// A bus record not acknowledged in this time is dropped: a room message
/// is worth little seconds late, and a stalled bus must not pile up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Changes to this node's connections are gathered this long before they
/// are stated: a burst of joins is one record, not one each.
const GATHER: Duration = Duration::from_millis(20);

/// Connections per presence record of a restatement.
const CHUNK: usize = 500;

/// How often silent nodes are looked for, and the bus's health updated.
const SWEEP: Duration = Duration::from_secs(1);

/// Partitions of a bus topic the host creates (an existing topic is used
/// as it is; a room keeps its order on any number).
const PARTITIONS: i32 = 1;

/// What a bus is built from.
pub(super) struct BusSpec {
    pub tenant: String,
    pub topic: String,
    /// The tenant's Kafka settings as written (a reload keeps the bus
    /// while they and the topic stay the same).
    pub kafka: config::Kafka,
    pub settings: ClientSettings,
}

/// One tenant's bus.
pub(super) struct Bus {
    pub topic: String,
    pub kafka: config::Kafka,
    producer: Producer,
    consumer: ConsumerHandle,
    inbound: Arc<Inbound>,
    writes: Arc<Writes>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Where delivery reports are awaited: a send may come from a
    /// consumer thread, outside the runtime.
    runtime: tokio::runtime::Handle,
    metrics: ClusterMetrics,
}

/// How the latest writes went.
#[derive(Debug, Default)]
struct Writes {
    /// The latest failure, when no write succeeded since.
    failing: Mutex<Option<String>>,
}

/// The receiving side, shared with the consumer thread.
pub(super) struct Inbound {
    me: Sender,
    tenant: String,
    registry: Arc<Registry>,
    /// The tenant's pipelines' hubs, by name (every apply replaces them).
    pub hubs: ArcSwap<HashMap<String, Arc<Hub>>>,
    pub presence: Arc<Presence>,
    /// Asks the presence task to restate this node's connections now.
    restate: Notify,
    /// Another process uses this node id (its incarnation).
    clash: Mutex<Option<u64>>,
    metrics: ClusterMetrics,
}

impl Bus {
    /// Starts the bus of `spec.tenant` for node `me`. Call from a tokio
    /// runtime.
    pub fn start(
        spec: BusSpec,
        me: Sender,
        (registry, interval): (Arc<Registry>, Duration),
        hubs: HashMap<String, Arc<Hub>>,
    ) -> Result<Arc<Self>, KafkaError> {
        let metrics = crate::metrics::global().cluster(&spec.tenant);
        let options = ProducerOptions {
            message_timeout: MESSAGE_TIMEOUT,
            ..ProducerOptions::new(format!("cluster-{}", spec.tenant))
        };
        let producer = Producer::new(&spec.settings, options)?;
        let inbound = Arc::new(Inbound {
            me,
            tenant: spec.tenant.clone(),
            registry: registry.clone(),
            hubs: ArcSwap::from_pointee(hubs),
            presence: Arc::new(Presence::new(interval)),
            restate: Notify::new(),
            clash: Mutex::new(None),
            metrics: metrics.clone(),
        });
        let subscription = Subscription {
            topics: vec![spec.topic.clone()],
            // Named for the logs only: a direct consumer joins no group.
            group_id: format!("sluice-cluster-{}-{}", me.node, me.incarnation),
            start: StartFrom::Latest,
            membership: Membership::Direct {
                resume: Positions::new(),
            },
        };
        let reader = inbound.clone();
        let consumer = spawn_consumer(
            &spec.settings,
            subscription,
            ConsumerOptions::new(format!("cluster-{}", spec.tenant))
                .counted_in(crate::metrics::global().consumer(&spec.tenant, "")),
            move |records| {
                for record in records {
                    reader.handle(record);
                }
                BatchVerdict::Continue
            },
        )?;
        let settings = spec.settings.clone();
        let topic = spec.topic.clone();
        let created = tokio::spawn(async move {
            match crate::kafka::ensure_topic(&settings, &topic, PARTITIONS).await {
                Ok(true) => tracing::info!(%topic, "Cluster bus topic created."),
                Ok(false) => {}
                // The brokers may create it on first use, or an operator
                // must: the bus's health says so until it is read.
                Err(error) => {
                    tracing::warn!(%topic, %error, "Cannot create the cluster bus topic.")
                }
            }
        });
        let bus = Arc::new(Self {
            topic: spec.topic,
            kafka: spec.kafka,
            producer,
            consumer,
            inbound,
            writes: Arc::default(),
            tasks: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            metrics,
        });
        let stating = tokio::spawn(state_presence(
            Arc::downgrade(&bus),
            registry.changes(),
            interval,
        ));
        *bus.tasks.lock().unwrap_or_else(|e| e.into_inner()) = vec![created, stating];
        Ok(bus)
    }

    /// The receiving side (hubs, presence).
    pub fn inbound(&self) -> &Arc<Inbound> {
        &self.inbound
    }

    /// Queues `body` for the other nodes; never waits. A record that cannot
    /// be queued or is not acknowledged is counted and noted as the bus's
    /// problem, and dropped.
    pub fn send(&self, body: &Body) {
        let op = body.op();
        let encoded = wire::encode(self.inbound.me, &self.inbound.tenant, body);
        let queued = self.producer.enqueue(
            &self.topic,
            Some(&encoded.key),
            &encoded.value,
            &encoded.headers,
        );
        let (writes, metrics) = (self.writes.clone(), self.metrics.clone());
        match queued {
            Ok(delivery) => {
                metrics.record(op, "sent");
                self.runtime.spawn(async move {
                    let outcome = delivery.await;
                    let mut failing = writes.failing.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(_) => *failing = None,
                        Err(error) => {
                            metrics.record(op, "failed");
                            tracing::debug!(op, %error, "Cluster bus record not delivered.");
                            *failing = Some(error.to_string());
                        }
                    }
                });
            }
            Err(error) => {
                metrics.record(op, "failed");
                tracing::debug!(op, %error, "Cluster bus record not queued.");
                *writes.failing.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            }
        }
    }

    /// Why the bus does not work now (`None`: it does).
    pub fn problem(&self) -> Option<String> {
        if let Some(other) = *self.inbound.clash.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some(format!(
                "another process (incarnation {other:x}) uses node id {}: give each node its own `node_id`",
                self.inbound.me.node
            ));
        }
        let progress = self.consumer.progress();
        if !progress
            .positioned
            .load(std::sync::atomic::Ordering::Acquire)
        {
            let why = progress
                .client_problem()
                .unwrap_or_else(|| format!("topic `{}` not readable yet", self.topic));
            return Some(format!("cluster bus cannot be read: {why}"));
        }
        if let Some(error) = &*self
            .writes
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            let why = self
                .producer
                .client_problem()
                .unwrap_or_else(|| error.clone());
            return Some(format!("cluster bus cannot be written: {why}"));
        }
        if let crate::kafka::ConsumerStatus::Finished(exit) = self.consumer.status() {
            return Some(format!("cluster bus reader ended: {exit}"));
        }
        None
    }

    /// Says `bye` (so the others forget this node's connections at once,
    /// not after the expiry) and waits a little for it to reach the broker.
    pub async fn leave(&self) {
        self.send(&Body::Bye);
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(1))).await;
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            task.abort();
        }
        self.consumer.stop();
    }
}

impl Inbound {
    /// Acts on one bus record (on the consumer thread).
    fn handle(&self, record: &Record) {
        let (sender, tenant, body) = match wire::decode(record) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.metrics.record("unknown", "invalid");
                tracing::debug!(tenant = %self.tenant, offset = record.offset, %error, "Cluster bus record skipped.");
                return;
            }
        };
        if tenant != self.tenant {
            // Another tenant's record on this tenant's topic: never acted on.
            self.metrics.record(body.op(), "invalid");
            tracing::debug!(tenant = %self.tenant, other = %tenant, "Cluster bus record of another tenant skipped.");
            return;
        }
        if sender.node == self.me.node {
            // Delivered locally when it was sent; a record of another run
            // with this node id is a second process with the same id.
            if sender.incarnation != self.me.incarnation {
                let mut clash = self.clash.lock().unwrap_or_else(|e| e.into_inner());
                if clash.is_none() {
                    tracing::error!(node = self.me.node, tenant = %self.tenant, "Another process uses this node id: presence and admin actions will be wrong until each node has its own `node_id`.");
                }
                *clash = Some(sender.incarnation);
            }
            return;
        }
        self.metrics.record(body.op(), "received");
        let now = Instant::now();
        if self.presence.heard(sender, now) {
            // A node we did not know may not know us either.
            tracing::info!(node = sender.node, tenant = %self.tenant, "Cluster node joined.");
            self.restate.notify_one();
        }
        match body {
            Body::Broadcast {
                pipeline,
                channel,
                kind,
                payload,
            } => {
                if let Some(hub) = self.hubs.load().get(&pipeline) {
                    hub.publish(&channel, &Frame::new(kind, payload));
                }
            }
            Body::Send {
                conn,
                pipeline,
                kind,
                payload,
            } => {
                if let Some(info) = self.local(conn, pipeline.as_deref()) {
                    info.outbox.push(Frame::new(kind, payload));
                }
            }
            Body::Close { conn, code, reason } => {
                if let Some(info) = self.local(conn, None) {
                    tracing::info!(conn, code, %reason, from = sender.node, "Closing a connection for another node.");
                    info.outbox.close(CloseRequest {
                        code,
                        reason: reason.into(),
                    });
                }
            }
            Body::Presence(update) => self.presence.apply(sender, update, now),
            Body::Hello => {}
            Body::Bye => {
                tracing::info!(node = sender.node, tenant = %self.tenant, "Cluster node left.");
                self.presence.forget(sender);
            }
        }
    }

    /// Connection `conn` if it is open here, in this tenant (and in
    /// `pipeline`, if given).
    fn local(
        &self,
        conn: u64,
        pipeline: Option<&str>,
    ) -> Option<Arc<crate::connections::ConnInfo>> {
        if node_of(conn) != self.me.node {
            return None;
        }
        self.registry
            .get(conn)
            .filter(|c| c.tenant == self.tenant && pipeline.is_none_or(|p| c.pipeline == p))
    }

    /// This node's connections of the tenant, as presence states them.
    pub fn local_members(&self) -> Vec<Member> {
        self.registry
            .all()
            .iter()
            .filter(|c| c.tenant == self.tenant)
            .map(|c| super::member(c))
            .collect()
    }
}

/// States this node's connections on `bus`: `hello` first, changes as they
/// happen (gathered for [`GATHER`]), everything every `interval` and when
/// a new node is heard; forgets silent nodes. Ends with the bus.
async fn state_presence(bus: Weak<Bus>, mut changes: watch::Receiver<u64>, interval: Duration) {
    let mut stated = Stated::default();
    let mut round = 0u64;
    let mut restatement = tokio::time::interval(interval);
    restatement.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(SWEEP);
    match bus.upgrade() {
        Some(bus) => bus.send(&Body::Hello),
        None => return,
    }
    loop {
        let inbound = match bus.upgrade() {
            Some(bus) => bus.inbound.clone(),
            None => return,
        };
        enum Next {
            Restate,
            Changed,
            Sweep,
        }
        let next = tokio::select! {
            _ = restatement.tick() => Next::Restate,
            _ = inbound.restate.notified() => Next::Restate,
            changed = changes.changed() => match changed {
                Ok(()) => Next::Changed,
                Err(_) => return,
            },
            _ = sweep.tick() => Next::Sweep,
        };
        drop(inbound);
        if matches!(next, Next::Changed) {
            tokio::time::sleep(GATHER).await;
            changes.borrow_and_update();
        }
        let Some(bus) = bus.upgrade() else { return };
        match next {
            Next::Restate => {
                round += 1;
                let members = bus.inbound.local_members();
                let _ = stated.changes(members.clone(), round);
                restate(&bus, members, round);
                restatement.reset();
            }
            Next::Changed => {
                let update = stated.changes(bus.inbound.local_members(), round);
                if !update.upsert.is_empty() || !update.remove.is_empty() {
                    bus.send(&Body::Presence(update));
                }
            }
            Next::Sweep => sweep_nodes(&bus),
        }
    }
}

/// Sends round `round`: every connection, in parts.
fn restate(bus: &Bus, members: Vec<Member>, round: u64) {
    let parts: Vec<&[Member]> = if members.is_empty() {
        vec![&[]]
    } else {
        members.chunks(CHUNK).collect()
    };
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        bus.send(&Body::Presence(PresenceUpdate {
            round,
            snapshot: true,
            last: i == last,
            upsert: part.to_vec(),
            remove: Vec::new(),
        }));
    }
}

/// Forgets nodes that went silent and updates the bus's gauges.
fn sweep_nodes(bus: &Bus) {
    let presence = &bus.inbound.presence;
    for node in presence.sweep(Instant::now()) {
        tracing::warn!(node, tenant = %bus.inbound.tenant, silent_for = ?presence.expiry(), "Cluster node silent: its connections leave presence.");
    }
    bus.metrics.up(bus.problem().is_none());
    bus.metrics.nodes(presence.nodes().len() + 1);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for pipeline in bus.inbound.hubs.load().keys() {
        counts.insert(pipeline.clone(), 0);
    }
    for member in bus.inbound.local_members() {
        *counts.entry(member.pipeline).or_default() += 1;
    }
    for (_, member) in presence.members(|_| true) {
        *counts.entry(member.pipeline).or_default() += 1;
    }
    for (pipeline, count) in counts {
        bus.metrics.connections(&pipeline, count);
    }
}
