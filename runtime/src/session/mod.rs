//! Handler sessions: a handler plugin drives every connection of its
//! pipeline through `on-open`, `on-message`, `on-close` and `on-tick`, and
//! the host carries out the actions it returns.
//!
//! A handler keeps per-connection state inside its instance, so every event
//! of a connection goes to the same instance ([`AffinePool`], keyed by
//! connection id), in order. A failed call closes only the connection whose
//! event it was (1011); the instance is rebuilt, so the plugin's state for
//! its other connections starts empty (documented in the SDK).

mod actions;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::connections::ConnInfo;
use crate::hub::{CloseRequest, Hub, Outbox};
use crate::metrics::PipelineMetrics;
use crate::plugin::{
    Action, AffinePool, Connection, LoadedPlugin, Message, PluginError, PoolError, Presence,
    PresenceMember,
};

pub use actions::{Publisher, publish_topic};

/// Events waiting per handler instance before a connection is told to come
/// back later (1013).
const QUEUE: usize = 4096;

/// A connection as the handler's actions reach it.
struct Live {
    outbox: Arc<Outbox>,
    /// What operators see of it (joined channels are noted there).
    info: Arc<ConnInfo>,
    /// Channels the principal may use (`None`: any).
    allowed: Option<Vec<String>>,
    /// Channels joined through `join` actions, left when it closes.
    joined: Mutex<HashSet<String>>,
}

/// A pipeline's handler and the connections it drives.
pub struct Sessions {
    pipeline: String,
    pool: AffinePool,
    hub: Arc<Hub>,
    /// Where broadcasts and sends reach the other nodes' connections.
    cluster: Arc<Cluster>,
    publisher: Option<Publisher>,
    live: Mutex<HashMap<u64, Arc<Live>>>,
    /// Its pipeline's metrics (refused actions are counted there).
    metrics: Arc<PipelineMetrics>,
    last_warning_ms: AtomicU64,
}

impl Sessions {
    /// Starts `workers` instances of `plugin`, acting on `hub` and, for
    /// connections on other nodes, through `cluster` (refused actions
    /// counted in `metrics`), and producing through `publisher` (`None`:
    /// the pipeline has no sink).
    pub fn start(
        pipeline: &str,
        plugin: &LoadedPlugin,
        workers: usize,
        (hub, metrics, cluster): (Arc<Hub>, Arc<PipelineMetrics>, Arc<Cluster>),
        publisher: Option<Publisher>,
    ) -> Result<Arc<Self>, PluginError> {
        plugin.answer_presence_with(Arc::new(PipelinePresence {
            cluster: cluster.clone(),
            tenant: metrics.labels().tenant.clone(),
            pipeline: pipeline.to_owned(),
        }));
        Ok(Arc::new(Self {
            pipeline: pipeline.to_owned(),
            pool: AffinePool::start(plugin, workers, QUEUE)?,
            hub,
            cluster,
            publisher,
            live: Mutex::default(),
            metrics,
            last_warning_ms: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Live>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: u64) -> Option<Arc<Live>> {
        self.lock().get(&id).cloned()
    }

    /// Registers a connection and runs `on-open`. Call before reading any
    /// of its messages.
    pub async fn open(&self, conn: Connection, info: Arc<ConnInfo>) {
        let id = conn.id;
        let live = Arc::new(Live {
            outbox: info.outbox.clone(),
            info,
            allowed: conn.principal.as_ref().and_then(|p| p.channels.clone()),
            joined: Mutex::default(),
        });
        self.lock().insert(id, live.clone());
        let worker = self.pool.worker_of(id);
        let result = self.pool.run_on(worker, move |h| h.on_open(&conn)).await;
        self.finish(result, &live);
    }

    /// Runs `on-message` for a message from connection `id`.
    pub async fn message(&self, id: u64, msg: Message) {
        let Some(live) = self.get(id) else { return };
        let worker = self.pool.worker_of(id);
        let result = self
            .pool
            .run_on(worker, move |h| h.on_message(id, &msg))
            .await;
        self.finish(result, &live);
    }

    /// Forgets connection `id` and leaves the channels it joined, then runs
    /// `on-close` (once: later calls do nothing). The cleanup comes first so
    /// it happens even if the caller is cancelled during the call. Replies
    /// from `on-close` are queued on its outbox: the writer sends them
    /// before the close frame when it still can.
    pub async fn close(&self, id: u64, code: u16, reason: &str) {
        let Some(live) = self.lock().remove(&id) else {
            return;
        };
        let joined = std::mem::take(&mut *live.joined.lock().unwrap_or_else(|e| e.into_inner()));
        for channel in joined {
            self.hub.unsubscribe(&channel, id);
        }
        let worker = self.pool.worker_of(id);
        let reason = reason.to_owned();
        let result = self
            .pool
            .run_on(worker, move |h| h.on_close(id, code, &reason))
            .await;
        // A join now would subscribe a connection that is going away.
        let result = result.map(|actions| {
            let (joins, rest): (Vec<_>, Vec<_>) = actions
                .into_iter()
                .partition(|a| matches!(a, Action::Join(_)));
            self.metrics.refused_actions(joins.len() as u64);
            rest
        });
        self.finish(result, &live);
    }

    /// Runs `on-tick` on every instance with the connections it serves.
    pub async fn tick(&self, now_ms: u64) {
        let mut by_worker = vec![Vec::new(); self.pool.workers()];
        for id in self.lock().keys() {
            by_worker[self.pool.worker_of(*id)].push(*id);
        }
        let calls = by_worker
            .into_iter()
            .enumerate()
            .map(|(worker, ids)| self.pool.run_on(worker, move |h| h.on_tick(now_ms, &ids)));
        for result in futures_util::future::join_all(calls).await {
            match result {
                Ok(actions) => self.apply(actions, None),
                Err(error) => self.failed(&error),
            }
        }
    }

    /// Calls `on-tick` every `every` until `shutdown`, or until the
    /// sessions are gone (a reload replaced them and their last connection
    /// closed). A tick that runs long delays the next; none overlap.
    pub async fn run_ticker(
        sessions: std::sync::Weak<Self>,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => match sessions.upgrade() {
                    Some(sessions) => sessions.tick(now_ms()).await,
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Carries out the actions of a call, or closes the connection it was
    /// for when the call failed.
    fn finish(&self, result: Result<Vec<Action>, PoolError>, live: &Arc<Live>) {
        match result {
            Ok(actions) => self.apply(actions, Some(live)),
            Err(PoolError::Saturated) => {
                live.info.metrics.error("handler_overloaded");
                live.outbox.close(CloseRequest {
                    code: 1013,
                    reason: "handler overloaded: try again later".into(),
                });
            }
            Err(error) => {
                self.failed(&error);
                live.info.metrics.error("handler");
                live.outbox.close(CloseRequest {
                    code: 1011,
                    reason: "handler failed".into(),
                });
            }
        }
    }

    /// Counts a failure; warns at most once a second per pipeline, so a
    /// plugin that fails on every message cannot flood the log.
    fn failed(&self, error: &PoolError) {
        let now = now_ms();
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(pipeline = %self.pipeline, %error, "Handler call failed.");
        } else {
            tracing::debug!(pipeline = %self.pipeline, %error, "Handler call failed.");
        }
    }
}

/// A handler's `presence` answers: its pipeline's connections on every
/// node (whichever instance asks, so `{{connection_count}}` counts them
/// all, not one instance's).
struct PipelinePresence {
    cluster: Arc<Cluster>,
    tenant: String,
    pipeline: String,
}

impl Presence for PipelinePresence {
    fn connection_count(&self) -> u32 {
        self.cluster.connection_count(&self.tenant, &self.pipeline) as u32
    }

    fn channel_count(&self, channel: &str) -> u32 {
        self.cluster
            .channel_count(&self.tenant, &self.pipeline, channel) as u32
    }

    fn channel_members(&self, channel: &str, limit: u32) -> Vec<PresenceMember> {
        self.cluster
            .channel_members(&self.tenant, &self.pipeline, channel)
            .into_iter()
            .take(limit as usize)
            .map(|p| PresenceMember {
                id: p.member.id,
                principal: p.member.principal,
                node: p.node,
            })
            .collect()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Why the host would not carry out `action` for a connection whose
/// principal may use `allowed` channels (`None`: any), in a pipeline whose
/// sink is `sink` (its topic and extra topics; `None`: no sink); `None`
/// when it would. (A `send` depends on who is connected; it is not judged.)
pub fn refusal(
    action: &Action,
    allowed: Option<&[String]>,
    sink: Option<(&str, &[String])>,
) -> Option<&'static str> {
    match (action, sink) {
        (Action::Join(channel), _) if !may_join(allowed, channel) => Some("channel not allowed"),
        (Action::Publish(_), None) => Some("the pipeline has no sink"),
        (Action::Publish(publish), Some((topic, extra))) => {
            publish_topic(publish.topic.as_deref(), topic, extra)
                .is_none()
                .then_some("topic not allowed")
        }
        _ => None,
    }
}

/// What the host's own checks think of a channel a handler wants a
/// connection to join.
fn may_join(allowed: Option<&[String]>, channel: &str) -> bool {
    allowed.is_none_or(|list| list.iter().any(|c| c == channel))
}

/// Unit tests of the permission rules; the rest is covered end to end.
#[cfg(test)]
mod tests {
    use crate::plugin::{Action, Publish};

    #[test]
    fn refusals_follow_the_principal_channels_and_the_sink() {
        let lobby = vec!["lobby".to_owned()];
        let join = |c: &str| Action::Join(c.into());
        assert_eq!(super::refusal(&join("lobby"), Some(&lobby), None), None);
        assert_eq!(
            super::refusal(&join("kitchen"), Some(&lobby), None),
            Some("channel not allowed")
        );
        let publish = |topic: Option<&str>| {
            Action::Publish(Publish {
                topic: topic.map(Into::into),
                key: None,
                payload: b"x".to_vec(),
                headers: Vec::new(),
            })
        };
        let extra = vec!["audit".to_owned()];
        let sink = Some(("events", extra.as_slice()));
        assert_eq!(
            super::refusal(&publish(None), None, None),
            Some("the pipeline has no sink")
        );
        assert_eq!(super::refusal(&publish(None), None, sink), None);
        assert_eq!(super::refusal(&publish(Some("audit")), None, sink), None);
        assert_eq!(
            super::refusal(&publish(Some("other")), None, sink),
            Some("topic not allowed")
        );
    }

    #[test]
    fn joins_respect_the_principal_channels() {
        let list = vec!["a".to_owned()];
        assert!(super::may_join(None, "x"));
        assert!(super::may_join(Some(&list), "a"));
        assert!(!super::may_join(Some(&list), "b"));
    }
}
