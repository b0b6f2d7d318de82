//! Response templates: any JSON value whose strings may hold `{{...}}`
//! placeholders. Compiled once when the plugin loads (so a typo is a load
//! error, not a surprise per message) and rendered per event.

use serde_json::Value;
use sluice_sdk::Message;

use crate::placeholder::{Placeholder, Scope};

/// A compiled template.
#[derive(Debug)]
pub enum Template {
    /// No placeholder anywhere inside: rendered by cloning.
    Fixed(Value),
    /// A string that is exactly one placeholder: becomes the value itself,
    /// so a number stays a number.
    Whole(Placeholder),
    /// A string with placeholders inside longer text: always a string.
    Text(Vec<Piece>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

/// Part of a [`Template::Text`].
#[derive(Debug)]
pub enum Piece {
    Literal(String),
    Placeholder(Placeholder),
}

/// What an event offers to placeholders.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// `{{now}}`, `{{now_ms}}`.
    pub now_ms: u64,
    /// `{{message...}}`: the incoming message (JSON, or its text as a string).
    pub message: Option<&'a Value>,
    /// `{{params...}}`: a JSON-RPC request's params.
    pub params: Option<&'a Value>,
    /// `{{state...}}`: the connection's state (pattern rules).
    pub state: Option<&'a Value>,
    /// `{{connection.id}}`.
    pub conn_id: Option<u64>,
    /// `{{connection_count}}`: a number known to the event (a scheduled
    /// message's receivers), else asked of the host when rendered.
    pub connection_count: Option<usize>,
}

impl Template {
    /// Compiles `value`; `path` names it in errors (`rules[0].response`),
    /// `scope` says which placeholders make sense where it is used.
    pub fn compile(value: &Value, path: &str, scope: Scope) -> Result<Self, String> {
        let template = match value {
            Value::String(text) => compile_text(text, path, scope)?,
            Value::Array(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Self::compile(item, &format!("{path}[{i}]"), scope))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|t| matches!(t, Template::Fixed(_))) {
                    Template::Fixed(value.clone())
                } else {
                    Template::Array(items)
                }
            }
            Value::Object(fields) => {
                let fields = fields
                    .iter()
                    .map(|(key, item)| {
                        Ok((
                            key.clone(),
                            Self::compile(item, &format!("{path}.{key}"), scope)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                if fields.iter().all(|(_, t)| matches!(t, Template::Fixed(_))) {
                    Template::Fixed(value.clone())
                } else {
                    Template::Object(fields)
                }
            }
            other => Template::Fixed(other.clone()),
        };
        Ok(template)
    }

    /// The value for this event.
    pub fn render(&self, ctx: &Ctx) -> Value {
        match self {
            Template::Fixed(value) => value.clone(),
            Template::Whole(placeholder) => placeholder.eval(ctx),
            Template::Text(pieces) => {
                let mut text = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Literal(literal) => text.push_str(literal),
                        Piece::Placeholder(p) => push_value(&mut text, &p.eval(ctx)),
                    }
                }
                Value::String(text)
            }
            Template::Array(items) => items.iter().map(|t| t.render(ctx)).collect(),
            Template::Object(fields) => fields
                .iter()
                .map(|(key, t)| (key.clone(), t.render(ctx)))
                .collect(),
        }
    }

    /// The rendered value as a message: a string is sent as it is, as text;
    /// anything else as JSON text.
    pub fn message(&self, ctx: &Ctx) -> Message {
        match self.render(ctx) {
            Value::String(text) => Message::text(text),
            other => Message::json(&other),
        }
    }
}

fn compile_text(text: &str, path: &str, scope: Scope) -> Result<Template, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("{path}: `{{{{` without a closing `}}}}` in {text:?}"))?;
        let placeholder =
            Placeholder::parse(&after[..close], scope).map_err(|e| format!("{path}: {e}"))?;
        pieces.push(Piece::Placeholder(placeholder));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    if let [Piece::Placeholder(_)] = pieces.as_slice()
        && let Some(Piece::Placeholder(placeholder)) = pieces.pop()
    {
        return Ok(Template::Whole(placeholder));
    }
    Ok(match pieces.as_slice() {
        [] | [Piece::Literal(_)] => Template::Fixed(Value::String(text.to_owned())),
        _ => Template::Text(pieces),
    })
}

/// A value inside longer text: strings without quotes, null (a missing
/// field) as nothing, anything else as JSON.
fn push_value(text: &mut String, value: &Value) {
    match value {
        Value::String(s) => text.push_str(s),
        Value::Null => {}
        other => text.push_str(&other.to_string()),
    }
}
