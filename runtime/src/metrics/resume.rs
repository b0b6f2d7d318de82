//! Resume's families: how reconnects with a position ended, and what the
//! catch-up reader did for them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::PipelineLabels;

/// The resume families of one registry.
#[derive(Debug, Default)]
pub(super) struct ResumeFamilies {
    recoveries: Family<OutcomeLabels, Counter>,
    passes: Family<PipelineLabels, Counter>,
    records_read: Family<PipelineLabels, Counter>,
    records_recovered: Family<PipelineLabels, Counter>,
}

/// tenant + pipeline + how a recovery ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    tenant: String,
    pipeline: String,
    outcome: String,
}

impl ResumeFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "resume_recoveries",
            "Reconnects with a position, by outcome (complete, too_old, too_far, deleted, failed, slow_client)",
            self.recoveries.clone(),
        );
        registry.register(
            "resume_catch_up_passes",
            "Passes of the catch-up reader (reconnects that arrive together share one)",
            self.passes.clone(),
        );
        registry.register(
            "resume_catch_up_records_read",
            "Records the catch-up reader read from Kafka",
            self.records_read.clone(),
        );
        registry.register(
            "resume_records_recovered",
            "Records delivered to reconnected clients from the catch-up reader",
            self.records_recovered.clone(),
        );
    }

    pub(super) fn resume(&self, labels: &PipelineLabels) -> ResumeMetrics {
        ResumeMetrics {
            recoveries: self.recoveries.clone(),
            passes: self.passes.get_or_create(labels).clone(),
            records_read: self.records_read.get_or_create(labels).clone(),
            records_recovered: self.records_recovered.get_or_create(labels).clone(),
            labels: labels.clone(),
        }
    }
}

/// One pipeline's resume handles, labels resolved.
#[derive(Debug, Clone)]
pub struct ResumeMetrics {
    recoveries: Family<OutcomeLabels, Counter>,
    passes: Counter,
    records_read: Counter,
    records_recovered: Counter,
    labels: PipelineLabels,
}

impl ResumeMetrics {
    /// A reconnect with a position ended so.
    pub fn recovery(&self, outcome: &str) {
        self.recoveries
            .get_or_create(&OutcomeLabels {
                tenant: self.labels.tenant.clone(),
                pipeline: self.labels.pipeline.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The catch-up reader started a pass.
    pub fn pass(&self) {
        self.passes.inc();
    }

    /// It read `count` records.
    pub fn read(&self, count: u64) {
        self.records_read.inc_by(count);
    }

    /// It queued `count` records for reconnected clients.
    pub fn recovered(&self, count: u64) {
        self.records_recovered.inc_by(count);
    }
}
