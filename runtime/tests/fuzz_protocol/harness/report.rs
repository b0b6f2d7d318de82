//! A failing case reported with everything needed to reproduce it.

use std::fmt::Write as _;

use super::Settings;

/// One case that broke the contract.
#[derive(Debug)]
pub struct Failure {
    /// Its index (replay it with [`Settings::replay`]).
    pub index: usize,
    /// What went wrong.
    pub what: String,
    /// What the generator made, in words.
    pub about: String,
    /// The exact bytes sent (or the input, in-process).
    pub bytes: Vec<u8>,
}

/// Fails the test with everything needed to reproduce: the seed, each
/// failing case's bytes in hex (also written to a file), the replay command.
pub fn fail(settings: &Settings, failures: &[Failure], suspects: &[usize]) -> ! {
    let mut text = format!(
        "fuzz target `{}` (seed {}) found {} problem(s)\n",
        settings.target,
        settings.seed,
        failures.len()
    );
    for failure in failures.iter().take(4) {
        let _ = writeln!(text, "\n--- case {}: {}", failure.index, failure.what);
        let _ = writeln!(text, "case: {}", failure.about);
        if !failure.bytes.is_empty() {
            let file = std::env::temp_dir().join(format!(
                "sluice-fuzz-{}-{}-{}.bin",
                settings.target, settings.seed, failure.index
            ));
            let saved = match std::fs::write(&file, &failure.bytes) {
                Ok(()) => format!(", saved in {}", file.display()),
                Err(_) => String::new(),
            };
            let _ = writeln!(
                text,
                "bytes ({} sent{saved}):\n{}",
                failure.bytes.len(),
                hex_block(&failure.bytes)
            );
        }
    }
    if failures.len() > 4 {
        let _ = writeln!(text, "\n... and {} more", failures.len() - 4);
    }
    let mut indices: Vec<usize> = failures.iter().map(|f| f.index).collect();
    if indices.is_empty() {
        indices = suspects.to_vec();
    }
    indices.sort_unstable();
    indices.dedup();
    let _ = writeln!(
        text,
        "\nreproduce: {}\n(the bytes above are exactly what the client sent after the \
         upgrade (frames) or on a fresh connection (handshake); each case is generated \
         from the seed and its index alone)",
        settings.replay(&indices)
    );
    panic!("{text}");
}

/// `bytes` as hex, 32 bytes a line; long inputs keep their head and tail.
pub fn hex_block(bytes: &[u8]) -> String {
    const LIMIT: usize = 1024;
    let line = |chunk: &[u8]| -> String { chunk.iter().map(|b| format!("{b:02x}")).collect() };
    let lines = |part: &[u8]| -> Vec<String> { part.chunks(32).map(line).collect() };
    if bytes.len() <= LIMIT {
        return lines(bytes).join("\n");
    }
    let (head, tail) = (&bytes[..LIMIT - 256], &bytes[bytes.len() - 256..]);
    format!(
        "{}\n... {} bytes left out ...\n{}",
        lines(head).join("\n"),
        bytes.len() - LIMIT,
        lines(tail).join("\n")
    )
}

/// A short description of some bytes: length and an escaped head.
pub fn show(bytes: &[u8]) -> String {
    let head: String = bytes
        .iter()
        .take(24)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    let more = if bytes.len() > 24 { "…" } else { "" };
    format!("{}B \"{head}{more}\"", bytes.len())
}
