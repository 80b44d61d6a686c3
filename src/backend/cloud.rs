//! Cloud mode: the in-memory backend playing the real Alibaba Cloud endpoint, for tests and
//! `ramgate demo --cloud`. On its cloud listener it serves HTTPS with a given certificate
//! and answers only calls signed by one given AccessKey (and, when given, carrying its STS
//! token), with the codes Alibaba answers: `IncompleteSignature` (unsigned or malformed),
//! `InvalidAccessKeyId.NotFound`, `SignatureDoesNotMatch`, `InvalidTimeStamp.Expired`,
//! `SignatureNonceUsed`, `InvalidSecurityToken.MismatchWithAccessKey`.
//!
//! The signature is checked by ramgate's own verifier
//! ([`crate::identity::signature::verify_single_key`]): that code is held to the official
//! SDKs' recorded vectors (tests/signatures.rs), so a call it accepts is one Alibaba Cloud
//! would accept, and it is not the signer it checks ([`crate::upstream::sign`]) but the
//! verification side of the canonical form both share.
//!
//! Every call is counted for the tests (`/_backend/state` → `cloud`): how many were
//! validly signed, which codes the others got, and how many carried an `x-ramgate-*`
//! header (which ramgate must never send upstream when it signs).

use super::reply::ApiError;
use crate::identity::signature::{verify_single_key, NonceCache};
use hyper::http::request::Parts;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Alibaba's window for `x-acs-date`.
const MAX_CLOCK_SKEW_SECS: u64 = 900;

/// The one AccessKey the cloud listener accepts.
pub struct CloudKey {
    pub access_key_id: String,
    pub secret: String,
    pub security_token: Option<String>,
}

impl std::fmt::Debug for CloudKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The cloud listener's verifier and its counters.
#[derive(Debug)]
pub struct CloudAuth {
    key: CloudKey,
    nonces: NonceCache,
}

/// What the cloud listener saw, for `/_backend/state`.
#[derive(Debug, Default)]
pub struct CloudStats {
    verified: AtomicU64,
    with_ramgate_header: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl CloudStats {
    pub fn to_json(&self) -> Value {
        let rejected = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        json!({
            "verified": self.verified.load(Ordering::Relaxed),
            "with_ramgate_header": self.with_ramgate_header.load(Ordering::Relaxed),
            "rejected": rejected,
        })
    }
}

impl CloudAuth {
    pub fn new(key: CloudKey) -> Self {
        Self {
            key,
            nonces: NonceCache::new(Duration::from_secs(MAX_CLOCK_SKEW_SECS)),
        }
    }

    /// Checks one call and counts it; an error is the answer to give.
    pub fn check(&self, stats: &CloudStats, parts: &Parts, body: &[u8]) -> Result<(), ApiError> {
        if parts
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("x-ramgate-"))
        {
            stats.with_ramgate_header.fetch_add(1, Ordering::Relaxed);
        }
        let result = self.verify(parts, body);
        match &result {
            Ok(()) => {
                stats.verified.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                *stats
                    .rejected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(e.code)
                    .or_default() += 1;
            }
        }
        result
    }

    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<(), ApiError> {
        let request = crate::request::parse(&parts.method, &parts.uri, &parts.headers, body)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let credentials = &request.credentials;
        if !credentials.has_v3_signature() && !credentials.has_v1_signature() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards: the call is not signed.",
            ));
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        verify_single_key(
            &self.key.access_key_id,
            &self.key.secret,
            MAX_CLOCK_SKEW_SECS,
            &self.nonces,
            &parts.headers,
            &request,
            now,
        )
        .map_err(|e| {
            let e = crate::response::ApiError::from(e);
            let status = e.status();
            ApiError::new(status, e.code(), e.to_string())
        })?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let token_ok = match &self.key.security_token {
            Some(token) => {
                header("x-acs-security-token") == Some(token.as_str())
                    && header("x-acs-accesskey-id") == Some(self.key.access_key_id.as_str())
            }
            None => header("x-acs-security-token").is_none(),
        };
        if !token_ok {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "The security token does not belong to the AccessKey (or is missing).",
            ));
        }
        Ok(())
    }
}
