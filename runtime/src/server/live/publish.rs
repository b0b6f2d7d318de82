//! What the readers of a running config see after each apply: each
//! listener's routes, the health snapshot behind `/readyz` and `/health`,
//! and the admin API's pipelines and tokens.

use std::sync::Arc;

use super::Live;
use crate::ws::{Health, PipelineHealth};

impl Live {
    /// Hands the new routes, health snapshot and admin view to the readers.
    pub(super) fn publish(&self) {
        for (listener, gate) in &self.gates {
            gate.routes.store(Arc::new(self.routes(listener)));
        }
        let mut health = Health::default();
        for a in &self.active {
            health.pipelines.push(PipelineHealth {
                name: a.config.name.clone(),
                tenant: a.config.tenant.clone(),
                consumer: a.feed.as_ref().map(|f| f.handle.watch()),
                uses_kafka: a.kafka.is_some(),
                slots: a.endpoint.slots.clone(),
            });
        }
        health.cluster = Some(self.cluster.clone());
        health.probes = self
            .probes
            .iter()
            .map(|(tenant, _, probe)| (tenant.clone(), probe.clone()))
            .collect();
        self.health.store(Arc::new(health));
        if let (Some(admin), Some(config)) = (&self.admin, &self.config) {
            admin.update(config, &self.served());
        }
    }
}
