//! The documentation agrees with the code where a test can tell: every configuration key in
//! `config/default.toml` has its row in docs/configuration.md and no row names a key that does
//! not exist, and every link of the README and docs/ leads to a file of the repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every leaf key of a TOML table, as a dotted path (inline tables are walked too).
fn leaf_keys(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => leaf_keys(&path, inner, out),
            _ => {
                out.insert(path);
            }
        }
    }
}

/// The dotted keys named in the first column of the tables of a Markdown text.
fn documented_keys(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_owned()))
        .filter(|key| key.contains('.'))
        .collect()
}

#[test]
fn every_configuration_key_is_documented_and_every_documented_key_exists() {
    let defaults: toml::Table = std::fs::read_to_string(root().join("config/default.toml")).unwrap().parse().unwrap();
    let mut keys = BTreeSet::new();
    leaf_keys("", &defaults, &mut keys);
    let documented = documented_keys(&std::fs::read_to_string(root().join("docs/configuration.md")).unwrap());
    let missing: Vec<_> = keys.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&keys).collect();
    assert!(missing.is_empty(), "keys of config/default.toml without a row in docs/configuration.md: {missing:?}");
    assert!(unknown.is_empty(), "rows of docs/configuration.md naming no key of config/default.toml: {unknown:?}");
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CHANGELOG.md"), root().join("deploy/README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The targets of the inline links `[text](target)` of a Markdown text.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = markdown;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].to_owned());
        }
    }
    targets
}

#[test]
fn links_lead_to_files_of_the_repository() {
    let repository = root().canonicalize().unwrap();
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.starts_with("https://") || target.starts_with("http://") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            let resolved = file.parent().unwrap().join(path);
            let inside = resolved.canonicalize().is_ok_and(|p| p.starts_with(&repository));
            if !inside {
                broken.push(format!("{}: {target}", file.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing, or outside the repository:\n{}", broken.join("\n"));
}

#[test]
fn the_readers_see_a_wrong_key_or_link() {
    // The checks above can fail: a key missing from the docs and a link outside are caught.
    let mut keys = BTreeSet::new();
    leaf_keys("", &"[a]\nb = 1\nc = { d = 2 }".parse().unwrap(), &mut keys);
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["a.b", "a.c.d"]);
    assert_eq!(documented_keys("| `a.b` | 1 | x |\n| `word` | y |").into_iter().collect::<Vec<_>>(), ["a.b"]);
    assert_eq!(
        link_targets("see [x](../shared/spec.md) and [y](https://e.org)"),
        ["../shared/spec.md", "https://e.org"]
    );
}
