//! Checks that need the whole file: names and references, duplicates and
//! route clashes; the sections are checked in [`super::settings`] and
//! [`super::pipeline`], plugins in [`super::plugins`]. Each check reports
//! and carries on, so one run shows every error.

use std::collections::HashMap;
use std::path::Path;

use super::diagnostics::{Problem, Report};
use super::model::{Admin, Config, Pipeline, PluginSettings, Secret, Tenant};
use super::names::Names;
use super::parse::Document;
use super::pipeline::{References, pipeline};
use super::plugins::PluginContext;
use super::settings::{self, kafka, listeners};
use super::template::{RouteTemplate, Segment};
use super::tenants::{self, Namespace, Quotas};

/// Checks a parsed document and builds the [`Config`]; `None` if anything
/// was reported (including errors reported before this pass).
pub(crate) fn check(
    file: &Path,
    doc: &Document<'_>,
    (host, builtins): (Option<&dyn super::PluginCheck>, super::Builtins<'_>),
    report: &mut Report<'_>,
) -> Option<Config> {
    let base = file.parent().unwrap_or(Path::new(""));
    let kafka = kafka(doc.kafka.as_ref(), None, base, report);

    let mut listener_names = Names::new("listener", &doc.listeners);
    let listeners = listeners(doc, base, &mut listener_names, report);

    let admin = doc
        .admin
        .as_ref()
        .and_then(|def| settings::admin(def, &listeners, report));

    let cluster = doc
        .cluster
        .as_ref()
        .and_then(|def| super::cluster::check(def, report));

    let mut tenant_names = Names::new("tenant", &doc.tenants);
    let tenants = if doc.tenants.is_empty() {
        tenant_names.implicit("default");
        vec![Tenant {
            name: "default".into(),
            kafka: kafka.clone(),
            admin_token: None,
            namespace: Namespace::default(),
            quotas: Quotas::default(),
            cluster_topic: None,
        }]
    } else {
        let mut tenants = Vec::new();
        let mut tokens = AdminTokens::new(admin.as_ref());
        for def in doc.tenants.iter().filter_map(|e| e.parsed.as_ref()) {
            let named = tenant_names.declare(&def.name, report);
            let kafka = def.kafka.as_ref().map_or_else(
                || kafka.clone(),
                |k| self::kafka(Some(k), Some(&kafka), base, report),
            );
            let admin_token = def.admin_token.as_ref().and_then(|value| {
                if !doc.admin_declared {
                    report.error(
                        value.span(),
                        Problem::Invalid(
                            "`admin_token` needs an `[admin]` table: without one there is no admin API"
                                .into(),
                        ),
                    );
                    return None;
                }
                let token = settings::token(value, "admin_token", report)?;
                tokens.unique(def.name.get_ref(), token, value.span(), report)
            });
            let namespace = tenants::namespace(def, report);
            let cluster_topic = super::cluster::tenant_topic(def, doc.cluster_declared, report);
            let quotas = tenants::quotas(def.quotas.as_ref(), report);
            if let Some(other) = tenants
                .iter()
                .find(|t: &&Tenant| tenants::overlaps(&t.namespace, &namespace))
            {
                let span = def
                    .path_prefix
                    .as_ref()
                    .map_or(def.name.span(), |p| p.span());
                let message = format!(
                    "path_prefix `{}` overlaps tenant `{}`'s (`{}`) on the same host: tenants' paths must not nest",
                    namespace.prefix_text(),
                    other.name,
                    other.namespace.prefix_text()
                );
                report.error(span, Problem::Invalid(message));
            }
            if named {
                tenants.push(Tenant {
                    name: def.name.get_ref().clone(),
                    kafka,
                    admin_token,
                    namespace,
                    quotas,
                    cluster_topic,
                });
            }
        }
        tenants
    };

    let mut ctx = PluginContext {
        base,
        builtins,
        host,
        roles: HashMap::new(),
    };
    let mut pipeline_names = Names::new("pipeline", &doc.pipelines);
    let mut pipelines: Vec<Pipeline> = Vec::new();
    let refs = References {
        tenants: &tenant_names,
        declared: &tenants,
        listeners: &listener_names,
        listener_count: doc.listeners.len(),
        first_listener: doc.listeners.first().and_then(|l| l.raw_name()),
    };
    for entry in &doc.pipelines {
        let Some(def) = &entry.parsed else { continue };
        if let Some(p) = pipeline(entry, def, &mut pipeline_names, &refs, &mut ctx, report) {
            if let Some(other) = pipelines.iter().find(|o| {
                o.serving.listener == p.serving.listener
                    && o.serving.host == p.serving.host
                    && same_shape(&o.serving.path, &p.serving.path)
            }) {
                let message = format!(
                    "path `{}` on listener `{}` is already served by pipeline `{}` (`{}`)",
                    p.serving.path, p.serving.listener, other.name, other.serving.path
                );
                report.error(def.path.span(), Problem::Invalid(message));
            }
            pipelines.push(p);
        }
    }
    if doc.pipelines.is_empty() {
        report.error(
            0..0,
            Problem::Invalid("no pipelines: declare at least one `[[pipelines]]`".into()),
        );
    }

    let cache_dir = doc
        .plugins
        .as_ref()
        .and_then(|p| p.cache_dir.as_ref())
        .map(|d| base.join(d.get_ref()));
    if let Some(cluster) = &cluster {
        let defs: Vec<_> = doc
            .tenants
            .iter()
            .filter_map(|e| e.parsed.as_ref())
            .collect();
        super::cluster::check_topics(cluster, (&tenants, &defs), &pipelines, report);
    }
    let tests = super::pipeline_tests::check(&doc.tests, &pipelines, &pipeline_names, report);
    if report.has_errors() {
        return None;
    }
    Some(Config {
        file: file.to_owned(),
        listeners,
        kafka,
        tenants,
        pipelines,
        plugins: PluginSettings { cache_dir },
        admin,
        cluster,
        tests,
    })
}

/// The admin tokens seen so far: each must be different, or a request
/// could not tell whose it is.
struct AdminTokens {
    /// (whose, in words; the token).
    seen: Vec<(String, Secret)>,
}

impl AdminTokens {
    fn new(admin: Option<&Admin>) -> Self {
        let seen = admin
            .map(|a| ("the operator's `[admin] token`".to_owned(), a.token.clone()))
            .into_iter()
            .collect();
        Self { seen }
    }

    /// `token` if no one else has it; else reported at `span`.
    fn unique(
        &mut self,
        tenant: &str,
        token: Secret,
        span: std::ops::Range<usize>,
        report: &mut Report<'_>,
    ) -> Option<Secret> {
        if let Some((whose, _)) = self.seen.iter().find(|(_, t)| *t == token) {
            let message = format!(
                "tenant `{tenant}`'s `admin_token` is the same as {whose}: each admin token must be different"
            );
            report.error(span, Problem::Invalid(message));
            return None;
        }
        self.seen
            .push((format!("tenant `{tenant}`'s `admin_token`"), token.clone()));
        Some(token)
    }
}

/// Two templates that match exactly the same paths.
fn same_shape(a: &RouteTemplate, b: &RouteTemplate) -> bool {
    a.segments().len() == b.segments().len()
        && a.segments()
            .iter()
            .zip(b.segments())
            .all(|pair| match pair {
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                (Segment::Param(..), Segment::Param(..)) => true,
                _ => false,
            })
}
