//! How AWS failures become contract errors: the one place that decides not-found vs
//! throttled vs unavailable (retried) vs permission-denied vs egress-denied, and that strips
//! request IDs and credentials from messages before they reach conditions and logs.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use esox_plugin_sdk::{EGRESS_DENIAL_MARKER, Error};

/// What kind of failure the SDK reported, independent of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request never got an answer: connection, DNS, TLS, egress denial, timeout.
    Transport,
    /// The service answered with an error (code and HTTP status known).
    Service,
    /// The request could not be built (a bug or a bad input).
    Construction,
}

/// Error codes that mean "this secret or version does not exist".
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ParameterVersionLabelLimitExceeded",
];

/// Error codes that mean "slow down".
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "PriorRequestNotComplete",
];

/// Error codes that mean "try again later".
const UNAVAILABLE: &[&str] = &[
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServiceError",
    "InternalServiceErrorException",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
];

/// Error codes that mean "these credentials may not do this".
const DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
    "DecryptionFailure",
    "KMSAccessDeniedException",
];

/// Map one AWS failure to the contract's error. `code` and `message` come from the service's
/// error body, `status` from the HTTP response.
pub fn classify(
    operation: &str,
    failure: Failure,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
) -> Error {
    let detail = sanitize(&match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "no details".to_string(),
    });
    match failure {
        Failure::Transport => {
            if detail.contains(EGRESS_DENIAL_MARKER) {
                return Error::egress_denied(format!(
                    "{operation}: the controller's egress policy refused the request; allow the endpoint's origin for the aws plugin"
                ));
            }
            return Error::unavailable(format!("{operation}: AWS could not be reached: {detail}"));
        }
        Failure::Construction => {
            return Error::backend(format!("{operation}: request could not be built: {detail}"));
        }
        Failure::Service => {}
    }
    let code = code.unwrap_or("");
    // A secret scheduled for deletion: AWS answers InvalidRequestException (ESO's code checks
    // InvalidParameterException; both are accepted), worded "... because it was marked for
    // deletion." on reads and "... a secret that's currently marked deleted." on other calls.
    if NOT_FOUND.contains(&code)
        || (matches!(
            code,
            "InvalidRequestException" | "InvalidParameterException"
        ) && message
            .is_some_and(|m| m.contains("marked for deletion") || m.contains("marked deleted")))
    {
        return Error::NotFound;
    }
    if THROTTLED.contains(&code) || status == Some(429) {
        return Error::throttled(None, format!("{operation}: {detail}"));
    }
    if UNAVAILABLE.contains(&code) || matches!(status, Some(500..=599)) {
        return Error::unavailable(format!("{operation}: {detail}; will retry"));
    }
    if DENIED.contains(&code) || matches!(status, Some(401) | Some(403)) {
        return Error::permission_denied(format!(
            "{operation}: {detail}; check the IAM policy of the store's credentials or role"
        ));
    }
    Error::backend(format!("{operation}: {detail}"))
}

/// Classify an SDK error of any operation.
pub fn from_sdk<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = Some(service.raw().status().as_u16());
            classify(operation, Failure::Service, e.code(), e.message(), status)
        }
        SdkError::ResponseError(_) => classify(
            operation,
            Failure::Service,
            None,
            Some("the response could not be parsed"),
            None,
        ),
        SdkError::ConstructionFailure(_) => classify(
            operation,
            Failure::Construction,
            None,
            Some(&error_chain(err)),
            None,
        ),
        _ => classify(
            operation,
            Failure::Transport,
            None,
            Some(&error_chain(err)),
            None,
        ),
    }
}

/// The error and its sources, one line: transport errors hide the useful part in a source.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        parts.push(format!("{s:?}"));
        source = s.source();
    }
    parts.join(": ")
}

/// Remove request IDs and anything after `Credential=` (access key IDs in signature errors),
/// as ESO's `SanitizeErr` does.
pub fn sanitize(message: &str) -> String {
    let mut out = message.to_string();
    if let Some(pos) = out.find(" Credential=") {
        out.truncate(pos);
    }
    for marker in [
        "request id: ",
        "RequestId: ",
        "Request ID: ",
        "request_id: ",
    ] {
        while let Some(pos) = out.find(marker) {
            let end = out[pos + marker.len()..]
                .find(|c: char| c.is_whitespace() || c == ',' || c == ')')
                .map(|e| pos + marker.len() + e)
                .unwrap_or(out.len());
            out.replace_range(pos..end, "");
        }
    }
    out.trim_end_matches([',', ' ', ':']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> Error {
        classify(
            "GetSecretValue",
            Failure::Service,
            Some(code),
            Some("msg"),
            Some(status),
        )
    }

    #[test]
    fn missing_secrets_and_parameters_are_not_found() {
        assert!(matches!(
            service("ResourceNotFoundException", 400),
            Error::NotFound
        ));
        assert!(matches!(service("ParameterNotFound", 400), Error::NotFound));
        assert!(matches!(
            service("ParameterVersionNotFound", 400),
            Error::NotFound
        ));
    }

    #[test]
    fn a_secret_marked_for_deletion_is_not_found_as_in_eso() {
        let err = classify(
            "GetSecretValue",
            Failure::Service,
            Some("InvalidParameterException"),
            Some(
                "You can't perform this operation on the secret because it was marked for deletion.",
            ),
            Some(400),
        );
        assert!(matches!(err, Error::NotFound));
        // What AWS and LocalStack actually answer for GetSecretValue on such a secret.
        let err = classify(
            "GetSecretValue",
            Failure::Service,
            Some("InvalidRequestException"),
            Some(
                "You can't perform this operation on the secret because it was marked for deletion.",
            ),
            Some(400),
        );
        assert!(matches!(err, Error::NotFound));
        // The other wording AWS documents for the same state.
        let err = classify(
            "BatchGetSecretValue",
            Failure::Service,
            Some("InvalidRequestException"),
            Some("You tried to perform the operation on a secret that's currently marked deleted."),
            None,
        );
        assert!(matches!(err, Error::NotFound));
        assert!(matches!(
            service("InvalidParameterException", 400),
            Error::Backend(_)
        ));
        assert!(matches!(
            service("InvalidRequestException", 400),
            Error::Backend(_)
        ));
    }

    #[test]
    fn throttling_is_throttled_and_server_errors_are_unavailable() {
        assert!(matches!(
            service("ThrottlingException", 400),
            Error::Throttled(t) if t.retry_after_ms.is_none() && t.message.contains("ThrottlingException")
        ));
        assert!(matches!(
            service("TooManyRequestsException", 400),
            Error::Throttled(_)
        ));
        assert!(matches!(
            service("InternalServiceError", 500),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            service("SomethingNew", 503),
            Error::Unavailable(_)
        ));
        assert!(matches!(service("SomethingNew", 429), Error::Throttled(_)));
    }

    #[test]
    fn refused_credentials_are_permission_denied() {
        for code in [
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "DecryptionFailure",
        ] {
            assert!(
                matches!(service(code, 400), Error::PermissionDenied(_)),
                "{code}"
            );
        }
        assert!(matches!(
            service("SomethingNew", 403),
            Error::PermissionDenied(_)
        ));
    }

    #[test]
    fn network_failures_are_unavailable_but_egress_denials_are_egress_denied() {
        let net = classify(
            "GetSecretValue",
            Failure::Transport,
            None,
            Some("dispatch failure: connection refused"),
            None,
        );
        assert!(matches!(net, Error::Unavailable(m) if m.contains("connection refused")));
        let denied = classify(
            "GetSecretValue",
            Failure::Transport,
            None,
            Some("io error: ErrorCode::HttpRequestDenied"),
            None,
        );
        assert!(matches!(denied, Error::EgressDenied(m) if m.contains("egress policy")));
    }

    #[test]
    fn other_service_errors_are_backend_errors_with_code_and_message() {
        assert!(matches!(
            service("ValidationException", 400),
            Error::Backend(m) if m == "GetSecretValue: ValidationException: msg"
        ));
    }

    #[test]
    fn messages_lose_request_ids_and_credentials() {
        assert_eq!(
            sanitize("AccessDenied: not allowed, request id: 1234-abcd, more"),
            "AccessDenied: not allowed, , more"
        );
        assert_eq!(
            sanitize(
                "The request signature we calculated does not match. Credential=AKIAEXAMPLE/20261127/us-east-1"
            ),
            "The request signature we calculated does not match."
        );
        let err = classify(
            "GetSecretValue",
            Failure::Service,
            Some("AccessDeniedException"),
            Some("User is not authorized RequestId: 99ff Credential=AKIAX/abc"),
            Some(400),
        );
        let Error::PermissionDenied(m) = err else {
            panic!("expected permission-denied")
        };
        assert!(!m.contains("99ff") && !m.contains("AKIAX"), "{m}");
    }
}
