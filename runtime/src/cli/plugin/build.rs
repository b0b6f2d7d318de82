//! `sluice plugin build [DIR]`: cargo builds the crate for wasm32-wasip2,
//! then the plugin host inspects the component: which role's world it
//! exports (checked against `[package.metadata.sluice] role`), its size and
//! what it imports.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sluice_runtime::plugin::{HostOptions, Inspection, PluginHost, PluginId, Role};

const TARGET: &str = "wasm32-wasip2";

/// Arguments of `sluice plugin build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin crate (default: the current directory).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The parts of the crate's `Cargo.toml` the build reads.
#[derive(Deserialize)]
struct Manifest {
    package: Package,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    sluice: Option<SluiceMetadata>,
}

#[derive(Deserialize)]
struct SluiceMetadata {
    role: String,
}

/// One line of cargo's `--message-format=json` output (the fields we use).
#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    target: Option<CargoTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct CargoTarget {
    kind: Vec<String>,
}

/// Builds, inspects and reports; exit 1 when the component is not a plugin
/// of its role.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let manifest_path = args.dir.join("Cargo.toml");
    let manifest = read_manifest(&manifest_path)?;
    let declared = match &manifest.package.metadata.sluice {
        Some(meta) => Some(super::parse_role(&meta.role).map_err(|e| {
            anyhow::anyhow!(
                "{}: [package.metadata.sluice] role: {e}",
                manifest_path.display()
            )
        })?),
        None => None,
    };
    let component = cargo_build(&manifest_path)?;
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    let host = PluginHost::new(HostOptions::default()).context("cannot start the plugin host")?;
    let id = PluginId {
        plugin: manifest.package.name.clone(),
        pipeline: "(plugin build)".into(),
        tenant: "-".into(),
    };
    let inspection = host
        .inspect(&id, &bytes)
        .map_err(|e| anyhow::anyhow!("{} {}", component.display(), e.kind))?;
    let role = match check_role(&inspection, declared) {
        Ok(role) => role,
        Err(message) => {
            eprintln!("error: {}: {message}", component.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    print!("{}", report(&component, bytes.len(), role, &inspection));
    if declared.is_none() {
        println!(
            "note: add `[package.metadata.sluice] role = \"{}\"` to Cargo.toml to have this checked",
            role.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: is this a plugin crate? (`sluice plugin new` creates one)",
            path.display()
        )
    })?;
    toml::from_str(&text).with_context(|| format!("{} has no [package] name", path.display()))
}

/// Runs cargo (through rustup, so the crate's rust-toolchain.toml applies)
/// and returns the component it produced. Cargo's diagnostics go straight
/// to stderr; its JSON messages on stdout name the artifact.
fn cargo_build(manifest_path: &Path) -> anyhow::Result<PathBuf> {
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let mut child = Command::new("cargo")
        .current_dir(dir)
        .args(["build", "--release", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo (is Rust installed? https://rustup.rs)")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut component = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        let Ok(message) = serde_json::from_str::<CargoMessage>(&line) else {
            continue;
        };
        let is_cdylib = message
            .target
            .as_ref()
            .is_some_and(|t| t.kind.iter().any(|k| k == "cdylib"));
        if message.reason == "compiler-artifact" && is_cdylib {
            component = message
                .filenames
                .into_iter()
                .find(|f| f.extension().is_some_and(|e| e == "wasm"))
                .or(component);
        }
    }
    let status = child.wait().context("cargo did not finish")?;
    if !status.success() {
        bail!("cargo build failed (its messages are above)");
    }
    component.with_context(|| {
        format!(
            "cargo built no .wasm library: {} needs `[lib] crate-type = [\"cdylib\"]`",
            manifest_path.display()
        )
    })
}

/// The component's role: the one it exports, which must be the declared one.
fn check_role(inspection: &Inspection, declared: Option<Role>) -> Result<Role, String> {
    let exported = |roles: &[Role]| {
        roles
            .iter()
            .map(|r| format!("`{}` ({})", r.export(), r.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (inspection.roles.as_slice(), declared) {
        ([], _) => Err(format!(
            "exports no plugin world (it exports: {}); does src/lib.rs end with an export line such as `sluice_sdk::export_router!(MyRouter);`?",
            if inspection.exports.is_empty() {
                "nothing".to_owned()
            } else {
                inspection.exports.join(", ")
            }
        )),
        (roles, Some(want)) if !roles.contains(&want) => Err(format!(
            "Cargo.toml says role = \"{}\" (world `sluice:plugin/{}`, exporting `{}`), but the component exports {}; change the role or the export line",
            want.name(),
            want.name(),
            want.export(),
            exported(roles)
        )),
        (_, Some(want)) => Ok(want),
        ([one], None) => Ok(*one),
        (roles, None) => Err(format!(
            "exports several plugin worlds: {}; say which one it is with `[package.metadata.sluice] role` in Cargo.toml",
            exported(roles)
        )),
    }
}

/// What the user reads after a successful build.
fn report(path: &Path, size: usize, role: Role, inspection: &Inspection) -> String {
    let mut out = format!(
        "built {}\n  size:    {} ({size} bytes)\n  world:   sluice:plugin/{} (exports {})\n  imports:",
        path.display(),
        human_size(size),
        role.name(),
        role.export()
    );
    if inspection.imports.is_empty() {
        out.push_str(" none");
    }
    out.push('\n');
    for import in &inspection.imports {
        out.push_str("    ");
        out.push_str(import);
        out.push('\n');
    }
    out
}

fn human_size(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspection(roles: &[Role]) -> Inspection {
        Inspection {
            roles: roles.to_vec(),
            exports: roles.iter().map(|r| r.export().to_owned()).collect(),
            imports: Vec::new(),
        }
    }

    #[test]
    fn the_declared_role_must_be_exported() {
        let router = inspection(&[Role::Router]);
        assert_eq!(check_role(&router, Some(Role::Router)), Ok(Role::Router));
        assert_eq!(check_role(&router, None), Ok(Role::Router));
        let error = check_role(&router, Some(Role::Handler)).unwrap_err();
        assert!(error.contains("role = \"handler\""), "{error}");
        assert!(check_role(&inspection(&[]), None).is_err());
        let both = inspection(&[Role::Router, Role::Handler]);
        assert!(check_role(&both, None).is_err());
        assert_eq!(check_role(&both, Some(Role::Handler)), Ok(Role::Handler));
    }

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }
}
