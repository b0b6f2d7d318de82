//! `kafka_consumer_lag`: read at each scrape from what each consumer's
//! statistics callback last reported (librdkafka's per-partition
//! `consumer_lag`), rather than counted on a hot path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Lag by (topic, partition), as a consumer last reported it.
pub type LagMap = Arc<Mutex<BTreeMap<(String, i32), i64>>>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    tenant: String,
    pipeline: String,
    topic: String,
    partition: i32,
}

/// The consumers whose lag is exported.
#[derive(Debug, Clone, Default)]
pub struct LagSource {
    consumers: Arc<Mutex<Vec<(String, String, LagMap)>>>,
}

impl LagSource {
    /// Exports `lag` as the lag of `pipeline` of `tenant`.
    pub fn add(&self, tenant: &str, pipeline: &str, lag: LagMap) {
        self.consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((tenant.to_owned(), pipeline.to_owned(), lag));
    }

    /// Stops exporting the lag of `pipeline` of `tenant` (its consumer was
    /// replaced or removed).
    pub fn remove(&self, tenant: &str, pipeline: &str) {
        self.consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(t, p, _)| !(t == tenant && p == pipeline));
    }
}

impl Collector for LagSource {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let family = Family::<LagLabels, Gauge>::default();
        for (tenant, pipeline, lag) in &*self.consumers.lock().unwrap_or_else(|e| e.into_inner()) {
            for ((topic, partition), value) in &*lag.lock().unwrap_or_else(|e| e.into_inner()) {
                family
                    .get_or_create(&LagLabels {
                        tenant: tenant.clone(),
                        pipeline: pipeline.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .set(*value);
            }
        }
        let metric = encoder.encode_descriptor(
            "kafka_consumer_lag",
            "Records between a consumer's position and the end of its partition",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)
    }
}
