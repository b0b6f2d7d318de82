//! `[[tests]]`: each must name a declared pipeline (or the file must have
//! only one) and give an input that pipeline can take. What the tests
//! expect is only checked by running them (`sluice test`).

use serde_spanned::Spanned;
use toml::de::DeValue;

use super::diagnostics::{Problem, Report};
use super::fixture::Input;
use super::model::{Pipeline, PipelineTest};
use super::names::Names;
use super::parse::Entry;
use super::schema::TestDef;
use super::template::Segment;

/// The checked tests, in file order.
pub(super) fn check(
    entries: &[Entry<'_, TestDef>],
    pipelines: &[Pipeline],
    names: &Names,
    report: &mut Report<'_>,
) -> Vec<PipelineTest> {
    let mut tests: Vec<PipelineTest> = Vec::new();
    for entry in entries {
        let Some(case) = &entry.parsed else { continue };
        let raw = entry.raw.get_ref();
        let span_of = |key: &str| raw.get(key).map(Spanned::span);
        let here = span_of("name").unwrap_or_else(|| entry.raw.span());
        let position = report.position(entry.raw.span().start);
        if let Some(first) = tests.iter().find(|t| t.case.name == case.name) {
            let message = format!(
                "duplicate test name `{}` (first at {})",
                case.name, first.position
            );
            report.error(here.clone(), Problem::Invalid(message));
            continue;
        }
        let name = match &case.pipeline {
            Some(name) => {
                let named = Spanned::new(span_of("pipeline").unwrap_or(here.clone()), name.clone());
                if !names.resolve(&named, report) {
                    continue;
                }
                name.clone()
            }
            None if names.count() == 1 => names.first().unwrap_or_default().to_owned(),
            None => {
                let message = format!(
                    "test `{}` names no pipeline and the file has several: add `pipeline = \"...\"` (one of {})",
                    case.name,
                    names.known()
                );
                report.error(here.clone(), Problem::Invalid(message));
                continue;
            }
        };
        // A pipeline too broken to build has been reported already.
        let Some(pipeline) = pipelines.iter().find(|p| p.name == name) else {
            continue;
        };
        if let Some((key, reason)) = unfit(&case.input, pipeline, raw) {
            let span = span_of(key).unwrap_or(here.clone());
            report.error(
                span,
                Problem::Invalid(format!("test `{}`: {reason}", case.name)),
            );
            continue;
        }
        tests.push(PipelineTest {
            case: case.clone(),
            pipeline: name,
            position,
        });
    }
    tests
}

/// Why `input` cannot run through `pipeline`, and the key to point at.
fn unfit(input: &Input, pipeline: &Pipeline, raw: &DeValue<'_>) -> Option<(&'static str, String)> {
    let name = &pipeline.name;
    match input {
        Input::Record(_) if pipeline.source.is_none() => Some((
            "record",
            format!("pipeline `{name}` has no `[pipelines.source]`, so it gets no records"),
        )),
        Input::Record(_) => None,
        Input::Client(client) => {
            let (handshake, connection) = (&client.handshake, &client.connection);
            let (messages, close) = (&client.messages, &client.close);
            if connection.is_some() {
                return Some((
                    "connection",
                    "a pipeline test takes its connection from its `handshake`".into(),
                ));
            }
            let has_params = raw
                .get("handshake")
                .and_then(|h| h.get_ref().get("params"))
                .is_some();
            if has_params {
                return Some((
                    "handshake",
                    "`params` come from the pipeline's path template; leave them out".into(),
                ));
            }
            let takes_messages =
                pipeline.serving.handler.is_some() || pipeline.serving.sink.is_some();
            if !messages.is_empty() && !takes_messages {
                let key = if raw.get("message").is_some() {
                    "message"
                } else {
                    "messages"
                };
                return Some((
                    key,
                    format!(
                        "pipeline `{name}` has no `[pipelines.handler]` or `[pipelines.sink]` to take it"
                    ),
                ));
            }
            if close.is_some() && pipeline.serving.handler.is_none() {
                return Some((
                    "close",
                    format!("pipeline `{name}` has no `[pipelines.handler]` to see the close"),
                ));
            }
            let templated = pipeline
                .serving
                .path
                .segments()
                .iter()
                .any(|s| matches!(s, Segment::Param(..)));
            if handshake.is_none() && templated {
                return Some((
                    "name",
                    format!(
                        "pipeline `{name}`'s path `{}` has parameters: give a `handshake = {{ path = \"...\" }}`",
                        pipeline.serving.path
                    ),
                ));
            }
            None
        }
    }
}
