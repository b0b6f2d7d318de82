//! The cluster bus of each tenant that has pipelines, when the process is a
//! node of a cluster: what [`crate::cluster::Cluster::apply`] is given.

use std::collections::HashMap;

use anyhow::Context as _;

use super::Live;
use super::plan::Next;
use crate::cluster::TenantBus;
use crate::config::Config;
use crate::kafka::ClientSettings;

impl Live {
    /// One bus per tenant with pipelines in `next`, with their hubs (none
    /// without `[cluster]`). Creates the bus topics on the embedded broker.
    pub(super) fn next_buses(
        &self,
        config: &Config,
        next: &[Next],
    ) -> anyhow::Result<Vec<TenantBus>> {
        let Some(cluster) = &config.cluster else {
            return Ok(Vec::new());
        };
        let mut buses: Vec<TenantBus> = Vec::new();
        for n in next {
            let tenant = config
                .tenant(&n.config.tenant)
                .context("pipeline names an unknown tenant")?;
            let bus = match buses.iter_mut().position(|b| b.tenant == tenant.name) {
                Some(i) => &mut buses[i],
                None => {
                    let topic = cluster.bus_topic(tenant);
                    if let (Some(broker), crate::config::Brokers::Embedded) =
                        (&self.embedded, &tenant.kafka.brokers)
                    {
                        broker.ensure_topic(&topic).with_context(|| {
                            format!("cannot create cluster bus topic `{topic}`")
                        })?;
                    }
                    let settings = ClientSettings::new(&tenant.kafka, self.embedded.as_ref())
                        .with_context(|| format!("tenant `{}`: Kafka settings", tenant.name))?;
                    buses.push(TenantBus {
                        tenant: tenant.name.clone(),
                        topic,
                        kafka: tenant.kafka.clone(),
                        settings,
                        hubs: HashMap::new(),
                    });
                    buses.last_mut().context("just pushed")?
                }
            };
            bus.hubs.insert(n.config.name.clone(), n.hub.clone());
        }
        Ok(buses)
    }
}
