//! Plugin calls from async code: a few dedicated threads, each with its own
//! instance, fed by a queue. Plugins never run on tokio worker threads (WASI
//! stdio blocks on an ambient runtime there) and a slow plugin only slows
//! the callers of its own pool.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::{LoadedPlugin, PluginError, PluginInstance};

type Job = Box<dyn FnOnce(&mut PluginInstance) + Send>;

/// Why a pooled call did not run.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The plugin failed (trap, timeout, memory, invalid return).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Every worker is busy and the queue is full: shed the request.
    #[error("plugin pool is saturated")]
    Saturated,
    /// The pool has shut down.
    #[error("plugin pool is gone")]
    Gone,
}

/// Worker threads with one instance each, sharing a bounded queue.
#[derive(Clone)]
pub struct PluginPool {
    queue: SyncSender<Job>,
    plugin: LoadedPlugin,
}

impl PluginPool {
    /// Starts `workers` threads, each with its own instance, and a queue of
    /// `queue` waiting calls.
    pub fn start(plugin: &LoadedPlugin, workers: usize, queue: usize) -> Result<Self, PluginError> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers.max(1) {
            let instance = plugin.instantiate()?;
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("sluice-plugin-{}-{n}", plugin.id().plugin))
                .spawn(move || work(instance, &receiver))
                .expect("spawning a plugin worker thread");
        }
        Ok(Self {
            queue: sender,
            plugin: plugin.clone(),
        })
    }

    /// The plugin this pool runs.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// Runs `f` on some worker's instance and waits for its result without
    /// blocking the async runtime.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PluginInstance) -> Result<R, PluginError> + Send + 'static,
    ) -> Result<R, PoolError> {
        run(&self.queue, f).await
    }
}

/// Worker threads with one instance and one queue each: every call with
/// the same key runs on the same instance, in order. For handlers, whose
/// per-connection state lives inside one instance.
pub struct AffinePool {
    queues: Vec<SyncSender<Job>>,
}

impl AffinePool {
    /// Starts `workers` threads, each with its own instance and a queue of
    /// `queue` waiting calls.
    pub fn start(plugin: &LoadedPlugin, workers: usize, queue: usize) -> Result<Self, PluginError> {
        let mut queues = Vec::new();
        for n in 0..workers.max(1) {
            let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
            let instance = plugin.instantiate()?;
            let receiver = Mutex::new(receiver);
            std::thread::Builder::new()
                .name(format!("sluice-handler-{}-{n}", plugin.id().plugin))
                .spawn(move || work(instance, &receiver))
                .expect("spawning a plugin worker thread");
            queues.push(sender);
        }
        Ok(Self { queues })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.queues.len()
    }

    /// The worker that serves `key`.
    pub fn worker_of(&self, key: u64) -> usize {
        (key % self.queues.len() as u64) as usize
    }

    /// Runs `f` on worker `worker`'s instance, after the calls queued before it.
    pub async fn run_on<R: Send + 'static>(
        &self,
        worker: usize,
        f: impl FnOnce(&mut PluginInstance) -> Result<R, PluginError> + Send + 'static,
    ) -> Result<R, PoolError> {
        run(&self.queues[worker % self.queues.len()], f).await
    }
}

/// Queues `f` without waiting for room, then waits for its result without
/// blocking the async runtime.
async fn run<R: Send + 'static>(
    queue: &SyncSender<Job>,
    f: impl FnOnce(&mut PluginInstance) -> Result<R, PluginError> + Send + 'static,
) -> Result<R, PoolError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |instance| {
        let _ = reply.send(f(instance));
    });
    match queue.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(PoolError::Saturated),
        Err(TrySendError::Disconnected(_)) => return Err(PoolError::Gone),
    }
    match answer.await {
        Ok(result) => result.map_err(PoolError::Plugin),
        Err(_) => Err(PoolError::Gone),
    }
}

fn work(mut instance: PluginInstance, receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            receiver.recv()
        };
        match job {
            Ok(job) => job(&mut instance),
            // Every sender is gone: the pipeline shut down.
            Err(_) => return,
        }
    }
}
