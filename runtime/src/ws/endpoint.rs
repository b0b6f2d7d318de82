//! What a listener serves: the pipelines on it, each behind a path template.

use std::sync::Arc;

use super::limit::Slots;
use crate::config::{ConnectionPolicy, OutboxDef, Pipeline, RouteTemplate};
use crate::hub::Hub;
use crate::metrics::PipelineMetrics;
use crate::pipeline::Inbound;
use crate::plugin::PluginPool;
use crate::session::Sessions;

/// The channel a connection subscribes to when its path template has no
/// `{channel}` parameter: every record routed to `*` reaches it.
pub const BROADCAST_CHANNEL: &str = "*";

/// One pipeline as the WebSocket side sees it.
pub struct Endpoint {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its tenant.
    pub tenant: String,
    /// The path it serves.
    pub template: RouteTemplate,
    /// Its channels.
    pub hub: Arc<Hub>,
    /// Its authenticator, if it has one.
    pub auth: Option<PluginPool>,
    /// Each connection's outgoing queue.
    pub outbox: OutboxDef,
    /// Where client messages go, if the pipeline has a sink.
    pub inbound: Option<Arc<Inbound>>,
    /// Greet each client with its id on connect.
    pub welcome: bool,
    /// Its handler, which then gets every client message.
    pub sessions: Option<Arc<Sessions>>,
    /// What its clients may do.
    pub policy: ConnectionPolicy,
    /// Its open connections, against `policy.max_connections`.
    pub slots: Arc<Slots>,
    /// Its metrics handles.
    pub metrics: Arc<PipelineMetrics>,
}

impl Endpoint {
    /// The endpoint for `pipeline`, publishing through `hub`.
    pub fn new(
        pipeline: &Pipeline,
        hub: Arc<Hub>,
        auth: Option<PluginPool>,
        inbound: Option<Arc<Inbound>>,
        sessions: Option<Arc<Sessions>>,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        Self {
            pipeline: pipeline.name.clone(),
            tenant: pipeline.tenant.clone(),
            template: pipeline.path.clone(),
            hub,
            auth,
            outbox: pipeline.outbox,
            inbound,
            welcome: pipeline.welcome,
            sessions,
            policy: pipeline.policy.clone(),
            slots: Slots::new(pipeline.policy.max_connections),
            metrics,
        }
    }
}

/// Path parameters a template captured: (name, value).
pub type Params = Vec<(String, String)>;

/// The endpoints of one listener.
#[derive(Default)]
pub struct Routes {
    endpoints: Vec<Arc<Endpoint>>,
}

impl Routes {
    /// Adds an endpoint.
    pub fn add(&mut self, endpoint: Endpoint) {
        self.endpoints.push(Arc::new(endpoint));
    }

    /// Adds an endpoint another listener table shares (a reload builds new
    /// tables from the endpoints that did not change).
    pub fn add_shared(&mut self, endpoint: Arc<Endpoint>) {
        self.endpoints.push(endpoint);
    }

    /// The endpoint serving `path`, with the parameters its template captured.
    pub fn find(&self, path: &str) -> Option<(Arc<Endpoint>, Params)> {
        self.endpoints.iter().find_map(|e| {
            e.template
                .match_path(path)
                .map(|params| (e.clone(), params))
        })
    }
}

/// The channel a connection with these path parameters subscribes to.
pub fn channel_of(params: &[(String, String)]) -> String {
    params
        .iter()
        .find(|(name, _)| name == "channel")
        .map_or_else(|| BROADCAST_CHANNEL.to_owned(), |(_, value)| value.clone())
}
