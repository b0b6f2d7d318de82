//! Where a new assignment starts reading, with `start = "latest"`.
//!
//! Left to itself, librdkafka resolves "latest" lazily: it looks up the
//! committed offset, then (none found) the log end, some time after the
//! assignment, and a record produced before that lookup is skipped; a seek
//! made meanwhile can even be overridden by the pending lookup. So the
//! rebalance callback gives each assigned partition without a committed
//! offset an explicit start, its high watermark *now*, before librdkafka
//! takes the assignment: from then on every record produced is read. When
//! that fails (the broker is slow), the poll loop seeks instead.
//! (`earliest` needs nothing: it skips nothing.)

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::StartFrom;

/// How long each broker request of a pin may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sets an explicit start offset in `assignment` (about to be assigned)
/// for every partition without a committed offset: its high watermark.
pub(super) fn pin_assignment<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    assignment: &mut TopicPartitionList,
) -> Result<(), RdKafkaError> {
    let committed = consumer.committed_offsets(assignment.clone(), TIMEOUT)?;
    for element in committed.elements() {
        if let Offset::Offset(_) = element.offset() {
            continue;
        }
        let (topic, partition) = (element.topic(), element.partition());
        let (_, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        assignment.set_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    Ok(())
}

/// The fallback: seeks every assigned partition without a committed
/// offset to its high watermark (records produced between the assignment
/// and now may have been skipped; the callback's pin avoids that).
pub(super) fn seek_to_latest<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    start: StartFrom,
) -> Result<(), RdKafkaError> {
    if start == StartFrom::Earliest {
        return Ok(());
    }
    let assignment = consumer.assignment()?;
    let committed = consumer.committed_offsets(assignment, TIMEOUT)?;
    for element in committed.elements() {
        if let Offset::Offset(_) = element.offset() {
            continue;
        }
        let (topic, partition) = (element.topic(), element.partition());
        let (_, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        consumer.seek(topic, partition, Offset::Offset(high), TIMEOUT)?;
    }
    Ok(())
}
