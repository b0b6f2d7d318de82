//! Tenants at run time: each one's quotas as live limiters, shared by all
//! its pipelines (connection slots, inbound and outbound rates, the plugin
//! CPU budget), and counted per tenant in metrics.
//!
//! What keeps tenants apart is structural: each pipeline has its own hub
//! (channels), plugin instances, threads and Kafka clients, and belongs to
//! one tenant, whose topics the config check confines it to. What they
//! share (the process's CPU, its async runtime) is what these quotas bound.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota as Rate, RateLimiter};

use crate::config::{Config, Quotas, Tenant};
use crate::connections::{Slot, Slots};
use crate::metrics::{Quota, TenantMetrics};
use crate::plugin::CpuBudget;

/// The hub takes its deliveries from the tenant's outbound rate.
impl crate::hub::DeliveryQuota for TenantState {
    fn admit_deliveries(&self, wanted: usize) -> usize {
        TenantState::admit_deliveries(self, wanted)
    }
}

/// One tenant's live quotas.
pub struct TenantState {
    /// Its name.
    pub name: String,
    /// Its quotas, as configured.
    pub quotas: Quotas,
    connections: Arc<Slots>,
    inbound: Option<DefaultDirectRateLimiter>,
    outbound: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
    cpu: Arc<CpuBudget>,
    metrics: TenantMetrics,
}

/// A connection's place under its tenant's `max_connections`, given back
/// (and the gauge lowered) when dropped.
#[derive(Debug)]
pub struct TenantSlot {
    _slot: Slot,
    tenant: Arc<TenantState>,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        // The slot itself is given back after this; count it gone now.
        let open = self.tenant.connections.open().saturating_sub(1);
        self.tenant.metrics.set_connections(open);
    }
}

impl std::fmt::Debug for TenantState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantState")
            .field("name", &self.name)
            .field("quotas", &self.quotas)
            .finish_non_exhaustive()
    }
}

fn limiter(per_second: u32) -> (DefaultDirectRateLimiter, NonZeroU32) {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    // Bursts of one second's worth.
    (RateLimiter::direct(Rate::per_second(rate)), rate)
}

impl TenantState {
    /// The live quotas of `tenant`.
    pub fn new(tenant: &Tenant) -> Arc<Self> {
        Self::with_quotas(&tenant.name, tenant.quotas)
    }

    /// A tenant with no limits (for pipelines built outside a config).
    pub fn unlimited(name: &str) -> Arc<Self> {
        Self::with_quotas(name, Quotas::default())
    }

    /// `tenant` with new quotas after a reload: the connections open under
    /// `previous` stay counted (new ones wait below a lowered cap).
    pub fn succeed(previous: &Self, tenant: &Tenant) -> Arc<Self> {
        previous.connections.set_max(tenant.quotas.max_connections);
        Self::build(&tenant.name, tenant.quotas, previous.connections.clone())
    }

    fn with_quotas(name: &str, quotas: Quotas) -> Arc<Self> {
        Self::build(name, quotas, Slots::new(quotas.max_connections))
    }

    fn build(name: &str, quotas: Quotas, connections: Arc<Slots>) -> Arc<Self> {
        let metrics = crate::metrics::global().tenant(name);
        Arc::new(Self {
            name: name.to_owned(),
            quotas,
            connections,
            inbound: quotas.inbound_messages_per_second.map(|r| limiter(r).0),
            outbound: quotas.outbound_deliveries_per_second.map(limiter),
            cpu: Arc::new(CpuBudget::new(quotas.plugin_cpu_share, metrics.clone())),
            metrics,
        })
    }

    /// Its plugin CPU budget, which every plugin it loads is charged to.
    pub fn cpu(&self) -> &Arc<CpuBudget> {
        &self.cpu
    }

    /// What it has used so far.
    pub fn usage(&self) -> Usage {
        Usage {
            plugin_seconds: self.metrics.plugin_seconds(),
            throttled: self.metrics.throttled_counts(),
        }
    }

    /// Open connections now.
    pub fn connections(&self) -> usize {
        self.connections.open()
    }

    /// Takes a place under `max_connections`; `None` (counted) when full.
    pub fn connection_slot(self: &Arc<Self>) -> Option<TenantSlot> {
        match self.connections.take() {
            Some(slot) => {
                self.metrics.set_connections(self.connections.open());
                Some(TenantSlot {
                    _slot: slot,
                    tenant: self.clone(),
                })
            }
            None => {
                self.metrics.throttled(Quota::Connections, 1);
                None
            }
        }
    }

    /// Takes one client message from the inbound rate; false (counted)
    /// when over it.
    pub fn admit_inbound(&self) -> bool {
        let Some(limiter) = &self.inbound else {
            return true;
        };
        let admitted = limiter.check().is_ok();
        if !admitted {
            self.metrics.throttled(Quota::Inbound, 1);
        }
        admitted
    }

    /// How many of `wanted` deliveries the outbound rate allows now; the
    /// rest are counted. A record goes to all its subscribers or none,
    /// unless it has more subscribers than a second's worth, when it goes
    /// to as many as the rate allows.
    pub fn admit_deliveries(&self, wanted: usize) -> usize {
        let Some((limiter, burst)) = &self.outbound else {
            return wanted;
        };
        let Some(n) = NonZeroU32::new(u32::try_from(wanted).unwrap_or(u32::MAX)) else {
            return 0;
        };
        let allowed = match limiter.check_n(n) {
            Ok(Ok(())) => wanted,
            Ok(Err(_)) => 0,
            // More than a burst: one at a time, as far as the rate goes.
            Err(_) => (0..(*burst).get().min(n.get()))
                .take_while(|_| limiter.check().is_ok())
                .count(),
        };
        if allowed < wanted {
            self.metrics
                .throttled(Quota::Outbound, (wanted - allowed) as u64);
        }
        allowed
    }
}

/// A tenant's use so far.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Seconds spent in its plugin calls.
    pub plugin_seconds: f64,
    /// Things each quota held back, by quota name.
    pub throttled: Vec<(&'static str, u64)>,
}

/// Every tenant's live state, by name.
#[derive(Debug, Default)]
pub struct Tenants {
    by_name: HashMap<String, Arc<TenantState>>,
}

impl Tenants {
    /// The tenants of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            by_name: config
                .tenants
                .iter()
                .map(|t| (t.name.clone(), TenantState::new(t)))
                .collect(),
        }
    }

    /// The tenants of `config` after a reload: a tenant whose quotas did
    /// not change keeps its state (its rates and budget go on), a changed
    /// one succeeds its old state, a new one starts afresh.
    pub fn next(&self, config: &Config) -> Self {
        Self {
            by_name: config
                .tenants
                .iter()
                .map(|t| {
                    let state = match self.by_name.get(&t.name) {
                        Some(old) if old.quotas == t.quotas => old.clone(),
                        Some(old) => TenantState::succeed(old, t),
                        None => TenantState::new(t),
                    };
                    (t.name.clone(), state)
                })
                .collect(),
        }
    }

    /// The state of tenant `name` (an unlimited one if it is unknown).
    pub fn get(&self, name: &str) -> Arc<TenantState> {
        self.by_name
            .get(name)
            .cloned()
            .unwrap_or_else(|| TenantState::unlimited(name))
    }

    /// Every tenant, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TenantState>> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(outbound: Option<u32>, inbound: Option<u32>, max: Option<usize>) -> Arc<TenantState> {
        TenantState::with_quotas(
            "tenant-unit-test",
            Quotas {
                outbound_deliveries_per_second: outbound,
                inbound_messages_per_second: inbound,
                max_connections: max,
                ..Quotas::default()
            },
        )
    }

    #[test]
    fn deliveries_go_to_all_subscribers_or_none_within_a_burst() {
        let tenant = quotas(Some(10), None, None);
        assert_eq!(tenant.admit_deliveries(4), 4);
        assert_eq!(tenant.admit_deliveries(4), 4);
        // Two left in the burst: a record for four gets none of them.
        assert_eq!(tenant.admit_deliveries(4), 0);
        assert_eq!(tenant.admit_deliveries(2), 2);
    }

    #[test]
    fn a_record_for_more_than_a_burst_goes_as_far_as_the_rate_allows() {
        let tenant = quotas(Some(10), None, None);
        assert_eq!(tenant.admit_deliveries(25), 10);
        assert_eq!(tenant.admit_deliveries(25), 0);
    }

    #[test]
    fn inbound_and_connections_are_capped() {
        let tenant = quotas(None, Some(2), Some(1));
        assert!(tenant.admit_inbound() && tenant.admit_inbound());
        assert!(!tenant.admit_inbound());
        let slot = tenant.connection_slot().expect("one place");
        assert!(tenant.connection_slot().is_none());
        drop(slot);
        assert!(tenant.connection_slot().is_some());
    }

    #[test]
    fn no_quotas_no_limits() {
        let tenant = TenantState::unlimited("tenant-unit-free");
        assert_eq!(tenant.admit_deliveries(1_000_000), 1_000_000);
        assert!((0..10_000).all(|_| tenant.admit_inbound()));
    }
}
