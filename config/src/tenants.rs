//! A tenant's namespace (host, path prefix, topics) and quotas: checking
//! `[[tenants]]` entries, and checking each pipeline against its tenant.
//!
//! Channels need no namespace here: each pipeline has its own hub, and a
//! pipeline belongs to one tenant, so a channel name never reaches across.

use serde_spanned::Spanned;

use super::diagnostics::{Problem, Report};
use super::schema::{QuotasDef, TenantDef};
use super::template::{RouteTemplate, Segment};

/// Bounds on a tenant's quotas.
const MAX_CONNECTIONS: std::ops::RangeInclusive<u64> = 1..=10_000_000;
const RATE: std::ops::RangeInclusive<u64> = 1..=100_000_000;
const CPU_SHARE: std::ops::RangeInclusive<f64> = 0.001..=1.0;

/// A tenant's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quotas {
    /// Open connections over all its pipelines.
    pub max_connections: Option<usize>,
    /// Client messages per second over all its connections.
    pub inbound_messages_per_second: Option<u32>,
    /// Messages queued for its clients per second.
    pub outbound_deliveries_per_second: Option<u32>,
    /// The most memory any of its plugins may have, in bytes.
    pub plugin_memory_bytes: Option<usize>,
    /// The longest deadline any of its plugin calls may have, in milliseconds.
    pub plugin_deadline_ms: Option<u64>,
    /// The fraction of the machine's CPU time its plugin calls may take.
    pub plugin_cpu_share: Option<f64>,
}

/// Where a tenant's pipelines live and which topics they may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// The `Host` its pipelines answer (lowercase, no port; `None`: any).
    pub host: Option<String>,
    /// Literal leading path segments of every one of its pipelines.
    pub path_prefix: Option<Vec<String>>,
    /// Topics it may read or write (`None`: any).
    pub topics: Option<Vec<TopicRule>>,
}

/// One entry of a tenant's `topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRule {
    /// This topic.
    Exact(String),
    /// Every topic starting with this.
    Prefix(String),
}

impl TopicRule {
    fn allows(&self, topic: &str) -> bool {
        match self {
            TopicRule::Exact(t) => t == topic,
            TopicRule::Prefix(p) => topic.starts_with(p.as_str()),
        }
    }
}

impl std::fmt::Display for TopicRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicRule::Exact(t) => write!(f, "`{t}`"),
            TopicRule::Prefix(p) => write!(f, "`{p}*`"),
        }
    }
}

impl Namespace {
    /// Whether its pipelines may read or write `topic`.
    pub fn allows_topic(&self, topic: &str) -> bool {
        self.topics
            .as_ref()
            .is_none_or(|rules| rules.iter().any(|r| r.allows(topic)))
    }

    /// Whether `template` lies inside its path prefix (true without one).
    pub fn holds_path(&self, template: &RouteTemplate) -> bool {
        self.path_prefix
            .as_ref()
            .is_none_or(|prefix| starts_with(template, prefix))
    }

    /// The prefix as written, for messages.
    pub fn prefix_text(&self) -> String {
        self.path_prefix
            .as_ref()
            .map_or_else(String::new, |p| format!("/{}", p.join("/")))
    }
}

fn starts_with(template: &RouteTemplate, prefix: &[String]) -> bool {
    template.segments().len() >= prefix.len()
        && template
            .segments()
            .iter()
            .zip(prefix)
            .all(|(segment, literal)| matches!(segment, Segment::Literal(l) if l == literal))
}

/// Checks a tenant's `host`, `path_prefix` and `topics`; what was invalid
/// is reported and left out.
pub(super) fn namespace(def: &TenantDef, report: &mut Report<'_>) -> Namespace {
    let host = def.host.as_ref().and_then(|h| {
        let text = h.get_ref().to_ascii_lowercase();
        let valid = !text.is_empty()
            && text.len() <= 253
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            report.error(
                h.span(),
                Problem::Invalid(format!(
                    "host {:?} is not a host name (letters, digits, `-` and `.`; no port)",
                    h.get_ref()
                )),
            );
        }
        valid.then_some(text)
    });
    let path_prefix = def.path_prefix.as_ref().and_then(|p| {
        let literal = match RouteTemplate::parse(p.get_ref()) {
            Ok(t) if t.segments().is_empty() => None,
            Ok(t) => t
                .segments()
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => Some(l.clone()),
                    Segment::Param(..) => None,
                })
                .collect::<Option<Vec<_>>>(),
            Err(_) => None,
        };
        if literal.is_none() {
            report.error(
                p.span(),
                Problem::Invalid(format!(
                    "path_prefix {:?} must be literal path segments such as \"/acme\" (no parameters, not `/` alone)",
                    p.get_ref()
                )),
            );
        }
        literal
    });
    let topics = def.topics.as_ref().map(|entries| {
        entries
            .iter()
            .filter_map(|entry| topic_rule(entry, report))
            .collect()
    });
    Namespace {
        host,
        path_prefix,
        topics,
    }
}

fn topic_rule(entry: &Spanned<String>, report: &mut Report<'_>) -> Option<TopicRule> {
    let text = entry.get_ref();
    let (rule, name) = match text.strip_suffix('*') {
        Some(prefix) => (TopicRule::Prefix(prefix.to_owned()), prefix),
        None => (TopicRule::Exact(text.clone()), text.as_str()),
    };
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let valid = match rule {
        TopicRule::Exact(_) => valid_chars && (1..=249).contains(&name.len()),
        TopicRule::Prefix(_) => valid_chars && name.len() < 249,
    };
    if !valid {
        report.error(
            entry.span(),
            Problem::Invalid(format!(
                "topics entry {text:?} must be a topic name, or a prefix ending in `*` (letters, digits, `.`, `_`, `-`)"
            )),
        );
    }
    valid.then_some(rule)
}

/// Checks `[tenants.quotas]`; what was invalid is reported and left out.
pub(super) fn quotas(def: Option<&Spanned<QuotasDef>>, report: &mut Report<'_>) -> Quotas {
    let Some(def) = def else {
        return Quotas::default();
    };
    let def = def.get_ref();
    let mut number = |value: &Option<Spanned<u64>>, key: &str, range| {
        value
            .as_ref()
            .and_then(|v| super::bounds::number(Some(v), key, range, 0, report))
    };
    let rate = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let quotas = Quotas {
        max_connections: number(&def.max_connections, "max_connections", MAX_CONNECTIONS)
            .map(|n| n as usize),
        inbound_messages_per_second: number(
            &def.inbound_messages_per_second,
            "inbound_messages_per_second",
            RATE,
        )
        .map(rate),
        outbound_deliveries_per_second: number(
            &def.outbound_deliveries_per_second,
            "outbound_deliveries_per_second",
            RATE,
        )
        .map(rate),
        plugin_memory_bytes: number(
            &def.plugin_memory_bytes,
            "plugin_memory_bytes",
            super::limits::Limits::MEMORY_BYTES,
        )
        .map(|n| n as usize),
        plugin_deadline_ms: number(
            &def.plugin_deadline_ms,
            "plugin_deadline_ms",
            super::limits::Limits::DEADLINE_MS,
        ),
        plugin_cpu_share: None,
    };
    let plugin_cpu_share = def.plugin_cpu_share.as_ref().and_then(|share| {
        let value = *share.get_ref();
        if CPU_SHARE.contains(&value) {
            return Some(value);
        }
        report.error(
            share.span(),
            Problem::Invalid(format!(
                "plugin_cpu_share {value} is out of range: it must be from {} to {} (a fraction of the machine's CPU time)",
                CPU_SHARE.start(),
                CPU_SHARE.end()
            )),
        );
        None
    });
    Quotas {
        plugin_cpu_share,
        ..quotas
    }
}

/// Two tenants' namespaces that share paths: the same host (or either
/// serving any host) and one prefix inside the other. A tenant without a
/// prefix is checked per pipeline instead (see [`path_owner`]).
pub(super) fn overlaps(a: &Namespace, b: &Namespace) -> bool {
    let hosts_meet = match (&a.host, &b.host) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let prefixes_nest = match (&a.path_prefix, &b.path_prefix) {
        (Some(x), Some(y)) => x.iter().zip(y).all(|(p, q)| p == q),
        _ => false,
    };
    hosts_meet && prefixes_nest
}

/// The first of `others` whose namespace claims `template` on `host`: its
/// prefix holds the path and it serves the same host (or any host).
pub(super) fn path_owner<'a>(
    template: &RouteTemplate,
    host: Option<&str>,
    others: impl IntoIterator<Item = (&'a str, &'a Namespace)>,
) -> Option<&'a str> {
    others.into_iter().find_map(|(name, ns)| {
        let same_host = match (&ns.host, host) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        };
        (same_host && ns.path_prefix.is_some() && ns.holds_path(template)).then_some(name)
    })
}

/// Checks that `tenant` may use `topic` (`what`: "reads", "writes", ...);
/// reported at the topic otherwise.
pub(super) fn check_topic(
    tenant: Option<(&str, &Namespace)>,
    topic: &Spanned<String>,
    what: &str,
    report: &mut Report<'_>,
) -> bool {
    let Some((name, ns)) = tenant else {
        return true;
    };
    if ns.allows_topic(topic.get_ref()) {
        return true;
    }
    let allowed = ns
        .topics
        .iter()
        .flatten()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    report.error(
        topic.span(),
        Problem::Invalid(format!(
            "this pipeline {what} topic `{}`, outside tenant `{name}`'s topics ({allowed})",
            topic.get_ref()
        )),
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(host: Option<&str>, prefix: Option<&[&str]>) -> Namespace {
        Namespace {
            host: host.map(str::to_owned),
            path_prefix: prefix.map(|p| p.iter().map(|s| s.to_string()).collect()),
            topics: None,
        }
    }

    #[test]
    fn topic_rules_allow_exact_names_and_prefixes() {
        let ns = Namespace {
            topics: Some(vec![
                TopicRule::Prefix("acme.".into()),
                TopicRule::Exact("audit".into()),
            ]),
            ..Namespace::default()
        };
        assert!(ns.allows_topic("acme.orders"));
        assert!(ns.allows_topic("audit"));
        assert!(!ns.allows_topic("audit2"));
        assert!(!ns.allows_topic("acmeorders"));
        assert!(Namespace::default().allows_topic("anything"));
    }

    #[test]
    fn prefixes_hold_paths_by_whole_segments() {
        let ns = ns(None, Some(&["acme"]));
        let t = |s: &str| RouteTemplate::parse(s).unwrap();
        assert!(ns.holds_path(&t("/acme/{channel}")));
        assert!(ns.holds_path(&t("/acme")));
        assert!(!ns.holds_path(&t("/acmex/{channel}")));
        assert!(!ns.holds_path(&t("/{tenant}/x")));
    }

    #[test]
    fn namespaces_overlap_on_shared_hosts_and_nested_prefixes() {
        let acme = ns(None, Some(&["acme"]));
        assert!(overlaps(&acme, &ns(None, Some(&["acme", "eu"]))));
        assert!(!overlaps(&acme, &ns(None, Some(&["globex"]))));
        assert!(!overlaps(
            &ns(Some("a.example"), Some(&["x"])),
            &ns(Some("b.example"), Some(&["x"]))
        ));
        assert!(overlaps(
            &ns(Some("a.example"), Some(&["x"])),
            &ns(None, Some(&["x"]))
        ));
    }
}
