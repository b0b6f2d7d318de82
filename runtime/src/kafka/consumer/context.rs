//! The consumer's librdkafka context: logs, errors, rebalances, commits.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, RebalanceProtocol,
};
use rdkafka::error::{KafkaError as RdKafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;

use super::ConsumerProgress;
use super::start;
use super::undecodable::Report;
use crate::config::StartFrom;
use crate::kafka::log::forward;
use crate::kafka::security::{self, TokenProvider};
use crate::metrics::ConsumerMetrics;

pub(super) const CLIENT: &str = "consumer";

/// The context of one pipeline's consumer.
pub(crate) struct PipelineContext {
    pub(super) pipeline: Arc<str>,
    /// Where a group without committed offsets begins.
    start: StartFrom,
    pub(super) progress: Arc<ConsumerProgress>,
    pub(super) metrics: ConsumerMetrics,
    /// OAUTHBEARER tokens, if the cluster takes them.
    token: Option<Arc<dyn TokenProvider>>,
    /// The latest report of a batch that cannot be decoded, for the poll
    /// loop (see `undecodable.rs`).
    undecodable: Mutex<Option<Report>>,
}

impl PipelineContext {
    pub(super) fn new(
        pipeline: &str,
        start: StartFrom,
        progress: &Arc<ConsumerProgress>,
        metrics: ConsumerMetrics,
    ) -> Self {
        Self {
            pipeline: Arc::from(pipeline),
            start,
            progress: progress.clone(),
            metrics,
            token: None,
            undecodable: Mutex::new(None),
        }
    }

    pub(super) fn with_token_provider(mut self, token: Option<Arc<dyn TokenProvider>>) -> Self {
        self.token = token;
        self
    }

    /// The latest undecodable-batch report since the last call.
    pub(super) fn take_undecodable(&self) -> Option<Report> {
        self.undecodable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Logs and counts a client error.
    pub(super) fn report(&self, error: &RdKafkaError, reason: &str) {
        if let Some(report) = Report::of(error, reason) {
            *self.undecodable.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
        }
        let kind = self
            .progress
            .errors
            .report(CLIENT, &self.pipeline, error, reason);
        self.metrics.client_error(kind.as_str());
    }

    /// The client delivered something: it works again.
    pub(super) fn recovered(&self) {
        self.progress.errors.recovered(CLIENT, &self.pipeline);
    }

    /// Commits the offsets stored so far (those of handled batches), waiting
    /// for the broker. Nothing stored is not an error.
    pub(super) fn commit_stored(&self, consumer: &BaseConsumer<Self>, when: &'static str) {
        let pipeline = &*self.pipeline;
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::debug!(pipeline, when, "Committed handled offsets."),
            Err(RdKafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                tracing::debug!(pipeline, when, "No new offsets to commit.")
            }
            Err(error) => {
                tracing::warn!(pipeline, when, %error, "Committing handled offsets failed; their records may be delivered again.")
            }
        }
    }
}

impl ClientContext for PipelineContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        security::refresh(self.token.as_ref())
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward(CLIENT, &self.pipeline, level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.report(&error, reason);
    }

    /// Keeps the lag of the partitions this consumer reads, behind the
    /// handled (stored) offsets, else the committed ones: a direct consumer
    /// commits nothing. librdkafka reports -1 for partitions it does not
    /// fetch, and partition -1 is its internal placeholder.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lag = self.progress.lag.lock().unwrap_or_else(|e| e.into_inner());
        lag.clear();
        for (topic, stats) in statistics.topics {
            for (partition, p) in stats.partitions {
                let behind = if p.consumer_lag_stored >= 0 {
                    p.consumer_lag_stored
                } else {
                    p.consumer_lag
                };
                if partition >= 0 && behind >= 0 {
                    lag.insert((topic.clone(), partition), behind);
                }
            }
        }
    }
}

impl ConsumerContext for PipelineContext {
    /// librdkafka's rebalance, with explicit start offsets for a new
    /// assignment (see `start.rs`) and a commit of handled offsets before a
    /// revocation.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let pipeline = &*self.pipeline;
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let applied = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let pinned = match self.start {
                    StartFrom::Earliest => true,
                    StartFrom::Latest => start::pin_assignment(consumer, tpl)
                        .map_err(|error| {
                            tracing::warn!(pipeline, %error, "Could not fix start offsets in the rebalance; seeking after it.");
                        })
                        .is_ok(),
                };
                tracing::info!(pipeline, partitions = %describe(tpl), "Kafka partitions assigned.");
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                self.progress.positioned.store(pinned, Ordering::Release);
                assigned
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(pipeline, partitions = %describe(tpl), "Kafka partitions revoked.");
                // Only offsets of handled batches were stored: the next owner
                // resumes after them.
                self.commit_stored(consumer, "revoke");
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let error = RdKafkaError::Rebalance(other.into());
                tracing::warn!(pipeline, %error, "Kafka rebalance failed.");
                Ok(())
            }
        };
        if let Err(error) = applied {
            tracing::warn!(pipeline, %error, "Applying a Kafka rebalance failed.");
        }
        let assigned = consumer.assignment().map_or(0, |tpl| tpl.count());
        self.progress
            .assigned_partitions
            .store(assigned as u64, Ordering::Release);
        self.metrics.rebalanced(assigned);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let pipeline = &*self.pipeline;
        match result {
            Ok(()) => tracing::trace!(pipeline, offsets = %describe(offsets), "Offsets committed."),
            Err(RdKafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(pipeline, %error, "Kafka offset commit failed."),
        }
    }
}

/// `topic[partition]@offset, ...` for logs.
fn describe(partitions: &TopicPartitionList) -> String {
    let mut text = String::new();
    for element in partitions.elements() {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(element.topic());
        text.push('[');
        text.push_str(&element.partition().to_string());
        text.push(']');
        if let Some(offset) = element.offset().to_raw()
            && offset >= 0
        {
            text.push('@');
            text.push_str(&offset.to_string());
        }
    }
    text
}
