//! The plugin's config table: which kind of mock, and the templates each
//! kind needs, all checked and compiled at load time.

use serde_json::Value;

use crate::jsonrpc::Methods;
use crate::matching::Rules;
use crate::placeholder::Scope;
use crate::schedule::Schedule;
use crate::table::{Table, list};
use crate::template::Template;

const KINDS: [&str; 5] = ["echo", "static", "pattern", "jsonrpc", "rooms"];

/// Keys every kind takes.
const COMMON: [&str; 4] = ["kind", "on_connect", "on_close", "scheduled"];

/// What the plugin does with a client message.
pub enum Kind {
    Echo,
    Static { on_message: Option<Template> },
    Pattern(Rules),
    JsonRpc(Methods),
    Rooms,
}

pub struct Settings {
    pub kind: Kind,
    /// Sent to each connection when it opens.
    pub on_connect: Option<Template>,
    /// Sent to a connection when it closes (best effort).
    pub on_close: Option<Template>,
    pub scheduled: Vec<Schedule>,
}

impl Settings {
    pub fn parse(config: &Value) -> Result<Self, String> {
        let table = Table::of(config, "")?;
        let kind = match table.get("kind") {
            None => {
                return Err(format!("`kind` is missing: set it to {}", list(&KINDS)));
            }
            Some(Value::String(kind)) if KINDS.contains(&kind.as_str()) => kind.as_str(),
            Some(other) => {
                return Err(format!("kind: expected {} (got {other})", list(&KINDS)));
            }
        };
        check_keys(&table, kind)?;
        let kind = match kind {
            "echo" => Kind::Echo,
            "static" => Kind::Static {
                on_message: table.template("on_message", Scope::MESSAGE)?,
            },
            "pattern" => Kind::Pattern(Rules::parse(&table)?),
            "jsonrpc" => Kind::JsonRpc(Methods::parse(&table)?),
            _ => Kind::Rooms,
        };
        Ok(Settings {
            kind,
            on_connect: table.template("on_connect", Scope::CONNECTION)?,
            on_close: table.template("on_close", Scope::CONNECTION)?,
            scheduled: Schedule::parse_all(&table)?,
        })
    }
}

/// Unknown keys, and keys of another kind, are errors: a mock that silently
/// ignores half its config is worse than one that refuses to load.
fn check_keys(table: &Table, kind: &str) -> Result<(), String> {
    let own: &[&str] = match kind {
        "static" => &["on_message"],
        "pattern" => &["rules", "no_match", "state"],
        "jsonrpc" => &["methods"],
        _ => &[],
    };
    let allowed: Vec<&str> = COMMON.iter().chain(own).copied().collect();
    let every = ["on_message", "rules", "no_match", "state", "methods"];
    for key in table.keys() {
        if allowed.contains(&key) {
            continue;
        }
        return Err(if every.contains(&key) {
            format!(
                "`{key}` does not apply to kind = \"{kind}\" (it takes {})",
                list(&allowed)
            )
        } else {
            format!(
                "unknown key `{key}` (kind = \"{kind}\" takes {})",
                list(&allowed)
            )
        });
    }
    Ok(())
}
