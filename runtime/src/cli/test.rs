//! `sluice test FILE`: runs the `[[tests]]` of a pipeline file through its
//! real plugins, one line per test and a summary, as `cargo test` does.
//! Exit 0 when every test passes, 1 when one fails, 2 when the file is
//! invalid.

use std::path::PathBuf;
use std::process::ExitCode;

use super::checked;
use sluice_runtime::testing::{self, PipelineTests};

/// Arguments of `sluice test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file, e.g. `pipeline.toml`.
    pub file: PathBuf,
    /// Run only the tests whose name contains this text.
    pub filter: Option<String>,
}

/// Checks the file as `sluice validate` does, then runs its tests.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let host = checked::host_for(&args.file)?;
    let Ok(config) = checked::config(&args.file, &host, "; no test ran") else {
        return Ok(ExitCode::from(2));
    };
    if config.tests.is_empty() {
        eprintln!(
            "warning: {} has no `[[tests]]`; see docs/testing-pipelines.md",
            args.file.display()
        );
    }
    let tests = PipelineTests::new(&config, &host)?;
    let chosen: Vec<_> = config
        .tests
        .iter()
        .filter(|t| chosen(&t.case.name, args.filter.as_deref()))
        .collect();
    println!(
        "running {} test(s) from {}",
        chosen.len(),
        args.file.display()
    );
    let mut failed = 0;
    for test in &chosen {
        let verdict = testing::verdict(&test.case.name, &test.case.expect, tests.run(test));
        failed += usize::from(!verdict.passed());
        println!("{verdict}");
    }
    Ok(summary(
        chosen.len(),
        failed,
        config.tests.len() - chosen.len(),
    ))
}

/// Whether a test or case called `name` runs under `filter`.
pub(crate) fn chosen(name: &str, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| name.contains(f))
}

/// Prints `test result: ok. N passed; 0 failed` (exit 0) or `FAILED`
/// (exit 1), and how many the filter left out, if any.
pub(crate) fn summary(total: usize, failed: usize, filtered_out: usize) -> ExitCode {
    let (word, code) = if failed == 0 {
        ("ok", ExitCode::SUCCESS)
    } else {
        ("FAILED", ExitCode::FAILURE)
    };
    let filtered = if filtered_out > 0 {
        format!("; {filtered_out} filtered out")
    } else {
        String::new()
    };
    println!(
        "\ntest result: {word}. {} passed; {failed} failed{filtered}",
        total - failed
    );
    code
}
