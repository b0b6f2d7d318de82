//! Checks that need the whole file: names and references, duplicates and
//! route clashes; the sections are checked in [`super::settings`] and
//! [`super::pipeline`], plugins in [`super::plugins`]. Each check reports
//! and carries on, so one run shows every error.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_spanned::Spanned;

use super::diagnostics::{Position, Problem, Sink};
use super::env::EnvLookup;
use super::model::{Admin, Config, Pipeline, PluginSettings, Secret, Tenant};
use super::parse::{Document, Entry};
use super::pipeline::{References, pipeline};
use super::plugins::PluginContext;
use super::settings::{self, kafka, listeners};
use super::template::{RouteTemplate, Segment};
use super::tenants::{self, Namespace, Quotas};

/// Declared names of one kind, and the names of entries too broken to check.
pub(super) struct Names {
    kind: &'static str,
    seen: Vec<(String, Position)>,
    broken: HashSet<String>,
}

impl Names {
    pub(super) fn new<T>(kind: &'static str, entries: &[Entry<'_, T>]) -> Self {
        let broken = entries
            .iter()
            .filter(|e| e.parsed.is_none())
            .filter_map(|e| e.raw_name().map(str::to_owned))
            .collect();
        Self {
            kind,
            seen: Vec::new(),
            broken,
        }
    }

    /// Checks a declared name: its characters and that it is new.
    pub(super) fn declare(&mut self, name: &Spanned<String>, sink: &mut Sink<'_>) -> bool {
        let (text, span) = (name.get_ref(), name.span());
        if !is_name(text) {
            sink.error(
                span,
                Problem::BadName {
                    kind: self.kind,
                    name: text.clone(),
                },
            );
            return false;
        }
        if let Some((_, first)) = self.seen.iter().find(|(n, _)| n == text) {
            let first = *first;
            sink.error(
                span,
                Problem::Duplicate {
                    kind: self.kind,
                    name: text.clone(),
                    first,
                },
            );
            return false;
        }
        self.seen.push((text.clone(), sink.position(span.start)));
        true
    }

    /// Declares a name the file does not spell out (the implicit tenant).
    pub(super) fn implicit(&mut self, name: &str) {
        self.seen
            .push((name.to_owned(), Position { line: 1, column: 1 }));
    }

    /// How many names are declared.
    pub(super) fn count(&self) -> usize {
        self.seen.len()
    }

    /// The first declared name.
    pub(super) fn first(&self) -> Option<&str> {
        self.seen.first().map(|(n, _)| n.as_str())
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.seen.iter().any(|(n, _)| n == name)
    }

    /// Checks a reference; a reference to a broken entry is not reported again.
    pub(super) fn resolve(&self, name: &Spanned<String>, sink: &mut Sink<'_>) -> bool {
        if self.contains(name.get_ref()) {
            return true;
        }
        if !self.broken.contains(name.get_ref()) {
            let known = self.known();
            sink.error(
                name.span(),
                Problem::UnknownReference {
                    kind: self.kind,
                    name: name.get_ref().clone(),
                    known,
                },
            );
        }
        false
    }

    pub(super) fn known(&self) -> String {
        if self.seen.is_empty() {
            return "none".into();
        }
        self.seen
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Letters, digits, `_`, `-`, `.`; starting with a letter or digit.
fn is_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks a parsed document and builds the [`Config`]; `None` if anything
/// was reported (including errors reported before this pass).
pub(crate) fn check(
    file: &Path,
    doc: &Document<'_>,
    env: EnvLookup<'_>,
    host: Option<&crate::plugin::PluginHost>,
    sink: &mut Sink<'_>,
) -> Option<Config> {
    let base = file.parent().unwrap_or(Path::new(""));
    let kafka = kafka(doc.kafka.as_ref(), None, env, sink);

    let mut listener_names = Names::new("listener", &doc.listeners);
    let listeners = listeners(doc, base, &mut listener_names, sink);

    let admin = doc
        .admin
        .as_ref()
        .and_then(|def| settings::admin(def, &listeners, env, sink));

    let mut tenant_names = Names::new("tenant", &doc.tenants);
    let tenants = if doc.tenants.is_empty() {
        tenant_names.implicit("default");
        vec![Tenant {
            name: "default".into(),
            kafka: kafka.clone(),
            admin_token: None,
            namespace: Namespace::default(),
            quotas: Quotas::default(),
        }]
    } else {
        let mut tenants = Vec::new();
        let mut tokens = AdminTokens::new(admin.as_ref());
        for def in doc.tenants.iter().filter_map(|e| e.parsed.as_ref()) {
            let named = tenant_names.declare(&def.name, sink);
            let kafka = def.kafka.as_ref().map_or_else(
                || kafka.clone(),
                |k| self::kafka(Some(k), Some(&kafka), env, sink),
            );
            let admin_token = def.admin_token.as_ref().and_then(|value| {
                if !doc.admin_declared {
                    sink.error(
                        value.span(),
                        Problem::Invalid(
                            "`admin_token` needs an `[admin]` table: without one there is no admin API"
                                .into(),
                        ),
                    );
                    return None;
                }
                let token = settings::token(value, "admin_token", env, sink)?;
                tokens.unique(def.name.get_ref(), token, value.span(), sink)
            });
            let namespace = tenants::namespace(def, sink);
            let quotas = tenants::quotas(def.quotas.as_ref(), sink);
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
                sink.error(span, Problem::Invalid(message));
            }
            if named {
                tenants.push(Tenant {
                    name: def.name.get_ref().clone(),
                    kafka,
                    admin_token,
                    namespace,
                    quotas,
                });
            }
        }
        tenants
    };

    let mut ctx = PluginContext {
        base,
        env,
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
        if let Some(p) = pipeline(entry, def, &mut pipeline_names, &refs, &mut ctx, sink) {
            if let Some(other) = pipelines.iter().find(|o| {
                o.listener == p.listener && o.host == p.host && same_shape(&o.path, &p.path)
            }) {
                let message = format!(
                    "path `{}` on listener `{}` is already served by pipeline `{}` (`{}`)",
                    p.path, p.listener, other.name, other.path
                );
                sink.error(def.path.span(), Problem::Invalid(message));
            }
            pipelines.push(p);
        }
    }
    if doc.pipelines.is_empty() {
        sink.error(
            0..0,
            Problem::Invalid("no pipelines: declare at least one `[[pipelines]]`".into()),
        );
    }

    let cache_dir = doc
        .plugins
        .as_ref()
        .and_then(|p| p.cache_dir.as_ref())
        .map(|d| base.join(d.get_ref()));
    let tests = super::tests::check(&doc.tests, &pipelines, &pipeline_names, sink);
    if sink.has_errors() {
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
        sink: &mut Sink<'_>,
    ) -> Option<Secret> {
        if let Some((whose, _)) = self.seen.iter().find(|(_, t)| *t == token) {
            let message = format!(
                "tenant `{tenant}`'s `admin_token` is the same as {whose}: each admin token must be different"
            );
            sink.error(span, Problem::Invalid(message));
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
