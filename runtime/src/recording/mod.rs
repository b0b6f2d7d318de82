//! Recording of WebSocket sessions (`[pipelines.record]`, `sluice record`)
//! in seed 003's session format ([`session`]), without slowing the
//! connections recorded: each connection's [`Tape`] hands its messages to
//! one writer thread per pipeline through a queue of at most `buffer`
//! messages; what does not fit (a disk that does not keep up) is dropped,
//! counted in `messages_dropped_total{reason="recording"}` and in the
//! file's `metadata.dropped`, never waited for.

pub mod session;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::Record as Plan;
use crate::metrics::PipelineMetrics;
pub use session::{Direction, Entry, EntryKind, Session};

/// What the writer thread is told.
enum Event {
    Opened {
        conn: u64,
        path: String,
        at: std::time::SystemTime,
        opened: Instant,
    },
    Message {
        conn: u64,
        at: Instant,
        direction: Direction,
        kind: EntryKind,
        payload: Bytes,
    },
    /// The connection ended; `dropped` of its messages were not queued.
    Closed { conn: u64, dropped: u64 },
    /// The process stops: finish every file.
    Finish,
}

/// One pipeline's recorder: a writer thread and the queue to it.
pub struct Recorder {
    plan: Plan,
    events: mpsc::UnboundedSender<Event>,
    /// Messages in the queue, against `plan.buffer`.
    queued: Arc<AtomicUsize>,
    metrics: Arc<PipelineMetrics>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the writer thread of `pipeline`'s recordings.
    pub fn start(
        plan: Plan,
        pipeline: &str,
        metrics: Arc<PipelineMetrics>,
    ) -> std::io::Result<Arc<Self>> {
        let (events, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = writer::Writer::new(plan.clone(), pipeline.to_owned(), queued.clone());
        let handle = std::thread::Builder::new()
            .name(format!("record-{pipeline}"))
            .spawn(move || writer.run(rx))?;
        Ok(Arc::new(Self {
            plan,
            events,
            queued,
            metrics,
            writer: std::sync::Mutex::new(Some(handle)),
        }))
    }

    /// The tape of connection `conn` (request path `path`), which records
    /// until it is dropped.
    pub fn tape(self: &Arc<Self>, conn: u64, path: &str) -> Tape {
        let _ = self.events.send(Event::Opened {
            conn,
            path: path.to_owned(),
            at: std::time::SystemTime::now(),
            opened: Instant::now(),
        });
        Tape {
            recorder: self.clone(),
            conn,
            dropped: AtomicU64::new(0),
        }
    }

    /// Writes out what is queued, finishes every file and waits for the
    /// writer (at shutdown; open connections' files end here).
    pub fn finish(&self) {
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = self.events.send(Event::Finish);
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// One connection's recording.
pub struct Tape {
    recorder: Arc<Recorder>,
    conn: u64,
    /// Its messages that found the queue full.
    dropped: AtomicU64,
}

impl Tape {
    /// Records a message (pings and pongs unless excluded). Never waits:
    /// with the queue full the message is dropped and counted.
    pub fn record(&self, direction: Direction, kind: EntryKind, payload: &[u8]) {
        let recorder = &self.recorder;
        if recorder.plan.exclude_ping && matches!(kind, EntryKind::Ping | EntryKind::Pong) {
            return;
        }
        if recorder.queued.fetch_add(1, Ordering::Relaxed) >= recorder.plan.buffer {
            recorder.queued.fetch_sub(1, Ordering::Relaxed);
            recorder.metrics.dropped("recording", 1);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let sent = recorder.events.send(Event::Message {
            conn: self.conn,
            at: Instant::now(),
            direction,
            kind,
            payload: Bytes::copy_from_slice(payload),
        });
        if sent.is_err() {
            recorder.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Tape {
    fn drop(&mut self) {
        let _ = self.recorder.events.send(Event::Closed {
            conn: self.conn,
            dropped: self.dropped.load(Ordering::Relaxed),
        });
    }
}
