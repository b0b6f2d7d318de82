//! Checks of one `[[pipelines]]` entry: its references, path, source,
//! sink and plugins.

use serde_spanned::Spanned;
use toml::de::DeValue;

use super::bounds;
use super::diagnostics::{Problem, Report};
use super::model::{
    ConnectionPolicy, MessageRate, Pipeline, Serving, Sink as SinkConfig, Source, Tenant, Transform,
};
use super::names::Names;
use super::parse::Entry;
use super::plugins::{self, PluginContext, Slot};
use super::role::Role;
use super::schema::{
    Direction, OutboxDef, PipelineDef, PluginRef, PoisonPolicy, SinkDef, SinkKey, SourceDef,
};
use super::template::RouteTemplate;
use super::tenants::{self, Namespace};

/// What a pipeline may refer to.
pub(super) struct References<'a> {
    pub tenants: &'a Names,
    /// The tenants that were checked, with their namespaces and quotas.
    pub declared: &'a [Tenant],
    pub listeners: &'a Names,
    /// How many `[[listeners]]` the file has, broken ones included.
    pub listener_count: usize,
    /// The first listener's name, as written.
    pub first_listener: Option<&'a str>,
}

/// Checks one pipeline; `None` if anything in it was reported.
pub(super) fn pipeline(
    entry: &Entry<'_, PipelineDef>,
    def: &PipelineDef,
    names: &mut Names,
    refs: &References<'_>,
    ctx: &mut PluginContext<'_>,
    report: &mut Report<'_>,
) -> Option<Pipeline> {
    let name = def.name.get_ref().clone();
    let mut ok = names.declare(&def.name, report);

    let tenant = match &def.tenant {
        Some(t) => {
            ok &= refs.tenants.resolve(t, report);
            t.get_ref().clone()
        }
        None if refs.tenants.contains("default") => "default".to_owned(),
        None => {
            let message = format!(
                "pipeline `{name}` names no `tenant`, and there is no tenant `default` (declared: {})",
                refs.tenants.known()
            );
            report.error(entry.raw.span(), Problem::Invalid(message));
            ok = false;
            String::new()
        }
    };

    let listener = match (&def.listener, refs.listener_count, refs.first_listener) {
        (Some(l), _, _) => {
            ok &= refs.listeners.resolve(l, report);
            l.get_ref().clone()
        }
        (None, 1, Some(only)) => {
            ok &= refs.listeners.contains(only);
            only.to_owned()
        }
        (None, 1, None) => {
            ok = false;
            String::new()
        }
        (None, count, _) => {
            let message = if count == 0 {
                "no listener is declared: add a `[[listeners]]` table".to_owned()
            } else {
                format!(
                    "several listeners are declared ({}): say which with `listener = \"...\"`",
                    refs.listeners.known()
                )
            };
            report.error(entry.raw.span(), Problem::Listener(message));
            ok = false;
            String::new()
        }
    };

    let owner = refs.declared.iter().find(|t| t.name == tenant);
    let namespace = owner.map(|t| (t.name.as_str(), &t.namespace));
    let path = RouteTemplate::parse(def.path.get_ref())
        .map_err(|e| report.error(def.path.span(), e))
        .ok();
    if let (Some(path), Some(owner)) = (&path, owner) {
        ok &= inside_namespace(def, path, owner, refs.declared, report);
    }
    let source = def
        .source
        .as_ref()
        .map(|src| source(def, src, namespace, report));
    let sink_config = def.sink.as_ref().map(|s| sink_config(s, namespace, report));
    let caps = owner.map_or((None, None), |t| {
        (t.quotas.plugin_memory_bytes, t.quotas.plugin_deadline_ms)
    });

    let mut plugin = |key: &'static str,
                      role: Role,
                      r: &Spanned<PluginRef>,
                      raw: Option<&Spanned<DeValue<'_>>>| {
        let slot = Slot {
            key,
            role,
            pipeline: &name,
            tenant: &tenant,
            caps,
        };
        let resolved = plugins::resolve(&slot, r, raw, ctx, report);
        ok &= resolved.is_some();
        resolved
    };
    let raw = entry.raw.get_ref();
    let auth = def
        .auth
        .as_ref()
        .and_then(|r| plugin("auth", Role::Authenticator, r, raw.get("auth")));
    let router = def
        .router
        .as_ref()
        .and_then(|r| plugin("router", Role::Router, r, raw.get("router")));
    let transforms: Vec<_> = def
        .transforms
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let as_plugin = Spanned::new(r.span(), r.get_ref().plugin_ref());
            let plugin = plugin(
                "transforms",
                Role::Transformer,
                &as_plugin,
                raw.get("transforms").and_then(|t| t.get_ref().get(i)),
            )?;
            let direction = r.get_ref().direction.as_ref();
            Some(Transform {
                plugin,
                direction: direction.map(|d| *d.get_ref()).unwrap_or_default(),
            })
        })
        .collect();
    let handler = def
        .handler
        .as_ref()
        .and_then(|r| plugin("handler", Role::Handler, r, raw.get("handler")));
    ok &= transforms_run(def, report);

    if def.source.is_none() && def.sink.is_none() && def.handler.is_none() {
        report.error(
            entry.raw.span(),
            Problem::Invalid(format!(
                "pipeline `{name}` does nothing: give it a `[pipelines.source]`, a `[pipelines.sink]` or a `[pipelines.handler]`"
            )),
        );
        ok = false;
    }
    if let (None, Some(r)) = (&def.source, &def.router) {
        report.error(
            r.span(),
            Problem::Invalid(
                "a router routes consumed records: this pipeline has no `[pipelines.source]`"
                    .into(),
            ),
        );
        ok = false;
    }
    let tick = tick(def, report);
    let policy = policy(def, report);
    let chaos = super::chaos::check(def.chaos.as_ref(), report);
    let record = super::record::check(def.record.as_ref(), ctx.base, report);
    let outbox = match &def.outbox {
        Some(o) if !(1..=1_000_000).contains(&o.get_ref().capacity) => {
            report.error(
                o.span(),
                Problem::Invalid(format!(
                    "outbox capacity {} is out of range: it must be from 1 to 1000000",
                    o.get_ref().capacity
                )),
            );
            ok = false;
            *o.get_ref()
        }
        Some(o) => *o.get_ref(),
        None => OutboxDef::default(),
    };
    if let Some(src) = &def.source
        && let PoisonPolicy::DeadLetter(topic) = &src.on_poison
    {
        if !is_topic(topic) || super::cluster::reserved(topic) {
            report.error(
                src.topics.span(),
                Problem::Invalid(format!(
                    "dead-letter topic {topic:?} is not a valid topic name outside `sluice.cluster.*`"
                )),
            );
            ok = false;
        }
        let spanned = Spanned::new(src.topics.span(), topic.clone());
        ok &= tenants::check_topic(namespace, &spanned, "dead-letters to", report);
    }
    // Every check above has reported; only now give up on what failed.
    let path = path?;
    let source = match source {
        Some(None) => return None,
        other => other.flatten(),
    };
    let (tick, policy, chaos, record) = (tick?, policy?, chaos.ok()?, record.ok()?);
    let sink_config = match sink_config {
        Some(None) => return None,
        other => other.flatten(),
    };
    ok.then_some(Pipeline {
        name,
        tenant,
        serving: Serving {
            listener,
            host: owner.and_then(|t| t.namespace.host.clone()),
            path,
            sink: sink_config,
            auth,
            handler,
            outbox,
            welcome: def.welcome,
            tick,
            policy,
            chaos,
            record,
        },
        source,
        router,
        transforms,
    })
}

/// Whether every transform given a direction has something to transform
/// in it: one that could never run is a mistake worth an error.
fn transforms_run(def: &PipelineDef, report: &mut Report<'_>) -> bool {
    let mut ok = true;
    for transform in &def.transforms {
        let Some(direction) = &transform.get_ref().direction else {
            continue;
        };
        let missing = match direction.get_ref() {
            Direction::Outbound if def.source.is_none() => {
                "`outbound` transforms records from `[pipelines.source]`, and this pipeline has none"
            }
            Direction::Inbound if def.sink.is_none() => {
                "`inbound` transforms client messages for `[pipelines.sink]`, and this pipeline has none"
            }
            _ => continue,
        };
        report.error(
            direction.span(),
            Problem::Invalid(format!("this transform would never run: {missing}")),
        );
        ok = false;
    }
    ok
}

/// What clients may do; `None` if anything was reported.
fn policy(def: &PipelineDef, report: &mut Report<'_>) -> Option<ConnectionPolicy> {
    let default = ConnectionPolicy::default();
    let max_connections = match &def.max_connections {
        None => Some(None),
        Some(n) => bounds::number(Some(n), "max_connections", 1..=10_000_000, 0, report)
            .map(|n| Some(n as usize)),
    };
    let max_message_size = bounds::number(
        def.max_message_size.as_ref(),
        "max_message_size",
        16..=(64 << 20),
        default.max_message_size as u64,
        report,
    );
    let mut ok = true;
    let message_rate = def.message_rate.as_ref().map(|rate| {
        let r = rate.get_ref();
        let burst = r.burst.unwrap_or(r.per_second);
        if r.per_second == 0 || burst == 0 {
            report.error(
                rate.span(),
                Problem::Invalid("`per_second` and `burst` must be at least 1".into()),
            );
            ok = false;
        }
        MessageRate {
            per_second: r.per_second,
            burst,
            when_exceeded: r.when_exceeded,
        }
    });
    let subprotocols: Vec<String> = def
        .subprotocols
        .iter()
        .flatten()
        .map(|p| {
            let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
            if p.get_ref().is_empty() || !p.get_ref().chars().all(token) {
                report.error(
                    p.span(),
                    Problem::Invalid(format!(
                        "subprotocol {:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
                        p.get_ref()
                    )),
                );
                ok = false;
            }
            p.get_ref().clone()
        })
        .collect();
    if def.require_subprotocol && subprotocols.is_empty() {
        report.error(
            def.name.span(),
            Problem::Invalid("`require_subprotocol = true` needs a list of `subprotocols`".into()),
        );
        ok = false;
    }
    let token_expiry_grace = match &def.token_expiry_grace_ms {
        None => default.token_expiry_grace,
        Some(grace) => match *grace.get_ref() {
            -1 => None,
            ms @ 0..=86_400_000 => Some(std::time::Duration::from_millis(ms as u64)),
            ms => {
                report.error(
                    grace.span(),
                    Problem::Invalid(format!(
                        "`token_expiry_grace_ms` is {ms}; it must be -1 (never close) or 0 to 86400000"
                    )),
                );
                ok = false;
                None
            }
        },
    };
    let (max_connections, max_message_size) = (max_connections?, max_message_size?);
    ok.then_some(ConnectionPolicy {
        max_connections,
        max_message_size: max_message_size as usize,
        accept: def.accept,
        message_rate,
        subprotocols,
        require_subprotocol: def.require_subprotocol,
        compression: def.compression,
        token_expiry_grace,
    })
}

/// The handler's tick: 1 s by default, only with a handler. `None` if reported.
fn tick(def: &PipelineDef, report: &mut Report<'_>) -> Option<Option<std::time::Duration>> {
    match (&def.tick_ms, &def.handler) {
        (None, None) => Some(None),
        (None, Some(_)) => Some(Some(std::time::Duration::from_secs(1))),
        (Some(t), None) => {
            report.error(
                t.span(),
                Problem::Invalid("`tick_ms` needs a `[pipelines.handler]` to call".into()),
            );
            None
        }
        (Some(t), Some(_)) if !(10..=3_600_000).contains(t.get_ref()) => {
            report.error(
                t.span(),
                Problem::Invalid(format!(
                    "tick_ms {} is out of range: it must be from 10 to 3600000",
                    t.get_ref()
                )),
            );
            None
        }
        (Some(t), Some(_)) => Some(Some(std::time::Duration::from_millis(*t.get_ref()))),
    }
}

fn source(
    def: &PipelineDef,
    src: &SourceDef,
    namespace: Option<(&str, &Namespace)>,
    report: &mut Report<'_>,
) -> Option<Source> {
    let mut ok = true;
    if src.topics.get_ref().is_empty() {
        report.error(
            src.topics.span(),
            Problem::Invalid("`topics` must name at least one topic".into()),
        );
        ok = false;
    }
    for topic in src.topics.get_ref() {
        ok &= check_topic(topic, report) && tenants::check_topic(namespace, topic, "reads", report);
    }
    let group_id = match &src.group_id {
        Some(g) if g.get_ref().trim().is_empty() => {
            report.error(
                g.span(),
                Problem::Invalid("`group_id` must not be empty".into()),
            );
            ok = false;
            String::new()
        }
        Some(g) => g.get_ref().clone(),
        None => format!("sluice-{}", def.name.get_ref()),
    };
    let topics = src
        .topics
        .get_ref()
        .iter()
        .map(|t| t.get_ref().clone())
        .collect();
    let resume = super::resume::check(src, report);
    ok &= resume.is_ok();
    ok.then_some(Source {
        topics,
        group_id,
        start: src.start,
        format: src.format,
        on_poison: src.on_poison.clone(),
        mode: src.mode,
        resume: resume.ok().flatten(),
    })
}

fn check_topic(topic: &Spanned<String>, report: &mut Report<'_>) -> bool {
    let valid = is_topic(topic.get_ref());
    if valid && super::cluster::reserved(topic.get_ref()) {
        let message = format!(
            "topic `{}` is in the namespace the cluster bus keeps for itself (`{}*`): pick another name",
            topic.get_ref(),
            super::cluster::BUS_NAMESPACE
        );
        report.error(topic.span(), Problem::Invalid(message));
        return false;
    }
    if !valid {
        let message = format!(
            "invalid topic name {:?}: use 1 to 249 letters, digits, `.`, `_` or `-`",
            topic.get_ref()
        );
        report.error(topic.span(), Problem::Invalid(message));
    }
    valid
}

fn sink_config(
    def: &SinkDef,
    namespace: Option<(&str, &Namespace)>,
    report: &mut Report<'_>,
) -> Option<SinkConfig> {
    let mut ok = check_topic(&def.topic, report)
        && tenants::check_topic(namespace, &def.topic, "writes", report);
    if let Some(key) = &def.key
        && let SinkKey::Json(pointer) = key.get_ref()
        && !pointer.is_empty()
        && !pointer.starts_with('/')
    {
        let message =
            format!("JSON pointer {pointer:?} must be empty or start with `/` (e.g. \"/user/id\")");
        report.error(key.span(), Problem::Invalid(message));
        ok = false;
    }
    for topic in &def.extra_topics {
        ok &= check_topic(topic, report)
            && tenants::check_topic(namespace, topic, "lets its handler publish to", report);
    }
    ok.then(|| SinkConfig {
        topic: def.topic.get_ref().clone(),
        key: def.key.as_ref().map(|k| k.get_ref().clone()),
        reply: def.reply,
        extra_topics: def
            .extra_topics
            .iter()
            .map(|t| t.get_ref().clone())
            .collect(),
    })
}

/// Kafka's rule for topic names.
pub(super) fn is_topic(topic: &str) -> bool {
    (1..=249).contains(&topic.len())
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks that `path` lies inside its tenant's `path_prefix`, and inside no
/// other tenant's on the same host; reported at the path otherwise.
fn inside_namespace(
    def: &PipelineDef,
    path: &RouteTemplate,
    owner: &Tenant,
    declared: &[Tenant],
    report: &mut Report<'_>,
) -> bool {
    if !owner.namespace.holds_path(path) {
        let message = format!(
            "path `{path}` is outside tenant `{}`'s namespace: it must start with its path_prefix `{}`",
            owner.name,
            owner.namespace.prefix_text()
        );
        report.error(def.path.span(), Problem::Invalid(message));
        return false;
    }
    let others = declared
        .iter()
        .filter(|t| t.name != owner.name)
        .map(|t| (t.name.as_str(), &t.namespace));
    if let Some(other) = tenants::path_owner(path, owner.namespace.host.as_deref(), others) {
        let message = format!(
            "path `{path}` lies inside tenant `{other}`'s namespace, but the pipeline belongs to tenant `{}`",
            owner.name
        );
        report.error(def.path.span(), Problem::Invalid(message));
        return false;
    }
    true
}
