//! `kind = "pattern"`: rules that match fields of a JSON message (and,
//! with `when`, the connection's state) and answer with a template,
//! optionally followed by a delayed second answer, changing the state on
//! the way.

use serde_json::{Map, Number, Value};
use sluice_sdk::Action;

use crate::condition::Condition;
use crate::placeholder::Scope;
use crate::state::{self, Updates};
use crate::table::{Table, describe};
use crate::template::{Ctx, Template};

pub struct Rules {
    rules: Vec<Rule>,
    no_match: Option<Template>,
    /// Where each connection's state starts.
    pub initial: Map<String, Value>,
}

struct Rule {
    pattern: Map<String, Value>,
    /// Must also hold for the rule to answer.
    when: Option<Condition>,
    updates: Updates,
    response: Template,
    /// A second answer after `delay_ms`: `(delay_ms, response)`.
    then: Option<(u32, Template)>,
}

impl Rules {
    pub fn parse(config: &Table) -> Result<Self, String> {
        let items = config
            .array("rules")?
            .ok_or_else(|| config.missing("rules"))?;
        if items.is_empty() {
            return Err("rules: must not be empty (add a rule, or use kind = \"static\")".into());
        }
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, item)| Rule::parse(&Table::of(item, &format!("rules[{i}]"))?))
            .collect::<Result<_, String>>()?;
        Ok(Rules {
            rules,
            no_match: config.template("no_match", Scope::STATEFUL)?,
            initial: state::initial(config)?,
        })
    }

    /// The answer to `message` (its JSON, or its text as a string) on a
    /// connection in `state`: the first rule that matches it and whose
    /// `when` holds changes the state and answers, else `no_match`, else
    /// nothing.
    pub fn answer(
        &self,
        message: Option<&Value>,
        state: &mut Map<String, Value>,
        ctx: &Ctx,
    ) -> Vec<Action> {
        let fields = match message {
            Some(Value::Object(fields)) => Some(fields),
            _ => None,
        };
        let rule = fields.and_then(|f| {
            self.rules.iter().find(|r| {
                matches(&r.pattern, f) && r.when.as_ref().is_none_or(|c| c.holds(state, message))
            })
        });
        if let Some(rule) = rule {
            rule.updates.apply(state, ctx);
        }
        let current = Value::Object(state.clone());
        let ctx = &Ctx {
            state: Some(&current),
            ..*ctx
        };
        let Some(rule) = rule else {
            return self
                .no_match
                .iter()
                .map(|t| Action::Reply(t.message(ctx)))
                .collect();
        };
        let mut actions = vec![Action::Reply(rule.response.message(ctx))];
        if let Some((delay_ms, response)) = &rule.then {
            // Rendered now (the message travels with the action), but dated
            // when it is due.
            let later = Ctx {
                now_ms: ctx.now_ms.saturating_add(u64::from(*delay_ms)),
                ..*ctx
            };
            actions.push(Action::ReplyLater((*delay_ms, response.message(&later))));
        }
        actions
    }
}

impl Rule {
    fn parse(rule: &Table) -> Result<Self, String> {
        let mut keys = vec!["match", "when", "response", "then"];
        keys.extend(state::KEYS);
        rule.only(&keys)?;
        let pattern = match rule.required("match")? {
            Value::Object(fields) => fields.clone(),
            other => {
                return Err(format!(
                    "{}: must be a table of fields to match (got {})",
                    rule.path("match"),
                    describe(other)
                ));
            }
        };
        let when = match rule.get("when") {
            None => None,
            Some(Value::String(text)) => {
                Some(Condition::parse(text).map_err(|e| format!("{}: {e}", rule.path("when")))?)
            }
            Some(other) => {
                return Err(format!(
                    "{}: must be a condition in a string, e.g. \"state.authenticated\" (got {})",
                    rule.path("when"),
                    describe(other)
                ));
            }
        };
        let updates = Updates::parse(rule)?;
        let response = rule.required_template("response", Scope::STATEFUL)?;
        let then = match rule.get("then") {
            None => None,
            Some(then) => {
                let then = Table::of(then, &rule.path("then"))?;
                then.only(&["delay_ms", "response"])?;
                let delay_ms = then
                    .uint("delay_ms", 0, u64::from(u32::MAX))?
                    .ok_or_else(|| then.missing("delay_ms"))?;
                let response = then.required_template("response", Scope::STATEFUL)?;
                // In range: checked against u32::MAX just above.
                Some((delay_ms as u32, response))
            }
        };
        Ok(Rule {
            pattern,
            when,
            updates,
            response,
            then,
        })
    }
}

/// Whether every field of `pattern` matches the message's field of that name.
fn matches(pattern: &Map<String, Value>, message: &Map<String, Value>) -> bool {
    pattern
        .iter()
        .all(|(key, want)| message.get(key).is_some_and(|got| value_matches(want, got)))
}

/// `"*"` matches any value; a table matches an object having (at least) its
/// fields; arrays match element by element; numbers by value (`1` = `1.0`).
fn value_matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::String(s), _) if s == "*" => true,
        (Value::Object(want), Value::Object(got)) => matches(want, got),
        (Value::Array(want), Value::Array(got)) => {
            want.len() == got.len() && want.iter().zip(got).all(|(w, g)| value_matches(w, g))
        }
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        _ => want == got,
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    if a.is_f64() || b.is_f64() {
        a.as_f64() == b.as_f64()
    } else {
        a == b
    }
}
