//! The files `sluice plugin new` writes, from `runtime/templates/plugin/`:
//! `common/` for every role, `<role>/` for the example code and the
//! pipeline snippet. Placeholders are `{{name}}`, `{{crate}}`, `{{role}}`,
//! `{{sdk_path}}`, `{{summary}}` and `{{pipeline_snippet}}`.

use sluice_runtime::plugin::Role;

const CARGO_TOML: &str = include_str!("../../../templates/plugin/common/Cargo.toml");
const README: &str = include_str!("../../../templates/plugin/common/README.md");
const GITIGNORE: &str = include_str!("../../../templates/plugin/common/gitignore");
/// The repository's own toolchain file: plugins build with the compiler the
/// host was tested with, and it lists the wasm32-wasip2 target.
const REPO_TOOLCHAIN: &str = include_str!("../../../../rust-toolchain.toml");

/// The example code, pipeline snippet and one-line summary of a role.
fn role_files(role: Role) -> (&'static str, &'static str, &'static str) {
    match role {
        Role::Router => (
            include_str!("../../../templates/plugin/router/lib.rs"),
            include_str!("../../../templates/plugin/router/pipeline.toml"),
            "It sends each Kafka record to the channel named by its key, after an optional prefix.",
        ),
        Role::Authenticator => (
            include_str!("../../../templates/plugin/authenticator/lib.rs"),
            include_str!("../../../templates/plugin/authenticator/pipeline.toml"),
            "It lets in WebSocket clients that present a known token (Bearer header or `?token=`).",
        ),
        Role::Transformer => (
            include_str!("../../../templates/plugin/transformer/lib.rs"),
            include_str!("../../../templates/plugin/transformer/pipeline.toml"),
            "It wraps each JSON object message with its channel and rejects anything else.",
        ),
        Role::Handler => (
            include_str!("../../../templates/plugin/handler/lib.rs"),
            include_str!("../../../templates/plugin/handler/pipeline.toml"),
            "It greets each connection and echoes its messages back, numbered.",
        ),
    }
}

/// What a new plugin crate is made of.
pub struct Scaffold<'a> {
    /// The crate (and directory) name, already validated.
    pub name: &'a str,
    /// Its role.
    pub role: Role,
    /// Absolute path of the `sluice-sdk` crate it depends on.
    pub sdk_path: &'a str,
}

impl Scaffold<'_> {
    /// Every file to write: (path relative to the crate, contents).
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let (lib, snippet, summary) = role_files(self.role);
        let snippet = self.fill(snippet.trim_end());
        vec![
            ("Cargo.toml", self.fill(CARGO_TOML)),
            (
                "README.md",
                self.fill(README)
                    .replace("{{summary}}", summary)
                    .replace("{{pipeline_snippet}}", &snippet),
            ),
            (".gitignore", GITIGNORE.to_owned()),
            ("rust-toolchain.toml", toolchain()),
            ("src/lib.rs", self.fill(lib)),
        ]
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", self.name)
            .replace("{{crate}}", &self.name.replace('-', "_"))
            .replace("{{role}}", self.role.name())
            .replace("{{sdk_path}}", &toml_string(self.sdk_path))
    }
}

/// The repository's toolchain settings without its comments, under a header
/// saying where they come from.
fn toolchain() -> String {
    let mut out =
        String::from("# The compiler and wasm target Sluice itself is built and tested with.\n");
    for line in REPO_TOOLCHAIN.lines() {
        if !line.trim_start().starts_with('#') {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_for_every_role() {
        for role in Role::ALL {
            let scaffold = Scaffold {
                name: "my-plugin",
                role,
                sdk_path: "/repo/sdk",
            };
            for (path, text) in scaffold.files() {
                assert!(!text.contains("{{"), "{role:?} {path} keeps a placeholder");
            }
        }
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
    }
}
