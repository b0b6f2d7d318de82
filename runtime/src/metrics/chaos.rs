//! Chaos's family: what `[pipelines.chaos]` did on purpose, by action.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::PipelineLabels;

/// tenant + pipeline + what chaos did.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionLabels {
    tenant: String,
    pipeline: String,
    action: String,
}

/// The family itself, registered as `chaos_actions`.
pub(super) type ChaosFamily = Family<ActionLabels, Counter>;

/// One pipeline's chaos counters, resolved once per connection.
#[derive(Debug, Clone, Default)]
pub struct ChaosCounters {
    /// Messages dropped (`message_drop_rate`).
    pub dropped: Counter,
    /// Messages sent twice (`message_duplicate_rate`).
    pub duplicated: Counter,
    /// Messages sent after the one behind them (`message_reorder_rate`).
    pub reordered: Counter,
    /// Messages delayed (`delay`).
    pub delayed: Counter,
    /// Connections dropped (`disconnect_probability`).
    pub disconnected: Counter,
    /// Messages dropped because a slow consumer's buffer was full.
    pub slow_dropped: Counter,
}

impl ChaosCounters {
    /// Counters in no registry (tests of the chaos lane).
    pub fn detached() -> Self {
        Self::default()
    }

    pub(super) fn of(family: &ChaosFamily, labels: &PipelineLabels) -> Self {
        let counter = |action: &str| {
            family
                .get_or_create(&ActionLabels {
                    tenant: labels.tenant.clone(),
                    pipeline: labels.pipeline.clone(),
                    action: action.to_owned(),
                })
                .clone()
        };
        Self {
            dropped: counter("dropped"),
            duplicated: counter("duplicated"),
            reordered: counter("reordered"),
            delayed: counter("delayed"),
            disconnected: counter("disconnected"),
            slow_dropped: counter("slow_consumer_dropped"),
        }
    }
}
