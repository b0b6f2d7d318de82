//! Every open WebSocket connection of the process, with what an operator
//! asks about it (the admin API reads this): who, where, since when, how
//! much went each way, and its outbox, through which it can be sent a
//! message or closed.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use crate::hub::Outbox;

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
        self.lock().insert(channel.to_owned());
    }

    /// Notes an unsubscription (a handler's `leave`).
    pub fn left(&self, channel: &str) {
        self.lock().remove(channel);
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
#[derive(Debug, Default)]
pub struct Registry {
    conns: RwLock<HashMap<u64, Arc<ConnInfo>>>,
}

/// Keeps a connection listed; unlists it when dropped, however it ends.
#[derive(Debug)]
pub struct Listed {
    registry: Arc<Registry>,
    id: u64,
}

impl Registry {
    /// Lists `info` until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, info: Arc<ConnInfo>) -> Listed {
        let id = info.id;
        self.conns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info);
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
    }
}
