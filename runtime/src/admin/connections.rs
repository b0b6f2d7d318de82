//! `/connections`: list, inspect, message and close open WebSocket
//! connections: this node's (from the
//! [`Registry`](crate::connections::Registry)) and, in a cluster, the other
//! nodes' as presence knows them; a message or close for one of those goes
//! to its node through the cluster bus.

use std::borrow::Cow;

use hyper::body::Incoming;
use hyper::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::auth::Caller;
use super::http::{self, ApiError, Reply};
use crate::cluster::Placed;
use crate::connections::ConnInfo;
use crate::hub::{CloseRequest, Pushed};

/// The longest close reason a close frame can carry, in bytes.
const MAX_REASON: usize = 123;
/// The reason sent when a close request names none.
const DEFAULT_REASON: &str = "closed by an operator";

/// `GET /connections[?tenant=T][&pipeline=P]`.
pub fn list(state: &State, caller: &Caller, query: Option<&str>) -> Result<Reply, ApiError> {
    let params = http::query(query)?;
    let tenant = http::param(&params, "tenant");
    let pipeline = http::param(&params, "pipeline");
    if let Some(tenant) = tenant
        && !caller.may_access(tenant)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this token may not list tenant `{tenant}`'s connections"),
        ));
    }
    let registry = state.cluster.registry();
    let node = registry.node();
    let mut connections: Vec<(u64, Value)> = registry
        .all()
        .iter()
        .filter(|c| caller.may_access(&c.tenant))
        .filter(|c| tenant.is_none_or(|t| c.tenant == t))
        .filter(|c| pipeline.is_none_or(|p| c.pipeline == p))
        .map(|c| (c.id, describe(c, node)))
        .collect();
    for t in tenants(state, caller)
        .iter()
        .filter(|t| tenant.is_none_or(|x| x == *t))
    {
        let elsewhere = state
            .cluster
            .elsewhere(t, |m| pipeline.is_none_or(|p| m.pipeline == p));
        connections.extend(
            elsewhere
                .iter()
                .map(|p| (p.member.id, describe_remote(t, p))),
        );
    }
    connections.sort_by_key(|(id, _)| *id);
    let connections: Vec<Value> = connections.into_iter().map(|(_, c)| c).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "count": connections.len(), "connections": connections }),
    ))
}

/// `GET /connections/{id}`.
pub fn get(state: &State, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
    let body = match find(state, caller, id)? {
        Found::Here(conn) => describe(&conn, state.cluster.node()),
        Found::Elsewhere(tenant, placed) => describe_remote(&tenant, &placed),
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// `POST /connections/{id}/messages`: the body, as a text or binary
/// message by its `Content-Type`, onto the connection's outbox.
pub async fn send(
    state: &State,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Reply, ApiError> {
    let found = find(state, caller, id)?;
    let body = http::read_body(headers, body).await?;
    let frame = http::frame(headers, body)?;
    let (kind, bytes) = (frame.kind, frame.payload.len());
    let conn = match found {
        Found::Here(conn) => conn,
        Found::Elsewhere(tenant, placed) => {
            let id = placed.member.id;
            let node = state
                .cluster
                .send(&tenant, None, id, &frame)
                .ok_or_else(|| gone(id))?;
            tracing::info!(%caller, conn = id, node, pipeline = %placed.member.pipeline, ?kind, bytes, "Admin API: message sent to a connection on another node.");
            return Ok(http::json(
                StatusCode::ACCEPTED,
                &json!({ "connection": id, "node": node, "forwarded": true }),
            ));
        }
    };
    match conn.outbox.push(frame) {
        Pushed::Closed => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("connection {} is closing", conn.id),
        )),
        pushed => {
            let dropped_oldest = pushed == Pushed::DroppedOldest;
            tracing::info!(%caller, conn = conn.id, pipeline = %conn.pipeline, ?kind, bytes, "Admin API: message queued for a connection.");
            Ok(http::json(
                StatusCode::ACCEPTED,
                &json!({
                    "connection": conn.id,
                    "queued": true,
                    "dropped_oldest": dropped_oldest,
                }),
            ))
        }
    }
}

/// A close request's body: `{"code": 1000, "reason": "..."}`, both optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    code: Option<u16>,
    reason: Option<String>,
}

/// `DELETE /connections/{id}[?code=C][&reason=R]` (or a JSON body with
/// `code` and `reason`, which win over the query): closes the connection
/// after what is queued.
pub async fn close(
    state: &State,
    caller: &Caller,
    (id, query): (&str, Option<&str>),
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Reply, ApiError> {
    let params = http::query(query)?;
    let code = match http::param(&params, "code") {
        Some(text) => Some(
            text.parse::<u16>()
                .map_err(|_| {
                    ApiError::bad_request(format!("code {text:?} is not a WebSocket close code"))
                })
                .and_then(checked_code)?,
        ),
        None => None,
    };
    let reason = http::param(&params, "reason")
        .map(|r| checked_reason(r.to_owned()))
        .transpose()?;
    let found = find(state, caller, id)?;
    let body = http::read_body(headers, body).await?;
    let mut request = CloseBody { code, reason };
    if !body.iter().all(u8::is_ascii_whitespace) {
        if !http::media_type(headers).is_some_and(|m| http::is_json(&m)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a close request's body must be application/json: {\"code\": 1000, \"reason\": \"...\"}",
            ));
        }
        let parsed: CloseBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("bad close request body: {e}")))?;
        // Each value is checked wherever it comes from; the body's win.
        if let Some(code) = parsed.code {
            request.code = Some(checked_code(code)?);
        }
        if let Some(reason) = parsed.reason {
            request.reason = Some(checked_reason(reason)?);
        }
    }
    let code = request.code.unwrap_or(1000);
    let reason = request.reason.unwrap_or_else(|| DEFAULT_REASON.to_owned());
    let conn = match found {
        Found::Here(conn) => conn,
        Found::Elsewhere(tenant, placed) => {
            let id = placed.member.id;
            let node = state
                .cluster
                .close(&tenant, id, code, &reason)
                .ok_or_else(|| gone(id))?;
            tracing::info!(%caller, conn = id, node, code, %reason, "Admin API: closing a connection on another node.");
            return Ok(http::json(
                StatusCode::ACCEPTED,
                &json!({ "connection": id, "node": node, "closing": true, "code": code, "reason": reason }),
            ));
        }
    };
    tracing::info!(%caller, conn = conn.id, pipeline = %conn.pipeline, code, %reason, "Admin API: closing a connection.");
    conn.outbox.close(CloseRequest {
        code,
        reason: Cow::Owned(reason.clone()),
    });
    Ok(http::json(
        StatusCode::ACCEPTED,
        &json!({ "connection": conn.id, "closing": true, "code": code, "reason": reason }),
    ))
}

/// Close codes an operator may send: the registered ones that make sense
/// from a server, and the ranges for libraries (3000-3999) and
/// applications (4000-4999).
fn may_send(code: u16) -> bool {
    matches!(code, 1000 | 1001 | 1008 | 1011..=1014 | 3000..=4999)
}

/// `code` if an operator may send it, else 400.
fn checked_code(code: u16) -> Result<u16, ApiError> {
    if may_send(code) {
        Ok(code)
    } else {
        Err(ApiError::bad_request(format!(
            "close code {code} may not be sent: use 1000, 1001, 1008, 1011-1014 or 3000-4999"
        )))
    }
}

/// `reason` if a close frame can carry it, else 400.
fn checked_reason(reason: String) -> Result<String, ApiError> {
    if reason.len() > MAX_REASON {
        return Err(ApiError::bad_request(format!(
            "the close reason is {} bytes: at most {MAX_REASON}",
            reason.len()
        )));
    }
    Ok(reason)
}

/// Where a connection the caller may see is open.
enum Found {
    /// On this node.
    Here(std::sync::Arc<ConnInfo>),
    /// On another node of the cluster, in this tenant.
    Elsewhere(String, Placed),
}

/// The connection `id` names, if the caller may see it.
fn find(state: &State, caller: &Caller, id: &str) -> Result<Found, ApiError> {
    let id: u64 = id.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
        ApiError::bad_request(format!("connection id {id:?} is not a positive integer"))
    })?;
    // Another tenant's connection gets the answer of one that does not
    // exist: a tenant token cannot probe which ids are open elsewhere.
    if let Some(conn) = state
        .cluster
        .registry()
        .get(id)
        .filter(|conn| caller.may_access(&conn.tenant))
    {
        return Ok(Found::Here(conn));
    }
    tenants(state, caller)
        .into_iter()
        .find_map(|tenant| {
            let placed = state.cluster.find(&tenant, id)?;
            Some(Found::Elsewhere(tenant, placed))
        })
        .ok_or_else(|| gone(id))
}

fn gone(id: u64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no open connection {id}"))
}

/// The tenants with pipelines here that the caller may see.
fn tenants(state: &State, caller: &Caller) -> Vec<String> {
    let mut tenants: Vec<String> = state
        .catalog()
        .pipelines
        .iter()
        .filter(|p| caller.may_access(&p.tenant))
        .map(|p| p.tenant.clone())
        .collect();
    tenants.sort();
    tenants.dedup();
    tenants
}

/// A connection on another node, as presence knows it.
fn describe_remote(tenant: &str, placed: &Placed) -> Value {
    json!({
        "id": placed.member.id,
        "node": placed.node,
        "tenant": tenant,
        "pipeline": placed.member.pipeline,
        "channels": placed.member.channels,
        "principal": placed.member.principal,
    })
}

/// A connection of node `node` (this one) as the API shows it.
fn describe(conn: &ConnInfo, node: u16) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    json!({
        "id": conn.id,
        "node": node,
        "tenant": conn.tenant,
        "pipeline": conn.pipeline,
        "path": conn.path,
        "channels": conn.channels(),
        "principal": conn.principal,
        "remote_addr": conn.remote_addr.to_string(),
        "opened_at": crate::time::rfc3339(conn.opened_at),
        "age_seconds": conn.age_seconds(),
        "queue_depth": conn.outbox.depth(),
        "dropped": conn.outbox.dropped(),
        "messages_in": conn.messages_in.load(Relaxed),
        "bytes_in": conn.bytes_in.load(Relaxed),
        "messages_out": conn.messages_out.load(Relaxed),
        "bytes_out": conn.bytes_out.load(Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sendable_close_codes_pass() {
        for code in [1000, 1001, 1008, 1011, 1014, 3000, 4999] {
            assert!(may_send(code), "{code}");
        }
        for code in [0, 999, 1002, 1005, 1006, 1010, 1015, 2999, 5000] {
            assert!(!may_send(code), "{code}");
        }
    }
}
