//! A broker probe per tenant that uses Kafka (what `/readyz` asks), kept
//! across reloads while the tenant's Kafka settings stay the same.

use std::sync::Arc;

use anyhow::Context as _;

use super::Live;
use crate::config::{Config, Kafka};
use crate::kafka::{ClientSettings, Producer, ProducerOptions};
use crate::ws::BrokerProbe;

/// A tenant, the Kafka settings its probe was built with, and the probe.
pub(super) type Probe = (String, Kafka, Arc<BrokerProbe>);

impl Live {
    /// A broker probe per tenant that uses Kafka: kept when its settings
    /// did not change.
    pub(super) fn next_probes(&self, config: &Config) -> anyhow::Result<Vec<Probe>> {
        let mut probes: Vec<Probe> = Vec::new();
        for pipeline in &config.pipelines {
            if (pipeline.source.is_none() && pipeline.serving.sink.is_none())
                || probes.iter().any(|(t, _, _)| *t == pipeline.tenant)
            {
                continue;
            }
            let tenant = config
                .tenant(&pipeline.tenant)
                .context("pipeline names an unknown tenant")?;
            if let Some(kept) = self
                .probes
                .iter()
                .find(|(t, k, _)| *t == tenant.name && *k == tenant.kafka)
            {
                probes.push(kept.clone());
                continue;
            }
            let settings = ClientSettings::new(&tenant.kafka, self.embedded.as_ref())
                .with_context(|| format!("tenant `{}`: Kafka settings", tenant.name))?;
            let producer = Producer::new(
                &settings,
                ProducerOptions::new(format!("health-{}", tenant.name)),
            )
            .with_context(|| format!("tenant `{}`: broker probe", tenant.name))?;
            probes.push((
                tenant.name.clone(),
                tenant.kafka.clone(),
                Arc::new(BrokerProbe::new(producer, settings)),
            ));
        }
        Ok(probes)
    }
}
