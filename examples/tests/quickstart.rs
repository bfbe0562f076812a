//! The README's quickstarts are `examples/quickstart.rs` (actix-web) and
//! `examples/quickstart_axum.rs` as they stand (which `cargo test` builds), and each one's
//! dependency list names every crate its code uses.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

/// The body of the first fenced block of `kind` after `heading` in `text`.
fn block<'a>(text: &'a str, heading: &str, kind: &str) -> &'a str {
    let section = &text[text
        .find(heading)
        .unwrap_or_else(|| panic!("no `{heading}`"))..];
    let fence = format!("```{kind}");
    let start = section
        .find(&fence)
        .unwrap_or_else(|| panic!("no {fence} block"));
    let body = &section[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").unwrap()]
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

/// The two quickstarts: the README's heading, and the example file.
const QUICKSTARTS: [(&str, &str, &str); 2] = [
    (
        "## Quickstart: actix-web",
        "examples/quickstart.rs",
        include_str!("../examples/quickstart.rs"),
    ),
    (
        "## Quickstart: axum",
        "examples/quickstart_axum.rs",
        include_str!("../examples/quickstart_axum.rs"),
    ),
];

#[test]
fn the_readme_quickstarts_are_the_example_files() {
    let readme = readme();
    for (heading, path, file) in QUICKSTARTS {
        let shown = block(&readme, heading, "rust");
        assert!(
            shown == file,
            "the README's `{heading}` differs from {path}: copy the file into the README's block"
        );
    }
}

#[test]
fn each_quickstart_lists_every_crate_it_uses() {
    let readme = readme();
    for (heading, path, code) in QUICKSTARTS {
        let listed: BTreeSet<String> = block(&readme, heading, "toml")
            .lines()
            .filter_map(|line| {
                line.split_once('=')
                    .map(|(name, _)| name.trim().replace('-', "_"))
            })
            .collect();
        // Crate names used as the first segment of a path: `use x::`, `x::` in expressions,
        // and `#[x::...]` attributes.
        let used: BTreeSet<String> = code
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .filter_map(|word| word.split_once("::").map(|(first, _)| first.to_owned()))
            .filter(|first| {
                !first.is_empty() && first.chars().all(|c| c.is_lowercase() || c == '_')
            })
            .filter(|first| {
                !["std", "core", "crate", "self", "super", "web"].contains(&first.as_str())
            })
            .collect();
        let missing: Vec<_> = used.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "{path} uses {missing:?}, not in its [dependencies]: {listed:?}"
        );
    }
}
