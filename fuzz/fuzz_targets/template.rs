//! Path templates (`path = "/{channel}"`): input is a template, a newline
//! and a request path. A template that parses has no empty or dot
//! segment and keeps its text; a path built from it by filling each
//! parameter with a value of its type matches it, giving those values
//! back; and any path that matches yields one value per parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_config::{ParamType, RouteTemplate, Segment, is_dot_segment};

fn sample(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Int => "-42",
        ParamType::Uuid => "0f8fad5b-d9cb-469f-a165-70867728950e",
        _ => "value",
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(input) = std::str::from_utf8(input) else {
        return;
    };
    let (raw, path) = input.split_once('\n').unwrap_or((input, "/"));
    let Ok(template) = RouteTemplate::parse(raw) else {
        return;
    };
    assert_eq!(template.as_str(), raw);
    let mut built = String::new();
    let mut expected = Vec::new();
    for segment in template.segments() {
        built.push('/');
        match segment {
            Segment::Literal(text) => {
                assert!(
                    !text.is_empty() && !is_dot_segment(text),
                    "segment {text:?} in {raw:?}"
                );
                built.push_str(text);
            }
            Segment::Param(name, kind) => {
                built.push_str(sample(*kind));
                expected.push((name.clone(), sample(*kind).to_owned()));
            }
        }
    }
    if built.is_empty() {
        built.push('/');
    }
    assert_eq!(
        template.match_path(&built),
        Some(expected),
        "{raw:?} vs {built:?}"
    );
    if let Some(params) = template.match_path(path) {
        assert_eq!(params.len(), template.params().count());
    }
});
