//! The admin REST API, on its own listener (`[admin]` in the pipeline
//! file): Prometheus metrics, the open connections (list, inspect, send a
//! message, close), the pipelines with their plugins, and broadcasting
//! into a pipeline's channel. `docs/admin-openapi.yaml` describes it.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /metrics` | Prometheus/OpenMetrics text (no token: meant for a scraper on a private address) |
//! | `GET /connections[?tenant=T][&pipeline=P]` | open connections (in a cluster: every node's, those of others as presence knows them) |
//! | `GET /connections/{id}` | one connection |
//! | `POST /connections/{id}/messages` | send it the body (text/* or JSON: text; octet-stream: binary) |
//! | `DELETE /connections/{id}[?code=C][&reason=R]` | close it (or a JSON body `{"code", "reason"}`) |
//! | `GET /pipelines` | pipelines with their plugins (slot, name, hash, limits) |
//! | `POST /pipelines/{name}/broadcast?channel=C` | publish the body to a channel (on every node of a cluster) |
//! | `GET /pipelines/{name}/channels/{channel}` | the channel's subscribers on every node (presence) |
//! | `GET /reload` | the last live reload's outcome (operator only) |
//! | `POST /reload` | reload the pipeline file now; answers with the outcome (operator only) |
//! | `GET /tenants` | tenants with their quotas and usage (connections, plugin time, throttling) |
//! | `GET /health` | each pipeline's readiness (and why not) with its open connections |
//!
//! Every path but `/metrics` needs `Authorization: Bearer <token>`: the
//! operator's token sees and does everything; a tenant's `admin_token`
//! sees and acts on that tenant's connections and pipelines only: another
//! tenant's are answered as if they did not exist (404, no existence
//! oracle). Errors are JSON: `{"error": "..."}`.

pub mod auth;
mod connections;
mod health;
mod http;
mod pipelines;
mod reload;
mod reload_queue;
mod tenants;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use arc_swap::ArcSwap;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::hub::Hub;
use crate::plugin::Limits;
use crate::tenant::TenantState;

pub use auth::{Caller, Tokens};
pub use http::MAX_BODY;
pub use reload_queue::{ReloadOutcome, ReloadRequest, Reloads, Trigger};

/// How long a client has to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin API serves from.
pub struct State {
    /// This node (its registry lists the open connections), and the
    /// others' connections (presence).
    cluster: Arc<Cluster>,
    catalog: ArcSwap<Catalog>,
    reloads: Option<Reloads>,
    /// What the listeners' `/readyz` reads (`None`: `/health` is 404).
    health: Option<Arc<ArcSwap<crate::ws::Health>>>,
}

/// The pipelines and tokens of the running config (a reload swaps them).
#[derive(Debug)]
pub struct Catalog {
    /// The pipelines, in file order.
    pub pipelines: Vec<PipelineEntry>,
    /// Who may call.
    pub tokens: Tokens,
}

/// A running pipeline's live parts, by name: what a [`Catalog`] is built
/// from besides the config.
pub struct Served {
    /// The pipeline.
    pub name: String,
    /// Its channels.
    pub hub: Arc<Hub>,
    /// Its tenant's live quotas and usage.
    pub tenant: Arc<TenantState>,
}

/// One pipeline as the admin API sees it.
#[derive(Debug)]
pub struct PipelineEntry {
    /// Its name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// Its listener.
    pub listener: String,
    /// Its path template.
    pub path: String,
    /// Its channels, to broadcast into.
    pub hub: Arc<Hub>,
    /// Its tenant's live quotas and usage.
    pub tenant_state: Arc<TenantState>,
    /// Its plugins, in pipeline order.
    pub plugins: Vec<PluginEntry>,
}

/// One plugin of a pipeline.
#[derive(Debug, Clone)]
pub struct PluginEntry {
    /// `auth`, `router`, `transforms[0]`, ..., `handler`.
    pub slot: String,
    /// The `plugin = "..."` value as written.
    pub name: String,
    /// Hex SHA-256 of the component.
    pub hash: String,
    /// Its limits.
    pub limits: Limits,
}

impl State {
    /// The state for `config`'s pipelines (each with its live parts from `served`,
    /// by pipeline name; a pipeline without one is left out), its tokens,
    /// and the open connections of `cluster` (this node's registry and the
    /// other nodes' presence). `reloads` serves
    /// `/reload` (`None`: 404, the process cannot reload), `health` serves
    /// `/health` (`None`: 404).
    pub fn new(
        config: &Config,
        cluster: Arc<Cluster>,
        served: &[Served],
        (reloads, health): (Option<Reloads>, Option<Arc<ArcSwap<crate::ws::Health>>>),
    ) -> Self {
        Self {
            cluster,
            catalog: ArcSwap::from_pointee(Catalog::new(config, served)),
            reloads,
            health,
        }
    }

    /// Serves a reloaded config's pipelines and tokens from now on.
    pub fn update(&self, config: &Config, served: &[Served]) {
        self.catalog.store(Arc::new(Catalog::new(config, served)));
    }

    /// The pipelines and tokens now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }
}

impl Catalog {
    fn new(config: &Config, served: &[Served]) -> Self {
        let pipelines = config
            .pipelines
            .iter()
            .filter_map(|p| {
                let live = served.iter().find(|s| s.name == p.name)?;
                Some(PipelineEntry {
                    name: p.name.clone(),
                    tenant: p.tenant.clone(),
                    listener: p.serving.listener.clone(),
                    path: p.serving.path.to_string(),
                    hub: live.hub.clone(),
                    tenant_state: live.tenant.clone(),
                    plugins: p
                        .plugins()
                        .into_iter()
                        .map(|(slot, plugin)| PluginEntry {
                            slot,
                            name: plugin.name.clone(),
                            hash: plugin.hash.clone(),
                            limits: plugin.limits,
                        })
                        .collect(),
                })
            })
            .collect();
        Self {
            pipelines,
            tokens: Tokens::from_config(config),
        }
    }
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: watch::Receiver<bool>) {
    let mut tasks =
        crate::listen::accept_until(listener, ("admin", None), shutdown, |stream, peer, _| {
            connection(stream, peer, state.clone())
        })
        .await;
    // Admin requests are short; whatever is still open is dropped.
    tasks.shutdown().await;
}

async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, state: Arc<State>) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(request, &state).await) }
    });
    let served = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "Admin API connection ended with an error.");
    }
}

/// The endpoints, by path shape.
enum Route<'p> {
    Metrics,
    Connections,
    Connection(&'p str),
    Messages(&'p str),
    Pipelines,
    Broadcast(&'p str),
    Channel(&'p str, &'p str),
    Reload,
    Tenants,
    Health,
}

impl<'p> Route<'p> {
    fn find(path: &'p str) -> Option<Self> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        Some(match segments.as_slice() {
            ["metrics"] => Route::Metrics,
            ["connections"] => Route::Connections,
            ["connections", id] => Route::Connection(id),
            ["connections", id, "messages"] => Route::Messages(id),
            ["pipelines"] => Route::Pipelines,
            ["pipelines", name, "broadcast"] => Route::Broadcast(name),
            ["pipelines", name, "channels", channel] => Route::Channel(name, channel),
            ["reload"] => Route::Reload,
            ["tenants"] => Route::Tenants,
            ["health"] => Route::Health,
            _ => return None,
        })
    }

    /// The methods it answers.
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Metrics
            | Route::Connections
            | Route::Pipelines
            | Route::Tenants
            | Route::Channel(..)
            | Route::Health => &[Method::GET],
            Route::Connection(_) => &[Method::GET, Method::DELETE],
            Route::Messages(_) | Route::Broadcast(_) => &[Method::POST],
            Route::Reload => &[Method::GET, Method::POST],
        }
    }
}

/// One request: route (404, 405), then the token (401), then the endpoint.
async fn handle(request: Request<hyper::body::Incoming>, state: &State) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query();
    let Some(route) = Route::find(path) else {
        return http::ApiError::new(StatusCode::NOT_FOUND, format!("no endpoint {path}"))
            .into_reply();
    };
    if !route.allowed().contains(&parts.method) {
        let allow: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
        return http::ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{} {path} is not supported (allowed: {})",
                parts.method,
                allow.join(", ")
            ),
        )
        .with_header("allow", allow.join(", "))
        .into_reply();
    }
    if let Route::Metrics = route {
        return metrics();
    }
    let caller = match state.catalog().tokens.authenticate(&parts.headers) {
        Ok(caller) => caller,
        Err(refusal) => {
            let (message, challenge) = match refusal {
                auth::Refusal::Missing => (
                    "this endpoint needs `Authorization: Bearer <token>`",
                    auth::CHALLENGE,
                ),
                auth::Refusal::Invalid => {
                    ("the bearer token is not valid", auth::CHALLENGE_INVALID)
                }
            };
            return http::ApiError::new(StatusCode::UNAUTHORIZED, message)
                .with_header("www-authenticate", challenge)
                .into_reply();
        }
    };
    let headers = &parts.headers;
    let result = match (route, &parts.method) {
        (Route::Connections, _) => connections::list(state, &caller, query),
        (Route::Connection(id), &Method::GET) => connections::get(state, &caller, id),
        (Route::Connection(id), _) => {
            connections::close(state, &caller, (id, query), headers, body).await
        }
        (Route::Messages(id), _) => connections::send(state, &caller, id, headers, body).await,
        (Route::Pipelines, _) => pipelines::list(state, &caller),
        (Route::Broadcast(name), _) => {
            pipelines::broadcast(state, &caller, (name, query), headers, body).await
        }
        (Route::Channel(name, channel), _) => pipelines::channel(state, &caller, (name, channel)),
        (Route::Reload, &Method::GET) => reload::last(state, &caller),
        (Route::Reload, _) => reload::now(state, &caller).await,
        (Route::Tenants, _) => tenants::list(state, &caller),
        (Route::Health, _) => health::get(state, &caller).await,
        (Route::Metrics, _) => Ok(metrics()),
    };
    result.unwrap_or_else(http::ApiError::into_reply)
}

/// `GET /metrics`: every metric, as OpenMetrics text.
fn metrics() -> Response<Full<Bytes>> {
    let mut reply = Response::new(Full::new(Bytes::from(crate::metrics::render())));
    reply.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    reply
}
