//! A Kafka consumer's families: records and batches it handed to its
//! pipeline, poll errors, client errors by kind, rebalances and the
//! partitions it owns.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::PipelineLabels;

/// The consumer families of one registry.
#[derive(Debug, Default)]
pub(super) struct ConsumerFamilies {
    records: Family<PipelineLabels, Counter>,
    batches: Family<PipelineLabels, Counter>,
    errors: Family<PipelineLabels, Counter>,
    rebalances: Family<PipelineLabels, Counter>,
    assigned: Family<PipelineLabels, Gauge>,
    client_errors: Family<KindLabels, Counter>,
}

/// tenant + pipeline + kind of client error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    tenant: String,
    pipeline: String,
    kind: String,
}

impl ConsumerFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "kafka_records_consumed",
            "Records the consumer handed to its pipeline",
            self.records.clone(),
        );
        registry.register(
            "kafka_consumer_batches",
            "Batches the consumer handed to its pipeline",
            self.batches.clone(),
        );
        registry.register(
            "kafka_consumer_errors",
            "Errors a poll returned (librdkafka retries by itself)",
            self.errors.clone(),
        );
        registry.register(
            "kafka_consumer_rebalances",
            "Partition assignments and revocations the consumer served",
            self.rebalances.clone(),
        );
        registry.register(
            "kafka_client_errors",
            "Client errors of the consumer by kind (authentication, tls, protocol_mismatch, transport, other); librdkafka retries",
            self.client_errors.clone(),
        );
        registry.register(
            "kafka_consumer_assigned_partitions",
            "Partitions the consumer owns now",
            self.assigned.clone(),
        );
    }

    pub(super) fn consumer(&self, labels: &PipelineLabels) -> ConsumerMetrics {
        ConsumerMetrics {
            records: self.records.get_or_create(labels).clone(),
            batches: self.batches.get_or_create(labels).clone(),
            errors: self.errors.get_or_create(labels).clone(),
            rebalances: self.rebalances.get_or_create(labels).clone(),
            assigned: self.assigned.get_or_create(labels).clone(),
            client_errors: self.client_errors.clone(),
            labels: labels.clone(),
        }
    }
}

/// One consumer's handles, labels resolved.
#[derive(Debug, Clone)]
pub struct ConsumerMetrics {
    records: Counter,
    batches: Counter,
    errors: Counter,
    rebalances: Counter,
    assigned: Gauge,
    client_errors: Family<KindLabels, Counter>,
    labels: PipelineLabels,
}

impl ConsumerMetrics {
    /// A batch of `records` went to the pipeline.
    pub fn batch(&self, records: usize) {
        self.batches.inc();
        self.records.inc_by(records as u64);
    }

    /// A poll returned an error.
    pub fn error(&self) {
        self.errors.inc();
    }

    /// librdkafka reported a client error of `kind`.
    pub fn client_error(&self, kind: &str) {
        let labels = KindLabels {
            tenant: self.labels.tenant.clone(),
            pipeline: self.labels.pipeline.clone(),
            kind: kind.to_owned(),
        };
        self.client_errors.get_or_create(&labels).inc();
    }

    /// A rebalance was served; the consumer owns `assigned` partitions now.
    pub fn rebalanced(&self, assigned: usize) {
        self.rebalances.inc();
        self.assigned.set(assigned as i64);
    }
}
