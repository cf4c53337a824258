//! Reading a store config into typed Rust without ever echoing a value into an error.
//!
//! serde's own messages quote what they refused (`invalid type: string "hunter2", expected
//! u32`), and a store config can hold values (the fake provider's `data[].value`) that end up
//! in conditions and events. These helpers report the field as a path into the config
//! (`data[0].value`) and the *kind* of what was found, never the value itself.

use serde::de::DeserializeOwned;

use crate::{ConfigError, Error};

/// Deserialize a store config (or part of one) into `T`. On failure, the error names the field
/// as a path into the config and says what was expected, without quoting any value.
pub fn from_value<T: DeserializeOwned>(config: &serde_json::Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let field = path_string(e.path());
        ConfigError {
            message: safe_serde_message(&e.into_inner().to_string()),
            field,
        }
    })
}

/// Parse a store config's JSON text. A syntax error is reported by position only.
pub fn parse_json(text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::invalid_config(
            "",
            format!(
                "the store config is not valid JSON ({}) at line {} column {}",
                category(&e),
                e.line(),
                e.column()
            ),
        )
    })
}

/// What kind of serde_json error this is, in words that never include the input.
pub(crate) fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}

/// `data[0].value` from serde_path_to_error's path (which prints `data[0].value` too, but
/// writes `?` for unknown segments and `.` for the root).
fn path_string(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." { String::new() } else { text }
}

/// Rewrite one of serde's error messages so it cannot carry a value: `invalid type` and
/// `invalid value` keep the kind of what was found (`string`, `integer`) and what was expected;
/// `unknown variant` drops the variant; messages about fields and lengths are kept (they name
/// schema fields, not values); anything else becomes a generic message.
pub fn safe_serde_message(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = match rest.rfind(", expected ") {
                Some(pos) => (&rest[..pos], Some(&rest[pos + ", expected ".len()..])),
                None => (rest, None),
            };
            // `string "…"`, `integer `5``, `map`: the kind is what precedes any quote.
            let kind = found.split(['"', '`', '\'']).next().unwrap_or("").trim();
            let kind = if kind.is_empty() { "a value" } else { kind };
            return match expected {
                Some(expected) => format!("{prefix}{kind}, expected {expected}"),
                None => format!("{prefix}{kind}"),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match rest.rfind(", expected ") {
            Some(pos) => format!("unknown variant, expected {}", &rest[pos + 11..]),
            None => "unknown variant".to_string(),
        };
    }
    let kept = [
        "missing field ",
        "unknown field ",
        "duplicate field ",
        "invalid length ",
    ];
    if kept.iter().any(|p| message.starts_with(p)) {
        return message.to_string();
    }
    "invalid value".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    const SECRET: &str = "s3cr3t-VALUE-xyzzy";

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Entry {
        key: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    enum Mode {
        Fast,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Config {
        data: Vec<Entry>,
    }

    #[test]
    fn a_wrongly_typed_field_is_named_by_path_and_its_value_is_not_quoted() {
        let err =
            from_value::<Config>(&json!({"data": [{"key": "a"}, {"key": "b", "port": SECRET}]}))
                .unwrap_err();
        assert_eq!(err.field, "data[1].port");
        assert!(!err.message.contains(SECRET), "{}", err.message);
        assert!(
            err.message.contains("invalid type: string"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_described_by_kind_only() {
        let err = from_value::<Config>(&json!({"data": [{"key": 987654321}]})).unwrap_err();
        assert_eq!(err.field, "data[0].key");
        assert!(!err.message.contains("987654321"), "{}", err.message);
        let err =
            from_value::<Config>(&json!({"data": [{"key": "k", "mode": SECRET}]})).unwrap_err();
        assert_eq!(err.field, "data[0].mode");
        assert!(!err.message.contains(SECRET), "{}", err.message);
        let err =
            from_value::<Config>(&json!({"data": [{"key": "k", "port": 70000}]})).unwrap_err();
        assert!(!err.message.contains("70000"), "{}", err.message);
    }

    #[test]
    fn missing_fields_keep_their_name() {
        let err = from_value::<Config>(&json!({"data": [{}]})).unwrap_err();
        assert_eq!(err.field, "data[0]");
        assert_eq!(err.message, "missing field `key`");
    }

    #[test]
    fn json_syntax_errors_report_a_position_only() {
        let err = parse_json(&format!("{{\"a\": \"{SECRET}")).unwrap_err();
        let text = format!("{err:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("line 1"), "{text}");
        let err = parse_json(&format!("{{\"a\": {SECRET}}}")).unwrap_err();
        assert!(!format!("{err:?}").contains(SECRET));
    }

    #[test]
    fn unknown_messages_become_generic() {
        assert_eq!(
            safe_serde_message(&format!("bad {SECRET}")),
            "invalid value"
        );
        assert_eq!(
            safe_serde_message(&format!("unknown variant `{SECRET}`, expected `Fast`")),
            "unknown variant, expected `Fast`"
        );
        assert_eq!(
            safe_serde_message(&format!(
                "invalid value: string \"{SECRET}, expected x\", expected a region"
            )),
            "invalid value: string, expected a region"
        );
    }
}
