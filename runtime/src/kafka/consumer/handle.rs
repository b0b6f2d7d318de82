//! The handle of a running consumer thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{ConsumerExit, ConsumerProgress, Frontier, Positions, panic_message};

/// Whether the consumer thread still runs.
#[derive(Debug, Clone)]
pub enum ConsumerStatus {
    /// Polling (or inside the callback).
    Running,
    /// Ended, for this reason; its client is closed.
    Finished(ConsumerExit),
}

/// What the thread and its handle share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    pub(super) exit: Mutex<Option<ConsumerExit>>,
    pub(super) progress: Arc<ConsumerProgress>,
    /// How far it claimed and delivered (its own, or the pipeline's that
    /// outlives it: [`super::ConsumerOptions::frontier`]).
    pub(super) frontier: Arc<Frontier>,
}

/// Reads a consumer's status from elsewhere (see [`ConsumerHandle::watch`]).
#[derive(Debug, Clone)]
pub struct ConsumerWatch {
    shared: Arc<Shared>,
}

impl ConsumerWatch {
    /// Running, or why it ended.
    pub fn status(&self) -> ConsumerStatus {
        status(&self.shared)
    }

    /// Where it stands (assignment, positions, lag).
    pub fn progress(&self) -> &Arc<ConsumerProgress> {
        &self.shared.progress
    }

    /// The positions after its handled batches: where a direct consumer
    /// replacing it resumes (a group resumes from its commits instead).
    /// Final once the thread ended.
    pub fn positions(&self) -> Positions {
        positions(&self.shared)
    }
}

fn positions(shared: &Shared) -> Positions {
    shared.frontier.delivered()
}

fn status(shared: &Shared) -> ConsumerStatus {
    match &*shared.exit.lock().unwrap_or_else(|e| e.into_inner()) {
        None => ConsumerStatus::Running,
        Some(exit) => ConsumerStatus::Finished(exit.clone()),
    }
}

/// A running consumer. Dropping it asks the thread to stop without waiting.
#[derive(Debug)]
pub struct ConsumerHandle {
    pipeline: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ConsumerHandle {
    pub(super) fn new(pipeline: String, shared: Arc<Shared>, thread: JoinHandle<()>) -> Self {
        Self {
            pipeline,
            shared,
            thread: Some(thread),
        }
    }

    /// The pipeline it serves.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// Asks the thread to stop; it notices within one poll timeout (or when
    /// the callback returns), commits what was handled and closes the client.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }

    /// Running, or why it ended.
    pub fn status(&self) -> ConsumerStatus {
        status(&self.shared)
    }

    /// A cheap handle that reports this consumer's status and counters,
    /// for health checks and metrics (it does not keep the thread alive).
    pub fn watch(&self) -> ConsumerWatch {
        ConsumerWatch {
            shared: self.shared.clone(),
        }
    }

    /// Where it stands (assignment, positions, lag).
    pub fn progress(&self) -> &Arc<ConsumerProgress> {
        &self.shared.progress
    }

    /// See [`ConsumerWatch::positions`].
    pub fn positions(&self) -> Positions {
        positions(&self.shared)
    }

    /// Waits for the thread to end and says why it did. Blocks: from async
    /// code, call it in `spawn_blocking`.
    pub fn join(mut self) -> ConsumerExit {
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            return ConsumerExit::Panicked(panic_message(panic.as_ref()));
        }
        self.shared
            .exit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| ConsumerExit::Panicked("the thread ended without a reason".into()))
    }

    /// [`ConsumerHandle::stop`], then [`ConsumerHandle::join`].
    pub fn shutdown(self) -> ConsumerExit {
        self.stop();
        self.join()
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
