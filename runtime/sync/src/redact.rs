//! Value-free error text. Sync errors end up in Kubernetes Events and controller logs, which
//! people who may not read Secrets can see, so an error built from a secret value may only say
//! *what kind* of problem and *where* (line, column, byte offset), never quote the value or a
//! byte of it. serde's data errors (`invalid type: string "hunter2", expected a map`) and the
//! base64 crate's (`Invalid symbol 45, offset 7.`) do quote, so they are never shown as-is.
//!
//! Error details that embed user-controlled text (keys, template output positions, regexps)
//! are also capped in length.

/// Longest error detail kept; longer text is cut (on a character boundary) and marked.
pub const MAX_DETAIL: usize = 1024;

/// Cuts `s` to [`MAX_DETAIL`] bytes.
pub(crate) fn cap_detail(mut s: String) -> String {
    if s.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("... (truncated)");
    }
    s
}

/// Go's name for a JSON value's kind, as in `json: cannot unmarshal <kind> into Go value ...`.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// A serde_json parse error as category and position. Syntax and EOF messages are fixed texts
/// (`expected value`, `EOF while parsing a string`); data errors can quote the input and are
/// reduced to their position.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Syntax | Category::Eof => {
            let full = e.to_string();
            let head = full.split(" at line ").next().unwrap_or("syntax error");
            format!("invalid JSON: {head} at {at}")
        }
        Category::Data => format!("invalid JSON data at {at}"),
        Category::Io => "I/O error while reading JSON".to_string(),
    }
}

/// A serde_yaml parse error as category and position. libyaml's problems are fixed texts;
/// serde_yaml's own messages (`invalid type: string "…"`, `duplicate entry with key "…"`) can
/// quote the input and are reduced to a category.
pub(crate) fn yaml_error(e: &serde_yaml::Error) -> String {
    let full = e.to_string();
    let head = full
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .split(" at position ")
        .next()
        .unwrap_or_default();
    let head = if head.starts_with("duplicate entry") {
        "duplicate key"
    } else if head.is_empty()
        || head.contains(['"', '\'', '`'])
        || head.starts_with("invalid type")
        || head.starts_with("invalid value")
        || head.starts_with("unknown ")
        || head.len() > 200
    {
        "invalid YAML"
    } else {
        head
    };
    match e.location() {
        Some(l) => format!("{head} at line {}, column {}", l.line(), l.column()),
        None => head.to_string(),
    }
}

/// What a YAML document is, for "the template rendered a string, not a map".
pub(crate) fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-DISTINCTIVE";

    #[test]
    fn json_errors_keep_the_position_and_drop_the_value() {
        // A data error quotes the value in serde's own message.
        let e = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&format!(
            "\"{SECRET}\""
        ))
        .unwrap_err();
        assert!(e.to_string().contains(SECRET));
        let m = json_error(&e);
        assert!(!m.contains(SECRET), "{m}");
        assert!(m.contains("line 1, column"), "{m}");

        let e =
            serde_json::from_str::<serde_json::Value>(&format!("{{\"a\": {SECRET}}}")).unwrap_err();
        let m = json_error(&e);
        assert!(!m.contains(SECRET) && !m.contains("hunter"), "{m}");
        assert!(
            m.starts_with("invalid JSON: expected value at line 1"),
            "{m}"
        );
    }

    #[test]
    fn yaml_errors_keep_the_position_and_drop_the_value() {
        let e = serde_yaml::from_str::<serde_yaml::Mapping>(SECRET).unwrap_err();
        assert!(e.to_string().contains(SECRET));
        let m = yaml_error(&e);
        assert!(!m.contains(SECRET), "{m}");

        let e = serde_yaml::from_str::<serde_yaml::Value>(&format!("{SECRET}: 1\n{SECRET}: 2\n"))
            .unwrap_err();
        let m = yaml_error(&e);
        assert!(!m.contains(SECRET), "{m}");
        assert!(m.starts_with("duplicate key"), "{m}");

        let e =
            serde_yaml::from_str::<serde_yaml::Value>(&format!("a: [{SECRET}\nb: 1")).unwrap_err();
        let m = yaml_error(&e);
        assert!(!m.contains(SECRET), "{m}");
        assert!(m.contains("line"), "{m}");
    }

    #[test]
    fn details_are_capped() {
        let long = "é".repeat(2000);
        let c = cap_detail(long);
        assert!(c.len() <= MAX_DETAIL + 20);
        assert!(c.ends_with("(truncated)"));
        assert_eq!(cap_detail("short".into()), "short");
    }
}
