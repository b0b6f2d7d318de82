//! Chaos on one connection (`[pipelines.chaos]`, seed 003's chaos
//! testing): between the outbox and the writer, a lane that drops,
//! duplicates, holds back, delays and paces outgoing messages, and decides
//! when the connection is dropped, each by its configured probability.
//! Control frames (pings, pongs, closes) never pass through it.
//!
//! Each connection draws from its own generators, seeded by the pipeline's
//! `seed` and the connection id when a seed is set: the same connection
//! sees the same faults run after run. Message faults (drop, duplicate,
//! reorder) and timing faults (delay, disconnect) draw from separate
//! generators, a fixed number of draws per message each, so how the
//! messages happen to be batched never changes which ones are hit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::config::Chaos;
use crate::hub::Frame;
use crate::metrics::ChaosCounters;

/// A message on its way to the client.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// From the outbox (records, handler replies, broadcasts).
    Frame(Frame),
    /// A reply to a client message (a sink's ACK or ERROR).
    Reply(Bytes),
}

/// What the lane lets out now.
#[derive(Debug)]
pub enum Released {
    /// Nothing is due.
    Nothing,
    /// Write these, in order.
    Messages(Vec<Outgoing>),
    /// Drop the connection (no close frame) instead of writing the next one.
    Disconnect,
}

/// How long a held-back message waits for a next one to overtake it:
/// after that it goes anyway (a fault, never a loss).
const HOLD_AT_MOST: Duration = Duration::from_millis(100);

/// One connection's outgoing messages under chaos.
pub struct Lane {
    plan: Arc<Chaos>,
    /// Drop, duplicate and reorder draws: as messages are admitted.
    faults: fastrand::Rng,
    /// Delay and disconnect draws: as messages go out.
    timing: fastrand::Rng,
    counters: ChaosCounters,
    /// Admitted, in the order they go.
    queue: VecDeque<Outgoing>,
    /// A message held back to go after the next one, and since when.
    held: Option<(Outgoing, Instant)>,
    /// When the front of `queue` may go (paced lanes only).
    front_due: Option<Instant>,
    /// When the last message went.
    last_sent: Option<Instant>,
    /// A disconnect was drawn after some messages of a batch: it comes
    /// next.
    doomed: bool,
}

impl Lane {
    /// The lane of connection `id`.
    pub fn new(plan: Arc<Chaos>, id: u64, counters: ChaosCounters) -> Self {
        // Mixed so that neighbouring ids start far apart.
        let base = match plan.seed {
            Some(seed) => seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            None => fastrand::u64(..),
        };
        Self {
            plan,
            faults: fastrand::Rng::with_seed(base),
            timing: fastrand::Rng::with_seed(base ^ 0xD1B5_4A32_D192_ED03),
            counters,
            queue: VecDeque::new(),
            held: None,
            front_due: None,
            last_sent: None,
            doomed: false,
        }
    }

    /// Whether it takes more from the outbox now: a slow consumer that
    /// does not drop leaves them there (where the outbox's `when_full`
    /// applies) once its buffer is full.
    pub fn has_room(&self) -> bool {
        match self.plan.slow_consumer {
            Some(slow) if !slow.drop_when_full => self.queue.len() < slow.buffer_size,
            _ => true,
        }
    }

    /// Takes a message: dropped, duplicated, held back or queued.
    pub fn admit(&mut self, message: Outgoing, now: Instant) {
        if chance(&mut self.faults, self.plan.drop) {
            self.counters.dropped.inc();
            return;
        }
        if chance(&mut self.faults, self.plan.duplicate) {
            self.counters.duplicated.inc();
            self.enqueue(message.clone(), now);
        }
        self.enqueue(message, now);
    }

    fn enqueue(&mut self, message: Outgoing, now: Instant) {
        // Drawn for every message, used only when none is held: the draws
        // stay one per message whatever happened before.
        let hold = chance(&mut self.faults, self.plan.reorder);
        if let Some(slow) = self.plan.slow_consumer
            && slow.drop_when_full
            && self.queue.len() >= slow.buffer_size
        {
            self.counters.slow_dropped.inc();
            return;
        }
        if let Some((held, _)) = self.held.take() {
            self.counters.reordered.inc();
            self.queue.push_back(message);
            self.queue.push_back(held);
        } else if hold {
            self.held = Some((message, now));
        } else {
            self.queue.push_back(message);
        }
    }

    /// When something is next due, if anything waits.
    pub fn due(&mut self, now: Instant) -> Option<Instant> {
        if self.doomed {
            return Some(now);
        }
        if self.queue.is_empty() {
            return self.held.as_ref().map(|(_, since)| *since + HOLD_AT_MOST);
        }
        if !self.plan.paced() {
            return Some(now);
        }
        Some(*self.front_due.get_or_insert_with(|| {
            let paced = match (self.plan.slow_consumer, self.last_sent) {
                (Some(slow), Some(last)) => (last + slow.delay).max(now),
                _ => now,
            };
            let delay = self.plan.delay.map_or(Duration::ZERO, |(min, max)| {
                let ms = self
                    .timing
                    .u64(min.as_millis() as u64..=max.as_millis() as u64);
                Duration::from_millis(ms)
            });
            if !delay.is_zero() {
                self.counters.delayed.inc();
            }
            paced + delay
        }))
    }

    /// The messages due at `now`: all of them when nothing is paced, else
    /// the front one when its time has come; or the verdict that the
    /// connection is to be dropped.
    pub fn release(&mut self, now: Instant) -> Released {
        if self.doomed {
            return Released::Disconnect;
        }
        if self.queue.is_empty() {
            if let Some((_, since)) = &self.held
                && now >= *since + HOLD_AT_MOST
            {
                let (held, _) = self.held.take().expect("checked just above");
                self.queue.push_back(held);
            } else {
                return Released::Nothing;
            }
        }
        if self.due(now).is_some_and(|due| due > now) {
            return Released::Nothing;
        }
        let count = if self.plan.paced() {
            1
        } else {
            self.queue.len()
        };
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            if chance(&mut self.timing, self.plan.disconnect) {
                self.counters.disconnected.inc();
                if out.is_empty() {
                    return Released::Disconnect;
                }
                // What came before the drawn disconnect still goes.
                self.doomed = true;
                break;
            }
            out.extend(self.queue.pop_front());
        }
        self.front_due = None;
        self.last_sent = Some(now);
        Released::Messages(out)
    }

    /// Everything still waiting, held back or not, to go before a close.
    pub fn drain(&mut self) -> Vec<Outgoing> {
        let mut out: Vec<Outgoing> = self.queue.drain(..).collect();
        out.extend(self.held.take().map(|(held, _)| held));
        self.front_due = None;
        out
    }
}

/// One draw against `p` (none when `p` is 0: an unused fault costs nothing).
fn chance(rng: &mut fastrand::Rng, p: f64) -> bool {
    p > 0.0 && rng.f64() < p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SlowConsumer;
    use crate::hub::Kind;

    fn plan(edit: impl FnOnce(&mut Chaos)) -> Arc<Chaos> {
        let mut chaos = Chaos {
            seed: Some(7),
            disconnect: 0.0,
            delay: None,
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            slow_consumer: None,
        };
        edit(&mut chaos);
        Arc::new(chaos)
    }

    fn text(n: usize) -> Outgoing {
        Outgoing::Frame(Frame::new(Kind::Text, n.to_string()))
    }

    fn number(message: &Outgoing) -> usize {
        match message {
            Outgoing::Frame(frame) => std::str::from_utf8(&frame.payload)
                .unwrap()
                .parse()
                .unwrap(),
            Outgoing::Reply(bytes) => std::str::from_utf8(bytes).unwrap().parse().unwrap(),
        }
    }

    /// Every message through the lane, released as soon as due.
    fn run(lane: &mut Lane, n: usize) -> Vec<usize> {
        let start = Instant::now();
        let mut out = Vec::new();
        for i in 0..n {
            lane.admit(text(i), start);
            if let Released::Messages(messages) = lane.release(start) {
                out.extend(messages.iter().map(number));
            }
        }
        if let Released::Messages(messages) = lane.release(start + HOLD_AT_MOST) {
            out.extend(messages.iter().map(number));
        }
        out
    }

    #[test]
    fn the_same_seed_and_connection_give_the_same_faults() {
        let chaos = plan(|c| {
            c.drop = 0.1;
            c.duplicate = 0.1;
            c.reorder = 0.1;
        });
        let first = run(
            &mut Lane::new(chaos.clone(), 3, ChaosCounters::detached()),
            1000,
        );
        let again = run(
            &mut Lane::new(chaos.clone(), 3, ChaosCounters::detached()),
            1000,
        );
        let other = run(&mut Lane::new(chaos, 4, ChaosCounters::detached()), 1000);
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn a_held_message_goes_after_the_next_or_after_a_while_never_lost() {
        let chaos = plan(|c| c.reorder = 1.0);
        let mut lane = Lane::new(chaos, 1, ChaosCounters::detached());
        let start = Instant::now();
        lane.admit(text(0), start);
        assert!(matches!(lane.release(start), Released::Nothing));
        lane.admit(text(1), start);
        let Released::Messages(out) = lane.release(start) else {
            panic!("both are due")
        };
        assert_eq!(out.iter().map(number).collect::<Vec<_>>(), [1, 0]);
        lane.admit(text(2), start);
        assert_eq!(lane.due(start), Some(start + HOLD_AT_MOST));
        let Released::Messages(out) = lane.release(start + HOLD_AT_MOST) else {
            panic!("a held message goes after HOLD_AT_MOST")
        };
        assert_eq!(out.iter().map(number).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn delays_stay_within_the_range_and_keep_the_order() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(30));
        let chaos = plan(|c| c.delay = Some((min, max)));
        let mut lane = Lane::new(chaos, 1, ChaosCounters::detached());
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for i in 0..200 {
            lane.admit(text(i), now);
            let due = lane.due(now).expect("a message waits");
            waits.push(due - now);
            assert!(matches!(
                lane.release(due - Duration::from_millis(1)),
                Released::Nothing
            ));
            let Released::Messages(out) = lane.release(due) else {
                panic!("due at its time")
            };
            assert_eq!(out.iter().map(number).collect::<Vec<_>>(), [i]);
            now = due;
        }
        assert!(waits.iter().all(|w| (min..=max).contains(w)), "{waits:?}");
        assert!(waits.iter().any(|w| *w < Duration::from_millis(15)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(25)));
    }

    #[test]
    fn a_slow_consumer_paces_and_drops_or_leaves_in_the_outbox() {
        let slow = |drop_when_full| SlowConsumer {
            delay: Duration::from_millis(100),
            buffer_size: 3,
            drop_when_full,
        };
        let counters = ChaosCounters::detached();
        let mut lane = Lane::new(
            plan(|c| c.slow_consumer = Some(slow(true))),
            1,
            counters.clone(),
        );
        let start = Instant::now();
        for i in 0..5 {
            lane.admit(text(i), start);
        }
        assert_eq!(counters.slow_dropped.get(), 2);
        let Released::Messages(first) = lane.release(start) else {
            panic!("the first goes at once")
        };
        assert_eq!(first.len(), 1);
        assert!(matches!(
            lane.release(start + Duration::from_millis(99)),
            Released::Nothing
        ));
        assert!(matches!(
            lane.release(start + Duration::from_millis(100)),
            Released::Messages(_)
        ));

        let mut lane = Lane::new(
            plan(|c| c.slow_consumer = Some(slow(false))),
            1,
            ChaosCounters::detached(),
        );
        for i in 0..3 {
            assert!(lane.has_room());
            lane.admit(text(i), start);
        }
        assert!(
            !lane.has_room(),
            "a full buffer leaves messages in the outbox"
        );
    }

    #[test]
    fn disconnects_come_at_their_probability() {
        let chaos = plan(|c| c.disconnect = 0.05);
        let mut lane = Lane::new(chaos, 1, ChaosCounters::detached());
        let start = Instant::now();
        let (mut sent, mut disconnects) = (0, 0);
        for i in 0..20_000 {
            lane.admit(text(i), start);
            match lane.release(start) {
                Released::Messages(out) => sent += out.len(),
                Released::Disconnect => {
                    disconnects += 1;
                    lane.drain();
                }
                Released::Nothing => {}
            }
        }
        // 20,000 draws at 5%: 1,000 expected, sd ~31; 6 sd either way.
        assert!(
            (814..=1186).contains(&disconnects),
            "{disconnects} of 20000"
        );
        assert_eq!(sent + disconnects, 20_000);
    }
}
