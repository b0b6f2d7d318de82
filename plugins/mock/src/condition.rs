//! `when` conditions of pattern rules: a small expression over the
//! connection's state and the message, parsed at load time.
//!
//! ```text
//! expr    := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := operand ( ("==" | "!=" | "<" | "<=" | ">" | ">=") operand )?
//! operand := "(" expr ")" | state.<path> | message.<path> | literal
//! literal := number | "text" | 'text' | true | false | null
//! ```
//!
//! Truth is JavaScript's, as in the seed's scripts: `false`, `null`, `0`,
//! `""` and a missing field are false; everything else (`[]` and `{}`
//! included) is true. `==` compares JSON values (numbers by value); the
//! ordering operators compare two numbers or two strings, and are false
//! otherwise.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::placeholder::lookup;

#[derive(Debug)]
pub enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Compare(Box<Condition>, Op, Box<Condition>),
    State(Vec<String>),
    Message(Vec<String>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Condition {
    /// Parses `text`; errors say what was expected and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let condition = parser.or()?;
        match parser.peek() {
            None => Ok(condition),
            Some(token) => Err(format!("unexpected {} in {text:?}", token.shown())),
        }
    }

    /// Whether it holds for this connection's `state` and `message`.
    pub fn holds(&self, state: &Map<String, Value>, message: Option<&Value>) -> bool {
        truthy(&self.value(state, message))
    }

    fn value(&self, state: &Map<String, Value>, message: Option<&Value>) -> Value {
        match self {
            Condition::Or(parts) => Value::Bool(parts.iter().any(|c| c.holds(state, message))),
            Condition::And(parts) => Value::Bool(parts.iter().all(|c| c.holds(state, message))),
            Condition::Not(inner) => Value::Bool(!inner.holds(state, message)),
            Condition::Compare(left, op, right) => {
                let (a, b) = (left.value(state, message), right.value(state, message));
                Value::Bool(compare(&a, *op, &b))
            }
            Condition::State(path) => match path.split_first() {
                None => Value::Object(state.clone()),
                Some((field, rest)) => lookup(state.get(field), rest),
            },
            Condition::Message(path) => lookup(message, path),
            Condition::Literal(value) => value.clone(),
        }
    }
}

/// JavaScript's truth, which the seed's `when` strings are written in.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0 && !x.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn compare(a: &Value, op: Op, b: &Value) -> bool {
    let equal = || match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    };
    let order = || match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        Op::Eq => equal(),
        Op::Ne => !equal(),
        Op::Lt => order() == Some(Ordering::Less),
        Op::Le => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => order() == Some(Ordering::Greater),
        Op::Ge => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Literal(Value),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Token {
    fn shown(&self) -> String {
        match self {
            Token::Word(w) => format!("`{w}`"),
            Token::Literal(v) => format!("`{v}`"),
            Token::Op(op) => format!("`{op:?}`"),
            Token::And => "`&&`".into(),
            Token::Or => "`||`".into(),
            Token::Not => "`!`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let (token, width) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('&', Some('&')) => (Token::And, 2),
            ('|', Some('|')) => (Token::Or, 2),
            ('=', Some('=')) => (Token::Op(Op::Eq), 2),
            ('!', Some('=')) => (Token::Op(Op::Ne), 2),
            ('<', Some('=')) => (Token::Op(Op::Le), 2),
            ('>', Some('=')) => (Token::Op(Op::Ge), 2),
            ('<', _) => (Token::Op(Op::Lt), 1),
            ('>', _) => (Token::Op(Op::Gt), 1),
            ('!', _) => (Token::Not, 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('"' | '\'', _) => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or_else(|| format!("a string without its closing {c} in {text:?}"))?;
                let inner: String = chars[i + 1..i + 1 + end].iter().collect();
                (Token::Literal(Value::String(inner)), end + 2)
            }
            _ => {
                let end = chars[i..]
                    .iter()
                    .position(|&w| !(w.is_alphanumeric() || matches!(w, '_' | '.' | '-')))
                    .unwrap_or(chars.len() - i);
                if end == 0 {
                    return Err(format!("unexpected `{c}` in {text:?}"));
                }
                let word: String = chars[i..i + end].iter().collect();
                (word_token(word), end)
            }
        };
        tokens.push(token);
        i += width;
    }
    Ok(tokens)
}

/// A number, `true`, `false` or `null` is a literal; anything else a path.
fn word_token(word: String) -> Token {
    match serde_json::from_str::<Value>(&word) {
        Ok(value @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Token::Literal(value),
        _ => Token::Word(word),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek() == Some(token);
        self.at += usize::from(found);
        found
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut parts = vec![self.and()?];
        while self.eat(&Token::Or) {
            parts.push(self.and()?);
        }
        Ok(one_or(parts, Condition::Or))
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut parts = vec![self.unary()?];
        while self.eat(&Token::And) {
            parts.push(self.unary()?);
        }
        Ok(one_or(parts, Condition::And))
    }

    fn unary(&mut self) -> Result<Condition, String> {
        if self.eat(&Token::Not) {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        let left = self.operand()?;
        let Some(Token::Op(op)) = self.peek().cloned() else {
            return Ok(left);
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Condition::Compare(Box::new(left), op, Box::new(right)))
    }

    fn operand(&mut self) -> Result<Condition, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("the condition ends where a value was expected")?;
        self.at += 1;
        match token {
            Token::Open => {
                let inner = self.or()?;
                if self.eat(&Token::Close) {
                    Ok(inner)
                } else {
                    Err("a `(` without its `)`".into())
                }
            }
            Token::Literal(value) => Ok(Condition::Literal(value)),
            Token::Word(word) => path(&word),
            other => Err(format!("expected a value, got {}", other.shown())),
        }
    }
}

fn one_or(mut parts: Vec<Condition>, many: fn(Vec<Condition>) -> Condition) -> Condition {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        many(parts)
    }
}

/// `state.a.b` or `message.x`: the roots a condition can read.
fn path(word: &str) -> Result<Condition, String> {
    let (root, rest) = word.split_once('.').unwrap_or((word, ""));
    let segments: Vec<String> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('.').map(str::to_owned).collect()
    };
    if segments.iter().any(String::is_empty) {
        return Err(format!(
            "`{word}`: a path is dot-separated names, e.g. `state.user.id`"
        ));
    }
    match root {
        "state" => Ok(Condition::State(segments)),
        "message" => Ok(Condition::Message(segments)),
        _ => Err(format!(
            "`{word}`: a condition reads `state.<path>` or `message.<path>`, or a literal (a number, a quoted string, true, false, null)"
        )),
    }
}
