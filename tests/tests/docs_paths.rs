//! The docs check: every repository path, `cargo` command and `nextgen` command that the
//! README, `docs/`, the guide (`nextgen-events/docs/`) and ARCHITECTURE.md name must exist,
//! so that a moved file or a renamed target fails here instead of misleading a reader.
//!
//! What is checked, found in backticked spans, link targets and the lines of code blocks:
//!
//! - a path whose first segment is a top-level file or folder of the repository
//!   (`scripts/chaos.sh`, `nextgen-events/src/inbox/`, `docs/redis.md`): it exists. A path
//!   whose first segment is not one (a user's own `webhooks.sqlite3`, `src/bin/server/`
//!   relative to a crate) is taken as deliberately hypothetical and left alone. A placeholder
//!   (`<file>`, `*`, `...`) ends the part that is checked;
//! - `cargo run|test|bench|build -p PACKAGE [--bin B] [--example E] [--test T] [--bench B]
//!   [--features F]` and `cargo install --path P`: the package, each target and each feature
//!   exist (read from the Cargo.toml files and the target folders cargo discovers);
//! - `nextgen SUBCOMMAND`, and `cargo run -p nextgen-cli -- SUBCOMMAND`: the subcommand is one
//!   of the CLI's.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The `nextgen` command's subcommands (`nextgen-cli/src/main.rs`).
const SUBCOMMANDS: [&str; 4] = ["sign", "verify", "trigger", "inbox"];

/// Top-level entries that are build output, not part of the repository.
const NOT_IN_THE_REPOSITORY: [&str; 4] = [".git", "target", "mutants.out", "mutants.out.old"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// One package's name, targets and features.
#[derive(Debug, Default)]
struct Package {
    bins: BTreeSet<String>,
    examples: BTreeSet<String>,
    tests: BTreeSet<String>,
    benches: BTreeSet<String>,
    features: BTreeSet<String>,
}

/// The `name = "..."` value of a Cargo.toml line, if it is one.
fn name_value(line: &str) -> Option<String> {
    let (key, value) = line.split_once('=')?;
    (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
}

/// The `.rs` files (as target names) and folders with a `main.rs` under `dir`, as cargo
/// discovers targets.
fn discovered(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return names;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            if let Some(stem) = path.file_stem() {
                names.insert(stem.to_string_lossy().into_owned());
            }
        } else if path.join("main.rs").is_file() {
            names.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names
}

/// The package in `dir`: its Cargo.toml's explicit targets and features, and the targets
/// cargo discovers in its folders.
fn package(dir: &Path) -> Option<(String, Package)> {
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let mut name = None;
    let mut package = Package::default();
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match section.as_str() {
            "package" => name = name.or_else(|| name_value(line)),
            "bin" => package.bins.extend(name_value(line)),
            "example" => package.examples.extend(name_value(line)),
            "test" => package.tests.extend(name_value(line)),
            "bench" => package.benches.extend(name_value(line)),
            "features" => {
                if let Some((feature, _)) = line.split_once('=') {
                    package.features.insert(feature.trim().to_owned());
                }
            }
            "dependencies" if line.contains("optional = true") => {
                if let Some((dependency, _)) = line.split_once('=') {
                    package.features.insert(dependency.trim().to_owned());
                }
            }
            _ => {}
        }
    }
    let name = name?;
    if dir.join("src/main.rs").is_file() && package.bins.is_empty() {
        package.bins.insert(name.clone());
    }
    package.bins.extend(discovered(&dir.join("src/bin")));
    package.examples.extend(discovered(&dir.join("examples")));
    package.tests.extend(discovered(&dir.join("tests")));
    package.benches.extend(discovered(&dir.join("benches")));
    Some((name, package))
}

/// Every package of the repository (the workspace's and the fuzz crate), by name.
fn packages(root: &Path) -> BTreeMap<String, Package> {
    let mut packages = BTreeMap::new();
    for entry in fs::read_dir(root).expect("the repository").flatten() {
        if let Some((name, package)) = package(&entry.path()) {
            packages.insert(name, package);
        }
    }
    packages
}

/// The repository's top-level files and folders: what a path must start with to be checked.
fn top_level(root: &Path) -> BTreeSet<String> {
    fs::read_dir(root)
        .expect("the repository")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !NOT_IN_THE_REPOSITORY.contains(&name.as_str()))
        .collect()
}

/// What one document names: text to look for paths and commands in, with where it was.
struct Mention {
    line: usize,
    text: String,
    /// A link target: relative to the document's folder, not the repository's root.
    link: bool,
}

/// The backticked spans (a span may go on over a line break), link targets and code-block
/// lines of a Markdown document.
fn mentions(markdown: &str) -> Vec<Mention> {
    let mut found = Vec::new();
    let mut fence: Option<String> = None;
    // The prose between fences, line by line, for the spans that cross line breaks.
    let mut prose: Vec<(usize, &str)> = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_owned()),
            };
            spans(&prose, &mut found);
            prose.clear();
            continue;
        }
        if let Some(info) = &fence {
            // Rust and TOML blocks are code, not commands or paths to check.
            if !info.starts_with("rust") && !info.starts_with("toml") {
                found.push(Mention {
                    line: number,
                    text: line.to_owned(),
                    link: false,
                });
            }
            continue;
        }
        prose.push((number, line));
        links(number, line, &mut found);
    }
    spans(&prose, &mut found);
    found
}

/// The backticked spans of `lines`, each with the line it starts on; a span ends with its
/// paragraph at the latest.
fn spans(lines: &[(usize, &str)], found: &mut Vec<Mention>) {
    let mut open: Option<(usize, String)> = None;
    for (number, line) in lines {
        if line.trim().is_empty() {
            open = None;
            continue;
        }
        if let Some((_, text)) = &mut open {
            text.push(' ');
        }
        for (index, part) in line.split('`').enumerate() {
            // Every part but the first follows a backtick, which opens or closes a span.
            if index > 0 {
                match open.take() {
                    Some((start, text)) => found.push(Mention {
                        line: start,
                        text,
                        link: false,
                    }),
                    None => open = Some((*number, String::new())),
                }
            }
            if let Some((_, text)) = &mut open {
                text.push_str(part);
            }
        }
    }
}

/// The link targets of a line that are paths (not URLs, rustdoc paths or anchors).
fn links(number: usize, line: &str, found: &mut Vec<Mention>) {
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let target = &rest[at + 2..];
        let Some(end) = target.find(')') else { break };
        let target = &target[..end];
        if !target.contains("://") && !target.contains("::") && !target.starts_with('#') {
            found.push(Mention {
                line: number,
                text: target.split('#').next().unwrap_or(target).to_owned(),
                link: true,
            });
        }
        rest = &rest[at + 2 + end..];
    }
}

/// The part of `word` that names a path, before any placeholder, with the punctuation around
/// it removed; `None` when it is not path-like.
fn path_part(word: &str) -> Option<String> {
    let word = word
        .trim_start_matches(['(', '[', '"', '\'', '<'])
        .trim_end_matches(['.', ',', ';', ':', ')', ']', '"', '\'', '?', '!']);
    if word.is_empty() || word.starts_with('-') || word.contains("://") {
        return None;
    }
    // `NEXTGEN_RUN_LOG=PATH`, `--body=x`: the value is what might be a path.
    let word = word.rsplit('=').next().unwrap_or(word);
    let mut kept = Vec::new();
    for segment in word.split('/') {
        if segment.contains(['<', '*', '{', '$']) || segment == "..." || segment == "…" {
            break;
        }
        kept.push(segment);
    }
    let path = kept.join("/");
    (!path.is_empty()).then_some(path)
}

struct Checker {
    root: PathBuf,
    /// The folders of the packages, relative to the root.
    package_dirs: Vec<String>,
    top_level: BTreeSet<String>,
    packages: BTreeMap<String, Package>,
    problems: Vec<String>,
    paths_checked: usize,
    commands_checked: usize,
}

impl Checker {
    fn check_path(&mut self, document: &Path, mention: &Mention, word: &str) {
        let Some(path) = path_part(word) else { return };
        let resolved = if mention.link {
            let folder = document.parent().unwrap_or(Path::new(""));
            normalize(&folder.join(&path))
        } else {
            path.trim_start_matches("./").to_owned()
        };
        let first = resolved.split('/').next().unwrap_or_default();
        if !self.top_level.contains(first) {
            return;
        }
        // A lone top-level name (`README.md`, `tests`) exists by definition.
        if !resolved.contains('/') && !mention.link {
            return;
        }
        self.paths_checked += 1;
        // A crate's own path, as the code map writes them under the crate (`tests/ui/` of the
        // `tests` crate), counts too.
        let in_a_crate = || {
            self.package_dirs
                .iter()
                .any(|dir| self.root.join(dir).join(&resolved).exists())
        };
        if !self.root.join(&resolved).exists() && !in_a_crate() {
            self.problems.push(format!(
                "{}:{}: `{resolved}` does not exist (named as `{word}`)",
                document.display(),
                mention.line
            ));
        }
    }

    fn check_commands(&mut self, document: &Path, mention: &Mention) {
        let words: Vec<&str> = mention
            .text
            .split_whitespace()
            .map(|word| word.trim_matches(['`', '(', ')', ',', ';']))
            .collect();
        for (index, word) in words.iter().enumerate() {
            let starts_command = index == 0
                || matches!(
                    words[index - 1],
                    "$" | "&&" | "|" | "||" | ";" | "then" | "do"
                )
                || words[index - 1].contains('=');
            if *word == "cargo" && starts_command {
                self.check_cargo(document, mention, &words[index + 1..]);
            }
            if *word == "nextgen" && starts_command {
                match words.get(index + 1) {
                    Some(subcommand) if !subcommand.starts_with('-') => {
                        self.check_subcommand(document, mention, subcommand);
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_subcommand(&mut self, document: &Path, mention: &Mention, subcommand: &str) {
        self.commands_checked += 1;
        if !SUBCOMMANDS.contains(&subcommand) {
            self.problems.push(format!(
                "{}:{}: `nextgen {subcommand}`: the CLI's subcommands are {}",
                document.display(),
                mention.line,
                SUBCOMMANDS.join(", ")
            ));
        }
    }

    fn check_cargo(&mut self, document: &Path, mention: &Mention, args: &[&str]) {
        let Some(command) = args.first() else { return };
        if !matches!(
            *command,
            "run" | "test" | "bench" | "build" | "install" | "doc"
        ) {
            return;
        }
        self.commands_checked += 1;
        let place = format!("{}:{}", document.display(), mention.line);
        let mut package: Option<&str> = None;
        let mut targets: Vec<(&str, &str)> = Vec::new();
        let mut features: Vec<&str> = Vec::new();
        let mut index = 1;
        while index < args.len() {
            let arg = args[index];
            let value = args.get(index + 1).copied().unwrap_or_default();
            match arg {
                // What follows `--` is the program's, or a shell's next command.
                "--" => {
                    if package == Some("nextgen-cli") && !value.is_empty() {
                        self.check_subcommand(document, mention, value);
                    }
                    break;
                }
                "&&" | "|" | ";" | "#" => break,
                "-p" | "--package" => package = Some(value),
                "--bin" | "--example" | "--test" | "--bench" => targets.push((arg, value)),
                "--features" | "-F" => features.extend(value.split(',')),
                "--path" => {
                    if !self.root.join(value).join("Cargo.toml").is_file() {
                        self.problems
                            .push(format!("{place}: `--path {value}`: no crate there"));
                    }
                }
                _ => {
                    index += 1;
                    continue;
                }
            }
            index += 2;
        }
        let Some(name) = package else {
            if !targets.is_empty() {
                self.problems.push(format!(
                    "{place}: a target without `-p PACKAGE`: say which package it is in"
                ));
            }
            return;
        };
        let Some(found) = self.packages.get(name) else {
            self.problems.push(format!(
                "{place}: no package `{name}` (the packages: {})",
                self.packages.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            return;
        };
        for (kind, target) in targets {
            let known = match kind {
                "--bin" => &found.bins,
                "--example" => &found.examples,
                "--test" => &found.tests,
                _ => &found.benches,
            };
            if !known.contains(target) {
                self.problems.push(format!(
                    "{place}: `{kind} {target}`: package `{name}` has {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for feature in features {
            if !found.features.contains(feature) {
                self.problems.push(format!(
                    "{place}: `--features {feature}`: package `{name}` has no such feature"
                ));
            }
        }
    }
}

/// `path` with `.` and `..` segments resolved, as a `/`-separated relative path.
fn normalize(path: &Path) -> String {
    let mut segments: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                segments.pop();
            }
            std::path::Component::Normal(segment) => {
                segments.push(segment.to_string_lossy().into_owned());
            }
            _ => {}
        }
    }
    segments.join("/")
}

/// The documents checked, relative to the repository's root.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut documents = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    for folder in ["docs", "nextgen-events/docs"] {
        let mut found: Vec<PathBuf> = fs::read_dir(root.join(folder))
            .expect("a docs folder")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .map(|path| Path::new(folder).join(path.file_name().expect("a file name")))
            .collect();
        found.sort();
        documents.extend(found);
    }
    documents
}

fn checker() -> Checker {
    let root = root();
    let package_dirs = fs::read_dir(&root)
        .expect("the repository")
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    Checker {
        package_dirs,
        top_level: top_level(&root),
        packages: packages(&root),
        root,
        problems: Vec::new(),
        paths_checked: 0,
        commands_checked: 0,
    }
}

fn check_document(checker: &mut Checker, document: &Path, markdown: &str) {
    for mention in mentions(markdown) {
        for word in mention.text.split_whitespace() {
            checker.check_path(document, &mention, word);
        }
        if !mention.link {
            checker.check_commands(document, &mention);
        }
    }
}

#[test]
fn every_path_and_command_the_docs_name_exists() {
    let mut checker = checker();
    for document in documents(&checker.root.clone()) {
        let markdown = fs::read_to_string(checker.root.join(&document))
            .unwrap_or_else(|error| panic!("{}: {error}", document.display()));
        check_document(&mut checker, &document, &markdown);
    }
    assert!(
        checker.problems.is_empty(),
        "the docs name what does not exist:\n{}",
        checker.problems.join("\n")
    );
    // The extraction finds what it is meant to: a check that finds nothing passes trivially.
    assert!(checker.paths_checked > 20, "{}", checker.paths_checked);
    assert!(
        checker.commands_checked > 10,
        "{}",
        checker.commands_checked
    );
}

/// The check itself catches each kind of stale mention, and leaves hypothetical paths alone.
#[test]
fn the_check_catches_what_went_stale() {
    let cases = [
        ("`scripts/chaos.sh`", true),
        ("`scripts/gone.sh`", false),
        ("see [the tools](tools.md)", true),
        ("see [the tools](tool.md)", false),
        ("see [the guide](../nextgen-events/docs/inbox.md)", true),
        (
            "`cargo run -p nextgen-examples --example\nquickstart`",
            true,
        ),
        (
            "`cargo run -p nextgen-examples --example\nquickstar`",
            false,
        ),
        ("`nextgen-events/src/inbox/retry.rs`", true),
        ("`nextgen-events/src/inbox.rs`", false),
        ("`nextgen-events/src/...`", true),
        ("`mutants.out/<file>/mutants.out/`", true),
        ("`webhooks.sqlite3`, `src/bin/server/`", true),
        ("`cargo run -p nextgen-examples --bin server`", true),
        ("`cargo run -p nextgen-examples --bin trigger`", false),
        ("`cargo run -p nextgen-examples --example quickstart`", true),
        ("`cargo test -p nextgen-tests --test inbox`", true),
        ("`cargo test -p nextgen-tests --test nowhere`", false),
        ("`cargo test -p nextgen-nothing`", false),
        (
            "`cargo test -p nextgen-cli --features redis-tests --test inbox`",
            true,
        ),
        ("`cargo test -p nextgen-cli --features mysql`", false),
        (
            "`cargo run -p nextgen-cli -- trigger charge.succeeded`",
            true,
        ),
        ("`cargo run -p nextgen-cli -- replay`", false),
        (
            "```sh\nnextgen inbox --sqlite webhooks.sqlite3 stats\n```",
            true,
        ),
        ("```sh\nnextgen replay evt_1\n```", false),
        ("`NEXTGEN_RUN_LOG=PATH nextgen trigger --all`", true),
        ("the `nextgen` command", true),
    ];
    for (markdown, fine) in cases {
        let mut checker = checker();
        check_document(&mut checker, Path::new("docs/example.md"), markdown);
        assert_eq!(
            checker.problems.is_empty(),
            fine,
            "{markdown}: {:?}",
            checker.problems
        );
    }
}
