//! `sluice plugin new NAME --role ROLE`: a plugin crate that builds as it
//! is, with a working example of the role and unit tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use sluice_runtime::plugin::Role;

use super::template::Scaffold;

/// Where this binary's repository keeps the SDK (a fresh crate depends on
/// it by path).
const REPO_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// Arguments of `sluice plugin new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The crate's name, also its directory's: letters, digits, `-` and `_`.
    pub name: String,
    /// What the plugin does: router, authenticator, transformer or handler.
    #[arg(long, value_parser = super::parse_role)]
    pub role: Role,
    /// Create the crate in this directory (default: the current one).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The `sluice-sdk` crate to depend on (default: the SDK of the
    /// repository this binary was built from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Writes the crate, or fails without leaving anything behind.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let sdk = find_sdk(args.sdk.as_deref())?;
    let target = args.dir.join(&args.name);
    if target.exists() {
        bail!(
            "{} already exists; choose another name or --dir (nothing was written)",
            target.display()
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    std::fs::create_dir(&target).with_context(|| format!("cannot create {}", target.display()))?;
    let scaffold = Scaffold {
        name: &args.name,
        role: args.role,
        sdk_path: &sdk.to_string_lossy(),
    };
    let written = write_files(&target, &scaffold).and_then(|()| seed_lockfile(&target, &sdk));
    if let Err(error) = written {
        // Best effort: a half-written crate would only confuse the next try.
        let _ = std::fs::remove_dir_all(&target);
        return Err(error);
    }
    println!(
        "created {} plugin `{}` in {}",
        args.role.name(),
        args.name,
        target.display()
    );
    println!(
        "next: cd {} && cargo test && sluice plugin build",
        target.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_files(target: &Path, scaffold: &Scaffold<'_>) -> anyhow::Result<()> {
    for (relative, contents) in scaffold.files() {
        let path = target.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Starts the crate's `Cargo.lock` from the first-party plugins' lockfile
/// beside the SDK: the new crate gets the dependency versions Sluice's own
/// plugins are tested with, and builds without asking the registry (cargo
/// drops the entries it does not use). Nothing when there is none.
fn seed_lockfile(target: &Path, sdk: &Path) -> anyhow::Result<()> {
    let Some(lock) = sdk.parent().map(|repo| repo.join("plugins/Cargo.lock")) else {
        return Ok(());
    };
    match std::fs::read_to_string(&lock) {
        Ok(text) => std::fs::write(target.join("Cargo.lock"), text)
            .with_context(|| format!("cannot write {}", target.join("Cargo.lock").display())),
        Err(_) => Ok(()),
    }
}

/// The SDK directory, absolute, after checking it holds `sluice-sdk`.
fn find_sdk(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (dir, hint) = match given {
        Some(dir) => (dir.to_owned(), "check the --sdk path"),
        None => (
            PathBuf::from(REPO_SDK),
            "this sluice was built from a checkout that has moved; pass --sdk PATH/TO/sluice/sdk",
        ),
    };
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        anyhow::anyhow!(
            "no Sluice SDK at {}: cannot read {} ({e}); {hint}",
            dir.display(),
            manifest.display()
        )
    })?;
    if !text.lines().any(|l| l.trim() == r#"name = "sluice-sdk""#) {
        bail!(
            "{} is not the sluice-sdk crate's manifest; {hint}",
            manifest.display()
        );
    }
    std::fs::canonicalize(&dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Names Rust or cargo reserve, which a crate may not take.
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "sluice_sdk",
    "serde",
];

/// Cargo's rules for a package name, checked up front so the error names
/// the rule instead of coming from cargo later.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let rule = "a plugin name is 1 to 64 ASCII letters, digits, `-` or `_`, starting with a letter";
    let Some(first) = name.chars().next() else {
        bail!("the plugin name is empty; {rule}");
    };
    if name.len() > 64 {
        bail!("plugin name `{name}` is longer than 64 characters; {rule}");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        bail!("invalid character {bad:?} in plugin name `{name}`; {rule}");
    }
    if !first.is_ascii_alphabetic() {
        bail!("plugin name `{name}` must start with a letter; {rule}");
    }
    if RESERVED.contains(&name.replace('-', "_").to_ascii_lowercase().as_str()) {
        bail!("`{name}` is reserved by Rust or cargo; choose another plugin name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_follow_cargo_rules() {
        for good in ["my-router", "auth_2", "x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2fast",
            "-x",
            "my router",
            "é",
            "fn",
            "std",
            "sluice-sdk",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
