//! The shape of the code, kept by a test: dependencies between the service's top-level modules
//! point inward (docs/architecture.md draws the layers), and the development crates stay out
//! of the product. A `use crate::…` that breaks a layer fails here, naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Stands for every module listed before the one it is given to.
const ANY_BELOW: &[&str] = &["*"];

/// What each top-level module of `src/` may use of the others, in layer order (inner first).
/// Anything not listed is a forbidden edge.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("config", &["domain"]),
    ("metrics", &["domain", "config"]),
    ("telemetry", &["config"]),
    ("secrets", &["domain", "config"]),
    ("store", &["domain", "config", "metrics", "secrets"]),
    ("callbacks", &["domain", "config", "metrics", "secrets"]),
    ("delivery", &["domain", "config", "metrics", "secrets", "store"]),
    ("service", &["domain", "config", "metrics", "secrets", "store", "callbacks", "delivery"]),
    ("workers", &["domain", "config", "metrics", "secrets", "store", "callbacks", "delivery", "service"]),
    // Handlers: no store and no report dispatch of their own; they go through the service.
    ("api", &["domain", "config", "metrics", "secrets", "delivery", "service"]),
    // The top: everything above may use any module before it in this table.
    ("startup", ANY_BELOW),
    ("cli", ANY_BELOW),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::…`, groups (`crate::{a, b::c}`)
/// included; comment lines are skipped.
fn crate_uses(source: &str) -> BTreeSet<String> {
    let code: String =
        source.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i;
        at = start + "crate::".len();
        let preceded = start.checked_sub(1).map(|p| bytes[p]);
        if preceded.is_some_and(|b| b == b'$' || b.is_ascii_alphanumeric() || b == b'_') {
            continue; // `$crate::` in a macro, or an identifier ending in `crate`
        }
        if bytes.get(at) == Some(&b'{') {
            // A group: the first identifier after `{` or a `,` at depth one.
            let (mut depth, mut expect) = (0, true);
            for (k, c) in code[at..].char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect = true,
                    c if expect && (c.is_ascii_alphabetic() || c == '_') => {
                        let rest = &code[at + k..];
                        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                        found.insert(rest[..end].to_owned());
                        expect = false;
                    }
                    _ => {}
                }
            }
        } else {
            let rest = &code[at..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            found.insert(rest[..end].to_owned());
        }
    }
    found
}

#[test]
fn dependencies_between_modules_point_inward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    let allowed: BTreeMap<&str, Vec<&str>> = ALLOWED
        .iter()
        .enumerate()
        .map(|(i, (m, may))| (*m, if *may == ANY_BELOW { order[..i].to_vec() } else { may.to_vec() }))
        .collect();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut broken = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs");
        if matches!(module, "lib" | "main") {
            continue;
        }
        let Some(may) = allowed.get(module) else {
            broken.push(format!(
                "src/{}: module `{module}` has no place in the layers (add it to ALLOWED)",
                relative.display()
            ));
            continue;
        };
        for used in crate_uses(&std::fs::read_to_string(&file).unwrap()) {
            if used != module && !may.contains(&used.as_str()) {
                broken.push(format!("src/{}: `{module}` may not use `crate::{used}`", relative.display()));
            }
        }
    }
    assert!(broken.is_empty(), "dependencies that break the layers:\n{}", broken.join("\n"));
}

#[test]
fn the_layers_have_no_cycle() {
    // The table itself: each module may use only modules listed before it.
    let order: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    for (i, (module, may)) in ALLOWED.iter().enumerate() {
        for used in may.iter().filter(|m| **m != "*") {
            let j = order.iter().position(|m| m == used).unwrap_or_else(|| panic!("{used} is not a module"));
            assert!(j < i, "`{module}` may use `{used}`, which comes after it: a cycle is possible");
        }
    }
}

#[test]
fn the_scanner_reads_groups_and_skips_comments() {
    let source = "use crate::domain::X;\n/// see crate::store\nuse crate::{\n    config::{A, B},\n    metrics::M,\n};\nfn f() { $crate::api::x(); crate::service::y() }";
    let found: Vec<String> = crate_uses(source).into_iter().collect();
    assert_eq!(found, ["config", "domain", "metrics", "service"]);
}

#[test]
fn development_crates_are_not_in_the_product() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
    let dependencies = manifest["dependencies"].as_table().unwrap();
    let dev = manifest["dev-dependencies"].as_table().unwrap();
    for tool in ["verigram-dev-telegram", "verigram-testkit"] {
        assert!(!dependencies.contains_key(tool), "{tool} is a dependency of the product");
        assert!(dev.contains_key(tool), "{tool} is a dev-dependency");
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // (The test kit may serve a module's own unit tests; the manifest above keeps it out of
        // the product.)
        assert!(!text.contains("verigram_dev_telegram"), "{} uses the local Telegram peer", file.display());
    }
}
