//! `kind = "jsonrpc"`: a JSON-RPC 2.0 server (https://www.jsonrpc.org/specification)
//! whose methods answer with configured results or errors.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::placeholder::Scope;
use crate::table::{Table, describe};
use crate::template::{Ctx, Template};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;

pub struct Methods {
    methods: HashMap<String, Answer>,
}

enum Answer {
    Result(Template),
    /// The whole error object: `code`, `message`, optional `data`.
    Error(Template),
}

impl Methods {
    pub fn parse(config: &Table) -> Result<Self, String> {
        let items = config
            .array("methods")?
            .ok_or_else(|| config.missing("methods"))?;
        if items.is_empty() {
            return Err(
                "methods: must not be empty (every call would be \"Method not found\")".into(),
            );
        }
        let mut methods = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let method = Table::of(item, &format!("methods[{i}]"))?;
            method.only(&["name", "result", "error"])?;
            let name = method.string("name")?;
            let answer = match (method.get("result"), method.get("error")) {
                (Some(_), None) => {
                    Answer::Result(method.required_template("result", Scope::REQUEST)?)
                }
                (None, Some(error)) => Answer::Error(parse_error(error, &method.path("error"))?),
                _ => {
                    return Err(format!(
                        "methods[{i}]: set exactly one of `result` and `error`"
                    ));
                }
            };
            if methods.insert(name.to_owned(), answer).is_some() {
                return Err(format!(
                    "methods[{i}].name: {name:?} is already defined above"
                ));
            }
        }
        Ok(Methods { methods })
    }

    /// The response to a client message (a request, a notification or a
    /// batch of them); `None` when nothing is to be sent back.
    pub fn answer(&self, payload: &[u8], base: &Ctx) -> Option<Value> {
        let Ok(request) = serde_json::from_slice::<Value>(payload) else {
            return Some(error(&Value::Null, PARSE_ERROR, "Parse error"));
        };
        match &request {
            Value::Array(batch) if batch.is_empty() => {
                Some(error(&Value::Null, INVALID_REQUEST, "Invalid Request"))
            }
            Value::Array(batch) => {
                let responses: Vec<Value> =
                    batch.iter().filter_map(|r| self.one(r, base)).collect();
                // A batch of notifications gets nothing at all, not `[]`.
                (!responses.is_empty()).then_some(Value::Array(responses))
            }
            single => self.one(single, base),
        }
    }

    /// The response to one request object; `None` for a notification.
    fn one(&self, request: &Value, base: &Ctx) -> Option<Value> {
        let Some(fields) = request.as_object() else {
            return Some(error(&Value::Null, INVALID_REQUEST, "Invalid Request"));
        };
        let id = fields.get("id");
        let id_valid = matches!(
            id,
            None | Some(Value::Null | Value::String(_) | Value::Number(_))
        );
        let params = fields.get("params");
        let method = fields.get("method").and_then(Value::as_str);
        let valid = fields.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && method.is_some()
            && matches!(params, None | Some(Value::Array(_) | Value::Object(_)))
            && id_valid;
        let (Some(method), true) = (method, valid) else {
            // An invalid request is answered even without an id; its id is
            // echoed only if it could be read.
            let id = id.filter(|_| id_valid).unwrap_or(&Value::Null);
            return Some(error(id, INVALID_REQUEST, "Invalid Request"));
        };
        // No id: a notification, which is never answered, not even an error.
        let id = id?;
        let ctx = Ctx {
            message: Some(request),
            params,
            ..*base
        };
        Some(match self.methods.get(method) {
            Some(Answer::Result(result)) => {
                json!({ "jsonrpc": "2.0", "result": result.render(&ctx), "id": id })
            }
            Some(Answer::Error(err)) => {
                json!({ "jsonrpc": "2.0", "error": err.render(&ctx), "id": id })
            }
            None => error(id, METHOD_NOT_FOUND, "Method not found"),
        })
    }
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id })
}

/// A configured error object: an integer `code`, a string `message`, any `data`.
fn parse_error(value: &Value, path: &str) -> Result<Template, String> {
    let error = Table::of(value, path)?;
    error.only(&["code", "message", "data"])?;
    let code = error.required("code")?;
    if code.as_i64().is_none() {
        return Err(format!(
            "{}: must be an integer (got {code})",
            error.path("code")
        ));
    }
    let message = error.required("message")?;
    if !message.is_string() {
        return Err(format!(
            "{}: must be a string (got {})",
            error.path("message"),
            describe(message)
        ));
    }
    Template::compile(value, path, Scope::REQUEST)
}
