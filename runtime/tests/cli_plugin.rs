//! `sluice plugin new` and `sluice plugin build`, run like a user would:
//! every role's scaffold passes its own `cargo test`, builds into a
//! component of its role, and loads in `sluice validate` with the pipeline
//! snippet its README shows. Generated crates share one target directory
//! (see `support::scaffold`), so the SDK compiles once.

mod support;

use std::path::Path;

use support::scaffold::{clean_command, expect_success, link_shared_target, sluice, texts};

/// Pipeline tables that every role's snippet is appended to: enough for a
/// pipeline that validates (handlers need no Kafka; the others read a topic
/// and route with the first-party key-router unless they are the router).
fn pipeline_head(role: &str) -> String {
    let head = r#"
[kafka]
brokers = "embedded"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[pipelines]]
name = "scaffold"
path = "/{channel}"
"#;
    match role {
        "router" => format!("{head}[pipelines.source]\ntopics = [\"orders\"]\n"),
        "handler" => head.to_owned(),
        _ => format!(
            "{head}[pipelines.source]\ntopics = [\"orders\"]\n[pipelines.router]\nplugin = \"key-router\"\n"
        ),
    }
}

/// The first ```toml block of a README.
fn toml_block(readme: &str) -> &str {
    let start = readme.find("```toml\n").expect("README has a toml block") + "```toml\n".len();
    let len = readme[start..].find("```").expect("the toml block ends");
    &readme[start..start + len]
}

/// The version of `package` a lockfile pins.
fn locked_version(lock: &Path, package: &str) -> String {
    let text = std::fs::read_to_string(lock).unwrap();
    let entry = format!("name = \"{package}\"\nversion = \"");
    let start = text
        .find(&entry)
        .unwrap_or_else(|| panic!("{package} in {}", lock.display()));
    let rest = &text[start + entry.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// new -> cargo test -> plugin build -> validate, for one role.
fn scaffold_builds_and_loads(role: &str) {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let name = format!("scaffold-{role}");
    let out = sluice(
        work.path(),
        &cache,
        &["plugin", "new", &name, "--role", role],
    );
    let stdout = expect_success("sluice plugin new", &out);
    assert!(
        stdout.starts_with(&format!("created {role} plugin `{name}` in ")),
        "{stdout}"
    );
    let crate_dir = work.path().join(&name);
    link_shared_target(&crate_dir);

    // Offline: the lockfile `plugin new` seeds from plugins/Cargo.lock
    // names only versions the repository's own plugins already fetched.
    let out = clean_command("cargo", &crate_dir)
        .args(["test", "--offline"])
        .output()
        .unwrap();
    let stdout = expect_success("cargo test in the generated crate", &out);
    assert!(stdout.contains("test result: ok."), "{stdout}");
    assert!(!stdout.contains("running 0 tests"), "{stdout}");
    let plugins_lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/Cargo.lock");
    assert_eq!(
        locked_version(&crate_dir.join("Cargo.lock"), "wit-bindgen"),
        locked_version(&plugins_lock, "wit-bindgen"),
        "the new crate builds with the wit-bindgen the first-party plugins use"
    );

    let out = sluice(&crate_dir, &cache, &["plugin", "build"]);
    let stdout = expect_success("sluice plugin build", &out);
    let expected = crate_dir
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let size = std::fs::metadata(&expected)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stdout}", expected.display()))
        .len();
    let first = stdout.lines().next().unwrap_or_default();
    let reported = Path::new(first.strip_prefix("built ").expect("a `built PATH` line"));
    assert_eq!(
        reported.canonicalize().unwrap(),
        expected.canonicalize().unwrap(),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("({size} bytes)")), "{stdout}");
    assert!(
        stdout.contains(&format!("world:   sluice:plugin/{role} (exports ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("    sluice:plugin/host@0.1.0\n"),
        "{stdout}"
    );

    let readme = std::fs::read_to_string(crate_dir.join("README.md")).unwrap();
    let pipeline = format!("{}{}", pipeline_head(role), toml_block(&readme));
    std::fs::write(work.path().join("pipeline.toml"), &pipeline).unwrap();
    let out = sluice(work.path(), &cache, &["validate", "pipeline.toml"]);
    let stdout = expect_success(&format!("sluice validate on\n{pipeline}\n"), &out);
    assert!(
        stdout.contains(&format!(
            "{name}/target/wasm32-wasip2/release/{}.wasm [",
            name.replace('-', "_")
        )),
        "{stdout}"
    );
}

#[test]
fn a_new_router_tests_builds_and_loads() {
    scaffold_builds_and_loads("router");
}

#[test]
fn a_new_authenticator_tests_builds_and_loads() {
    scaffold_builds_and_loads("authenticator");
}

#[test]
fn a_new_transformer_tests_builds_and_loads() {
    scaffold_builds_and_loads("transformer");
}

#[test]
fn a_new_handler_tests_builds_and_loads() {
    scaffold_builds_and_loads("handler");
}

#[test]
fn a_component_exporting_another_role_than_declared_fails_the_build() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let out = sluice(
        work.path(),
        &cache,
        &["plugin", "new", "scaffold-mislabeled", "--role", "router"],
    );
    expect_success("sluice plugin new", &out);
    let crate_dir = work.path().join("scaffold-mislabeled");
    link_shared_target(&crate_dir);
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("role = \"router\""));
    std::fs::write(
        &manifest,
        text.replace("role = \"router\"", "role = \"handler\""),
    )
    .unwrap();

    let out = sluice(&crate_dir, &cache, &["plugin", "build"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Cargo.toml says role = \"handler\"")
            && stderr.contains("exports `sluice:plugin/routing@0.1.0` (router)"),
        "{stderr}"
    );
    assert!(!stdout.contains("built "), "{stdout}");
}

#[test]
fn a_component_exporting_no_world_fails_the_build() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let out = sluice(
        work.path(),
        &cache,
        &[
            "plugin",
            "new",
            "scaffold-unexported",
            "--role",
            "transformer",
        ],
    );
    expect_success("sluice plugin new", &out);
    let crate_dir = work.path().join("scaffold-unexported");
    link_shared_target(&crate_dir);
    let lib = crate_dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    let export_line = "sluice_sdk::export_transformer!(Wrap);\n";
    assert!(text.contains(export_line));
    std::fs::write(&lib, text.replace(export_line, "")).unwrap();

    let out = sluice(&crate_dir, &cache, &["plugin", "build"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("exports no plugin world (it exports: nothing)")
            && stderr.contains("export line"),
        "{stderr}"
    );
}

#[test]
fn bad_names_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    for (name, reason) in [
        ("2fast", "must start with a letter"),
        ("my router", "invalid character ' '"),
        ("fn", "reserved"),
        ("", "empty"),
    ] {
        let out = sluice(
            work.path(),
            &cache,
            &["plugin", "new", name, "--role", "router"],
        );
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{name:?}: {stderr}");
        assert!(stderr.contains(reason), "{name:?}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unknown_role_lists_the_roles() {
    let work = tempfile::tempdir().unwrap();
    let out = sluice(
        work.path(),
        &work.path().join("cache"),
        &["plugin", "new", "x", "--role", "routr"],
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("expected one of: authenticator, router, transformer, handler"),
        "{stderr}"
    );
}

#[test]
fn an_existing_directory_is_left_alone() {
    let work = tempfile::tempdir().unwrap();
    let taken = work.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let out = sluice(
        work.path(),
        &work.path().join("cache"),
        &["plugin", "new", "taken", "--role", "handler"],
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    let entries: Vec<_> = std::fs::read_dir(&taken)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["notes.txt"]);
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn a_missing_sdk_is_named() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-sdk-here");
    let out = sluice(
        work.path(),
        &work.path().join("cache"),
        &[
            "plugin",
            "new",
            "orphan",
            "--role",
            "router",
            "--sdk",
            missing.to_str().unwrap(),
        ],
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("no Sluice SDK at {}", missing.display())),
        "{stderr}"
    );
    assert!(!work.path().join("orphan").exists());
}

#[test]
fn building_outside_a_crate_says_what_is_missing() {
    let work = tempfile::tempdir().unwrap();
    let out = sluice(
        work.path(),
        &work.path().join("cache"),
        &["plugin", "build"],
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Cargo.toml") && stderr.contains("sluice plugin new"),
        "{stderr}"
    );
}

#[test]
fn dir_chooses_where_the_crate_goes_and_it_depends_on_this_sdk() {
    let work = tempfile::tempdir().unwrap();
    let out = sluice(
        work.path(),
        &work.path().join("cache"),
        &[
            "plugin",
            "new",
            "placed",
            "--role",
            "authenticator",
            "--dir",
            "a/b",
        ],
    );
    expect_success("sluice plugin new --dir", &out);
    let crate_dir = work.path().join("a/b/placed");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"placed\""), "{manifest}");
    assert!(manifest.contains("role = \"authenticator\""), "{manifest}");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk")
        .canonicalize()
        .unwrap();
    assert!(
        manifest.contains(&format!("sluice-sdk = {{ path = \"{}\" }}", sdk.display())),
        "{manifest}"
    );
    for file in [
        "src/lib.rs",
        "README.md",
        "rust-toolchain.toml",
        ".gitignore",
        "Cargo.lock",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file}");
    }
    let toolchain = std::fs::read_to_string(crate_dir.join("rust-toolchain.toml")).unwrap();
    assert!(
        toolchain.contains("targets = [\"wasm32-wasip2\"]"),
        "{toolchain}"
    );
}

#[test]
fn a_crate_that_does_not_compile_fails_with_cargos_errors() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let out = sluice(
        work.path(),
        &cache,
        &["plugin", "new", "scaffold-broken", "--role", "handler"],
    );
    expect_success("sluice plugin new", &out);
    let crate_dir = work.path().join("scaffold-broken");
    link_shared_target(&crate_dir);
    let lib = crate_dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, text.replace("counts: HashMap::new(),", "counts: 42,")).unwrap();

    let out = sluice(&crate_dir, &cache, &["plugin", "build"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error[E0308]: mismatched types"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: cargo build failed (its messages are above)"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}
