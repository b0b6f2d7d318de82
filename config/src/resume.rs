//! Checks of `[pipelines.source.resume]`: keys that can sign, sane bounds,
//! and a source every process reads whole.

use super::bounds;
use super::diagnostics::{Problem, Report};
use super::model::{Resume, Secret};
use super::schema::{ResumeDef, SourceDef, SourceMode};

/// Shortest secret accepted: 32 characters, 256 bits of a random key.
const MIN_SECRET: usize = 32;

/// The checked resume settings of `src`, if any (`Err(())`: reported).
pub(super) fn check(src: &SourceDef, report: &mut Report<'_>) -> Result<Option<Resume>, ()> {
    let Some(def) = &src.resume else {
        return Ok(None);
    };
    let mut ok = true;
    if src.mode == SourceMode::Shared {
        // A shared consumer reads only this process's partitions: a client
        // could not be recovered on another process.
        report.error(
            def.keys.span(),
            Problem::Invalid(
                "`resume` needs `mode = \"broadcast\"`: in shared mode a process reads only some partitions".into(),
            ),
        );
        ok = false;
    }
    let keys = keys(def, report);
    ok &= keys.is_some();
    let max_records = bounds::number(
        def.max_records.as_ref(),
        "max_records",
        1..=10_000_000,
        10_000,
        report,
    );
    let max_age = bounds::number(
        def.max_age_ms.as_ref(),
        "max_age_ms",
        1_000..=604_800_000,
        300_000,
        report,
    );
    let checkpoint = bounds::millis_or_never(
        def.checkpoint_ms.as_ref(),
        "checkpoint_ms",
        100..=3_600_000,
        5_000,
        report,
    );
    match (ok, keys, max_records, max_age, checkpoint) {
        (true, Some(keys), Some(max_records), Some(max_age), Some(checkpoint)) => {
            Ok(Some(Resume {
                keys,
                max_records,
                max_age: std::time::Duration::from_millis(max_age),
                checkpoint,
            }))
        }
        _ => Err(()),
    }
}

fn keys(def: &ResumeDef, report: &mut Report<'_>) -> Option<Vec<(String, Secret)>> {
    if def.keys.get_ref().is_empty() {
        report.error(
            def.keys.span(),
            Problem::Invalid("`keys` must have at least one key (the first signs)".into()),
        );
        return None;
    }
    let mut ok = true;
    let mut keys: Vec<(String, Secret)> = Vec::new();
    for key in def.keys.get_ref() {
        let id = key.id.get_ref();
        let valid = (1..=16).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            report.error(
                key.id.span(),
                Problem::Invalid(format!(
                    "key id {id:?}: use 1 to 16 letters, digits, `-` or `_`"
                )),
            );
            ok = false;
        } else if keys.iter().any(|(known, _)| known == id) {
            report.error(
                key.id.span(),
                Problem::Invalid(format!("key id `{id}` appears twice")),
            );
            ok = false;
        }
        // The value may come from the environment: never print it.
        if key.secret.get_ref().chars().count() < MIN_SECRET {
            report.error(
                key.secret.span(),
                Problem::Invalid(format!(
                    "the secret of key `{id}` is too short: use at least {MIN_SECRET} characters (e.g. `openssl rand -base64 32`)"
                )),
            );
            ok = false;
        }
        keys.push((id.clone(), Secret::new(key.secret.get_ref().clone())));
    }
    ok.then_some(keys)
}
