//! How Vault's answers become contract errors: the one place that decides not-found vs
//! permission-denied vs throttled vs unavailable. Messages carry the operation, the HTTP status
//! and Vault's own `errors` text (which never holds secret data), cut short.

use std::time::Duration;

use esox_plugin_sdk::{Error, serde_json};

/// The longest part of Vault's error text kept in a message.
const MAX_DETAIL: usize = 400;

/// Vault's `{"errors": [...]}` joined, or empty when the body has none.
pub fn vault_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let text = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors.join("; "))
        .unwrap_or_default();
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.chars().count() > MAX_DETAIL {
        let cut: String = text.chars().take(MAX_DETAIL).collect();
        format!("{cut}…")
    } else {
        text.to_string()
    }
}

/// Whether Vault said "permission denied" (a refused or expired token, or a policy denial).
pub fn is_denied(status: u16) -> bool {
    matches!(status, 401 | 403)
}

fn detail(status: u16, body: &[u8]) -> String {
    let errors = vault_errors(body);
    if errors.is_empty() {
        format!("Vault answered HTTP {status}")
    } else {
        format!("Vault answered HTTP {status}: {errors}")
    }
}

/// `Retry-After` in seconds, as Vault (or a proxy in front of it) sends it.
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    header
        .and_then(|h| h.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The error a non-success answer to a read, list or lookup means. `operation` says what was
/// asked (`reading secret/data/db`).
pub fn status_error(
    operation: &str,
    status: u16,
    retry_after_header: Option<&str>,
    body: &[u8],
) -> Error {
    let detail = detail(status, body);
    match status {
        404 => Error::NotFound,
        401 | 403 => Error::permission_denied(format!(
            "{operation}: {detail}; check the policies of the store's Vault token or role"
        )),
        429 => Error::throttled(
            retry_after(retry_after_header),
            format!("{operation}: {detail}"),
        ),
        // 412: read-your-writes state not yet replicated; 472/473: DR or performance
        // standby; 5xx: sealed, standby, or a proxy's failure.
        412 | 472 | 473 | 500..=599 => {
            Error::unavailable(format!("{operation}: {detail}; will retry"))
        }
        _ => Error::backend(format!("{operation}: {detail}")),
    }
}

/// The error a non-success answer to a write or delete means: as for a read, except that a 404
/// is no "not found" (the thing written to is the request's path: no engine is mounted there,
/// or the path is not the KV engine's).
pub fn write_error(
    operation: &str,
    status: u16,
    retry_after_header: Option<&str>,
    body: &[u8],
) -> Error {
    match status {
        404 => Error::backend(format!(
            "{operation}: {}; is the store's path (and version) the KV mount's?",
            detail(status, body)
        )),
        _ => status_error(operation, status, retry_after_header, body),
    }
}

/// The error a non-success answer to `POST auth/<mount>/login` means. `field` is the auth
/// method's config field (`auth.appRole`), `mount_field` its mount path's.
pub fn login_error(
    field: &str,
    mount_field: &str,
    mount: &str,
    status: u16,
    retry_after_header: Option<&str>,
    body: &[u8],
) -> Error {
    let detail = detail(status, body);
    match status {
        // Vault answers 400 for refused credentials on most methods (invalid role or secret
        // ID, invalid username or password), 403 for a refused JWT or role binding.
        400 | 401 | 403 => Error::permission_denied(format!(
            "logging in to Vault with {field} at auth/{mount}: {detail}"
        )),
        404 => Error::invalid_config(
            mount_field,
            format!("Vault has no auth method mounted at auth/{mount} ({detail})"),
        ),
        _ => status_error(
            &format!("logging in to Vault with {field} at auth/{mount}"),
            status,
            retry_after_header,
            body,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_contract_errors() {
        let body = br#"{"errors":["permission denied"]}"#;
        assert!(matches!(
            status_error("reading x", 404, None, b""),
            Error::NotFound
        ));
        assert!(matches!(
            status_error("reading x", 403, None, body),
            Error::PermissionDenied(m) if m.starts_with("reading x: Vault answered HTTP 403: permission denied")
        ));
        assert!(matches!(
            status_error("reading x", 429, Some("7"), b""),
            Error::Throttled(t) if t.retry_after_ms == Some(7000)
        ));
        assert!(matches!(
            status_error("reading x", 429, Some("soon"), b""),
            Error::Throttled(t) if t.retry_after_ms.is_none()
        ));
        assert!(matches!(
            status_error("reading x", 503, None, br#"{"errors":["Vault is sealed"]}"#),
            Error::Unavailable(m) if m.contains("Vault is sealed")
        ));
        assert!(matches!(
            status_error("x", 412, None, b""),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", 473, None, b""),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            status_error("x", 400, None, br#"{"errors":["bad version"]}"#),
            Error::Backend(m) if m == "x: Vault answered HTTP 400: bad version"
        ));
    }

    #[test]
    fn write_failures_map_like_reads_but_a_404_is_no_not_found() {
        assert!(matches!(
            write_error("PUT secret/data/x", 404, None, br#"{"errors":["no handler for route"]}"#),
            Error::Backend(m) if m.contains("no handler for route") && m.contains("PUT secret/data/x")
        ));
        assert!(matches!(
            write_error("x", 403, None, b""),
            Error::PermissionDenied(_)
        ));
        assert!(matches!(
            write_error("x", 400, None, br#"{"errors":["check-and-set parameter did not match the current version"]}"#),
            Error::Backend(m) if m.contains("check-and-set")
        ));
        assert!(matches!(
            write_error("x", 503, None, b""),
            Error::Unavailable(_)
        ));
    }

    #[test]
    fn login_refusals_are_permission_denied_and_missing_mounts_name_the_field() {
        let body = br#"{"errors":["invalid role or secret ID"]}"#;
        assert!(matches!(
            login_error("auth.appRole", "auth.appRole.path", "approle", 400, None, body),
            Error::PermissionDenied(m) if m.contains("auth/approle") && m.contains("invalid role or secret ID")
        ));
        assert!(matches!(
            login_error("auth.jwt", "auth.jwt.path", "jwt", 403, None, b""),
            Error::PermissionDenied(_)
        ));
        assert!(matches!(
            login_error("auth.kubernetes", "auth.kubernetes.mountPath", "k8s", 404, None, b"{}"),
            Error::InvalidConfig(c) if c.field == "auth.kubernetes.mountPath"
        ));
        assert!(matches!(
            login_error(
                "auth.userPass",
                "auth.userPass.path",
                "userpass",
                503,
                None,
                b""
            ),
            Error::Unavailable(_)
        ));
    }

    #[test]
    fn vault_error_text_is_joined_flattened_and_cut() {
        assert_eq!(vault_errors(br#"{"errors":["a","b\nc"]}"#), "a; b c");
        assert_eq!(vault_errors(b"<html>not json</html>"), "");
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(1000));
        assert!(vault_errors(long.as_bytes()).chars().count() <= MAX_DETAIL + 1);
    }
}
