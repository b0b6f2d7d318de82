//! The checks before an upgrade, in order: the request's form
//! ([`super::request_form`]), origin allow-list, connection
//! rate per client IP, route (which pipeline), subprotocol, a free
//! connection slot (listener, pipeline and tenant), authenticator plugin, channel
//! permission. A refusal is a plain HTTP response with a short reason, never
//! an upgrade followed by a close.
//!
//! The route is looked up before authentication because each pipeline has
//! its own authenticator: a path no pipeline serves is a 404 without one.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use super::endpoint::{Endpoint, Params, Routes, channel_of};
use super::limit::PerIpLimit;
use crate::config::ListenerLimits;
use crate::connections::{Registry, Slot, Slots};
use crate::plugin::{Decision, Denial, Handshake, Header, PoolError, Principal};
use crate::tenant::TenantSlot;

/// A handshake that passed every check.
pub struct Admitted {
    /// The pipeline it connects to.
    pub endpoint: Arc<Endpoint>,
    /// The channel it subscribes to.
    pub channel: String,
    /// Who it is, when the pipeline authenticates.
    pub principal: Option<Principal>,
    /// The request path.
    pub path: String,
    /// Parameters its path template captured.
    pub params: Params,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The subprotocol chosen, echoed in the 101 response.
    pub subprotocol: Option<String>,
    /// The position a returning client of the resume subprotocol presented.
    pub resume: Option<crate::resume::Position>,
    /// Its places under the listener's and the pipeline's connection caps,
    /// held for as long as the connection lives.
    pub slots: (Slot, Slot, TenantSlot),
}

/// What a listener checks handshakes against.
pub struct Gate {
    /// Origins browsers may connect from (`None`: no check).
    pub allowed_origins: Option<Vec<String>>,
    /// Handshakes per client IP.
    pub per_ip: PerIpLimit,
    /// The pipelines on the listener (a live reload swaps them).
    pub routes: arc_swap::ArcSwap<Routes>,
    /// The listener's limits and timers.
    pub limits: ListenerLimits,
    /// Its open connections, against `limits.max_connections`.
    pub slots: Arc<Slots>,
    /// What `/readyz` and `/health` report (a live reload swaps it).
    pub health: Arc<arc_swap::ArcSwap<super::health::Health>>,
    /// The process's open connections (shared by every listener).
    pub registry: Arc<Registry>,
}

/// Why a handshake was refused (the metrics label) and the answer.
type Refusal = (&'static str, Response<Full<Bytes>>);

impl Gate {
    /// Runs every check on `request` from `peer`; counts each refusal in
    /// `ws_connections_rejected{reason}`.
    pub async fn admit<B>(
        &self,
        request: &Request<B>,
        peer: SocketAddr,
    ) -> Result<Admitted, Response<Full<Bytes>>> {
        let mut routed = None;
        match self.check(request, peer, &mut routed).await {
            Ok(admitted) => Ok(admitted),
            Err((reason, response)) => {
                match &routed {
                    Some(endpoint) => endpoint.metrics.rejected(reason),
                    None => crate::metrics::global().rejected(None, reason),
                }
                Err(response)
            }
        }
    }

    async fn check<B>(
        &self,
        request: &Request<B>,
        peer: SocketAddr,
        routed: &mut Option<Arc<Endpoint>>,
    ) -> Result<Admitted, Refusal> {
        super::request_form::check(request).map_err(malformed)?;
        if let (Some(allowed), Some(origin)) =
            (&self.allowed_origins, request.headers().get("origin"))
            && !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes())
        {
            return Err((
                "origin",
                refuse(StatusCode::FORBIDDEN, "origin not allowed", &[]),
            ));
        }
        if !self.per_ip.allow(peer.ip()) {
            return Err((
                "rate_limited",
                refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many connection attempts",
                    &[("retry-after", "1")],
                ),
            ));
        }
        let path = request.uri().path();
        let host = super::request_form::authority(request);
        let Some((endpoint, params)) = self.routes.load().find(host, path) else {
            return Err((
                "not_found",
                refuse(StatusCode::NOT_FOUND, "no such path", &[]),
            ));
        };
        *routed = Some(endpoint.clone());
        let channel = channel_of(&params);
        if let Err(why) = crate::channel::validate(&channel) {
            return Err(("bad_channel", refuse(StatusCode::BAD_REQUEST, &why, &[])));
        }
        let subprotocol = choose_subprotocol(request.headers(), &endpoint.policy.subprotocols);
        if subprotocol.is_none() && endpoint.policy.require_subprotocol {
            let reason = format!(
                "no supported subprotocol offered (Sec-WebSocket-Protocol: {})",
                endpoint.policy.subprotocols.join(", ")
            );
            return Err(("subprotocol", refuse(StatusCode::BAD_REQUEST, &reason, &[])));
        }
        let resume = match endpoint.resume_for(subprotocol.as_deref()) {
            Some(resume) => resume.presented(request.uri().query()).map_err(|refused| {
                (
                    "resume",
                    refuse(StatusCode::BAD_REQUEST, &refused.to_string(), &[]),
                )
            })?,
            None => None,
        };
        let full = || {
            (
                "capacity",
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connections",
                    &[("retry-after", "5")],
                ),
            )
        };
        let listener_slot = self.slots.take().ok_or_else(full)?;
        let pipeline_slot = endpoint.slots.take().ok_or_else(full)?;
        let tenant_slot = endpoint.tenant_state.connection_slot().ok_or_else(|| {
            (
                "tenant_quota",
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connections for this tenant",
                    &[("retry-after", "5")],
                ),
            )
        })?;
        let principal = match &endpoint.auth {
            None => None,
            Some(pool) => Some(authenticate(&endpoint, pool, request, peer, &params).await?),
        };
        if let Some(allowed) = principal.as_ref().and_then(|p| p.channels.as_ref())
            && !allowed.contains(&channel)
        {
            return Err((
                "channel",
                refuse(StatusCode::FORBIDDEN, "channel not allowed", &[]),
            ));
        }
        Ok(Admitted {
            endpoint,
            channel,
            principal,
            path: path.to_owned(),
            params,
            peer,
            subprotocol,
            resume,
            slots: (listener_slot, pipeline_slot, tenant_slot),
        })
    }
}

/// The answer to a request whose form is refused.
fn malformed(m: super::request_form::Malformed) -> Refusal {
    let headers: Vec<_> = m.header.into_iter().collect();
    (m.label, refuse(m.status, &m.reason, &headers))
}

/// Asks the pipeline's authenticator. Fails closed: a broken or overloaded
/// authenticator lets nobody in.
async fn authenticate<B>(
    endpoint: &Endpoint,
    pool: &crate::plugin::PluginPool,
    request: &Request<B>,
    peer: SocketAddr,
    params: &[(String, String)],
) -> Result<Principal, Refusal> {
    let handshake = handshake_of(request, peer, params);
    match pool.run(move |auth| auth.authenticate(&handshake)).await {
        Ok(Decision::Allow(principal)) => Ok(principal),
        Ok(Decision::Deny(denial)) => Err(("auth_denied", denied(&denial))),
        Err(PoolError::Saturated) => Err((
            "auth_overloaded",
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication is overloaded",
                &[("retry-after", "1")],
            ),
        )),
        Err(error) => {
            tracing::debug!(pipeline = %endpoint.pipeline, %error, "Authenticator failed; refusing the handshake.");
            Err((
                "auth_failed",
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "authentication failed",
                    &[],
                ),
            ))
        }
    }
}

/// What an authenticator is asked about `request`: its path, query, headers
/// (names lower-case, in order), the peer and the route's parameters.
pub fn handshake_of<B>(
    request: &Request<B>,
    peer: SocketAddr,
    params: &[(String, String)],
) -> Handshake {
    Handshake {
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or_default().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: value.as_bytes().to_vec(),
            })
            .collect(),
        remote_addr: peer.to_string(),
        params: params.to_vec(),
    }
}

/// The HTTP answer to an authenticator's denial: its status, reason and
/// headers (a header that is not valid HTTP is left out).
pub fn denied(denial: &Denial) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(denial.status).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = refuse(status, &denial.reason, &[]);
    for header in &denial.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(header.name.as_bytes()),
            hyper::header::HeaderValue::from_bytes(&header.value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The first of `supported` (the pipeline's preference order) that the
/// client offers in any `Sec-WebSocket-Protocol` header.
fn choose_subprotocol(headers: &hyper::HeaderMap, supported: &[String]) -> Option<String> {
    let offered: Vec<&str> = headers
        .get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    supported
        .iter()
        .find(|s| offered.contains(&s.as_str()))
        .cloned()
}

/// A plain-text refusal.
pub fn refuse(
    status: StatusCode,
    reason: &str,
    headers: &[(&'static str, &'static str)],
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{reason}\n"))));
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in headers {
        map.insert(*name, hyper::header::HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::choose_subprotocol;

    #[test]
    fn the_pipeline_preference_wins_among_offered_subprotocols() {
        let mut headers = hyper::HeaderMap::new();
        headers.append(
            "sec-websocket-protocol",
            "v1.feed, v2.feed".parse().unwrap(),
        );
        headers.append("sec-websocket-protocol", "chat".parse().unwrap());
        let supported = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose_subprotocol(&headers, &supported(&["v2.feed", "v1.feed"])),
            Some("v2.feed".into())
        );
        assert_eq!(
            choose_subprotocol(&headers, &supported(&["chat"])),
            Some("chat".into())
        );
        assert_eq!(choose_subprotocol(&headers, &supported(&["v3"])), None);
        assert_eq!(
            choose_subprotocol(&hyper::HeaderMap::new(), &supported(&["v1"])),
            None
        );
    }
}
