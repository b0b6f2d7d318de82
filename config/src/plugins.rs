//! Plugin references: which component a `plugin = "..."` names, its config
//! as JSON, its limits, and (when a plugin host is given) whether it has the
//! role its place needs and accepts its config.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_spanned::Spanned;
use toml::de::DeValue;

use super::diagnostics::{Problem, Report};
use super::env::{self, ConfigValue};
use super::limits::Limits;
use super::model::{PluginConfig, PluginSource};
use super::role::{NATIVE_PREFIX, Native, Role};
use super::schema::PluginRef;

/// What checking plugins needs from a plugin host (`sluice validate`, a
/// live reload): the host implements it, so the pipeline file's checks
/// never depend on the engine. Errors are the host's own words.
pub trait PluginCheck {
    /// The roles `plugin`'s component exports; `Err` when it is not a
    /// component or does not compile.
    fn exported_roles(
        &self,
        plugin: &PluginConfig,
        pipeline: &str,
        tenant: &str,
    ) -> Result<Vec<Role>, String>;

    /// Loads `plugin` (a component or a built-in) in its place and runs its
    /// `init`, so a config it refuses is an error here.
    fn init(&self, plugin: &PluginConfig, pipeline: &str, tenant: &str) -> Result<(), String>;
}

/// The hex SHA-256 of a plugin's bytes: its identity in logs, the admin
/// API, reloads and the compile cache.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The first-party plugins a host embeds, by name (`plugin = "key-router"`).
pub type Builtins<'a> = &'a [(&'a str, &'a [u8])];

/// What resolving plugins needs from the rest of the check.
pub(crate) struct PluginContext<'a> {
    /// The pipeline file's directory.
    pub base: &'a Path,
    pub builtins: Builtins<'a>,
    pub host: Option<&'a dyn PluginCheck>,
    /// Exported roles by content hash, so a component used many times is
    /// inspected once.
    pub roles: HashMap<String, Result<Vec<Role>, String>>,
}

/// Where a plugin sits: the pipeline's key (`auth`, `transforms`, ...),
/// the role that key needs, and the pipeline and tenant names.
pub(crate) struct Slot<'a> {
    pub key: &'static str,
    pub role: Role,
    pub pipeline: &'a str,
    pub tenant: &'a str,
    /// The tenant's caps on memory and deadline (`plugin_memory_bytes`,
    /// `plugin_deadline_ms`).
    pub caps: (Option<usize>, Option<u64>),
}

/// Resolves one plugin reference; `raw` is its table as written, for the
/// positions of values inside `limits`.
pub(crate) fn resolve(
    slot: &Slot<'_>,
    plugin: &Spanned<PluginRef>,
    raw: Option<&Spanned<DeValue<'_>>>,
    ctx: &mut PluginContext<'_>,
    report: &mut Report<'_>,
) -> Option<PluginConfig> {
    let name = plugin.get_ref().plugin.get_ref().clone();
    let name_span = plugin.get_ref().plugin.span();
    let source = source_and_bytes(&name, name_span.clone(), (ctx.base, ctx.builtins), report);
    let config_json = config_json(plugin.get_ref().config.as_ref(), report);
    let limits = limits(plugin.get_ref().limits.as_ref(), raw, report)
        .and_then(|l| within_caps(slot, l, raw, report));
    let (source, bytes) = source?;
    // Whether the config and limits are usable: only then is `init` run.
    let usable = config_json.is_some() && limits.is_some();
    if let PluginSource::Native(native) = source {
        let resolved = PluginConfig {
            hash: content_hash(&bytes),
            name,
            source,
            role: slot.role,
            bytes,
            config_json: config_json.unwrap_or_default(),
            limits: limits.unwrap_or_default(),
        };
        // Like a component's, its role and config are checked only when
        // plugins are (a plugin host is given).
        let Some(host) = ctx.host else {
            return usable.then_some(resolved);
        };
        return native_checked(
            slot,
            (native, host),
            (name_span, plugin.span()),
            resolved,
            usable,
            report,
        );
    }
    let hash = content_hash(&bytes);
    let resolved = PluginConfig {
        name,
        source,
        role: slot.role,
        bytes,
        hash,
        config_json: config_json.unwrap_or_default(),
        limits: limits.unwrap_or_default(),
    };
    if let Some(host) = ctx.host {
        let roles = ctx
            .roles
            .entry(resolved.hash.clone())
            .or_insert_with(|| host.exported_roles(&resolved, slot.pipeline, slot.tenant));
        match roles {
            Err(fault) => {
                report.error(
                    name_span,
                    Problem::Plugin {
                        plugin: resolved.name.clone(),
                        fault: fault.clone(),
                    },
                );
                return None;
            }
            Ok(roles) if !roles.contains(&slot.role) => {
                report.error(name_span, wrong_role(slot, &resolved.name, roles));
                return None;
            }
            Ok(_) => {}
        }
        // Run `init` only with a config and limits that are themselves valid.
        if usable && let Err(fault) = host.init(&resolved, slot.pipeline, slot.tenant) {
            report.error(
                plugin.span(),
                Problem::Plugin {
                    plugin: resolved.name.clone(),
                    fault,
                },
            );
            return None;
        }
    }
    usable.then_some(resolved)
}

/// A built-in plugin's role is known without a host; its config is read by
/// the host's [`PluginCheck::init`], as a component's `init` would.
fn native_checked(
    slot: &Slot<'_>,
    (native, host): (Native, &dyn PluginCheck),
    (name_span, span): (Range<usize>, Range<usize>),
    resolved: PluginConfig,
    usable: bool,
    report: &mut Report<'_>,
) -> Option<PluginConfig> {
    if native.role() != slot.role {
        report.error(
            name_span,
            wrong_role(slot, &resolved.name, &[native.role()]),
        );
        return None;
    }
    if !usable {
        return None;
    }
    match host.init(&resolved, slot.pipeline, slot.tenant) {
        Ok(()) => Some(resolved),
        Err(fault) => {
            report.error(
                span,
                Problem::Plugin {
                    plugin: resolved.name.clone(),
                    fault,
                },
            );
            None
        }
    }
}

/// A path contains `/` or ends in `.wasm`; anything else names a first-party plugin.
fn is_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".wasm")
}

fn source_and_bytes(
    name: &str,
    span: Range<usize>,
    (base, builtins): (&Path, Builtins<'_>),
    report: &mut Report<'_>,
) -> Option<(PluginSource, Arc<[u8]>)> {
    if name.starts_with(NATIVE_PREFIX) {
        match Native::from_plugin_name(name) {
            Some(native) => Some((PluginSource::Native(native), name.as_bytes().into())),
            None => {
                let known = Native::ALL
                    .iter()
                    .map(|n| format!("`{NATIVE_PREFIX}{}`", n.name()))
                    .collect::<Vec<_>>();
                report.error(
                    span,
                    Problem::UnknownNative {
                        name: name.to_owned(),
                        known: known.join(", "),
                    },
                );
                None
            }
        }
    } else if is_path(name) {
        let path = base.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Some((PluginSource::File(path), bytes.into())),
            Err(e) => {
                report.error(
                    span,
                    Problem::PluginUnreadable {
                        path,
                        reason: e.to_string(),
                    },
                );
                None
            }
        }
    } else if let Some((_, bytes)) = builtins.iter().find(|(n, _)| *n == name) {
        Some((PluginSource::Builtin(name.to_owned()), (*bytes).into()))
    } else {
        let known = builtins
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>();
        report.error(
            span,
            Problem::UnknownPlugin {
                name: name.to_owned(),
                known: known.join(", "),
            },
        );
        None
    }
}

/// The `config` table as JSON text (`{}` when absent).
fn config_json(config: Option<&Spanned<ConfigValue>>, report: &mut Report<'_>) -> Option<String> {
    let Some(config) = config else {
        return Some("{}".to_owned());
    };
    if !matches!(config.get_ref(), ConfigValue::Table(_)) {
        let what = config.get_ref().type_name();
        report.error(
            config.span(),
            Problem::Schema(format!("`config` must be a table, not {what}")),
        );
        return None;
    }
    if report.misses_env_within(&config.span()) {
        return None;
    }
    env::to_json(config, report).map(|json| json.to_string())
}

/// Checks `limits` against its bounds; defaults when absent.
fn limits(
    limits: Option<&Spanned<Limits>>,
    raw: Option<&Spanned<DeValue<'_>>>,
    report: &mut Report<'_>,
) -> Option<Limits> {
    let Some(limits) = limits else {
        return Some(Limits::default());
    };
    let value_span = |key: &str| {
        raw.and_then(|r| r.get_ref().get("limits"))
            .and_then(|l| l.get_ref().get(key))
            .map_or(limits.span(), |v| v.span())
    };
    let mut ok = true;
    let memory = limits.get_ref().memory_bytes as u64;
    if !Limits::MEMORY_BYTES.contains(&memory) {
        report.error(
            value_span("memory_bytes"),
            Problem::Invalid(format!(
                "memory_bytes = {memory} is out of range: it must be from {} (4 MiB) to {} (4 GiB)",
                Limits::MEMORY_BYTES.start(),
                Limits::MEMORY_BYTES.end()
            )),
        );
        ok = false;
    }
    let deadline = limits.get_ref().deadline_ms;
    if !Limits::DEADLINE_MS.contains(&deadline) {
        report.error(
            value_span("deadline_ms"),
            Problem::Invalid(format!(
                "deadline_ms = {deadline} is out of range: it must be from {} to {}",
                Limits::DEADLINE_MS.start(),
                Limits::DEADLINE_MS.end()
            )),
        );
        ok = false;
    }
    ok.then_some(*limits.get_ref())
}

fn wrong_role(slot: &Slot<'_>, plugin: &str, roles: &[Role]) -> Problem {
    let exports = if roles.is_empty() {
        "exports no Sluice role".to_owned()
    } else {
        let names = roles
            .iter()
            .map(|r| with_article(r.name()))
            .collect::<Vec<_>>();
        format!("is {}", names.join(" and "))
    };
    Problem::WrongRole {
        plugin: plugin.to_owned(),
        slot: slot.key.to_owned(),
        needs: with_article(slot.role.name()),
        world: slot.role.name(),
        exports,
    }
}

fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// Lowers default limits to the tenant's caps; limits asked for beyond them
/// are reported at the value (or at the plugin's table).
fn within_caps(
    slot: &Slot<'_>,
    mut limits: Limits,
    raw: Option<&Spanned<DeValue<'_>>>,
    report: &mut Report<'_>,
) -> Option<Limits> {
    let written = |key: &str| {
        raw.and_then(|r| r.get_ref().get("limits"))
            .and_then(|l| l.get_ref().get(key))
            .map(|v| v.span())
    };
    let mut ok = true;
    let (memory_cap, deadline_cap) = slot.caps;
    if let Some(cap) = memory_cap
        && limits.memory_bytes > cap
    {
        match written("memory_bytes") {
            Some(span) => {
                report.error(
                    span,
                    Problem::Invalid(format!(
                        "memory_bytes = {} is above tenant `{}`'s plugin_memory_bytes = {cap}",
                        limits.memory_bytes, slot.tenant
                    )),
                );
                ok = false;
            }
            None => limits.memory_bytes = cap,
        }
    }
    if let Some(cap) = deadline_cap
        && limits.deadline_ms > cap
    {
        match written("deadline_ms") {
            Some(span) => {
                report.error(
                    span,
                    Problem::Invalid(format!(
                        "deadline_ms = {} is above tenant `{}`'s plugin_deadline_ms = {cap}",
                        limits.deadline_ms, slot.tenant
                    )),
                );
                ok = false;
            }
            None => limits.deadline_ms = cap,
        }
    }
    ok.then_some(limits)
}
