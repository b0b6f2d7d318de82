//! The pipeline-file loader on any text: it never panics, and every
//! diagnostic points inside the text (1-based line and character column,
//! at most one past the end of its line), since users are sent there.
//! A file that loads loads again the same way (nothing depends on state).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice_config::Loader;

fn no_env(_: &str) -> Result<String, std::env::VarError> {
    Err(std::env::VarError::NotPresent)
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    // Relative plugin and TLS paths resolve under a directory that does not
    // exist: the loader reads files, and must say so when they are absent.
    let file = Path::new("/nonexistent/sluice-fuzz/pipeline.toml");
    let loader = Loader::new()
        .env(&no_env)
        .builtins(&[("key-router", b"\0asm")]);
    let lines: Vec<&str> = text.split('\n').collect();
    match loader.load_str(file, text) {
        Ok(config) => {
            let again = loader
                .load_str(file, text)
                .expect("a valid file stays valid");
            assert_eq!(config.pipelines.len(), again.pipelines.len());
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an error without a diagnostic");
            for diagnostic in diagnostics.iter() {
                let Some(at) = diagnostic.position else {
                    continue;
                };
                assert!(
                    at.line >= 1 && at.line <= lines.len(),
                    "{diagnostic} in {} lines",
                    lines.len()
                );
                // A carriage return is a character of its line here.
                let width = lines[at.line - 1].chars().count();
                assert!(
                    at.column >= 1 && at.column <= width + 1,
                    "{diagnostic}: line is {width} wide"
                );
            }
        }
    }
});
