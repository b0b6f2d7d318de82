//! The config loader fuzzed without sockets: pipeline files mutated line
//! by line and byte by byte.

use std::path::Path;

use sluice_runtime::config::loader;

use crate::harness::Rng;

/// The environment the fixtures see (as in `tests/config.rs`).
fn env(name: &str) -> Result<String, std::env::VarError> {
    match name {
        "WS_PASSWORD" => Ok("testpass".into()),
        "ALICE_PASSWORD" => Ok("alice-secret".into()),
        "ACME_KAFKA_PASSWORD" => Ok("kafka-secret".into()),
        _ => Err(std::env::VarError::NotPresent),
    }
}

const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "16",
    "65536",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e400",
    "-0.0",
    "nan",
    "inf",
    "true",
    "\"\"",
    "\"x\"",
    "\"/\"",
    "\"/{channel}\"",
    "\"/{a}/{a}\"",
    "\"/{x:float}\"",
    "\"/a{b}\"",
    "\"127.0.0.1:0\"",
    "\"[::1]:99999\"",
    "\"embedded\"",
    "\"\\u0000\"",
    "\"é€𝄞\"",
    "[]",
    "[1, \"a\"]",
    "[[]]",
    "{}",
    "{ env = \"NOPE\" }",
    "{ env = \"WS_PASSWORD\" }",
    "{ env = 5 }",
    "1979-05-27T07:32:00Z",
    "'''a\nb'''",
    "\"\"\"a\nb\"\"\"",
    "{ per_second = 0, burst = 0 }",
    "{ capacity = 0, when_full = \"close\" }",
    "{ json = \"\" }",
    "{ dead-letter = \"\" }",
    "\"../tests/config/not-a-component.wasm\"",
    "\"nope.wasm\"",
    "\"key-router\"",
    "\"basic-auth\"",
    "\"mock\"",
];

const TABLES: &[&str] = &[
    "[kafka]",
    "[kafka.properties]",
    "[[listeners]]",
    "[[tenants]]",
    "[[pipelines]]",
    "[pipelines.source]",
    "[pipelines.sink]",
    "[pipelines.router]",
    "[pipelines.auth]",
    "[pipelines.handler]",
    "[[pipelines.transforms]]",
    "[plugins]",
    "[pipelines]",
    "[[kafka]]",
    "[listeners.tls]",
];

pub(super) fn mutate_config(
    rng: &mut Rng,
    corpus: &[String],
    keys: &[String],
) -> (Vec<u8>, String) {
    let seed = rng.below(corpus.len());
    let mut lines: Vec<String> = corpus[seed].lines().map(str::to_owned).collect();
    let mut about = vec![format!("seed file {seed}")];
    for _ in 0..rng.range(1, 4) {
        let i = rng.below(lines.len().max(1)).min(lines.len());
        let j = rng.below(lines.len().max(1));
        match rng.below(9) {
            0 if i < lines.len() => {
                about.push(format!("line {i} removed"));
                lines.remove(i);
            }
            1 if i < lines.len() => {
                about.push(format!("line {i} twice"));
                let line = lines[i].clone();
                lines.insert(j, line);
            }
            2 if i < lines.len() && j < lines.len() => {
                about.push(format!("lines {i} and {j} swapped"));
                lines.swap(i, j);
            }
            3 if i < lines.len() && lines[i].contains('=') => {
                let value = *rng.pick(VALUES);
                let key = lines[i].split_once('=').map(|(k, _)| k.to_owned());
                lines[i] = format!("{} = {value}", key.unwrap_or_default());
                about.push(format!("line {i} = {value}"));
            }
            4 => {
                let key = rng.pick(keys).clone();
                let value = *rng.pick(VALUES);
                about.push(format!("`{key} = {value}` at line {i}"));
                lines.insert(i, format!("{key} = {value}"));
            }
            5 => {
                let table = *rng.pick(TABLES);
                about.push(format!("{table} at line {i}"));
                lines.insert(i, table.to_owned());
            }
            6 if i < lines.len() => {
                let number = *rng.pick(&["0", "-1", "99999999999999999999", "1.5", "0x10"]);
                let line: String = lines[i]
                    .split(|c: char| c.is_ascii_digit())
                    .collect::<Vec<_>>()
                    .join(number);
                about.push(format!("numbers of line {i} -> {number}"));
                lines[i] = line;
            }
            7 if i < lines.len() => {
                let weird = *rng.pick(&["", "{", "}", "{{x}}", "\\\\", "\u{7f}", "é", "a\tb"]);
                lines[i] = lines[i].replacen('"', &format!("\"{weird}"), 1);
                about.push(format!("string of line {i} starts with {weird:?}"));
            }
            _ => {
                let size = rng.range(1, 40);
                let junk: String = (0..size)
                    .map(|_| char::from(rng.range(0x20, 0x7e) as u8))
                    .collect();
                about.push(format!("junk line {junk:?} at {i}"));
                lines.insert(i, junk);
            }
        }
    }
    let mut bytes = lines.join("\n").into_bytes();
    if rng.chance(0.3) && !bytes.is_empty() {
        for _ in 0..rng.range(1, 4) {
            let at = rng
                .below(bytes.len().max(1))
                .min(bytes.len().saturating_sub(1));
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => {
                    let b = rng.byte();
                    bytes.insert(at, b);
                }
                2 => {
                    let end = (at + rng.range(1, 200)).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => bytes.truncate(at),
            }
            if bytes.is_empty() {
                break;
            }
        }
        about.push("bytes damaged".into());
    }
    (bytes, about.join(", "))
}

/// The loader returns `Ok` or diagnostics that point inside the file;
/// it never panics. `as_file` (and any input that is not UTF-8) goes
/// through `config::load` on a temporary file, the rest through
/// `Loader::load_str` as if it were a fixture.
pub(super) fn check_config(
    bytes: &[u8],
    as_file: bool,
    fixture: &Path,
    file: &Path,
) -> Result<String, String> {
    let (result, text) = match std::str::from_utf8(bytes) {
        Ok(text) if !as_file => (loader().env(&env).load_str(fixture, text), Some(text)),
        text => {
            std::fs::write(file, bytes).map_err(|e| format!("write the temp file: {e}"))?;
            (sluice_runtime::config::load(file), text.ok())
        }
    };
    let Err(diagnostics) = result else {
        return Ok("valid".into());
    };
    if diagnostics.is_empty() || diagnostics.to_string().is_empty() {
        return Err("an error without any diagnostic".into());
    }
    let outcome = match diagnostics.len() {
        1 => "1 error".to_owned(),
        n @ 2..=4 => format!("{n} errors"),
        _ => "5+ errors".to_owned(),
    };
    let Some(text) = text else {
        return Ok(outcome);
    };
    let lines = text.split('\n').count();
    for diagnostic in diagnostics.iter() {
        if let Some(p) = diagnostic.position
            && (p.line == 0 || p.line > lines || p.column == 0)
        {
            return Err(format!(
                "a diagnostic at {p}, outside the file ({lines} lines): {diagnostic}"
            ));
        }
    }
    Ok(outcome)
}
