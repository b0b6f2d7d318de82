//! `/tenants`: each tenant the caller may see (those with pipelines), its
//! quotas and what it uses now.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{Value, json};

use super::State;
use super::auth::Caller;
use super::http::{self, ApiError, Reply};
use crate::tenant::TenantState;

/// `GET /tenants`: by name.
pub fn list(state: &State, caller: &Caller) -> Result<Reply, ApiError> {
    let mut tenants: BTreeMap<String, std::sync::Arc<TenantState>> = BTreeMap::new();
    for pipeline in &state.catalog().pipelines {
        let tenant = &pipeline.tenant_state;
        if caller.may_access(&tenant.name) {
            tenants.insert(tenant.name.clone(), tenant.clone());
        }
    }
    let tenants: Vec<Value> = tenants.values().map(|t| describe(t)).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "count": tenants.len(), "tenants": tenants }),
    ))
}

fn describe(tenant: &TenantState) -> Value {
    let q = &tenant.quotas;
    let usage = tenant.usage();
    json!({
        "name": tenant.name,
        "quotas": {
            "max_connections": q.max_connections,
            "inbound_messages_per_second": q.inbound_messages_per_second,
            "outbound_deliveries_per_second": q.outbound_deliveries_per_second,
            "plugin_memory_bytes": q.plugin_memory_bytes,
            "plugin_deadline_ms": q.plugin_deadline_ms,
            "plugin_cpu_share": q.plugin_cpu_share,
        },
        "connections": tenant.connections(),
        "plugin_seconds": usage.plugin_seconds,
        "throttled": usage.throttled.into_iter().collect::<BTreeMap<_, _>>(),
    })
}
