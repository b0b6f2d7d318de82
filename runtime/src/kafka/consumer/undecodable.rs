//! Record batches the consumer cannot decode (corrupt compressed data, a
//! codec librdkafka lacks). librdkafka reports them only as a client error
//! whose text names the batch's base offset (not its partition), and
//! fetches the batch again and again: the position never passes it.
//!
//! [`Stuck`] finds the partition: on a report it notes the position of
//! every partition that has records at or past that offset (a partition
//! nothing was read from yet counts as at the reported offset); on a
//! report at least [`SETTLE`] later, one whose position has not moved is
//! stuck (a healthy partition would have been read by then). Each of its offsets
//! then goes to the pipeline as a record without payload that carries the
//! reason ([`Record::undecodable`]), so the pipeline's poison policy (skip,
//! stop, dead-letter) applies, and the consumer seeks past it. One offset
//! per report: never past a record that could have been read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

use crate::record::Record;

/// How long a watermark or seek request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a suspect must stand still before it is taken as stuck.
const SETTLE: Duration = Duration::from_secs(1);

/// A report of an undecodable batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Report {
    /// The batch's base offset, from librdkafka's text.
    pub base: i64,
    /// librdkafka's words.
    pub reason: String,
}

impl Report {
    /// The report in a client error, if it is one: `BadCompression` or
    /// `NotImplemented` (a codec librdkafka was built without), whose text
    /// reads "... of message at 123 of 72 bytes failed ...".
    pub fn of(error: &RdKafkaError, reason: &str) -> Option<Self> {
        let code = error.rdkafka_error_code()?;
        if !matches!(
            code,
            RDKafkaErrorCode::BadCompression | RDKafkaErrorCode::NotImplemented
        ) {
            return None;
        }
        let (_, after) = reason.split_once("message at ")?;
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        Some(Self {
            base: digits.parse().ok()?,
            reason: reason.to_owned(),
        })
    }
}

/// A partition that may be stuck: where it stood at the last report.
#[derive(Debug)]
struct Suspect {
    topic: Arc<str>,
    partition: i32,
    /// The position librdkafka reported (`None`: nothing read yet).
    reported: Option<i64>,
    /// The offset that would be handed over.
    next: i64,
}

/// Tracks reports until a stuck partition is found.
#[derive(Debug, Default)]
pub(super) struct Stuck {
    suspects: Vec<Suspect>,
    noted_at: Option<Instant>,
}

impl Stuck {
    /// Given the latest report (if any), returns the record to hand to
    /// the pipeline for the stuck partition's next offset, once found.
    pub fn next<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        report: Option<Report>,
    ) -> Option<Record> {
        let report = report?;
        let positions = positions(consumer);
        if self.suspects.is_empty() {
            // First report: note every partition with records at or past
            // the reported offset.
            self.suspects = positions
                .into_iter()
                .filter_map(|(topic, partition, reported)| {
                    let next = reported.unwrap_or(report.base);
                    let (low, high) = consumer
                        .fetch_watermarks(&topic, partition, REQUEST_TIMEOUT)
                        .ok()?;
                    (next >= report.base && low <= next && next < high).then(|| Suspect {
                        topic: Arc::from(topic.as_str()),
                        partition,
                        reported,
                        next,
                    })
                })
                .collect();
            self.noted_at = Some(Instant::now());
            return None;
        }
        if self.noted_at.is_some_and(|at| at.elapsed() < SETTLE) {
            return None;
        }
        let stuck = self.suspects.iter_mut().find(|s| {
            positions.iter().any(|(t, p, reported)| {
                // After a seek past a hole the position may read as it.
                *t == *s.topic
                    && *p == s.partition
                    && (*reported == s.reported || *reported == Some(s.next))
            })
        });
        let Some(stuck) = stuck else {
            // They all moved on: it was something else.
            self.suspects.clear();
            return None;
        };
        let hole = Record {
            topic: stuck.topic.clone(),
            partition: stuck.partition,
            offset: stuck.next,
            timestamp_ms: None,
            key: None,
            payload: Bytes::new(),
            headers: Vec::new(),
            undecodable: Some(Arc::from(report.reason.as_str())),
        };
        // Next time, its next offset (the rest of the batch fails alike).
        stuck.next += 1;
        self.suspects
            .retain(|s| s.partition == hole.partition && *s.topic == *hole.topic);
        Some(hole)
    }
}

/// Moves `pipeline`'s fetch position past `hole`.
pub(super) fn seek_past<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    pipeline: &str,
    hole: &Record,
) {
    let next = Offset::Offset(hole.offset + 1);
    if let Err(error) = consumer.seek(&hole.topic, hole.partition, next, REQUEST_TIMEOUT) {
        tracing::warn!(pipeline, topic = %hole.topic, partition = hole.partition, offset = hole.offset, %error,
            "Cannot seek past an undecodable record; it is reported again.");
    }
}

/// The position of every assigned partition (`None`: nothing read yet).
fn positions<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Vec<(String, i32, Option<i64>)> {
    let Ok(list) = consumer.position() else {
        return Vec::new();
    };
    list.elements()
        .iter()
        .map(|e| {
            let position = match e.offset() {
                Offset::Offset(position) => Some(position),
                _ => None,
            };
            (e.topic().to_owned(), e.partition(), position)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decompression_failure_names_its_base_offset() {
        let error = RdKafkaError::Global(RDKafkaErrorCode::BadCompression);
        let report = Report::of(
            &error,
            "Decompression (codec 0x4) of message at 1234 of 72 bytes failed: Local: Invalid compressed data",
        );
        assert_eq!(report.map(|r| r.base), Some(1234));
        let other = RdKafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(Report::of(&other, "message at 5 of 1 bytes"), None);
        assert_eq!(Report::of(&error, "no offset in these words"), None);
    }
}
