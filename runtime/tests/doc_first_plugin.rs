//! Runs docs/first-plugin.md as written: every tagged block, in order, in a
//! temporary directory, with `sluice` (this build) and `python3` (the test
//! venv, which has `websockets`) first on PATH.
//!
//! A block is tagged by an HTML comment on the line before its fence
//! (invisible when the page is rendered):
//!
//! - `<!-- test: run -->` on a `console` block: each `$ command` runs (a
//!   `cd DIR` moves the walk-through); the lines after it must appear in
//!   its output, in order. `...` alone skips lines; `...` inside a line
//!   stands for any text.
//! - `<!-- test: start NAME -->`: the block's one command keeps running in
//!   the background (a second terminal); its lines are waited for.
//! - `<!-- test: output-of NAME -->`: everything NAME has printed so far
//!   must be exactly these lines, once the last one arrived.
//! - `<!-- test: write PATH -->`: the block is the whole file.
//! - `<!-- test: replace-item PATH -->`: the block replaces the `fn` of the
//!   same name in PATH (with its doc comment).
//! - `<!-- test: append-to-module PATH -->`: the block goes before the last
//!   closing brace of PATH (the end of its `mod tests`).
//!
//! The doc shows example values that differ on each run: the listener's
//! port (`8080`, replaced by a free port) and the embedded broker's address
//! (`127.0.0.1:40913`, replaced by the one `sluice run` printed). Every
//! `console` block must be tagged, so no command in the doc goes untested.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::scaffold::{clean_command, link_shared_target};

const DOC: &str = include_str!("../../docs/first-plugin.md");
/// The example values in the doc.
const DOC_LISTENER: &str = "127.0.0.1:8080";
const DOC_BROKER: &str = "127.0.0.1:40913";
/// A bound on waiting for a background process's line, so a broken doc
/// fails instead of hanging (not a speed requirement).
const PATIENCE: Duration = Duration::from_secs(120);

/// One tagged block of the doc.
struct Block {
    directive: Vec<String>,
    body: String,
    line: usize,
}

fn tagged_blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let lines: Vec<&str> = doc.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```").filter(|s| !s.is_empty()) else {
            i += 1;
            continue;
        };
        let start = i;
        let directive = start
            .checked_sub(1)
            .and_then(|p| lines[p].strip_prefix("<!-- test: "))
            .and_then(|d| d.strip_suffix(" -->"));
        i += 1;
        let mut body = String::new();
        while i < lines.len() && lines[i] != "```" {
            body.push_str(lines[i]);
            body.push('\n');
            i += 1;
        }
        i += 1;
        match directive {
            Some(d) => blocks.push(Block {
                directive: d.split_whitespace().map(str::to_owned).collect(),
                body,
                line: start + 1,
            }),
            None => assert!(
                info != "console",
                "docs/first-plugin.md:{}: a console block without a test tag",
                start + 1
            ),
        }
    }
    blocks
}

/// A process started by a `start` block, killed at the end.
struct Background {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Background {
    /// Waits until `expected` appear in order in what it printed.
    fn wait_for(&mut self, expected: &[String], exact: bool, at: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let lines = self.lines.lock().unwrap().clone();
            let matched = if exact {
                lines.len() == expected.len()
                    && lines.iter().zip(expected).all(|(l, e)| matches(e, l))
            } else {
                contains_in_order(&lines, expected)
            };
            if matched {
                return;
            }
            let exited = self.child.try_wait().unwrap();
            let wanted_more = !exact || lines.len() < expected.len();
            if Instant::now() > deadline || exited.is_some() || !wanted_more {
                panic!(
                    "docs/first-plugin.md:{at}: `{}` printed\n{}\n(exit: {exited:?}), expected{}\n{}",
                    self.name,
                    lines.join("\n"),
                    if exact { " exactly" } else { "" },
                    expected.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Does `line` fit `pattern`, where `...` stands for any text?
fn matches(pattern: &str, line: &str) -> bool {
    let (pattern, line) = (pattern.trim(), line.trim());
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let mut rest = line;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

fn contains_in_order(lines: &[String], expected: &[String]) -> bool {
    let mut lines = lines.iter();
    expected
        .iter()
        .filter(|e| e.trim() != "...")
        .all(|e| lines.any(|l| matches(e, l)))
}

/// The walk-through's state: where it is and what it substitutes.
struct Walk {
    root: PathBuf,
    cwd: PathBuf,
    path: std::ffi::OsString,
    cache: PathBuf,
    substitutions: Vec<(String, String)>,
    background: Vec<Background>,
}

impl Walk {
    fn substitute(&self, text: &str) -> String {
        self.substitutions
            .iter()
            .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
    }

    fn command(&self, command: &str) -> std::process::Command {
        let mut c = clean_command("sh", &self.cwd);
        c.arg("-c")
            // One stream, in the order a terminal shows it.
            .arg(format!("exec {command} 2>&1"))
            .env("PATH", &self.path)
            .env("XDG_CACHE_HOME", &self.cache);
        c
    }

    /// `$ cmd` lines and the output expected after each.
    fn console(&self, body: &str) -> Vec<(String, Vec<String>)> {
        let mut steps: Vec<(String, Vec<String>)> = Vec::new();
        for line in self.substitute(body).lines() {
            match line.strip_prefix("$ ") {
                Some(command) => steps.push((command.to_owned(), Vec::new())),
                None => steps
                    .last_mut()
                    .expect("a console block starts with `$ `")
                    .1
                    .push(line.to_owned()),
            }
        }
        steps
    }

    fn run(&mut self, block: &Block) {
        for (command, expected) in self.console(&block.body) {
            if let Some(dir) = command.strip_prefix("cd ") {
                self.cwd = self.cwd.join(dir);
                continue;
            }
            let out = self.command(&command).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            assert!(
                out.status.success() && contains_in_order(&lines, &expected),
                "docs/first-plugin.md:{}: `{command}` ({}) printed\n{text}\nexpected\n{}",
                block.line,
                out.status,
                expected.join("\n")
            );
            self.link_new_crates();
        }
    }

    /// Generated crates build into the tests' shared target directory.
    fn link_new_crates(&self) {
        for entry in std::fs::read_dir(&self.root).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join("Cargo.toml").exists() && !dir.join("target").exists() {
                link_shared_target(&dir);
            }
        }
    }

    fn start(&mut self, name: &str, block: &Block) {
        let steps = self.console(&block.body);
        let [(command, expected)] = &steps[..] else {
            panic!("docs/first-plugin.md:{}: start one command", block.line);
        };
        let mut child = self
            .command(command)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut background = Background {
            name: name.to_owned(),
            child,
            lines,
        };
        background.wait_for(expected, false, block.line);
        let printed = background.lines.lock().unwrap().clone();
        if let Some(broker) = printed
            .iter()
            .find_map(|l| l.strip_prefix("embedded Kafka broker at "))
        {
            let address = broker.split(' ').next().unwrap().to_owned();
            for (from, to) in &mut self.substitutions {
                if from == DOC_BROKER {
                    *to = address.clone();
                }
            }
        }
        self.background.push(background);
    }

    fn output_of(&mut self, name: &str, block: &Block) {
        let expected: Vec<String> = self
            .substitute(&block.body)
            .lines()
            .map(str::to_owned)
            .collect();
        let background = self
            .background
            .iter_mut()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("docs/first-plugin.md:{}: nothing named {name}", block.line));
        background.wait_for(&expected, true, block.line);
    }

    fn file(&self, path: &str) -> PathBuf {
        self.cwd.join(path)
    }

    fn edit(&self, kind: &str, path: &str, block: &Block) {
        let file = self.file(path);
        let text = std::fs::read_to_string(&file).unwrap();
        let edited = match kind {
            "replace-item" => replace_item(&text, &block.body),
            "append-to-module" => {
                let end = text.trim_end().rfind('}').expect("a closing brace");
                format!("{}\n{}{}", text[..end].trim_end(), block.body, &text[end..])
            }
            other => panic!("unknown edit {other}"),
        };
        std::fs::write(file, edited).unwrap();
    }
}

/// Replaces the `fn` that `item` defines (doc comment included) in `text`.
fn replace_item(text: &str, item: &str) -> String {
    let signature = item
        .lines()
        .find(|l| l.trim_start().starts_with("fn "))
        .expect("the block defines a fn");
    let name = signature.trim_start().split('(').next().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(name) && l.contains('('))
        .unwrap_or_else(|| panic!("no `{name}` to replace"));
    let indent = &lines[at][..lines[at].len() - lines[at].trim_start().len()];
    let mut first = at;
    while first > 0 && lines[first - 1].trim_start().starts_with("///") {
        first -= 1;
    }
    let close = format!("{indent}}}");
    let last = at
        + lines[at..]
            .iter()
            .position(|l| *l == close)
            .expect("the fn ends");
    let mut out: Vec<String> = lines[..first].iter().map(|l| l.to_string()).collect();
    out.extend(item.lines().map(str::to_owned));
    out.extend(lines[last + 1..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

fn bin_dir(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), bin.join("sluice")).unwrap();
    let python = sluice_tests::python::python().expect("the test venv's python");
    let wrapper = bin.join("python3");
    // A wrapper, not a link: a venv is found from the interpreter's own path.
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec '{}' \"$@\"\n", python.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn the_first_plugin_walk_through_works_as_written() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("walk");
    std::fs::create_dir(&root).unwrap();
    let bin = bin_dir(temp.path());
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let listener = sluice_tests::ports::free_addr().to_string();
    let mut walk = Walk {
        cwd: root.clone(),
        root,
        path,
        cache: temp.path().join("cache"),
        // Until `sluice run` prints it, the broker's address matches anything.
        substitutions: vec![
            (DOC_LISTENER.to_owned(), listener),
            (DOC_BROKER.to_owned(), "...".to_owned()),
        ],
        background: Vec::new(),
    };
    let blocks = tagged_blocks(DOC);
    assert!(blocks.len() >= 8, "the doc lost its tagged blocks");
    for block in &blocks {
        let d: Vec<&str> = block.directive.iter().map(String::as_str).collect();
        match d[..] {
            ["run"] => walk.run(block),
            ["start", name] => walk.start(name, block),
            ["output-of", name] => walk.output_of(name, block),
            ["write", path] => {
                std::fs::write(walk.file(path), walk.substitute(&block.body)).unwrap()
            }
            [kind @ ("replace-item" | "append-to-module"), path] => walk.edit(kind, path, block),
            _ => panic!("docs/first-plugin.md:{}: unknown tag {d:?}", block.line),
        }
    }
}

#[test]
fn patterns_match_like_the_doc_says() {
    assert!(matches(
        "built .../release/x.wasm",
        "built /tmp/a/release/x.wasm"
    ));
    assert!(matches(
        "size: ... KiB (... bytes)",
        "size: 1.5 KiB (1536 bytes)"
    ));
    assert!(!matches("size: ... KiB", "size: 3 MiB"));
    assert!(matches("ready", "  ready "));
    let lines = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert!(contains_in_order(
        &lines,
        &["a".into(), "...".into(), "c".into()]
    ));
    assert!(!contains_in_order(&lines, &["c".into(), "a".into()]));
}
