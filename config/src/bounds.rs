//! Numbers with a range: one check, one wording, reported at the value.

use std::ops::RangeInclusive;

use serde_spanned::Spanned;

use super::diagnostics::{Problem, Report};

/// `value` if it is in `range`, `default` if absent; `None` (reported) if
/// out of range.
pub(super) fn number(
    value: Option<&Spanned<u64>>,
    key: &str,
    range: RangeInclusive<u64>,
    default: u64,
    report: &mut Report<'_>,
) -> Option<u64> {
    let Some(value) = value else {
        return Some(default);
    };
    let n = *value.get_ref();
    if range.contains(&n) {
        return Some(n);
    }
    report.error(
        value.span(),
        Problem::Invalid(format!(
            "{key} {n} is out of range: it must be from {} to {}",
            range.start(),
            range.end()
        )),
    );
    None
}

/// Milliseconds where 0 means "never".
pub(super) fn millis_or_never(
    value: Option<&Spanned<u64>>,
    key: &str,
    range: RangeInclusive<u64>,
    default: u64,
    report: &mut Report<'_>,
) -> Option<Option<std::time::Duration>> {
    match value {
        Some(v) if *v.get_ref() == 0 => Some(None),
        _ => number(value, key, range, default, report)
            .map(|ms| (ms > 0).then(|| std::time::Duration::from_millis(ms))),
    }
}
