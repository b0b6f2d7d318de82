//! A reader of given offset ranges, for recovering clients
//! (`crate::resume`): no group, no commits, no thread of its own; its owner
//! assigns where to read and polls.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::context::PipelineContext;
use super::poll_loop::{TopicNames, to_record};
use super::{ConsumerOptions, ConsumerProgress};
use crate::config::StartFrom;
use crate::kafka::{ClientSettings, KafkaError};
use crate::record::Record;

/// How long a watermark lookup may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Reads offset ranges of a pipeline's topics.
pub struct Reader {
    consumer: BaseConsumer<PipelineContext>,
    topics: TopicNames,
}

impl Reader {
    /// A reader for `options.pipeline`, named after `group_id` (never joined).
    pub fn new(
        settings: &ClientSettings,
        group_id: &str,
        options: &ConsumerOptions,
    ) -> Result<Self, KafkaError> {
        let config = settings.consumer_config(group_id, StartFrom::Earliest, true);
        let progress = Arc::new(ConsumerProgress::default());
        let context = PipelineContext::new(
            &options.pipeline,
            StartFrom::Earliest,
            &progress,
            options.metrics.clone(),
        )
        .with_token_provider(settings.token_provider());
        let consumer = super::client(&config, context)?;
        Ok(Self {
            consumer,
            topics: TopicNames::default(),
        })
    }

    /// The first offset still in a partition (records below were deleted).
    pub fn first_offset(&self, topic: &str, partition: i32) -> Result<i64, KafkaError> {
        let (low, _) = self
            .consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .map_err(|source| KafkaError::Client {
                client: "consumer",
                source,
            })?;
        Ok(low)
    }

    /// Reads these partitions from these offsets (replacing what it read).
    pub fn assign(&self, from: &[(&str, i32, i64)]) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::with_capacity(from.len());
        for &(topic, partition, offset) in from {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|source| KafkaError::Client {
                    client: "consumer",
                    source,
                })?;
        }
        self.consumer
            .assign(&list)
            .map_err(|source| KafkaError::Client {
                client: "consumer",
                source,
            })
    }

    /// Appends up to `max` records to `out`, waiting at most `timeout` for
    /// the first; errors are logged and counted by the client's context.
    pub fn poll(&mut self, max: usize, timeout: Duration, out: &mut Vec<Record>) {
        let mut wait = timeout;
        while out.len() < max {
            match self.consumer.poll(wait) {
                None => return,
                Some(Ok(message)) => out.push(to_record(&message, &mut self.topics)),
                Some(Err(error)) => {
                    self.consumer.context().report(&error, &error.to_string());
                    return;
                }
            }
            wait = Duration::ZERO;
        }
    }

    /// The next offset it reads from each assigned partition, where known.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        let Ok(positions) = self.consumer.position() else {
            return Vec::new();
        };
        positions
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(next) => Some((e.topic().to_owned(), e.partition(), next)),
                _ => None,
            })
            .collect()
    }
}
