//! The `{{...}}` placeholders of a template: parsed and checked at load
//! time, evaluated per event.

use serde_json::Value;

use crate::template::Ctx;
use crate::time;

/// Listed in the error for an unknown placeholder.
const KNOWN: &str = "now, now_ms, uuid, message.<path>, params.<path>, state.<path>, \
                     random_int <min> <max>, random_float <min> <max>, connection.id, connection_count";

/// Which placeholders make sense where a template is used. Checked at load
/// time, so `{{message.id}}` in a scheduled message is a config error rather
/// than an always-empty field.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// There is an incoming message (`{{message...}}`).
    pub message: bool,
    /// There are JSON-RPC params (`{{params...}}`).
    pub params: bool,
    /// There is one connection (`{{connection.id}}`).
    pub connection: bool,
    /// There is the connection's state (`{{state...}}`: pattern rules).
    pub state: bool,
}

impl Scope {
    /// on_connect, on_close: a connection, no message.
    pub const CONNECTION: Scope = Scope {
        message: false,
        params: false,
        connection: true,
        state: false,
    };
    /// Answers to a client message.
    pub const MESSAGE: Scope = Scope {
        message: true,
        params: false,
        connection: true,
        state: false,
    };
    /// Answers of pattern rules, and their state updates.
    pub const STATEFUL: Scope = Scope {
        state: true,
        ..Scope::MESSAGE
    };
    /// Answers to a JSON-RPC request.
    pub const REQUEST: Scope = Scope {
        message: true,
        params: true,
        connection: true,
        state: false,
    };
    /// Scheduled messages: rendered once for every connection.
    pub const SCHEDULE: Scope = Scope {
        message: false,
        params: false,
        connection: false,
        state: false,
    };
}

#[derive(Debug)]
pub enum Placeholder {
    Now,
    NowMs,
    Uuid,
    /// A dotted path into the incoming message; empty for all of it.
    Message(Vec<String>),
    /// A dotted path into a JSON-RPC request's params; empty for all of them.
    Params(Vec<String>),
    /// A dotted path into the connection's state; empty for all of it.
    State(Vec<String>),
    RandomInt(i64, i64),
    RandomFloat(f64, f64),
    ConnectionId,
    ConnectionCount,
}

impl Placeholder {
    /// Parses what stands between `{{` and `}}`.
    pub fn parse(inner: &str, scope: Scope) -> Result<Self, String> {
        let shown = format!("`{{{{{inner}}}}}`");
        let mut words = inner.split_whitespace();
        let name = words.next().ok_or("empty placeholder `{{}}`")?;
        let args: Vec<&str> = words.collect();
        let placeholder = match name {
            "now" => Placeholder::Now,
            "now_ms" => Placeholder::NowMs,
            "uuid" => Placeholder::Uuid,
            "connection.id" => Placeholder::ConnectionId,
            "connection_count" => Placeholder::ConnectionCount,
            "random_int" => {
                let (low, high) = bounds::<i64>(&shown, name, &args, |_| true)?;
                return Ok(Placeholder::RandomInt(low, high));
            }
            "random_float" => {
                let (low, high) = bounds::<f64>(&shown, name, &args, |x| x.is_finite())?;
                return Ok(Placeholder::RandomFloat(low, high));
            }
            _ => match path_of(name, "message")
                .or_else(|| path_of(name, "params"))
                .or_else(|| path_of(name, "state"))
            {
                Some(Ok(path)) if name.starts_with("message") => Placeholder::Message(path),
                Some(Ok(path)) if name.starts_with("params") => Placeholder::Params(path),
                Some(Ok(path)) => Placeholder::State(path),
                Some(Err(())) => {
                    return Err(format!(
                        "{shown}: a path is dot-separated names or array indexes, e.g. `message.user.id`"
                    ));
                }
                None => return Err(format!("unknown placeholder {shown} (known: {KNOWN})")),
            },
        };
        if !args.is_empty() {
            return Err(format!("{shown}: `{name}` takes no arguments"));
        }
        placeholder.check_scope(&shown, scope)?;
        Ok(placeholder)
    }

    fn check_scope(&self, shown: &str, scope: Scope) -> Result<(), String> {
        match self {
            Placeholder::Message(_) if !scope.message => {
                Err(format!("{shown}: there is no incoming message here"))
            }
            Placeholder::Params(_) if !scope.params => Err(format!(
                "{shown}: params exist only in the answers of JSON-RPC methods"
            )),
            Placeholder::State(_) if !scope.state => Err(format!(
                "{shown}: per-connection state exists only in the rules of kind = \"pattern\""
            )),
            Placeholder::ConnectionId if !scope.connection => Err(format!(
                "{shown}: a scheduled message goes to every connection, so there is no one connection id"
            )),
            _ => Ok(()),
        }
    }

    /// The value for this event. A path that leads nowhere is null.
    pub fn eval(&self, ctx: &Ctx) -> Value {
        match self {
            Placeholder::Now => Value::String(time::rfc3339_ms(ctx.now_ms)),
            Placeholder::NowMs => Value::from(ctx.now_ms),
            Placeholder::Uuid => Value::String(sluice_sdk::random::uuid_v4()),
            Placeholder::Message(path) => lookup(ctx.message, path),
            Placeholder::Params(path) => lookup(ctx.params, path),
            Placeholder::State(path) => lookup(ctx.state, path),
            Placeholder::RandomInt(low, high) => {
                Value::from(sluice_sdk::random::int_between(*low, *high))
            }
            Placeholder::RandomFloat(low, high) => {
                Value::from(sluice_sdk::random::float_between(*low, *high))
            }
            Placeholder::ConnectionId => ctx.conn_id.map_or(Value::Null, Value::from),
            // The pipeline's connections on every node, the same whichever
            // instance of the plugin renders it.
            Placeholder::ConnectionCount => Value::from(
                ctx.connection_count
                    .unwrap_or_else(|| sluice_sdk::presence::connection_count() as usize),
            ),
        }
    }
}

/// `Some(path)` if `name` is `root` or `root.a.b`; `Err` for an empty segment.
fn path_of(name: &str, root: &str) -> Option<Result<Vec<String>, ()>> {
    let rest = name.strip_prefix(root)?;
    if rest.is_empty() {
        return Some(Ok(Vec::new()));
    }
    let rest = rest.strip_prefix('.')?;
    let segments: Vec<String> = rest.split('.').map(str::to_owned).collect();
    Some(if segments.iter().any(String::is_empty) {
        Err(())
    } else {
        Ok(segments)
    })
}

/// Two numeric arguments, lower bound first; `valid` rules out NaN and
/// infinities for floats.
fn bounds<T: std::str::FromStr + PartialOrd>(
    shown: &str,
    name: &str,
    args: &[&str],
    valid: fn(&T) -> bool,
) -> Result<(T, T), String> {
    let number = |arg: &str| arg.parse::<T>().ok().filter(valid);
    let parsed = match args {
        [low, high] => number(low).zip(number(high)),
        _ => None,
    };
    match parsed {
        Some((low, high)) if low <= high => Ok((low, high)),
        Some(_) => Err(format!("{shown}: the lower bound comes first")),
        None => Err(format!(
            "{shown}: expected two numbers, the lower and upper bound (e.g. `{{{{{name} 1 10}}}}`)"
        )),
    }
}

/// The value at `path` (object keys, or indexes into arrays) under `root`;
/// null when anything is missing.
pub fn lookup(root: Option<&Value>, path: &[String]) -> Value {
    let mut current = root;
    for segment in path {
        current = match current {
            Some(Value::Object(fields)) => fields.get(segment),
            Some(Value::Array(items)) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
    }
    current.cloned().unwrap_or(Value::Null)
}
