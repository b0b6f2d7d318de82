//! Checks of `[kafka]` (and tenants' overrides), `[[listeners]]` and
//! `[admin]` (with the tenants' admin tokens).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde_spanned::Spanned;

use super::bounds;
use super::diagnostics::{Problem, Report};
use super::env::{self, ConfigValue};
use super::kafka_security;
use super::model::{Admin, Kafka, Listener, ListenerLimits, Secret, Tls};
use super::names::Names;
use super::parse::Document;
use super::schema::{AdminDef, Brokers, KafkaDef, ListenerDef, RateDef};

pub(super) fn kafka(
    def: Option<&KafkaDef>,
    base: Option<&Kafka>,
    dir: &Path,
    report: &mut Report<'_>,
) -> Kafka {
    let brokers = match def.and_then(|d| d.brokers.as_ref()) {
        Some(text) => Brokers::parse(text.get_ref()).unwrap_or_else(|message| {
            report.error(text.span(), Problem::Invalid(message));
            Brokers::Embedded
        }),
        None => base.map_or(Brokers::Embedded, |b| b.brokers.clone()),
    };
    let mut properties = base.map(|b| b.properties.clone()).unwrap_or_default();
    let mut flat = Vec::new();
    for (key, value) in def.map(|d| &d.properties).into_iter().flatten() {
        flatten(key.clone(), value, &mut flat);
    }
    for (key, value) in flat {
        let hint = match key.as_str() {
            "bootstrap.servers" | "metadata.broker.list" => Some("set `brokers` instead"),
            "group.id" => Some("set `group_id` in `[pipelines.source]` instead"),
            _ => None,
        };
        if let Some(hint) = hint {
            report.error(
                value.span(),
                Problem::Invalid(format!(
                    "Kafka property `{key}` is managed by Sluice: {hint}"
                )),
            );
        } else if let Some(text) = env::to_property(value, report) {
            properties.insert(key, text);
        }
    }
    let security = match def.and_then(|d| d.security.as_ref()) {
        Some(security) => {
            if brokers == Brokers::Embedded {
                let message =
                    "the embedded broker takes plaintext only: `security` needs `brokers`";
                report.error(security.span(), Problem::Invalid(message.to_owned()));
            }
            kafka_security::check(security, dir, report)
        }
        None => base.and_then(|b| b.security.clone()),
    };
    let compression = match def.and_then(|d| d.compression.as_ref()) {
        Some(compression) => *compression.get_ref(),
        None => base.map_or_else(Default::default, |b| b.compression),
    };
    Kafka {
        brokers,
        properties,
        security,
        compression,
    }
}

/// Unquoted dotted keys (`fetch.wait.max.ms = 10`) are nested tables in
/// TOML; librdkafka wants them flat.
fn flatten<'v>(
    key: String,
    value: &'v Spanned<ConfigValue>,
    out: &mut Vec<(String, &'v Spanned<ConfigValue>)>,
) {
    match value.get_ref() {
        ConfigValue::Table(entries) => {
            for (k, v) in entries {
                flatten(format!("{key}.{k}"), v, out);
            }
        }
        _ => out.push((key, value)),
    }
}

pub(super) fn listeners(
    doc: &Document<'_>,
    base: &Path,
    names: &mut Names,
    report: &mut Report<'_>,
) -> Vec<Listener> {
    let mut addresses: BTreeMap<SocketAddr, String> = BTreeMap::new();
    let mut listeners = Vec::new();
    for def in doc.listeners.iter().filter_map(|e| e.parsed.as_ref()) {
        let mut ok = names.declare(&def.name, report);
        let text = def.address.get_ref();
        let address = match (
            &def.port,
            text.parse::<SocketAddr>(),
            text.parse::<IpAddr>(),
        ) {
            (None, Ok(address), _) => Some(address),
            (Some(port), _, Ok(ip)) => Some(SocketAddr::new(ip, *port.get_ref())),
            (Some(_), Ok(_), _) => {
                let message = format!(
                    "address {text:?} has a port and `port` gives another: write the IP address alone (\"0.0.0.0\") with `port`"
                );
                report.error(def.address.span(), Problem::Invalid(message));
                ok = false;
                None
            }
            (port, _, _) => {
                let message = if port.is_some() {
                    format!(
                        "address {text:?} must be an IP address, like \"0.0.0.0\" or \"::1\" (the port is `port`)"
                    )
                } else {
                    format!(
                        "address {text:?} must be an IP address and port, like \"0.0.0.0:8080\" or \"[::1]:8080\""
                    )
                };
                report.error(def.address.span(), Problem::Invalid(message));
                ok = false;
                None
            }
        };
        if let Some(address) = address {
            if let Some(other) = addresses.get(&address) {
                let message = format!("address {address} is already used by listener `{other}`");
                report.error(def.address.span(), Problem::Invalid(message));
                ok = false;
            } else {
                addresses.insert(address, def.name.get_ref().clone());
            }
        }
        let tls = def.tls.as_ref().map(|tls| {
            let mut file = |path: &Spanned<String>, what: &str| {
                let resolved = base.join(path.get_ref());
                if !resolved.is_file() {
                    report.error(
                        path.span(),
                        Problem::Invalid(format!(
                            "TLS {what} file `{}` does not exist",
                            resolved.display()
                        )),
                    );
                    ok = false;
                }
                resolved
            };
            Tls {
                cert: file(&tls.get_ref().cert, "certificate"),
                key: file(&tls.get_ref().key, "key"),
            }
        });
        for origin in def.allowed_origins.iter().flatten() {
            let text = origin.get_ref();
            let valid = text == "null"
                || text.split_once("://").is_some_and(|(scheme, host)| {
                    !scheme.is_empty() && !host.is_empty() && !host.contains('/')
                });
            if !valid {
                report.error(origin.span(), Problem::Invalid(format!("origin {text:?} must look like `https://app.example.com` (scheme and host, no path)")));
                ok = false;
            }
        }
        let rate = def
            .connections_per_ip
            .as_ref()
            .map_or_else(RateDef::default, |r| {
                if r.get_ref().per_second == 0 || r.get_ref().burst == 0 {
                    report.error(
                        r.span(),
                        Problem::Invalid("`per_second` and `burst` must be at least 1".into()),
                    );
                    ok = false;
                }
                *r.get_ref()
            });
        let limits = listener_limits(def, report);
        ok &= limits.is_some();
        if let (true, Some(address), Some(limits)) = (ok, address, limits) {
            listeners.push(Listener {
                name: def.name.get_ref().clone(),
                address,
                tls,
                allowed_origins: def
                    .allowed_origins
                    .as_ref()
                    .map(|o| o.iter().map(|s| s.get_ref().clone()).collect()),
                connections_per_ip: rate,
                limits,
            });
        }
    }
    listeners
}

/// A listener's limits and timers, defaults filled in; `None` if reported.
fn listener_limits(def: &ListenerDef, report: &mut Report<'_>) -> Option<ListenerLimits> {
    let default = ListenerLimits::default();
    let ms = |d: Duration| d.as_millis() as u64;
    let max_connections = bounds::number(
        def.max_connections.as_ref(),
        "max_connections",
        1..=10_000_000,
        default.max_connections as u64,
        report,
    );
    let handshake = bounds::number(
        def.handshake_timeout_ms.as_ref(),
        "handshake_timeout_ms",
        100..=600_000,
        ms(default.handshake_timeout),
        report,
    );
    let pending_per_ip = bounds::number(
        def.pending_per_ip.as_ref(),
        "pending_per_ip",
        1..=1_000_000,
        default.pending_per_ip as u64,
        report,
    );
    let ping_interval = bounds::millis_or_never(
        def.ping_interval_ms.as_ref(),
        "ping_interval_ms",
        100..=3_600_000,
        default.ping_interval.map_or(0, ms),
        report,
    );
    let ping_timeout = bounds::number(
        def.ping_timeout_ms.as_ref(),
        "ping_timeout_ms",
        100..=3_600_000,
        ms(default.ping_timeout),
        report,
    );
    let idle_timeout = bounds::millis_or_never(
        def.idle_timeout_ms.as_ref(),
        "idle_timeout_ms",
        100..=86_400_000,
        0,
        report,
    );
    Some(ListenerLimits {
        max_connections: max_connections? as usize,
        handshake_timeout: Duration::from_millis(handshake?),
        pending_per_ip: pending_per_ip? as usize,
        ping_interval: ping_interval?,
        ping_timeout: Duration::from_millis(ping_timeout?),
        idle_timeout: idle_timeout?,
        on_shutdown: def.on_shutdown,
    })
}

/// Shortest admin token accepted, in characters.
const MIN_TOKEN_LEN: usize = 16;
/// Longest admin token accepted, in characters.
const MAX_TOKEN_LEN: usize = 4096;

/// `[admin]`: its address (not a WebSocket listener's) and the operator's
/// token; `None` if anything was reported.
pub(super) fn admin(
    def: &AdminDef,
    listeners: &[Listener],
    report: &mut Report<'_>,
) -> Option<Admin> {
    let address = match def.address.get_ref().parse::<SocketAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            let message = format!(
                "address {:?} must be an IP address and port, like \"127.0.0.1:9090\"",
                def.address.get_ref()
            );
            report.error(def.address.span(), Problem::Invalid(message));
            None
        }
    };
    let address = address.filter(|address| {
        let taken = listeners
            .iter()
            .find(|l| address.port() != 0 && l.address == *address);
        if let Some(listener) = taken {
            let message = format!(
                "address {address} is already used by listener `{}`: the admin API needs its own",
                listener.name
            );
            report.error(def.address.span(), Problem::Invalid(message));
        }
        taken.is_none()
    });
    let token = token(&def.token, "token", report);
    Some(Admin {
        address: address?,
        token: token?,
    })
}

/// A bearer token: a string or `{ env = "NAME" }`, at least 16 printable
/// ASCII characters (it travels in an `Authorization` header); `None` if
/// reported.
pub(super) fn token(
    value: &Spanned<ConfigValue>,
    key: &str,
    report: &mut Report<'_>,
) -> Option<Secret> {
    let text = env::to_text(value, key, report)?;
    let what = format!("`{key}`");
    let length = text.chars().count();
    let problem = if text.is_empty() {
        Some(format!(
            "{what} is empty: an admin token needs at least {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
        ))
    } else if length < MIN_TOKEN_LEN {
        Some(format!(
            "{what} is too short ({length} characters): an admin token needs at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)"
        ))
    } else if length > MAX_TOKEN_LEN {
        Some(format!(
            "{what} is too long ({length} characters): at most {MAX_TOKEN_LEN}"
        ))
    } else if !text.chars().all(|c| c.is_ascii_graphic()) {
        Some(format!(
            "{what} must be printable ASCII without spaces: it is sent in an `Authorization: Bearer` header"
        ))
    } else {
        None
    };
    match problem {
        Some(message) => {
            report.error(value.span(), Problem::Invalid(message));
            None
        }
        None => Some(Secret::new(text)),
    }
}
