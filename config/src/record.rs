//! Checks of `[pipelines.record]`: a file name to write sessions to, and
//! a bounded queue to the disk.

use serde_spanned::Spanned;

use super::bounds;
use super::diagnostics::{Problem, Report};
use super::schema::RecordDef;

/// A checked `[pipelines.record]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The file name, relative paths resolved against the pipeline file's
    /// directory; `{pipeline}`, `{connection}` and `{date}` are filled in
    /// per session.
    pub output: std::path::PathBuf,
    /// Leave pings and pongs out.
    pub exclude_ping: bool,
    /// Messages waiting for the disk at most.
    pub buffer: usize,
}

impl Record {
    /// Whether each connection gets its own file (`{connection}` in the name).
    pub fn per_connection(&self) -> bool {
        self.output.to_string_lossy().contains("{connection}")
    }
}

/// The checked `[pipelines.record]` of a pipeline in a file in `base`.
pub(super) fn check(
    def: Option<&Spanned<RecordDef>>,
    base: &std::path::Path,
    report: &mut Report<'_>,
) -> Result<Option<Record>, ()> {
    let Some(def) = def else {
        return Ok(None);
    };
    let def = def.get_ref();
    let output = def.output.get_ref();
    let mut ok = true;
    if output.trim().is_empty() || output.ends_with('/') {
        report.error(
            def.output.span(),
            Problem::Invalid(
                "`output` must name a file, e.g. \"recordings/{pipeline}-{connection}.json\""
                    .into(),
            ),
        );
        ok = false;
    }
    let buffer = bounds::number(
        def.buffer.as_ref(),
        "buffer",
        1..=10_000_000,
        10_000,
        report,
    );
    match (ok, buffer) {
        (true, Some(buffer)) => Ok(Some(Record {
            output: base.join(output),
            exclude_ping: def.exclude_ping,
            buffer: buffer as usize,
        })),
        _ => Err(()),
    }
}
