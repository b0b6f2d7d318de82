//! # sluice-config: the pipeline file
//!
//! `pipeline.toml`'s schema, and checks that report every error at once,
//! each as `file:line:col: message`.
//!
//! ```toml
//! [kafka]
//! brokers = "embedded"
//!
//! [[listeners]]
//! name = "public"
//! address = "127.0.0.1:8080"
//!
//! [[pipelines]]
//! name = "ticks"
//! path = "/{channel}"
//! [pipelines.source]
//! topics = ["test-websocket-input"]
//! [pipelines.router]
//! plugin = "key-router"
//! [pipelines.auth]
//! plugin = "basic-auth"
//! config = { users = { testuser = { env = "WS_PASSWORD" } } }
//! ```
//!
//! - [`Loader::load`] checks the file against the schema and its own rules,
//!   and reads every plugin's bytes; it compiles nothing. Built-in plugins
//!   come from the host ([`Loader::builtins`]).
//! - With [`Loader::plugins`] it also hands each plugin to a
//!   [`PluginCheck`] (the plugin host): it must be a component, export the
//!   role its place needs, and accept its config.
//!
//! [`schema`] documents every key.

mod bounds;
mod chaos;
mod cluster;
mod diagnostics;
mod env;
mod env_refs;
pub mod fixture;
mod kafka_security;
mod limits;
mod model;
mod names;
mod parse;
mod pipeline;
mod pipeline_tests;
mod plugins;
mod record;
mod resume;
mod role;
pub mod schema;
mod secret;
mod settings;
mod template;
mod tenants;
mod validate;

use std::path::Path;

pub use chaos::{Chaos, SlowConsumer};
pub use cluster::{BUS_NAMESPACE, Cluster};
pub use diagnostics::{Diagnostic, Diagnostics, Position, Problem};
pub use env::{ConfigValue, EnvLookup};
pub use kafka_security::{Compression, KafkaTls, Sasl, SaslMechanism, Security, SecurityProtocol};
pub use limits::Limits;
pub use model::{
    Admin, Config, ConnectionPolicy, Kafka, Listener, ListenerLimits, MessageRate, Pipeline,
    PipelineTest, PluginConfig, PluginSettings, PluginSource, Resume, Secret, Serving, Sink,
    Source, Tenant, Tls, Transform,
};
pub use plugins::{Builtins, PluginCheck, content_hash};
pub use record::Record;
pub use role::{NATIVE_PREFIX, Native, Role};
pub use schema::{
    Accept, Brokers, Direction, Format, FullPolicy, OnShutdown, OutboxDef, PoisonPolicy, RateDef,
    ReplyFormat, SinkKey, SourceMode, StartFrom, WhenExceeded,
};
pub use template::{ParamType, RouteTemplate, Segment, TemplateError, is_dot_segment};
pub use tenants::{Namespace, Quotas, TopicRule};

fn process_env(name: &str) -> Result<String, std::env::VarError> {
    std::env::var(name)
}

/// Loads pipeline files, with a chosen environment and, optionally, a
/// plugin host for the plugin checks.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    env: EnvLookup<'a>,
    host: Option<&'a dyn PluginCheck>,
    builtins: Builtins<'a>,
}

impl Default for Loader<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Loader<'a> {
    /// Schema checks only, with the process environment and no built-in
    /// plugins.
    pub fn new() -> Self {
        Self {
            env: &process_env,
            host: None,
            builtins: &[],
        }
    }

    /// Plugins named without a path or `native:` (`plugin = "key-router"`)
    /// are looked up in `builtins`.
    pub fn builtins(mut self, builtins: Builtins<'a>) -> Self {
        self.builtins = builtins;
        self
    }

    /// Resolves `{ env = "NAME" }` with `env` instead of the process environment.
    pub fn env(mut self, env: EnvLookup<'a>) -> Self {
        self.env = env;
        self
    }

    /// Also checks every plugin with `host`.
    pub fn plugins(mut self, host: &'a dyn PluginCheck) -> Self {
        self.host = Some(host);
        self
    }

    /// Reads and checks a file.
    pub fn load(&self, path: &Path) -> Result<Config, Diagnostics> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| diagnostics::whole_file(path, Problem::Unreadable(e.to_string())))?;
        self.load_str(path, &text)
    }

    /// Checks `text` as if read from `path` (relative plugin and TLS paths
    /// are resolved against `path`'s directory).
    pub fn load_str(&self, path: &Path, text: &str) -> Result<Config, Diagnostics> {
        let mut report = diagnostics::Report::new(path, text);
        let refs = env_refs::EnvRefs::resolve(text, self.env, &mut report);
        let config = parse::parse(text, &refs, &mut report)
            .and_then(|doc| validate::check(path, &doc, (self.host, self.builtins), &mut report));
        match config {
            Some(config) if !report.has_errors() => {
                tracing::debug!(file = %path.display(), pipelines = config.pipelines.len(), "Pipeline file is valid.");
                Ok(config)
            }
            _ => Err(report.finish()),
        }
    }
}
