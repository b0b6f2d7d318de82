//! What a listener serves: the pipelines on it, each behind a path template.

use std::sync::Arc;

use crate::channel::BROADCAST_CHANNEL;
use crate::config::{Chaos, ConnectionPolicy, OutboxDef, Pipeline, RouteTemplate};
use crate::connections::Slots;
use crate::hub::Hub;
use crate::metrics::PipelineMetrics;
use crate::pipeline::InboundPath;
use crate::plugin::PluginPool;
use crate::recording::Recorder;
use crate::resume::Resume;
use crate::session::Sessions;
use crate::tenant::TenantState;

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
    pub inbound: Option<Arc<InboundPath>>,
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
    /// The `Host` it answers (lowercase, no port; `None`: any).
    pub host: Option<String>,
    /// Its tenant's live quotas.
    pub tenant_state: Arc<TenantState>,
    /// Signed positions and recovery, when its source has `resume`.
    pub resume: Option<Arc<Resume>>,
    /// Faults injected on purpose into what its connections are sent.
    pub chaos: Option<Arc<Chaos>>,
    /// Where its sessions are recorded, when it records them.
    pub recorder: Option<Arc<Recorder>>,
}

impl Endpoint {
    /// The endpoint for `pipeline`, publishing through `hub`.
    pub fn new(
        pipeline: &Pipeline,
        hub: Arc<Hub>,
        auth: Option<PluginPool>,
        inbound: Option<Arc<InboundPath>>,
        sessions: Option<Arc<Sessions>>,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        Self {
            pipeline: pipeline.name.clone(),
            tenant: pipeline.tenant.clone(),
            template: pipeline.serving.path.clone(),
            hub,
            auth,
            outbox: pipeline.serving.outbox,
            inbound,
            welcome: pipeline.serving.welcome,
            sessions,
            policy: pipeline.serving.policy.clone(),
            slots: Slots::new(pipeline.serving.policy.max_connections),
            metrics,
            host: pipeline.serving.host.clone(),
            tenant_state: TenantState::unlimited(&pipeline.tenant),
            resume: None,
            chaos: pipeline.serving.chaos.clone().map(Arc::new),
            recorder: None,
        }
    }

    /// Offers its clients [`crate::resume::PROTOCOL`] (after the
    /// pipeline's own subprotocols).
    pub fn with_resume(mut self, resume: Arc<Resume>) -> Self {
        let protocol = crate::resume::PROTOCOL.to_owned();
        if !self.policy.subprotocols.contains(&protocol) {
            self.policy.subprotocols.push(protocol);
        }
        self.resume = Some(resume);
        self
    }

    /// The resume of a client that negotiated `subprotocol`, if it is enveloped.
    pub fn resume_for(&self, subprotocol: Option<&str>) -> Option<&Arc<Resume>> {
        self.resume
            .as_ref()
            .filter(|_| subprotocol == Some(crate::resume::PROTOCOL))
    }

    /// Counts its connections and messages against `tenant`'s quotas.
    pub fn with_tenant(mut self, tenant: Arc<TenantState>) -> Self {
        self.tenant_state = tenant;
        self
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

    /// The endpoint serving `path` for a request to `host` (the `Host`
    /// header, if any), with the parameters its template captured. An
    /// endpoint of that host wins over one that answers any host.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<(Arc<Endpoint>, Params)> {
        let host = host.map(host_name);
        let matching = |for_host: bool| {
            self.endpoints.iter().find_map(|e| {
                let fits = match (&e.host, &host) {
                    (Some(wanted), Some(got)) => for_host && wanted.eq_ignore_ascii_case(got),
                    (Some(_), None) => false,
                    (None, _) => !for_host,
                };
                fits.then(|| {
                    e.template
                        .match_path(path)
                        .map(|params| (e.clone(), params))
                })
                .flatten()
            })
        };
        matching(true).or_else(|| matching(false))
    }
}

/// A `Host` header's name without its port (`[v6]:port` keeps its brackets).
fn host_name(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The channel a connection with these path parameters subscribes to.
pub fn channel_of(params: &[(String, String)]) -> String {
    params
        .iter()
        .find(|(name, _)| name == "channel")
        .map_or_else(|| BROADCAST_CHANNEL.to_owned(), |(_, value)| value.clone())
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("acme.example.com:8080"), "acme.example.com");
        assert_eq!(host_name("acme.example.com"), "acme.example.com");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
    }
}
