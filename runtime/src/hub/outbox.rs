//! A connection's bounded outgoing queue, with a named policy for when it
//! is full. The hub pushes without ever waiting; the connection's writer
//! task drains everything queued at once and flushes once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::FullPolicy;

/// Text or binary, as the frame goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A text frame (payload is UTF-8).
    Text,
    /// A binary frame.
    Binary,
}

/// One outgoing message. Cloning shares the payload bytes and the frame's
/// wire encodings, so a record is encoded (and compressed) once for all
/// its receivers, not once per connection.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Text or binary.
    pub kind: Kind,
    /// The payload, shared by every receiver.
    pub payload: Bytes,
    encoded: Arc<Encoded>,
}

/// Which wire encoding of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Header and payload as is.
    Plain,
    /// Header with RSV1 and the payload compressed without context
    /// takeover (the same bytes for every connection that agreed to that).
    Deflated,
}

/// A frame's wire encodings, made by the first writer that needs each.
#[derive(Debug, Default)]
struct Encoded {
    plain: OnceLock<Bytes>,
    deflated: OnceLock<Bytes>,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.payload == other.payload
    }
}

impl Eq for Frame {}

impl Frame {
    /// A message of this kind.
    pub fn new(kind: Kind, payload: impl Into<Bytes>) -> Self {
        Self {
            kind,
            payload: payload.into(),
            encoded: Arc::default(),
        }
    }

    /// Its `encoding` for the wire: made by `encode` the first time any
    /// receiver asks, then shared. (Two writers asking at once may both
    /// encode; one result is kept, and they are the same bytes.)
    pub fn encoded<E>(
        &self,
        encoding: Encoding,
        encode: impl FnOnce(&Frame) -> Result<Bytes, E>,
    ) -> Result<&Bytes, E> {
        let slot = match encoding {
            Encoding::Plain => &self.encoded.plain,
            Encoding::Deflated => &self.encoded.deflated,
        };
        if let Some(bytes) = slot.get() {
            return Ok(bytes);
        }
        let bytes = encode(self)?;
        Ok(slot.get_or_init(|| bytes))
    }
}

/// Why the hub closed a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// WebSocket close code.
    pub code: u16,
    /// Close reason (at most 123 bytes).
    pub reason: std::borrow::Cow<'static, str>,
}

/// The result of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued after dropping the oldest frame.
    DroppedOldest,
    /// Not queued: the connection is closing.
    Closed,
}

/// What the writer gets from [`Outbox::take`].
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Frames to write, oldest first.
    Frames(Vec<Frame>),
    /// Nothing queued yet: wait for [`Outbox::wait`].
    Empty,
    /// Close the connection with this code and reason.
    Close(CloseRequest),
}

/// A connection's bounded outgoing queue.
#[derive(Debug)]
pub struct Outbox {
    id: u64,
    capacity: usize,
    policy: FullPolicy,
    state: Mutex<State>,
    ready: Notify,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    close: Option<CloseRequest>,
}

impl Outbox {
    /// An empty outbox for connection `id`.
    pub fn new(id: u64, capacity: usize, policy: FullPolicy) -> Self {
        Self {
            id,
            capacity: capacity.max(1),
            policy,
            state: Mutex::default(),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// The connection id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Frames dropped so far by the drop-oldest policy.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Frames queued now.
    pub fn depth(&self) -> usize {
        self.lock().frames.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame without waiting, applying the policy when full.
    pub fn push(&self, frame: Frame) -> Pushed {
        let (pushed, _) = self.push_quiet(frame);
        self.ready.notify_one();
        pushed
    }

    /// Queues a frame like [`Self::push`] but leaves waking the writer to
    /// the caller: `true` means it must call [`Self::wake`] (the queue was
    /// empty, or the push asked for a close). A push onto a non-empty queue
    /// needs no wake of its own: the push that made it non-empty has one
    /// pending, or the writer is already running.
    pub fn push_quiet(&self, frame: Frame) -> (Pushed, bool) {
        let mut state = self.lock();
        if state.close.is_some() {
            return (Pushed::Closed, false);
        }
        let was_empty = state.frames.is_empty();
        if state.frames.len() < self.capacity {
            state.frames.push_back(frame);
            return (Pushed::Queued, was_empty);
        }
        match self.policy {
            FullPolicy::DropOldest => {
                state.frames.pop_front();
                state.frames.push_back(frame);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                (Pushed::DroppedOldest, false)
            }
            FullPolicy::Close => {
                state.frames.clear();
                state.close = Some(CloseRequest {
                    code: 1008,
                    reason: "too slow: outgoing queue full".into(),
                });
                (Pushed::Closed, true)
            }
        }
    }

    /// Wakes the writer (after [`Self::push_quiet`]).
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    /// Asks the writer to close the connection after what is queued.
    pub fn close(&self, request: CloseRequest) {
        self.lock().close.get_or_insert(request);
        self.ready.notify_one();
    }

    /// Takes everything queued (or the close request once the queue is empty).
    pub fn take(&self) -> Taken {
        let mut state = self.lock();
        if !state.frames.is_empty() {
            return Taken::Frames(state.frames.drain(..).collect());
        }
        match &state.close {
            Some(request) => Taken::Close(request.clone()),
            None => Taken::Empty,
        }
    }

    /// Like [`Self::take`], but hands the frames over in `frames`: an empty
    /// `frames` is swapped with the queue (no copy, and both keep their
    /// capacity: no allocation per wakeup); otherwise they are appended.
    /// `Taken::Frames` then carries nothing.
    pub fn take_into(&self, frames: &mut VecDeque<Frame>) -> Taken {
        let mut state = self.lock();
        if !state.frames.is_empty() {
            if frames.is_empty() {
                std::mem::swap(&mut state.frames, frames);
            } else {
                frames.extend(state.frames.drain(..));
            }
            return Taken::Frames(Vec::new());
        }
        match &state.close {
            Some(request) => Taken::Close(request.clone()),
            None => Taken::Empty,
        }
    }

    /// Waits until something was pushed or a close was requested since the
    /// last wait. A push between `take` and `wait` is never missed.
    pub async fn wait(&self) {
        self.ready.notified().await;
    }
}
