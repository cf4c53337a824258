//! The ESO compatibility table (`docs/eso-compat.md`) against the CRDs esox serves: every
//! field of every served schema has a row, every row names a field that exists, and every
//! field is honoured (with a test that exists), refused (with a test), written by esox as
//! status, a container of other fields, or a no-op exactly as in ESO. A field accepted and
//! silently ignored has status `ignored`; only the ones listed in [`KNOWN_IGNORED`] may, and
//! that list only shrinks.
//!
//! The table is the source; this test is what keeps it from drifting from the CRDs and the
//! tests it cites.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Fields known to be accepted and not yet honoured or refused (issue #15). Empty it; never
/// grow it.
const KNOWN_IGNORED: &[&str] = &[];

const STATUSES: &[&str] = &[
    "honoured",
    "refused",
    "output",
    "container",
    "no-op as in ESO",
    "ignored",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// `kind -> field paths` of the served v1 schemas (`[]` for array items, `{}` for map values).
fn schema_fields() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(node: &Value, path: &str, out: &mut BTreeSet<String>) {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if matches!(p.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                out.insert(p.clone());
                walk(sub, &p, out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), out);
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(values, &format!("{path}{{}}"), out);
        }
    }
    let mut out = BTreeMap::new();
    for crd in esox_api::crds() {
        let kind = crd.spec.names.kind.clone();
        let v1 = crd.spec.versions.iter().find(|v| v.name == "v1").unwrap();
        let schema = serde_json::to_value(
            v1.schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let mut fields = BTreeSet::new();
        walk(&schema, "", &mut fields);
        out.insert(kind, fields);
    }
    out
}

struct Row {
    line: usize,
    kinds: Vec<String>,
    field: String,
    status: String,
    tests: Vec<String>,
}

fn rows(text: &str) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 6 || cells[0] == "kind" || cells[0].starts_with("---") {
            continue;
        }
        out.push(Row {
            line: i + 1,
            kinds: cells[0].split(',').map(|k| k.trim().to_string()).collect(),
            field: cells[1].trim_matches('`').to_string(),
            status: cells[4].to_string(),
            tests: cells[5]
                .split(',')
                .map(|t| t.trim().trim_matches('`').to_string())
                .filter(|t| !t.is_empty() && t != "-")
                .collect(),
        });
    }
    out
}

/// Every `fn <name>` in the repository's Rust sources, by file.
fn test_functions() -> BTreeSet<String> {
    fn visit(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name == "target" || name.starts_with('.') {
                    continue;
                }
                visit(&path, root, out);
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                for line in text.lines() {
                    let l = line.trim_start();
                    let l = l.strip_prefix("async ").unwrap_or(l);
                    if let Some(rest) = l.strip_prefix("fn ") {
                        let f: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.insert(format!("{rel}::{f}"));
                    }
                }
            }
        }
    }
    let root = repo();
    let mut out = BTreeSet::new();
    for dir in ["runtime", "plugins", "e2e", "bench", "xtask"] {
        visit(&root.join(dir), &root, &mut out);
    }
    out
}

#[test]
fn every_served_field_has_one_row_and_every_row_is_backed() {
    let table = std::fs::read_to_string(repo().join("docs/eso-compat.md"))
        .expect("docs/eso-compat.md exists");
    let fields = schema_fields();
    let functions = test_functions();
    let mut problems = Vec::new();
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    let mut ignored = Vec::new();
    for row in rows(&table) {
        let at = format!("docs/eso-compat.md:{}", row.line);
        if !STATUSES.contains(&row.status.as_str()) {
            problems.push(format!("{at}: unknown status {:?}", row.status));
        }
        for kind in &row.kinds {
            let Some(known) = fields.get(kind) else {
                problems.push(format!("{at}: unknown kind {kind:?}"));
                continue;
            };
            if !known.contains(&row.field) {
                problems.push(format!("{at}: {kind} has no field {}", row.field));
            }
            if !covered.insert((kind.clone(), row.field.clone())) {
                problems.push(format!("{at}: {kind} {} has two rows", row.field));
            }
        }
        match row.status.as_str() {
            "honoured" | "refused" | "output" if row.tests.is_empty() => problems.push(format!(
                "{at}: {} is {} but names no test",
                row.field, row.status
            )),
            "ignored" => ignored.push(row.field.clone()),
            _ => {}
        }
        for test in &row.tests {
            if !functions.contains(test) {
                problems.push(format!("{at}: no `fn` {test} in the repository"));
            }
        }
    }
    for (kind, known) in &fields {
        for field in known {
            if !covered.contains(&(kind.clone(), field.clone())) {
                problems.push(format!("no row for {kind} {field}"));
            }
        }
    }
    for field in &ignored {
        if !KNOWN_IGNORED.contains(&field.as_str()) {
            problems.push(format!(
                "{field} is accepted and ignored: honour it or refuse it (do not add it to KNOWN_IGNORED)"
            ));
        }
    }
    for known in KNOWN_IGNORED {
        if !ignored.iter().any(|f| f == known) {
            problems.push(format!(
                "{known} is no longer ignored: remove it from KNOWN_IGNORED"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
