//! How far a pipeline's consumer has gone, for clients that resume.
//!
//! Two marks per partition, both the next offset:
//! - *claimed* moves to the end of a batch before the batch is handed over,
//!   so whoever subscribes to the hub and then reads it knows that every
//!   record from there on reaches it live (below it, records came before,
//!   or are being delivered and may arrive twice: `crate::resume` drops
//!   those);
//! - *delivered* moves once the batch was handed over: every record below
//!   it is queued for its subscribers, so a checkpoint queued after reading
//!   it comes after them.
//!
//! A direct consumer puts each partition in at its start, so a partition
//! nothing was read from yet is known. The delivered mark is also where a
//! direct consumer that replaces this one resumes
//! ([`super::ConsumerWatch::positions`]).

use std::sync::Mutex;

use super::Positions;

/// Per (topic, partition), how far the consumer has claimed and delivered.
#[derive(Debug, Default)]
pub struct Frontier {
    claimed: Mutex<Positions>,
    delivered: Mutex<Positions>,
}

impl Frontier {
    /// A frontier that knows no partition yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// From here on, every record reaches a subscriber live.
    pub fn claimed(&self) -> Positions {
        lock(&self.claimed).clone()
    }

    /// Below here, every record is queued for its subscribers.
    pub fn delivered(&self) -> Positions {
        lock(&self.delivered).clone()
    }

    /// A partition is read from `next` on (kept if already known).
    pub(super) fn start(&self, topic: &str, partition: i32, next: i64) {
        for marks in [&self.claimed, &self.delivered] {
            lock(marks)
                .entry((topic.to_owned(), partition))
                .or_insert(next);
        }
    }

    /// The consumer is about to deliver up to these positions.
    pub(super) fn claim(&self, to: &[((&str, i32), i64)]) {
        advance(&self.claimed, to);
    }

    /// The consumer delivered up to these positions.
    pub(super) fn deliver(&self, to: &[((&str, i32), i64)]) {
        advance(&self.delivered, to);
    }
}

/// Moves marks on, once per batch: a lookup by scan allocates no key (a
/// consumer has few partitions).
fn advance(marks: &Mutex<Positions>, to: &[((&str, i32), i64)]) {
    let mut positions = lock(marks);
    for &((topic, partition), next) in to {
        match positions
            .iter_mut()
            .find(|((t, p), _)| t == topic && *p == partition)
        {
            Some((_, known)) => *known = (*known).max(next),
            None => {
                positions.insert((topic.to_owned(), partition), next);
            }
        }
    }
}

fn lock(marks: &Mutex<Positions>) -> std::sync::MutexGuard<'_, Positions> {
    marks.lock().unwrap_or_else(|e| e.into_inner())
}
