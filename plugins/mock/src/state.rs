//! Per-connection state of pattern mocks: where it starts
//! (`state = { initial = { ... } }`) and what a rule changes (`set`,
//! `append`, `incr`, applied in that order before its response renders).

use serde_json::{Map, Value};

use crate::placeholder::Scope;
use crate::table::{Table, describe};
use crate::template::{Ctx, Template};

/// Where every connection's state starts: a JSON object.
pub fn initial(config: &Table) -> Result<Map<String, Value>, String> {
    let Some(state) = config.get("state") else {
        return Ok(Map::new());
    };
    let state = Table::of(state, &config.path("state"))?;
    state.only(&["initial"])?;
    match state.get("initial") {
        None => Ok(Map::new()),
        Some(Value::Object(fields)) => Ok(fields.clone()),
        Some(other) => Err(format!(
            "{}: must be a table of fields (got {})",
            state.path("initial"),
            describe(other)
        )),
    }
}

/// A rule's changes to the state; each names a top-level field.
#[derive(Default)]
pub struct Updates {
    /// `set = { field = <template> }`: the field becomes the value.
    set: Vec<(String, Template)>,
    /// `append = { field = <template> }`: the value is pushed onto the
    /// field's array (a field that is not an array becomes one).
    append: Vec<(String, Template)>,
    /// `incr = { field = 1 }`: the number is added to the field (missing or
    /// not a number counts as 0).
    incr: Vec<(String, f64)>,
}

/// The keys of a rule that change the state.
pub const KEYS: [&str; 3] = ["set", "append", "incr"];

impl Updates {
    pub fn parse(rule: &Table) -> Result<Self, String> {
        let templates = |key: &str| -> Result<Vec<(String, Template)>, String> {
            let Some(value) = rule.get(key) else {
                return Ok(Vec::new());
            };
            let table = Table::of(value, &rule.path(key))?;
            table
                .keys()
                .map(|field| {
                    let template = table.required_template(field, Scope::STATEFUL)?;
                    Ok((field.to_owned(), template))
                })
                .collect()
        };
        let incr = match rule.get("incr") {
            None => Vec::new(),
            Some(value) => {
                let table = Table::of(value, &rule.path("incr"))?;
                table
                    .keys()
                    .map(|field| match table.get(field).and_then(Value::as_f64) {
                        Some(by) => Ok((field.to_owned(), by)),
                        None => Err(format!("{}: must be a number", table.path(field))),
                    })
                    .collect::<Result<_, String>>()?
            }
        };
        Ok(Updates {
            set: templates("set")?,
            append: templates("append")?,
            incr,
        })
    }

    /// Applies the changes to `state`; values render against the state as
    /// it was before them.
    pub fn apply(&self, state: &mut Map<String, Value>, ctx: &Ctx) {
        if self.set.is_empty() && self.append.is_empty() && self.incr.is_empty() {
            return;
        }
        let before = Value::Object(state.clone());
        let ctx = Ctx {
            state: Some(&before),
            ..*ctx
        };
        for (field, template) in &self.set {
            state.insert(field.clone(), template.render(&ctx));
        }
        for (field, template) in &self.append {
            let value = template.render(&ctx);
            match state.get_mut(field) {
                Some(Value::Array(items)) => items.push(value),
                _ => {
                    state.insert(field.clone(), Value::Array(vec![value]));
                }
            }
        }
        for (field, by) in &self.incr {
            let now = state.get(field).and_then(Value::as_f64).unwrap_or(0.0) + by;
            state.insert(field.clone(), number(now));
        }
    }
}

/// A whole number stays an integer in JSON (`3`, not `3.0`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}
