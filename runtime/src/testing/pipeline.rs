//! Running a pipeline file's `[[tests]]` (`sluice test`) through the
//! pipeline's real plugins and host code: a record through its [`Stages`]
//! (transforms, router, framing); a handshake through the listener's
//! [`Gate`] (origin, route, subprotocol, authenticator, channel
//! permission) and then, for a handler pipeline, the handler with the
//! connection the gate admitted, or for a sink pipeline, the sink's
//! [`SinkPrep`] (inbound transforms, key). No Kafka and no socket are
//! involved.

use std::sync::Arc;

use anyhow::Context as _;
use http_body_util::BodyExt as _;
use serde_json::{Map, Value};

use super::fixture::{CloseInput, HandshakeInput, Input, MessageInput};
use super::outcome;
use super::run::{request_of, run_record, session};
use crate::config::{Config, Pipeline, PipelineTest, PluginConfig};
use crate::connections::{Registry, Slots};
use crate::hub::Hub;
use crate::pipeline::{Sender, SinkPrep};
use crate::plugin::{Action, Connection, LoadedPlugin, PluginHost, PluginPool};
use crate::ws::{Admitted, Endpoint, Gate, Health, PerIpLimit, Routes};

/// Handshakes an authenticator test may queue (one runs at a time).
const AUTH_QUEUE: usize = 16;

/// Runs the tests of one checked pipeline file.
pub struct PipelineTests<'a> {
    config: &'a Config,
    host: &'a PluginHost,
    runtime: tokio::runtime::Runtime,
}

impl<'a> PipelineTests<'a> {
    /// Tests of `config`, with plugins from `host`.
    pub fn new(config: &'a Config, host: &'a PluginHost) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start an async runtime for the handshakes")?;
        Ok(Self {
            config,
            host,
            runtime,
        })
    }

    /// The outcome of one test; a plugin that cannot be loaded is reported
    /// as the test's `error`.
    pub fn run(&self, test: &PipelineTest) -> Value {
        match self.try_run(test) {
            Ok(outcome) => outcome,
            Err(error) => {
                let mut out = Map::new();
                out.insert("error".into(), "setup".into());
                out.insert("message".into(), format!("{error:#}").into());
                Value::Object(out)
            }
        }
    }

    fn try_run(&self, test: &PipelineTest) -> anyhow::Result<Value> {
        let pipeline = self
            .config
            .pipelines
            .iter()
            .find(|p| p.name == test.pipeline)
            .with_context(|| format!("no pipeline `{}`", test.pipeline))?;
        match &test.case.input {
            Input::Record(record) => {
                let mut stages = crate::server::stages(pipeline, self.host, None)?;
                Ok(run_record(&mut stages, record))
            }
            Input::Client(client) => {
                let handshake = match &client.handshake {
                    Some(handshake) => handshake.clone(),
                    None => default_handshake(pipeline)?,
                };
                self.client(
                    pipeline,
                    &handshake,
                    &client.messages,
                    client.close.as_ref(),
                )
            }
        }
    }

    fn load(&self, pipeline: &Pipeline, plugin: &PluginConfig) -> anyhow::Result<LoadedPlugin> {
        crate::server::load_plugin(self.host, pipeline, plugin, None)
    }

    /// The gate of `pipeline`'s listener, with every pipeline on it.
    fn gate(&self, pipeline: &Pipeline) -> anyhow::Result<Gate> {
        let listener = self
            .config
            .listener(&pipeline.serving.listener)
            .with_context(|| format!("no listener `{}`", pipeline.serving.listener))?;
        let mut routes = Routes::default();
        for p in self
            .config
            .pipelines
            .iter()
            .filter(|p| p.serving.listener == listener.name)
        {
            let auth = match &p.serving.auth {
                Some(plugin) => Some(PluginPool::start(&self.load(p, plugin)?, 1, AUTH_QUEUE)?),
                None => None,
            };
            let metrics = crate::metrics::global().pipeline(&p.tenant, &p.name);
            routes.add(Endpoint::new(
                p,
                Arc::new(Hub::new()),
                auth,
                None,
                None,
                metrics,
            ));
        }
        Ok(Gate {
            allowed_origins: listener.allowed_origins.clone(),
            per_ip: PerIpLimit::new(listener.connections_per_ip),
            routes: Arc::new(routes).into(),
            limits: listener.limits,
            slots: Slots::new(Some(listener.limits.max_connections)),
            health: Arc::new(arc_swap::ArcSwap::from_pointee(Health::default())),
            registry: Arc::new(Registry::default()),
        })
    }

    /// A client: its handshake through the gate, then (in a handler
    /// pipeline) its life in the handler.
    fn client(
        &self,
        pipeline: &Pipeline,
        handshake: &HandshakeInput,
        messages: &[MessageInput],
        close: Option<&CloseInput>,
    ) -> anyhow::Result<Value> {
        let gate = self.gate(pipeline)?;
        let request = request_of(handshake).map_err(anyhow::Error::msg)?;
        let mut out = Map::new();
        let admitted = self.runtime.block_on(async {
            match gate.admit(&request, handshake.remote_addr).await {
                Ok(admitted) => Ok(admitted),
                Err(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let reason = String::from_utf8_lossy(&body);
                    outcome::refused(&mut out, parts.status.as_u16(), &reason, &parts.headers);
                    Err(())
                }
            }
        });
        let Ok(admitted) = admitted else {
            return Ok(Value::Object(out));
        };
        match &admitted.principal {
            Some(principal) => outcome::allowed(&mut out, principal),
            None => {
                out.insert("decision".into(), "allow".into());
                out.insert("status".into(), 101.into());
            }
        }
        out.insert("pipeline".into(), admitted.endpoint.pipeline.clone().into());
        out.insert("channel".into(), admitted.channel.clone().into());
        if let Some(subprotocol) = &admitted.subprotocol {
            out.insert("subprotocol".into(), subprotocol.clone().into());
        }
        let served = self
            .config
            .pipelines
            .iter()
            .find(|p| p.name == admitted.endpoint.pipeline)
            .unwrap_or(pipeline);
        if let (None, Some(sink)) = (&served.serving.handler, &served.serving.sink) {
            let sender = Sender {
                channel: admitted.channel.clone(),
                principal: admitted.principal.as_ref().map(|p| p.id.clone()),
            };
            let produced = self.sink(served, sink, &sender, messages)?;
            out.insert("produced".into(), Value::Array(produced));
        }
        if let Some(handler) = &served.serving.handler {
            let input = (messages, close);
            self.handler(served, handler, &admitted, input, &mut out)?;
        }
        Ok(Value::Object(out))
    }

    /// The admitted connection's life in `pipeline`'s handler.
    fn handler(
        &self,
        pipeline: &Pipeline,
        handler: &PluginConfig,
        admitted: &Admitted,
        input: (&[MessageInput], Option<&CloseInput>),
        out: &mut Map<String, Value>,
    ) -> anyhow::Result<()> {
        let mut instance = self.load(pipeline, handler)?.instantiate()?;
        // The connection the WebSocket side hands the handler.
        let conn = Connection {
            id: 1,
            path: admitted.path.clone(),
            params: admitted.params.clone(),
            principal: admitted.principal.clone(),
            remote_addr: admitted.peer.to_string(),
            subprotocol: admitted.subprotocol.clone(),
        };
        // What the session host would refuse: joins outside the
        // principal's channels, publishes the sink does not allow.
        let allowed = conn.principal.as_ref().and_then(|p| p.channels.clone());
        let sink = pipeline
            .serving
            .sink
            .as_ref()
            .map(|s| (s.topic.as_str(), s.extra_topics.as_slice()));
        let judge = |action: &Action| crate::session::refusal(action, allowed.as_deref(), sink);
        session(&mut instance, conn, input, &judge, out);
        Ok(())
    }

    /// What a sink pipeline would produce for each message (after its
    /// inbound transforms and key rule), or `{ refused = reason }` when the
    /// client would get an error instead.
    fn sink(
        &self,
        pipeline: &Pipeline,
        sink: &crate::config::Sink,
        sender: &Sender,
        messages: &[MessageInput],
    ) -> anyhow::Result<Vec<Value>> {
        let transforms = pipeline
            .inbound_transforms()
            .map(|plugin| {
                Ok(PluginPool::start(
                    &self.load(pipeline, plugin)?,
                    1,
                    AUTH_QUEUE,
                )?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let prep = SinkPrep::new(sink.key.clone(), transforms);
        let mut produced = Vec::new();
        for input in messages {
            let payload = bytes::Bytes::from(input.payload.clone());
            let result = self
                .runtime
                .block_on(prep.transform(!input.binary, payload, sender));
            match result {
                Ok(records) => produced.extend(records.iter().map(|msg| {
                    outcome::produced(&sink.topic, prep.key_of(msg, sender).as_deref(), msg)
                })),
                Err(reason) => produced.push(serde_json::json!({ "refused": reason })),
            }
        }
        Ok(produced)
    }
}

/// A test with no handshake connects to the pipeline's path, which then
/// must have no parameters (checked when the file is loaded).
fn default_handshake(pipeline: &Pipeline) -> anyhow::Result<HandshakeInput> {
    let path = pipeline.serving.path.to_string();
    Ok(serde_json::from_value(serde_json::json!({ "path": path }))?)
}
