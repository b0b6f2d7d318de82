//! `/pipelines`: the pipelines with their plugins, and broadcasting into a
//! channel of one.

use hyper::body::Incoming;
use hyper::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::auth::Caller;
use super::http::{self, ApiError, Reply};
use super::{PipelineEntry, State};

/// `GET /pipelines`: the ones the caller may see.
pub fn list(state: &State, caller: &Caller) -> Result<Reply, ApiError> {
    let connections = state.cluster.registry().all();
    let catalog = state.catalog();
    let pipelines: Vec<Value> = catalog
        .pipelines
        .iter()
        .filter(|p| caller.may_access(&p.tenant))
        .map(|p| {
            let open = connections.iter().filter(|c| c.pipeline == p.name).count();
            let everywhere = open + state.cluster.connections_elsewhere(&p.tenant, &p.name);
            describe(p, (open, everywhere))
        })
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "count": pipelines.len(), "pipelines": pipelines }),
    ))
}

/// `POST /pipelines/{name}/broadcast?channel=C`: the body, as a text or
/// binary message by its `Content-Type`, to every connection subscribed
/// to channel `C` of that pipeline.
pub async fn broadcast(
    state: &State,
    caller: &Caller,
    (name, query): (&str, Option<&str>),
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Reply, ApiError> {
    let name = http::decode(name, false)?;
    let params = http::query(query)?;
    let catalog = state.catalog();
    let pipeline = visible(&catalog, caller, &name)?;
    let channel = http::param(&params, "channel")
        .ok_or_else(|| ApiError::bad_request("say which channel: `?channel=NAME`"))?;
    crate::channel::validate(channel).map_err(ApiError::bad_request)?;
    let body = http::read_body(headers, body).await?;
    let frame = http::frame(headers, body)?;
    let delivered = pipeline.hub.publish(channel, &frame);
    state
        .cluster
        .broadcast(&pipeline.tenant, &pipeline.name, channel, &frame);
    // What presence knows of the other nodes' subscribers right now.
    let elsewhere = state
        .cluster
        .subscribers_elsewhere(&pipeline.tenant, &pipeline.name, channel);
    tracing::info!(%caller, pipeline = %pipeline.name, %channel, delivered, elsewhere, kind = ?frame.kind, bytes = frame.payload.len(), "Admin API: broadcast.");
    Ok(http::json(
        StatusCode::ACCEPTED,
        &json!({
            "pipeline": pipeline.name,
            "channel": channel,
            "delivered": delivered,
            "subscribers_elsewhere": elsewhere,
        }),
    ))
}

/// `GET /pipelines/{name}/channels/{channel}`: the channel's subscribers on
/// every node (this one's from its registry, the others' from presence).
pub fn channel(
    state: &State,
    caller: &Caller,
    (name, channel): (&str, &str),
) -> Result<Reply, ApiError> {
    let name = http::decode(name, false)?;
    let channel = http::decode(channel, false)?;
    crate::channel::validate(&channel).map_err(ApiError::bad_request)?;
    let catalog = state.catalog();
    let pipeline = visible(&catalog, caller, &name)?;
    let members: Vec<Value> = state
        .cluster
        .channel_members(&pipeline.tenant, &pipeline.name, &channel)
        .into_iter()
        .map(|p| json!({ "id": p.member.id, "node": p.node, "principal": p.member.principal }))
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "pipeline": pipeline.name,
            "channel": channel,
            "count": members.len(),
            "members": members,
        }),
    ))
}

/// The pipeline `name` if the caller may see it; another tenant's is
/// answered as one that does not exist.
fn visible<'c>(
    catalog: &'c super::Catalog,
    caller: &Caller,
    name: &str,
) -> Result<&'c PipelineEntry, ApiError> {
    catalog
        .pipelines
        .iter()
        .find(|p| p.name == name && caller.may_access(&p.tenant))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no pipeline `{name}`")))
}

/// A pipeline as the API shows it.
/// `connections`: open here, and on every node of the cluster.
fn describe(pipeline: &PipelineEntry, (connections, everywhere): (usize, usize)) -> Value {
    let plugins: Vec<Value> = pipeline
        .plugins
        .iter()
        .map(|p| {
            json!({
                "slot": p.slot,
                "name": p.name,
                "hash": p.hash,
                "limits": {
                    "memory_bytes": p.limits.memory_bytes,
                    "deadline_ms": p.limits.deadline_ms,
                },
            })
        })
        .collect();
    json!({
        "name": pipeline.name,
        "tenant": pipeline.tenant,
        "listener": pipeline.listener,
        "path": pipeline.path,
        "connections": connections,
        "cluster_connections": everywhere,
        "plugins": plugins,
    })
}
