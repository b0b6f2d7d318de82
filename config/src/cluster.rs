//! Checks of `[cluster]`: processes that share its `name` (and Kafka) act
//! as one, through one bus topic per tenant (see README "Running a
//! cluster"). The bus topics live in a namespace no pipeline may use, and
//! each tenant's must be one its `topics` allow.

use std::time::Duration;

use super::bounds;
use super::diagnostics::{Problem, Report};
use super::model::{Pipeline, Tenant};
use super::schema::{ClusterDef, PoisonPolicy, TenantDef};

/// Where every tenant's bus topic lives unless it names its own
/// (`sluice.cluster.<cluster>.<tenant>`); no pipeline may use a topic here.
pub const BUS_NAMESPACE: &str = "sluice.cluster.";

/// A checked `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Processes with the same name (and Kafka) form one cluster.
    pub name: String,
    /// This process's node id (`None`: one is drawn at start).
    pub node_id: Option<u16>,
    /// How often each node restates its connections (presence); a node
    /// silent for three intervals is taken for dead.
    pub presence_interval: Duration,
}

impl Cluster {
    /// The bus topic of `tenant`: its `cluster_topic`, else the namespace's.
    pub fn bus_topic(&self, tenant: &Tenant) -> String {
        tenant
            .cluster_topic
            .clone()
            .unwrap_or_else(|| format!("{BUS_NAMESPACE}{}.{}", self.name, tenant.name))
    }
}

/// Whether `topic` is in the bus namespace, which pipelines may not use.
pub(super) fn reserved(topic: &str) -> bool {
    topic.starts_with(BUS_NAMESPACE)
}

/// The checked `[cluster]`, if the file has a valid one.
pub(super) fn check(def: &ClusterDef, report: &mut Report<'_>) -> Option<Cluster> {
    let name = def.name.get_ref();
    let valid = (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !valid {
        report.error(
            def.name.span(),
            Problem::Invalid(format!(
                "cluster name {name:?} must be 1 to 100 letters, digits, `_` or `-` (it is part of topic names)"
            )),
        );
    }
    // Each check reports on its own before any is given up on.
    let node_id = def
        .node_id
        .as_ref()
        .map(|id| bounds::number(Some(id), "node_id", 1..=65_535, 0, report));
    let interval = bounds::number(
        def.presence_interval_ms.as_ref(),
        "presence_interval_ms",
        500..=60_000,
        5_000,
        report,
    );
    let node_id = match node_id {
        Some(id) => Some(id? as u16),
        None => None,
    };
    valid.then_some(Cluster {
        name: name.clone(),
        node_id,
        presence_interval: Duration::from_millis(interval?),
    })
}

/// A tenant's `cluster_topic` as written, checked on its own: a valid
/// topic outside the reserved namespace, in a file that has `[cluster]`.
pub(super) fn tenant_topic(
    def: &TenantDef,
    declared: bool,
    report: &mut Report<'_>,
) -> Option<String> {
    let topic = def.cluster_topic.as_ref()?;
    let text = topic.get_ref();
    let problem = if !declared {
        Some(
            "`cluster_topic` needs a `[cluster]` table: without one there is no cluster bus"
                .to_owned(),
        )
    } else if !super::pipeline::is_topic(text) {
        Some(format!(
            "cluster_topic {text:?} is not a valid topic name: use 1 to 249 letters, digits, `.`, `_` or `-`"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => {
            report.error(topic.span(), Problem::Invalid(problem));
            None
        }
        None => Some(text.clone()),
    }
}

/// The checks that need every tenant and pipeline: each tenant's bus
/// topic is allowed by its `topics`, is its own, and is no pipeline's.
pub(super) fn check_topics(
    cluster: &Cluster,
    (tenants, defs): (&[Tenant], &[&TenantDef]),
    pipelines: &[Pipeline],
    report: &mut Report<'_>,
) {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for tenant in tenants {
        let topic = cluster.bus_topic(tenant);
        let def = defs.iter().find(|d| d.name.get_ref() == &tenant.name);
        // Reported at `cluster_topic`, else at the tenant's name (an
        // implicit `default` tenant has neither: the start of the file).
        let span = def.map_or(0..0, |d| {
            d.cluster_topic.as_ref().map_or(d.name.span(), |t| t.span())
        });
        let mut problems = Vec::new();
        if tenant.cluster_topic.is_none() && !super::pipeline::is_topic(&topic) {
            problems.push(format!(
                "tenant `{}`'s cluster bus topic `{topic}` is too long for a topic name: set `cluster_topic`",
                tenant.name
            ));
        }
        if !tenant.namespace.allows_topic(&topic) {
            problems.push(format!(
                "tenant `{}`'s cluster bus topic `{topic}` is outside its `topics`: set `cluster_topic` to a topic they allow",
                tenant.name
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(t, _)| *t == topic) {
            problems.push(format!(
                "tenant `{}`'s cluster bus topic `{topic}` is also tenant `{other}`'s: each tenant needs its own, or one would see the other's rooms",
                tenant.name
            ));
        }
        if let Some(pipeline) = pipelines.iter().find(|p| uses_topic(p, &topic)) {
            problems.push(format!(
                "tenant `{}`'s cluster bus topic `{topic}` is also used by pipeline `{}`: the bus needs a topic of its own",
                tenant.name, pipeline.name
            ));
        }
        for problem in problems {
            report.error(span.clone(), Problem::Invalid(problem));
        }
        seen.push((topic, &tenant.name));
    }
}

fn uses_topic(pipeline: &Pipeline, topic: &str) -> bool {
    let source = pipeline
        .source
        .iter()
        .flat_map(|s| s.topics.iter().chain(dead_letters(&s.on_poison)));
    let sink = pipeline
        .serving
        .sink
        .iter()
        .flat_map(|s| std::iter::once(&s.topic).chain(&s.extra_topics));
    source.chain(sink).any(|t| t == topic)
}

fn dead_letters(policy: &PoisonPolicy) -> Option<&String> {
    match policy {
        PoisonPolicy::DeadLetter(topic) => Some(topic),
        _ => None,
    }
}
