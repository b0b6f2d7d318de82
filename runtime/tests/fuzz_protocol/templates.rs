//! Route templates and path matching fuzzed without sockets.

use sluice_runtime::config::{ParamType, RouteTemplate, Segment};

use crate::harness::Rng;

pub(super) fn template(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "ws",
        "tenants",
        "x%20y",
        "ü",
        "{channel}",
        "{id:int}",
        "{u:uuid}",
        "{name:str}",
        "{_x9}",
        "{Bad}",
        "{}",
        "{a:float}",
        "{{x}}",
        "a{b}",
        "}",
        "{",
        "?",
        "#",
        " ",
        "\u{0}",
        "%",
        "{a}{b}",
        "{a:}",
        "{:int}",
    ];
    let mut out = String::new();
    if rng.chance(0.95) {
        out.push('/');
    }
    let n = rng.range(0, 5);
    for k in 0..n {
        if k > 0 {
            out.push('/');
            if rng.chance(0.03) {
                out.push('/');
            }
        }
        out.push_str(rng.pick::<&str>(PIECES));
    }
    if rng.chance(0.03) {
        out.push('/');
    }
    out
}

fn encode(rng: &mut Rng, value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else if rng.chance(0.5) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Parsing never panics; a parsed template prints back as itself,
/// matches a path built from it (values percent-encoded, decoded back
/// the same), and matching junk never panics.
pub(super) fn check_template(rng: &mut Rng, text: &str) -> Result<String, String> {
    let template = match RouteTemplate::parse(text) {
        Ok(template) => template,
        Err(error) => {
            let _ = error.to_string();
            return Ok("rejected".into());
        }
    };
    if RouteTemplate::parse(template.as_str()).as_ref() != Ok(&template) {
        return Err(format!("{text:?} does not parse back to itself"));
    }
    let mut path = String::new();
    let mut expected = Vec::new();
    for segment in template.segments() {
        path.push('/');
        match segment {
            Segment::Literal(literal) => path.push_str(literal),
            Segment::Param(name, kind) => {
                let value = match kind {
                    ParamType::Int => {
                        let digits = rng.range(1, 19);
                        let sign = if rng.chance(0.3) { "-" } else { "" };
                        let number: String = (0..digits)
                            .map(|_| char::from(b'0' + rng.below(10) as u8))
                            .collect();
                        format!("{sign}{number}")
                    }
                    ParamType::Uuid => [8, 4, 4, 4, 12]
                        .iter()
                        .map(|n| {
                            (0..*n)
                                .map(|_| *rng.pick(&['0', '9', 'a', 'f', 'A', 'F']))
                                .collect::<String>()
                        })
                        .collect::<Vec<_>>()
                        .join("-"),
                    ParamType::Str => {
                        let n = rng.range(1, 8);
                        (0..n)
                            .map(|_| *rng.pick(&["a", "/", "%", " ", "?", "é", "\u{0}", "𝄞"]))
                            .collect()
                    }
                };
                path.push_str(&encode(rng, &value));
                expected.push((name.clone(), value));
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    match template.match_path(&path) {
        Some(params) if params == expected => {}
        other => {
            return Err(format!(
                "{text:?} does not match {path:?}: got {other:?}, expected {expected:?}"
            ));
        }
    }
    let count = template.params().count();
    for _ in 0..4 {
        let mut junk = path.clone().into_bytes();
        let at = rng.range(0, junk.len());
        let piece = *rng.pick::<&[u8]>(&[&b"/"[..], b"%", b"%f", b"%zz", b"%ff", b"x", b"//"]);
        junk.splice(at..at, piece.iter().copied());
        let junk = String::from_utf8_lossy(&junk).into_owned();
        if let Some(params) = template.match_path(&junk)
            && params.len() != count
        {
            return Err(format!("{junk:?} matched {text:?} with {params:?}"));
        }
    }
    Ok(format!("parsed, {count} parameter(s)"))
}
