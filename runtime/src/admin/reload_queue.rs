//! The reload queue: how SIGHUP, the file watcher and `POST /reload` ask
//! the process to reload its pipeline file, and where the last outcome is
//! kept for `GET /reload`. The process (`crate::server`) serves it.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting behind a running reload (more would only repeat it).
const QUEUE: usize = 4;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// The pipeline file or a plugin file changed.
    FileChange,
    /// `POST /reload`.
    Admin,
}

impl Trigger {
    /// Its name in logs and in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::FileChange => "file-change",
            Trigger::Admin => "admin",
        }
    }
}

/// How one reload ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    /// Successful reloads so far (this one included when it succeeded).
    pub generation: u64,
    /// What asked for it.
    pub trigger: &'static str,
    /// When it ended (RFC 3339).
    pub at: String,
    /// How long it took, validation and plugin compilation included.
    pub took_ms: u64,
    /// Whether the new config runs now.
    pub ok: bool,
    /// What changed, one line each (empty when nothing did).
    pub changes: Vec<String>,
    /// Why nothing changed, when it failed.
    pub error: Option<String>,
}

/// One request: the trigger, and where to send the outcome.
pub struct ReloadRequest {
    trigger: Trigger,
    reply: Option<oneshot::Sender<Arc<ReloadOutcome>>>,
}

impl ReloadRequest {
    /// What asked for it.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// Sends the outcome to whoever waits for it.
    pub fn answer(self, outcome: Arc<ReloadOutcome>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(outcome);
        }
    }
}

/// The way to ask for a reload and read the last outcome (cheap to clone).
#[derive(Clone)]
pub struct Reloads {
    requests: mpsc::Sender<ReloadRequest>,
    last: Arc<ArcSwapOption<ReloadOutcome>>,
}

impl Reloads {
    /// A handle, and the queue the process takes requests from.
    pub fn channel() -> (Self, mpsc::Receiver<ReloadRequest>) {
        let (requests, queue) = mpsc::channel(QUEUE);
        let last = Arc::new(ArcSwapOption::empty());
        (Self { requests, last }, queue)
    }

    /// Asks for a reload and waits for its outcome (`None`: the process is
    /// stopping).
    pub async fn run(&self, trigger: Trigger) -> Option<Arc<ReloadOutcome>> {
        let (reply, outcome) = oneshot::channel();
        let request = ReloadRequest {
            trigger,
            reply: Some(reply),
        };
        self.requests.send(request).await.ok()?;
        outcome.await.ok()
    }

    /// Asks for a reload without waiting. When the queue is full, reloads
    /// already waiting will read the file anyway.
    pub fn ask(&self, trigger: Trigger) {
        let _ = self.requests.try_send(ReloadRequest {
            trigger,
            reply: None,
        });
    }

    /// The last reload's outcome, if there was one.
    pub fn last(&self) -> Option<Arc<ReloadOutcome>> {
        self.last.load_full()
    }

    /// Keeps `outcome` as the last one (the process, after each reload).
    pub fn record(&self, outcome: Arc<ReloadOutcome>) {
        self.last.store(Some(outcome));
    }
}
