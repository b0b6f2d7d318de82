//! From text to schema structs: every syntax error at once, then each
//! top-level table and each array element deserialized on its own, so one
//! bad entry does not hide the errors in the next.

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostics::{Problem, Report};
use super::env_refs::EnvRefs;
use super::schema::{
    AdminDef, ClusterDef, KafkaDef, ListenerDef, PipelineDef, PluginsDef, TOP_LEVEL_KEYS,
    TenantDef, TestDef,
};

/// One element of an array of tables: its raw form (for positions and
/// names) and, if it fits the schema, its parsed form.
pub(crate) struct Entry<'i, T> {
    pub raw: Spanned<DeValue<'i>>,
    pub parsed: Option<T>,
}

impl<T> Entry<'_, T> {
    /// The `name = "..."` of the raw table, even if the entry is broken.
    pub fn raw_name(&self) -> Option<&str> {
        self.raw.get_ref().get("name")?.get_ref().as_str()
    }
}

/// The file, split into its top-level parts.
#[derive(Default)]
pub(crate) struct Document<'i> {
    pub listeners: Vec<Entry<'i, ListenerDef>>,
    pub kafka: Option<KafkaDef>,
    pub tenants: Vec<Entry<'i, TenantDef>>,
    pub pipelines: Vec<Entry<'i, PipelineDef>>,
    pub plugins: Option<PluginsDef>,
    pub admin: Option<AdminDef>,
    /// Whether the file has an `[admin]` key at all (even a broken one).
    pub admin_declared: bool,
    pub cluster: Option<ClusterDef>,
    /// Whether the file has a `[cluster]` key at all (even a broken one).
    pub cluster_declared: bool,
    pub tests: Vec<Entry<'i, TestDef>>,
}

/// Parses the file, with `{ env = ... }` references replaced by what
/// `refs` resolved them to. `None` if it is not valid TOML (every syntax
/// error is reported; schema checks on a half-parsed file would only add
/// noise).
pub(crate) fn parse<'i>(
    text: &'i str,
    refs: &'i EnvRefs,
    report: &mut Report<'_>,
) -> Option<Document<'i>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in &errors {
            report.toml(error, true);
        }
        return None;
    }
    let mut doc = Document::default();
    for (key, mut value) in root.into_inner() {
        refs.substitute(&mut value);
        match key.get_ref().as_ref() {
            "listeners" => doc.listeners = entries(key, value, refs, report),
            "tenants" => doc.tenants = entries(key, value, refs, report),
            "pipelines" => doc.pipelines = entries(key, value, refs, report),
            "tests" => doc.tests = entries(key, value, refs, report),
            "kafka" => doc.kafka = table(&key, value, refs, report),
            "plugins" => doc.plugins = table(&key, value, refs, report),
            "admin" => {
                doc.admin_declared = true;
                doc.admin = table(&key, value, refs, report);
            }
            "cluster" => {
                doc.cluster_declared = true;
                doc.cluster = table(&key, value, refs, report);
            }
            other => report.error(
                key.span(),
                Problem::Schema(format!(
                    "unknown top-level key `{other}`, expected one of {}",
                    TOP_LEVEL_KEYS.map(|k| format!("`{k}`")).join(", ")
                )),
            ),
        }
    }
    Some(doc)
}

/// Deserializes one table (`[kafka]`, `[plugins]`, `[admin]`, `[cluster]`).
fn table<'i, T: Deserialize<'i>>(
    key: &Spanned<std::borrow::Cow<'i, str>>,
    value: Spanned<DeValue<'i>>,
    refs: &'i EnvRefs,
    report: &mut Report<'_>,
) -> Option<T> {
    if !value.get_ref().is_table() {
        report.error(
            value.span(),
            Problem::Schema(format!(
                "`{}` must be a table: write `[{}]`",
                key.get_ref(),
                key.get_ref()
            )),
        );
        return None;
    }
    refs.deserialize(value, report, |e, report| report.toml(&e, false))
}

/// Deserializes each element of an array of tables (`[[pipelines]]`).
fn entries<'i, T: Deserialize<'i>>(
    key: Spanned<std::borrow::Cow<'i, str>>,
    value: Spanned<DeValue<'i>>,
    refs: &'i EnvRefs,
    report: &mut Report<'_>,
) -> Vec<Entry<'i, T>> {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        report.error(
            span,
            Problem::Schema(format!(
                "`{}` must be an array of tables: write `[[{}]]`",
                key.get_ref(),
                key.get_ref()
            )),
        );
        return Vec::new();
    };
    items
        .iter()
        .map(|raw| {
            let parsed = if raw.get_ref().is_table() {
                refs.deserialize(raw.clone(), report, |e, report| match e.span() {
                    Some(_) => report.toml(&e, false),
                    // A check of the whole element (`try_from`) has no
                    // span of its own: point at the element.
                    None => report.error(raw.span(), Problem::Schema(e.message().to_owned())),
                })
            } else {
                report.error(
                    raw.span(),
                    Problem::Schema(format!(
                        "each element of `{}` must be a table, not a {}",
                        key.get_ref(),
                        raw.get_ref().type_str()
                    )),
                );
                None
            };
            Entry {
                raw: raw.clone(),
                parsed,
            }
        })
        .collect()
}
