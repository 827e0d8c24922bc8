//! The layout the architecture promises, checked from the source: no import cycle between the
//! top-level modules of any crate of the workspace (test code aside), and crate dependencies that
//! point one way only: the storage and availability crates know nothing of the service, the
//! service library nothing of the simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// Every crate's source directory.
fn crates() -> Vec<(String, PathBuf)> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("workspace manifest");
    let start = manifest.find("members = [").expect("workspace members");
    let end = start + manifest[start..].find(']').expect("end of members");
    manifest[start..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|member| (member.to_string(), root().join(member).join("src")))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            // Test-only directories.
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name != "tests.rs" && !name.ends_with("_tests.rs") {
                out.push(path);
            }
        }
    }
}

/// The module path of a file below `src` (`a/b.rs` and `a/b/mod.rs` are `[a, b]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("below src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// The code of a file without comments and without a trailing `#[cfg(test)] mod tests { .. }`.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of each path after a `crate::` or `super::` prefix: one identifier, or
/// one per item of a `{..}` group.
fn first_segments(rest: &str, found: &mut BTreeSet<String>) {
    let Some(group) = rest.strip_prefix('{') else {
        found.insert(ident_at(rest).to_string());
        return;
    };
    let mut depth = 0;
    let mut item_start = true;
    for (j, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => {
                found.insert(ident_at(&group[j..]).to_string());
                item_start = false;
            }
            c if !c.is_whitespace() => item_start = false,
            _ => {}
        }
    }
}

/// The top-level modules a file's code names (through `crate::` and `super::` paths); `path` is
/// the file's module path.
fn references(code: &str, path: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            first_segments(rest, &mut found);
        }
    }
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        let before = rest[..i].chars().last();
        rest = &rest[i..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        // Only a chain of supers that climbs to the crate root leaves the top-level module.
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') && ups == path.len()
        {
            first_segments(rest, &mut found);
        }
    }
    found
}

/// Every cycle's first edge, as a readable path, for one crate.
fn cycles(name: &str, src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let top: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(src, f).first().cloned())
        .collect();
    // top module -> (other top module -> a file that makes the edge)
    let mut edges: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in &files {
        let path = module_path(src, file);
        let Some(from) = path.first() else {
            continue; // the crate root declares every module
        };
        let text = std::fs::read_to_string(file).expect("source file");
        for to in references(&code(&text), &path) {
            if to != *from && top.contains(&to) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    let mut found = Vec::new();
    for start in &top {
        // A path back to `start` from any of its successors.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for (next, file) in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle = trail.clone();
                    cycle.push(next.clone());
                    found.push(format!(
                        "{name}: {} (first edge in {})",
                        cycle.join(" -> "),
                        file.strip_prefix(root()).unwrap_or(file).display()
                    ));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

#[test]
fn no_crate_has_an_import_cycle_between_its_top_level_modules() {
    let mut all = Vec::new();
    for (name, src) in crates() {
        all.extend(cycles(&name, &src));
    }
    assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("b")).expect("dir");
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").expect("file");
    std::fs::write(src.join("a.rs"), "use crate::b::Thing;\n").expect("file");
    std::fs::write(src.join("b/mod.rs"), "mod inner;\n").expect("file");
    std::fs::write(
        src.join("b/inner.rs"),
        "use super::super::{a::Other, b};\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n",
    )
    .expect("file");
    let found = cycles("example", src);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("example: a -> b -> a"), "{found:?}");
}

/// The `[dependencies]` (and dev-dependencies) of a member, by name.
fn dependencies(member: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(root().join(member).join("Cargo.toml")).expect("member manifest");
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_deps = line.contains("dependencies");
            continue;
        }
        if in_deps
            && let Some((name, _)) = line.split_once('=')
            && !line.trim_start().starts_with('#')
        {
            deps.push(name.trim().to_string());
        }
    }
    deps
}

#[test]
fn crate_dependencies_point_one_way() {
    let service = [
        "citytel",
        "citytel-ingest",
        "citytel-firmware-sim",
        "citytel-testkit",
    ];
    for member in ["storage", "availability"] {
        let deps = dependencies(member);
        for forbidden in service {
            assert!(
                !deps.iter().any(|d| d == forbidden),
                "{member} depends on {forbidden}: {deps:?}"
            );
        }
    }
    assert!(
        !dependencies("storage")
            .iter()
            .any(|d| d == "citytel-availability"),
        "storage and availability are independent"
    );
    let ingest = dependencies("ingest");
    for forbidden in ["citytel-firmware-sim", "citytel", "citytel-testkit"] {
        assert!(
            !ingest.iter().any(|d| d == forbidden),
            "the service library depends on {forbidden}"
        );
    }
}
