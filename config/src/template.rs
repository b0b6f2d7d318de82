//! Route templates: the WebSocket paths a pipeline serves, such as
//! `/{channel}` or `/tenants/{tenant}/feeds/{feed}`.
//!
//! A template starts with `/` and is made of segments separated by `/`; each
//! segment is either literal text or one parameter `{name}` (names match
//! `[a-z_][a-z0-9_]*`, each at most once). `/` alone serves the root.
//! A parameter may have a type, `{id:int}` or `{id:uuid}` (`{name:str}`, any
//! non-empty text, is the default): a path whose value does not fit does not
//! match, so the client gets 404.

use std::fmt;
use std::str::FromStr;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// Matches a non-empty segment of the type and captures it under this name.
    Param(String, ParamType),
}

/// What a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any non-empty text (`{name}` or `{name:str}`).
    Str,
    /// An integer: optional `-`, then ASCII digits (`{name:int}`).
    Int,
    /// A UUID in its 8-4-4-4-12 hex form (`{name:uuid}`).
    Uuid,
}

impl ParamType {
    fn accepts(self, value: &str) -> bool {
        match self {
            ParamType::Str => !value.is_empty(),
            ParamType::Int => {
                let digits = value.strip_prefix('-').unwrap_or(value);
                !digits.is_empty()
                    && digits.len() <= 19
                    && digits.bytes().all(|b| b.is_ascii_digit())
            }
            ParamType::Uuid => {
                let groups: Vec<&str> = value.split('-').collect();
                groups.len() == 5
                    && groups
                        .iter()
                        .zip([8, 4, 4, 4, 12])
                        .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
            }
        }
    }
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not begin with `/`.
    #[error("{0:?} must start with `/`")]
    NoLeadingSlash(String),
    /// Two slashes in a row, or a trailing slash.
    #[error("{0:?} has an empty segment (`//` or a trailing `/`)")]
    EmptySegment(String),
    /// A `.` or `..` segment (also percent-encoded): served literally, it
    /// would let a template reach outside its tenant's prefix.
    #[error("{0:?} has a `.` or `..` segment")]
    DotSegment(String),
    /// A `{` without its `}`.
    #[error("{0:?} has a `{{` without a matching `}}`")]
    Unclosed(String),
    /// A `}` without its `{`.
    #[error("{0:?} has a `}}` without a matching `{{`")]
    Unopened(String),
    /// A parameter sharing its segment with other text, such as `/a{b}`.
    #[error(
        "segment {0:?} mixes text and a parameter; a parameter must be a whole segment like `/{{name}}`"
    )]
    Mixed(String),
    /// A parameter type other than `str`, `int` or `uuid`.
    #[error("parameter type {0:?} is not one of `str`, `int`, `uuid`")]
    BadParamType(String),
    /// A parameter name outside `[a-z_][a-z0-9_]*`.
    #[error("parameter name {0:?} must match `[a-z_][a-z0-9_]*`")]
    BadParamName(String),
    /// The same parameter twice.
    #[error("parameter `{0}` appears more than once")]
    DuplicateParam(String),
    /// A character that cannot be part of a path (`?`, `#`, whitespace, controls).
    #[error("{0:?} contains {1:?}, which cannot appear in a path")]
    BadCharacter(String, char),
}

/// A parsed route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    raw: String,
    segments: Vec<Segment>,
}

impl RouteTemplate {
    /// Parses a template.
    pub fn parse(raw: &str) -> Result<Self, TemplateError> {
        let rest = raw
            .strip_prefix('/')
            .ok_or_else(|| TemplateError::NoLeadingSlash(raw.to_owned()))?;
        if let Some(bad) = raw
            .chars()
            .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
        {
            return Err(TemplateError::BadCharacter(raw.to_owned(), bad));
        }
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(Self {
                raw: raw.to_owned(),
                segments,
            });
        }
        for text in rest.split('/') {
            if text.is_empty() {
                return Err(TemplateError::EmptySegment(raw.to_owned()));
            }
            if is_dot_segment(text) {
                return Err(TemplateError::DotSegment(raw.to_owned()));
            }
            let segment = parse_segment(raw, text)?;
            if let Segment::Param(name, _) = &segment
                && segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n, _) if n == name))
            {
                return Err(TemplateError::DuplicateParam(name.clone()));
            }
            segments.push(segment);
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Its segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The parameter names, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name, _) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Matches a request path (without its query string). On a match,
    /// returns each parameter with its percent-decoded value, in template
    /// order; `None` if the path does not fit (or a value is not UTF-8).
    pub fn match_path(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        if self.segments.is_empty() {
            return rest.is_empty().then(Vec::new);
        }
        let mut parts = rest.split('/');
        let mut params = Vec::new();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(text) if text == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name, kind) => {
                    let value = percent_decode(part)?;
                    if !kind.accepts(&value) {
                        return None;
                    }
                    params.push((name.clone(), value));
                }
            }
        }
        parts.next().is_none().then_some(params)
    }
}

/// A path segment that means "this" or "the parent" (`.`, `..`, either
/// percent-encoded): never part of a template, and refused in requests.
pub fn is_dot_segment(segment: &str) -> bool {
    matches!(
        segment.replace("%2e", ".").replace("%2E", ".").as_str(),
        "." | ".."
    )
}

fn parse_segment(raw: &str, text: &str) -> Result<Segment, TemplateError> {
    let opens = text.matches('{').count();
    let closes = text.matches('}').count();
    if opens == 0 && closes == 0 {
        return Ok(Segment::Literal(text.to_owned()));
    }
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
        && opens == 1
        && closes == 1
    {
        let (name, kind) = inner.split_once(':').unwrap_or((inner, "str"));
        if !is_param_name(name) {
            return Err(TemplateError::BadParamName(name.to_owned()));
        }
        let kind = match kind {
            "str" => ParamType::Str,
            "int" => ParamType::Int,
            "uuid" => ParamType::Uuid,
            other => return Err(TemplateError::BadParamType(other.to_owned())),
        };
        return Ok(Segment::Param(name.to_owned(), kind));
    }
    // Find the first unbalanced brace, reading left to right.
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Err(TemplateError::Unopened(raw.to_owned())),
            '}' => depth -= 1,
            _ => {}
        }
    }
    if depth > 0 {
        return Err(TemplateError::Unclosed(raw.to_owned()));
    }
    Err(TemplateError::Mixed(text.to_owned()))
}

fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl FromStr for RouteTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RouteTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        RouteTemplate::parse(template).unwrap().match_path(path)
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn parses_literals_and_params() {
        let t = RouteTemplate::parse("/tenants/{tenant}/feeds/{feed_2}").unwrap();
        assert_eq!(t.params().collect::<Vec<_>>(), ["tenant", "feed_2"]);
        assert_eq!(t.segments()[0], Segment::Literal("tenants".into()));
        assert_eq!(t.to_string(), "/tenants/{tenant}/feeds/{feed_2}");
        assert!(RouteTemplate::parse("/").unwrap().segments().is_empty());
    }

    #[test]
    fn rejects_bad_templates() {
        use TemplateError::*;
        let err = |t: &str| RouteTemplate::parse(t).unwrap_err();
        assert_eq!(err("{channel}"), NoLeadingSlash("{channel}".into()));
        assert_eq!(err("/a//b"), EmptySegment("/a//b".into()));
        assert_eq!(err("/a/"), EmptySegment("/a/".into()));
        assert_eq!(
            err("/acme/../globex/{c}"),
            DotSegment("/acme/../globex/{c}".into())
        );
        assert_eq!(err("/a/./b"), DotSegment("/a/./b".into()));
        assert_eq!(err("/a/%2E%2e"), DotSegment("/a/%2E%2e".into()));
        assert_eq!(err("/{channel"), Unclosed("/{channel".into()));
        assert_eq!(err("/channel}"), Unopened("/channel}".into()));
        assert_eq!(err("/}{"), Unopened("/}{".into()));
        assert_eq!(err("/{{a}}"), Mixed("{{a}}".into()));
        assert_eq!(err("/ws-{channel}"), Mixed("ws-{channel}".into()));
        assert_eq!(err("/{Channel}"), BadParamName("Channel".into()));
        assert_eq!(err("/{1a}"), BadParamName("1a".into()));
        assert_eq!(err("/{}"), BadParamName("".into()));
        assert_eq!(err("/{a}/{a}"), DuplicateParam("a".into()));
        assert_eq!(err("/a?b"), BadCharacter("/a?b".into(), '?'));
        assert_eq!(err("/a b"), BadCharacter("/a b".into(), ' '));
    }

    #[test]
    fn matches_paths() {
        assert_eq!(
            params("/{channel}", "/channel1"),
            pairs(&[("channel", "channel1")])
        );
        assert_eq!(
            params("/t/{tenant}/{feed}", "/t/acme/prices"),
            pairs(&[("tenant", "acme"), ("feed", "prices")])
        );
        assert_eq!(params("/ws", "/ws"), pairs(&[]));
        assert_eq!(params("/", "/"), pairs(&[]));
        assert_eq!(params("/{channel}", "/a%20b"), pairs(&[("channel", "a b")]));
    }

    #[test]
    fn rejects_paths_that_do_not_fit() {
        assert_eq!(params("/{channel}", "/"), None);
        assert_eq!(params("/{channel}", "/a/b"), None);
        assert_eq!(params("/{channel}", "/a/"), None);
        assert_eq!(params("/{channel}", "channel1"), None);
        assert_eq!(params("/ws", "/wss"), None);
        assert_eq!(params("/", "/x"), None);
        assert_eq!(params("/t/{x}", "/u/1"), None);
        assert_eq!(params("/{channel}", "/bad%zz"), None);
        assert_eq!(params("/{channel}", "/bad%ff"), None);
        assert_eq!(params("/{channel}", "/cut%2"), None);
        assert_eq!(params("/{channel}", "/sign%+1"), None);
    }

    #[test]
    fn typed_params_match_only_values_of_their_type() {
        assert_eq!(
            params("/orders/{id:int}", "/orders/42"),
            pairs(&[("id", "42")])
        );
        assert_eq!(
            params("/orders/{id:int}", "/orders/-7"),
            pairs(&[("id", "-7")])
        );
        assert_eq!(params("/orders/{id:int}", "/orders/4x2"), None);
        let uuid = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(
            params("/s/{id:uuid}", &format!("/s/{uuid}")),
            pairs(&[("id", uuid)])
        );
        assert_eq!(params("/s/{id:uuid}", "/s/123e4567"), None);
        assert_eq!(params("/{c:str}", "/x"), pairs(&[("c", "x")]));
        assert_eq!(
            RouteTemplate::parse("/{id:float}"),
            Err(TemplateError::BadParamType("float".into()))
        );
        assert_eq!(
            RouteTemplate::parse("/{a:int}/{a}"),
            Err(TemplateError::DuplicateParam("a".into()))
        );
    }
}
