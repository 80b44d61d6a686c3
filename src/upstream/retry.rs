//! When a call to Alibaba Cloud may be tried again, and how long to wait first. Only
//! read-only calls are retried (metadata lookups, credential look-ups), never a forwarded
//! call, and every try is signed afresh by its caller.
//!
//! Errors are classified by `Code`, not by status, as the SDKs do (Alibaba answers
//! throttling with 400): `Throttling*` and `Degrade.Api` (throttling), `ServiceUnavailable`;
//! plus any 5xx and connection errors, which the callers classify themselves.

use std::time::Duration;

/// The first back-off; each further try doubles it, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Whether an error answer with this `Code` may succeed if tried again later.
pub fn retryable_code(code: &str) -> bool {
    code.starts_with("Throttling") || code == "Degrade.Api" || code == "ServiceUnavailable"
}

/// How long to wait before try number `attempt + 1` (`attempt` from 0): "full jitter",
/// a uniformly random time up to `BASE_BACKOFF * 2^attempt` (at most [`MAX_BACKOFF`]), so
/// that many replicas throttled together do not come back together.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random % millis.max(1) + 1)
}

/// The `Code` of an Alibaba-shaped JSON error body, if it has one.
pub fn error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Coded {
        #[serde(rename = "Code")]
        code: Option<String>,
    }
    serde_json::from_slice::<Coded>(body).ok()?.code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_code() {
        for code in [
            "Throttling",
            "Throttling.User",
            "Throttling.Api",
            "Degrade.Api",
            "ServiceUnavailable",
        ] {
            assert!(retryable_code(code), "{code}");
        }
        for code in [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId.NotFound",
            "Forbidden.RAM",
            "InvalidParameter",
        ] {
            assert!(!retryable_code(code), "{code}");
        }
        assert_eq!(
            error_code(br#"{"Code":"Throttling.User","Message":"m"}"#).as_deref(),
            Some("Throttling.User")
        );
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..40 {
            let wait = backoff(attempt);
            assert!(wait >= Duration::from_millis(1));
            assert!(wait <= MAX_BACKOFF + Duration::from_millis(1), "{wait:?}");
            let ceiling = BASE_BACKOFF.saturating_mul(1 << attempt.min(16));
            assert!(wait <= ceiling + Duration::from_millis(1));
        }
    }
}
