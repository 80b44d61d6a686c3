//! AccessKey signature verification (ACS3-HMAC-SHA256 and RPC v1 HMAC-SHA1), with clock
//! skew and nonce replay checks.

use crate::config;
use crate::principals::PrincipalId;
use crate::request::ParsedRequest;
use crate::response::ApiError;
use crate::snapshot::Snapshot;
use http::HeaderMap;

/// Nonces seen within the skew window.
#[derive(Debug, Default)]
pub struct NonceCache {
    _window: std::time::Duration,
}

impl NonceCache {
    pub fn new(window: std::time::Duration) -> Self {
        Self { _window: window }
    }
}

/// Verifies the request's signature and returns the key's principal.
pub fn verify(
    _snapshot: &Snapshot,
    _settings: &config::Identity,
    _replay: &NonceCache,
    _headers: &HeaderMap,
    _request: &ParsedRequest,
    _now: i64,
) -> Result<PrincipalId, ApiError> {
    Err(ApiError::Identity(
        "AccessKey signature verification is not available in this build".into(),
    ))
}
