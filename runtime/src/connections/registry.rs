//! Every open WebSocket connection of the process, with what an operator
//! asks about it (the admin API reads this): who, where, since when, how
//! much went each way, and its outbox, through which it can be sent a
//! message or closed.
//!
//! Connection ids carry the node they opened on (`node << 36 | n`), so an
//! id is unique in a cluster and says where its connection is. Without a
//! cluster the node is 0 and ids are 1, 2, 3, ...; either way they stay
//! below 2^53, exact in JSON for JavaScript and jq.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::hub::Outbox;

/// Bits of a connection id below its node id.
const NODE_SHIFT: u32 = 36;

/// The node a connection id was given out by (0 without a cluster).
pub fn node_of(id: u64) -> u16 {
    (id >> NODE_SHIFT) as u16
}

/// One open connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// Its id (unique for the life of the process).
    pub id: u64,
    /// Its pipeline's tenant.
    pub tenant: String,
    /// Its pipeline.
    pub pipeline: String,
    /// The request path it opened.
    pub path: String,
    /// Its principal's id, when the pipeline authenticates.
    pub principal: Option<String>,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// When it opened (wall clock, for display).
    pub opened_at: SystemTime,
    opened: Instant,
    /// Its outgoing queue: the way to send it a message or close it.
    pub outbox: Arc<Outbox>,
    channels: Mutex<BTreeSet<String>>,
    /// Messages it sent us.
    pub messages_in: AtomicU64,
    /// Payload bytes it sent us.
    pub bytes_in: AtomicU64,
    /// Messages we wrote to it.
    pub messages_out: AtomicU64,
    /// Payload bytes we wrote to it.
    pub bytes_out: AtomicU64,
    /// Its pipeline's metrics.
    pub metrics: Arc<crate::metrics::PipelineMetrics>,
    /// Told when its channels change (set when it is registered).
    changes: std::sync::OnceLock<Arc<watch::Sender<u64>>>,
}

impl ConnInfo {
    /// A connection opening now, subscribed to `channel`, counted in its
    /// pipeline's `metrics`.
    pub fn new(
        id: u64,
        metrics: Arc<crate::metrics::PipelineMetrics>,
        path: String,
        principal: Option<String>,
        remote_addr: SocketAddr,
        outbox: Arc<Outbox>,
        channel: &str,
    ) -> Self {
        Self {
            id,
            tenant: metrics.labels().tenant.clone(),
            pipeline: metrics.labels().pipeline.clone(),
            metrics,
            path,
            principal,
            remote_addr,
            opened_at: SystemTime::now(),
            opened: Instant::now(),
            outbox,
            channels: Mutex::new(BTreeSet::from([channel.to_owned()])),
            messages_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            changes: std::sync::OnceLock::new(),
        }
    }

    /// Seconds since it opened.
    pub fn age_seconds(&self) -> f64 {
        self.opened.elapsed().as_secs_f64()
    }

    /// The channels it is subscribed to now.
    pub fn channels(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Notes a subscription (a handler's `join`).
    pub fn joined(&self, channel: &str) {
        if self.lock().insert(channel.to_owned()) {
            self.changed();
        }
    }

    /// Notes an unsubscription (a handler's `leave`).
    pub fn left(&self, channel: &str) {
        if self.lock().remove(channel) {
            self.changed();
        }
    }

    fn changed(&self) {
        if let Some(changes) = self.changes.get() {
            changes.send_modify(|n| *n += 1);
        }
    }

    /// Counts a message it sent.
    pub fn received(&self, bytes: usize) {
        self.metrics.received(bytes);
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a message written to it.
    pub fn sent(&self, bytes: usize) {
        self.metrics.sent(bytes);
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The open connections.
#[derive(Debug)]
pub struct Registry {
    conns: RwLock<HashMap<u64, Arc<ConnInfo>>>,
    node: u16,
    next: AtomicU64,
    /// Counts every open, close, join and leave (what presence states).
    changes: Arc<watch::Sender<u64>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(0)
    }
}

/// Keeps a connection listed; unlists it when dropped, however it ends.
#[derive(Debug)]
pub struct Listed {
    registry: Arc<Registry>,
    id: u64,
}

impl Registry {
    /// The connections of node `node` (0: no cluster).
    pub fn new(node: u16) -> Self {
        Self {
            conns: RwLock::default(),
            node,
            next: AtomicU64::new(1),
            changes: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The node whose connections these are (0: no cluster).
    pub fn node(&self) -> u16 {
        self.node
    }

    /// A new connection id, never given out before by this process.
    pub fn next_id(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        u64::from(self.node) << NODE_SHIFT | (n & ((1 << NODE_SHIFT) - 1))
    }

    /// Changes whenever a connection opens, closes, joins or leaves.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Lists `info` until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, info: Arc<ConnInfo>) -> Listed {
        let id = info.id;
        let _ = info.changes.set(self.changes.clone());
        self.conns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info);
        self.changes.send_modify(|n| *n += 1);
        Listed {
            registry: self.clone(),
            id,
        }
    }

    /// A connection by id.
    pub fn get(&self, id: u64) -> Option<Arc<ConnInfo>> {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every open connection, by id.
    pub fn all(&self) -> Vec<Arc<ConnInfo>> {
        let mut all: Vec<_> = self
            .conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none are open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.registry
            .conns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.registry.changes.send_modify(|n| *n += 1);
    }
}
