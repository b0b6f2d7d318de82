//! The channel hub: channel -> subscribed connections, and fanout.
//!
//! Publishing never waits: each subscriber has its own bounded [`Outbox`],
//! so one stalled client never delays the others and memory stays bounded
//! by `subscribers x capacity`. The payload bytes are shared, not copied.

mod outbox;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use outbox::{
    AheadRefused, CloseRequest, Encoding, Frame, Kind, Origin, Outbox, Pushed, Taken,
};

/// Channels and their subscribers.
#[derive(Debug, Default)]
pub struct Hub {
    channels: RwLock<HashMap<Arc<str>, Vec<Arc<Outbox>>>>,
    metrics: std::sync::OnceLock<Arc<crate::metrics::PipelineMetrics>>,
    quota: arc_swap::ArcSwapOption<Arc<dyn DeliveryQuota>>,
    /// How far the records fanned out here have come (moved by the
    /// consumer of a pipeline whose clients resume).
    frontier: Arc<crate::kafka::Frontier>,
}

/// A limit on how many deliveries may be queued now: the tenant's
/// outbound quota (`crate::tenant` implements it).
pub trait DeliveryQuota: Send + Sync + std::fmt::Debug {
    /// How many of `wanted` deliveries may go now; the caller drops the rest.
    fn admit_deliveries(&self, wanted: usize) -> usize;
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts its deliveries, and the frames dropped for slow clients or
    /// the tenant's quota, in these metrics (set once, when the pipeline is
    /// built).
    pub fn count_drops_in(&self, metrics: Arc<crate::metrics::PipelineMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Takes every delivery from this quota (its tenant's outbound rate:
    /// set when the pipeline is built, replaced when a reload changes the
    /// quotas); deliveries over it are dropped and counted as `tenant_quota`.
    pub fn limit_deliveries_by(&self, quota: Arc<dyn DeliveryQuota>) {
        self.quota.store(Some(Arc::new(quota)));
    }

    /// How far its records have come (see [`crate::kafka::Frontier`]).
    pub fn frontier(&self) -> &Arc<crate::kafka::Frontier> {
        &self.frontier
    }

    /// Subscribes a connection to a channel (idempotent).
    pub fn subscribe(&self, channel: &str, outbox: &Arc<Outbox>) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        let subscribers = channels.entry(Arc::from(channel)).or_default();
        if !subscribers.iter().any(|s| s.id() == outbox.id()) {
            subscribers.push(outbox.clone());
        }
    }

    /// Unsubscribes a connection from a channel; forgets empty channels.
    pub fn unsubscribe(&self, channel: &str, connection_id: u64) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        if let Some(subscribers) = channels.get_mut(channel) {
            subscribers.retain(|s| s.id() != connection_id);
            if subscribers.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Number of connections subscribed to a channel.
    pub fn subscribers(&self, channel: &str) -> usize {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        channels.get(channel).map_or(0, Vec::len)
    }

    /// Queues `frame` for every subscriber of `channel`; returns how many
    /// took it. Never waits on a subscriber.
    pub fn publish(&self, channel: &str, frame: &Frame) -> usize {
        let mut wakeups = Wakeups::default();
        self.publish_deferred(channel, frame, &mut wakeups)
    }

    /// [`Self::publish`], leaving the writers to wake in `wakeups`: a batch
    /// of records wakes each subscriber once, at the end, so its writer
    /// sends the whole batch with one write instead of waking (and writing)
    /// once per record while the batch is still being published.
    pub fn publish_deferred(&self, channel: &str, frame: &Frame, wakeups: &mut Wakeups) -> usize {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        let Some(subscribers) = channels.get(channel) else {
            return 0;
        };
        let allowed = self
            .quota
            .load()
            .as_ref()
            .map_or(subscribers.len(), |t| t.admit_deliveries(subscribers.len()));
        if allowed < subscribers.len()
            && let Some(metrics) = self.metrics.get()
        {
            metrics.dropped("tenant_quota", (subscribers.len() - allowed) as u64);
        }
        let metrics = self.metrics.get();
        let (mut taken, mut dropped) = (0, 0);
        for outbox in &subscribers[..allowed] {
            let (pushed, wake) = outbox.push_quiet(frame.clone());
            if wake {
                wakeups.0.push(outbox.clone());
            }
            match pushed {
                Pushed::Queued => taken += 1,
                Pushed::DroppedOldest => {
                    taken += 1;
                    dropped += 1;
                }
                // This push filled a `close` queue: the connection closes with 1008.
                Pushed::Closed if wake => {
                    if let Some(metrics) = metrics {
                        metrics.error("slow_client");
                    }
                }
                Pushed::Closed | Pushed::Skipped => {}
            }
        }
        if let Some(metrics) = metrics {
            if dropped > 0 {
                metrics.dropped("slow_client", dropped);
            }
            metrics.delivered(taken as u64);
        }
        taken
    }
}

/// Writers to wake once a batch is published; wakes them when dropped.
#[derive(Default)]
pub struct Wakeups(Vec<Arc<Outbox>>);

impl Wakeups {
    /// Wakes every writer collected so far.
    pub fn wake_all(&mut self) {
        for outbox in self.0.drain(..) {
            outbox.wake();
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.wake_all();
    }
}

#[cfg(test)]
mod tests;
