//! The runtime's modules are layered, and the imports obey the layers:
//! each module uses only modules of its own layer or below, and no two
//! modules (nor two sibling files of one folder) use each other in a
//! circle. The README's "Layers" section says the same in words; a module
//! added to `lib.rs` must be given a layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "vocabulary",
        &["builtin", "channel", "metrics", "record", "time"],
    ),
    ("config", &["config"]),
    (
        "engines",
        &[
            "connections",
            "hub",
            "kafka",
            "listen",
            "plugin",
            "recording",
            "tenant",
        ],
    ),
    ("flows", &["pipeline", "resume", "session", "cluster"]),
    ("servers", &["admin", "ws"]),
    ("process", &["server"]),
    ("front ends", &["cli", "testing"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_import_goes_down_or_sideways_and_never_in_a_circle() {
    let root = src();
    let files = rust_files(&root);
    let declared = lib_modules(&root);
    let layer_of = |module: &str| {
        LAYERS
            .iter()
            .position(|(_, modules)| modules.contains(&module))
    };
    let unplaced: Vec<_> = declared.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS and to the README): {unplaced:?}"
    );

    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let Some(module) = top_module(rel) else {
            continue;
        };
        let text = code_only(&std::fs::read_to_string(file).unwrap());
        // The binary's files reach the library as `sluice_runtime::`.
        let prefix = if module == "cli" {
            "sluice_runtime"
        } else {
            "crate"
        };
        for target in referenced_modules(&text, prefix) {
            if target == module || !declared.contains(&target) {
                continue;
            }
            let (from, to) = (layer_of(&module).unwrap(), layer_of(&target).unwrap());
            if to > from {
                upward.push(format!(
                    "{} ({}) uses `{target}` ({})",
                    rel.display(),
                    LAYERS[from].0,
                    LAYERS[to].0
                ));
            }
            edges.entry(module.clone()).or_default().insert(target);
        }
    }
    assert!(
        upward.is_empty(),
        "imports that go up a layer:\n  {}",
        upward.join("\n  ")
    );
    let cycles = cycles(&edges);
    assert!(
        cycles.is_empty(),
        "modules that use each other in a circle: {cycles:?}"
    );
}

#[test]
fn sibling_files_never_use_each_other_in_a_circle() {
    let root = src();
    let mut folders: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in rust_files(&root) {
        let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
        if matches!(name.as_str(), "mod" | "lib" | "main" | "tests") {
            continue;
        }
        let folder = file.parent().unwrap().to_owned();
        let siblings = sibling_modules(&folder);
        let text = code_only(&std::fs::read_to_string(&file).unwrap());
        let uses: BTreeSet<String> = referenced_modules(&text, "super")
            .into_iter()
            .filter(|m| *m != name && siblings.contains(m))
            .collect();
        folders.entry(folder).or_default().insert(name, uses);
    }
    let mut found = Vec::new();
    for (folder, edges) in &folders {
        for cycle in cycles(edges) {
            let rel = folder.strip_prefix(&root).unwrap_or(folder);
            found.push(format!("{}: {cycle:?}", rel.display()));
        }
    }
    assert!(
        found.is_empty(),
        "sibling files that use each other in a circle:\n  {}",
        found.join("\n  ")
    );
}

/// The checker itself: it must see a back-edge, or the tests above prove
/// nothing.
#[test]
fn the_checker_sees_uses_in_every_form() {
    let text = code_only(
        "use crate::{hub::Hub, config::{self, Config}};\n\
         // use crate::commented;\n\
         let s = \"crate::in_a_string\";\n\
         fn f() -> crate::plugin::Role { todo!() }\n\
         /* crate::in_a_block */ use crate::record::Record;\n",
    );
    let found = referenced_modules(&text, "crate");
    let expected: BTreeSet<String> = ["config", "hub", "plugin", "record"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("config".to_owned(), BTreeSet::from(["server".to_owned()])),
        ("server".to_owned(), BTreeSet::from(["config".to_owned()])),
    ]
    .into_iter()
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["config", "server"]]);
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The modules `lib.rs` declares, plus the binary's `cli`.
fn lib_modules(root: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let mut modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect();
    modules.insert("cli".to_owned());
    modules
}

/// `ws/handshake.rs` -> `ws`; `record.rs` -> `record`; `lib.rs` -> none.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The file modules of a folder: `x.rs` and `x/`.
fn sibling_modules(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_owned();
            (path.is_dir() || path.extension().is_some_and(|x| x == "rs")).then_some(name)
        })
        .collect()
}

/// The first segments after `prefix::` (`crate::hub::Hub` -> `hub`),
/// including each branch of `prefix::{a, b::c}`.
fn referenced_modules(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let needle = format!("{prefix}::");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.extend(first_segment(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_segment(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// The text without comments, string literals and char literals (doc links
/// and messages name modules without using them).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += if next == Some('\\') {
                chars[i + 2..].iter().position(|&q| q == '\'').unwrap_or(0) + 3
            } else {
                3
            };
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `'x'` or `'\n'`, not a lifetime (`'a`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Every strongly connected set of more than one node (Tarjan), each
/// sorted.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, node: &'a str) {
        let n = w.index.len();
        w.index.insert(node, n);
        w.low.insert(node, n);
        w.stack.push(node);
        for next in w.edges.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[node].min(w.low[next]);
                w.low.insert(node, low);
            } else if w.stack.contains(&next) {
                let low = w.low[node].min(w.index[next]);
                w.low.insert(node, low);
            }
        }
        if w.low[node] == w.index[node] {
            let mut set = Vec::new();
            while let Some(top) = w.stack.pop() {
                set.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                w.found.push(set);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}
