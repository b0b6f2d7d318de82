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

/// A frame's wire encodings, made by the first writer that needs each,
/// and where it came from.
#[derive(Debug, Default)]
struct Encoded {
    plain: OnceLock<Bytes>,
    deflated: OnceLock<Bytes>,
    /// The record it carries, if it carries one.
    origin: Option<Origin>,
    /// The frame in a resume envelope (`crate::resume::envelope`), made by
    /// the first enveloped receiver.
    enveloped: OnceLock<Frame>,
    /// A message of the resume protocol itself: goes as it is.
    is_envelope: bool,
}

/// The Kafka record a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Its topic.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// False for all but the last of the frames a transform made of one
    /// record: a client that has only some of them must get the record again.
    pub last: bool,
}

impl Origin {
    /// The next offset to read once a client has this frame.
    pub fn next(&self) -> i64 {
        if self.last {
            self.offset + 1
        } else {
            self.offset
        }
    }
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

    /// A frame that carries the record at `origin`.
    pub fn record(kind: Kind, payload: impl Into<Bytes>, origin: Origin) -> Self {
        Self {
            kind,
            payload: payload.into(),
            encoded: Arc::new(Encoded {
                origin: Some(origin),
                ..Encoded::default()
            }),
        }
    }

    /// The record it carries, if any.
    pub fn origin(&self) -> Option<&Origin> {
        self.encoded.origin.as_ref()
    }

    /// A message of the resume protocol (its own envelope), as text.
    pub fn envelope(payload: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Text,
            payload: payload.into(),
            encoded: Arc::new(Encoded {
                is_envelope: true,
                ..Encoded::default()
            }),
        }
    }

    /// The frame as `wrap` envelopes it, made once and shared by every
    /// receiver that wants it so (a protocol message is its own envelope).
    pub fn enveloped(&self, wrap: impl FnOnce(&Frame) -> Frame) -> &Frame {
        if self.encoded.is_envelope {
            return self;
        }
        self.encoded.enveloped.get_or_init(|| wrap(self))
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
    /// Not queued: a resumed client already has this record.
    Skipped,
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
    /// Only for a client that resumes (boxed: most never do).
    resuming: Option<Box<Resuming>>,
}

/// A resuming client's queue state (see `crate::resume`).
#[derive(Debug, Default)]
struct Resuming {
    /// Sent before anything in `frames`: what it missed, and the protocol
    /// messages around it.
    ahead: VecDeque<Frame>,
    /// While set, `frames` (live records) wait.
    held: bool,
    /// Records below these positions are not queued: it has them.
    floor: Vec<(Arc<str>, i32, i64)>,
}

impl Resuming {
    fn has(&self, frame: &Frame) -> bool {
        frame.origin().is_some_and(|o| {
            self.floor
                .iter()
                .any(|(t, p, next)| *p == o.partition && o.offset < *next && **t == *o.topic)
        })
    }
}

/// Why [`Outbox::push_ahead`] did not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AheadRefused {
    /// The connection is closing.
    Closed,
    /// The client reads too slowly: the connection is closed.
    Full,
}

/// Close code and reason when a resuming client's queue fills: its
/// position is still good, so it comes back and goes on from there.
const RESUME_FULL: (u16, &str) = (
    1013,
    "too slow while recovering: reconnect with your position",
);

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
        let mut held = false;
        if let Some(resuming) = &state.resuming {
            if resuming.has(&frame) {
                return (Pushed::Skipped, false);
            }
            held = resuming.held;
        }
        let was_empty = state.frames.is_empty();
        if state.frames.len() < self.capacity {
            state.frames.push_back(frame);
            return (Pushed::Queued, was_empty && !held);
        }
        if held {
            // Dropping a record now would lose it silently.
            return (self.close_full(&mut state, RESUME_FULL), true);
        }
        match self.policy {
            FullPolicy::DropOldest => {
                state.frames.pop_front();
                state.frames.push_back(frame);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                (Pushed::DroppedOldest, false)
            }
            FullPolicy::Close => (
                self.close_full(&mut state, (1008, "too slow: outgoing queue full")),
                true,
            ),
        }
    }

    fn close_full(&self, state: &mut State, (code, reason): (u16, &'static str)) -> Pushed {
        state.frames.clear();
        if let Some(resuming) = &mut state.resuming {
            resuming.ahead.clear();
        }
        state.close = Some(CloseRequest {
            code,
            reason: reason.into(),
        });
        Pushed::Closed
    }

    /// Holds live frames back until [`Self::release`]: what
    /// [`Self::push_ahead`] queues goes first.
    pub fn hold(&self) {
        let mut state = self.lock();
        state.resuming.get_or_insert_with(Box::default).held = true;
    }

    /// Queues a frame before the live ones (what a resuming client missed,
    /// and the protocol's messages); never more than the capacity.
    pub fn push_ahead(&self, frame: Frame) -> Result<(), AheadRefused> {
        let mut state = self.lock();
        if state.close.is_some() {
            return Err(AheadRefused::Closed);
        }
        let resuming = state.resuming.get_or_insert_with(Box::default);
        if resuming.ahead.len() >= self.capacity {
            self.close_full(&mut state, RESUME_FULL);
            drop(state);
            self.ready.notify_one();
            return Err(AheadRefused::Full);
        }
        resuming.ahead.push_back(frame);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Whether live frames are held back (see [`Self::hold`]).
    pub fn is_held(&self) -> bool {
        self.lock().resuming.as_ref().is_some_and(|r| r.held)
    }

    /// The floor of a resumed client (see [`Self::release`]).
    pub fn floor(&self) -> Vec<(Arc<str>, i32, i64)> {
        self.lock()
            .resuming
            .as_ref()
            .map_or_else(Vec::new, |r| r.floor.clone())
    }

    /// Lets live frames go (after those queued ahead), without the records
    /// below `floor` (per topic and partition, the next offset the client
    /// needs): those held back now and those pushed from now on.
    pub fn release(&self, floor: Vec<(Arc<str>, i32, i64)>) {
        let mut state = self.lock();
        let resuming = state.resuming.get_or_insert_with(Box::default);
        resuming.held = false;
        resuming.floor = floor;
        let resuming = state.resuming.take().expect("just set");
        state.frames.retain(|frame| !resuming.has(frame));
        state.resuming = Some(resuming);
        drop(state);
        self.ready.notify_one();
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
        if let Some(resuming) = &mut state.resuming {
            if !resuming.ahead.is_empty() {
                return Taken::Frames(resuming.ahead.drain(..).collect());
            }
            // Live records never go before what was missed, not even on
            // a close: the client's position would skip the gap.
            if resuming.held {
                return match &state.close {
                    Some(request) => Taken::Close(request.clone()),
                    None => Taken::Empty,
                };
            }
        }
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
        if let Some(resuming) = &mut state.resuming {
            if !resuming.ahead.is_empty() {
                frames.extend(resuming.ahead.drain(..));
                return Taken::Frames(Vec::new());
            }
            // Live records never go before what was missed, not even on
            // a close: the client's position would skip the gap.
            if resuming.held {
                return match &state.close {
                    Some(request) => Taken::Close(request.clone()),
                    None => Taken::Empty,
                };
            }
        }
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
