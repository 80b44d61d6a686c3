//! AccessKey signature verification, so that Alibaba Cloud's SDKs can call ramgate
//! unchanged: ACS3-HMAC-SHA256 ([`v3`], what current SDKs send by default) and RPC v1
//! HMAC-SHA1 ([`v1`], `aliyun-python-sdk-core` and SDKs set to `signature_algorithm='v2'`),
//! with the clock-skew and nonce-replay checks both share ([`nonce`]).
//!
//! Checks run in this order, each with the status and code Alibaba answers, so the SDKs
//! raise their usual exceptions: the signature's form (400 `IncompleteSignature`), the
//! access key (404 `InvalidAccessKeyId.NotFound`), the timestamp (400
//! `InvalidTimeStamp.Format` / `InvalidTimeStamp.Expired`), the signature itself (400
//! `SignatureDoesNotMatch`, with the string ramgate signed, as Alibaba does), and last the
//! nonce (400 `SignatureNonceUsed`): a nonce is only remembered once its request is proven
//! authentic, so nobody can burn another client's nonces.
//!
//! Secrets are used for the HMAC and nowhere else: no message, log line or metric carries
//! one. Each key's HMACs are keyed when the policies load ([`KeyedMacs`]); a request clones
//! the keyed state. Comparisons of signatures are constant-time (`Mac::verify_slice`).

pub mod nonce;
mod v1;
mod v3;

pub use nonce::{NonceCache, Seen};

use super::IdentityError;
use crate::config;
use crate::principals::{AccessKey, KeyedMacs, PrincipalId};
use crate::request::ParsedRequest;
use crate::snapshot::Snapshot;
use http::HeaderMap;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Verifies the request's signature (V3 or v1) and claims its nonce in `replay`; returns
/// the key's principal. `now` is Unix seconds: tests pass the time a vector was recorded at.
pub fn verify(
    snapshot: &Snapshot,
    settings: &config::Identity,
    replay: &NonceCache,
    headers: &HeaderMap,
    request: &ParsedRequest,
    now: i64,
) -> Result<PrincipalId, IdentityError> {
    let verified = verify_signature(snapshot, settings, headers, request, now)?;
    let seen = verified.claim_in(replay, now);
    verified.settle(seen)
}

/// A request whose signature verified, and whose nonce is still to be claimed (in this
/// process, or in the replicas' shared store: `crate::cluster::NonceStore`).
#[derive(Debug)]
pub struct Verified {
    pub principal: PrincipalId,
    pub key_id: String,
    pub nonce: String,
    nonce_field: &'static str,
    /// The request's signed time, Unix seconds.
    pub timestamp: i64,
    /// The clock-skew window in force.
    pub skew: Duration,
}

impl Verified {
    /// Claims the nonce in this process's `cache` (`now`: Unix seconds).
    pub fn claim_in(&self, cache: &NonceCache, now: i64) -> Seen {
        cache.check_and_remember(&self.key_id, &self.nonce, self.timestamp, self.skew, now)
    }

    /// The request's principal if its nonce was new, else the refusal.
    pub fn settle(self, seen: Seen) -> Result<PrincipalId, IdentityError> {
        nonce_verdict(seen, self.nonce_field, &self.nonce, self.skew)?;
        Ok(self.principal)
    }
}

/// Every check but the nonce: the signature's form, the key, the time, the signature.
pub fn verify_signature(
    snapshot: &Snapshot,
    settings: &config::Identity,
    headers: &HeaderMap,
    request: &ParsedRequest,
    now: i64,
) -> Result<Verified, IdentityError> {
    let claim = claim_of(headers, request)?;
    let key = access_key(snapshot, claim.key_id)?;
    let (timestamp, skew) = check_signed(&claim, &key.macs, settings.max_clock_skew_secs, now)?;
    Ok(Verified {
        principal: key.principal,
        key_id: claim.key_id.to_owned(),
        nonce: claim.nonce.to_owned(),
        nonce_field: claim.nonce_field,
        timestamp,
        skew,
    })
}

/// Verifies a request signed by the one AccessKey a service knows (the in-memory backend
/// playing Alibaba Cloud, [`crate::backend`]), with the same checks, order and codes as
/// [`verify`]: any other key id is 404 `InvalidAccessKeyId.NotFound`.
#[allow(clippy::too_many_arguments)]
pub fn verify_single_key(
    key_id: &str,
    secret: &str,
    max_clock_skew_secs: u64,
    replay: &NonceCache,
    headers: &HeaderMap,
    request: &ParsedRequest,
    now: i64,
) -> Result<(), IdentityError> {
    let claim = claim_of(headers, request)?;
    if claim.key_id != key_id {
        return Err(key_not_found(claim.key_id));
    }
    // The one key of a test backend: keyed per call, not kept.
    let macs = KeyedMacs::new(secret)
        .ok_or_else(|| IdentityError::Refused("the backend's secret cannot key an HMAC".into()))?;
    let (timestamp, skew) = check_signed(&claim, &macs, max_clock_skew_secs, now)?;
    let seen = replay.check_and_remember(claim.key_id, claim.nonce, timestamp, skew, now);
    nonce_verdict(seen, claim.nonce_field, claim.nonce, skew)
}

/// The request's V3 or v1 claim.
fn claim_of<'a>(
    headers: &'a HeaderMap,
    request: &'a ParsedRequest,
) -> Result<Claim<'a>, IdentityError> {
    let credentials = &request.credentials;
    match (credentials.has_v3_signature(), credentials.has_v1_signature()) {
        (true, true) => Err(IdentityError::Refused(
            "the request carries both an Authorization header (V3) and a Signature parameter (RPC v1): sign it one way"
                .into(),
        )),
        (true, false) => v3::claim(headers, request),
        (false, true) => v1::claim(request),
        (false, false) => Err(incomplete(
            "AccessKeyId is given but the request is not signed: add an ACS3-HMAC-SHA256 Authorization header or the RPC Signature parameters",
        )),
    }
}

/// The timestamp, then the signature under the key's `macs`; returns the signed time (Unix
/// seconds) and the skew window, for the nonce claim that comes last.
fn check_signed(
    claim: &Claim,
    macs: &KeyedMacs,
    max_clock_skew_secs: u64,
    now: i64,
) -> Result<(i64, Duration), IdentityError> {
    let skew = Duration::from_secs(max_clock_skew_secs);
    let timestamp = check_time(claim.time_field, claim.time, skew, now)?;
    claim.check(macs)?;
    Ok((timestamp, skew))
}

/// A claimed nonce's answer: new is fine; replayed is 400 `SignatureNonceUsed`; a full
/// nonce memory is 503.
fn nonce_verdict(
    seen: Seen,
    nonce_field: &str,
    nonce: &str,
    skew: Duration,
) -> Result<(), IdentityError> {
    match seen {
        Seen::New => Ok(()),
        Seen::Replayed => Err(IdentityError::NonceUsed(format!(
                "Specified signature nonce was used already. {nonce_field} {nonce:?} was seen within the last {}s; send a fresh nonce with every request",
                skew.as_secs()
        ))),
        Seen::Full => Err(IdentityError::NonceStoreFull),
    }
}

/// What a request claims, ready to be checked against a key's secret; it borrows from the
/// request.
pub(super) struct Claim<'a> {
    pub key_id: &'a str,
    /// Where the time and nonce came from, for messages (`x-acs-date`, `Timestamp`...).
    pub time_field: &'static str,
    pub time: &'a str,
    pub nonce_field: &'static str,
    pub nonce: &'a str,
    pub proof: Proof,
}

/// The signature and what it must be recomputed from.
pub(super) enum Proof {
    V3 {
        /// The canonical request, as ramgate rebuilt it.
        canonical_request: String,
        /// `None`: hex of another length than a SHA-256 HMAC's, which matches nothing.
        signature: Option<[u8; 32]>,
    },
    V1 {
        string_to_sign: String,
        signature: Vec<u8>,
    },
}

impl Claim<'_> {
    /// Recomputes the signature with the key's HMACs and compares in constant time. The
    /// message of a mismatch (the string ramgate signed) is only built on that path.
    fn check(&self, macs: &KeyedMacs) -> Result<(), IdentityError> {
        match &self.proof {
            Proof::V3 {
                canonical_request,
                signature,
            } => {
                let ok = signature.as_ref().is_some_and(|signature| {
                    crate::acs3::verify(macs.acs3(), canonical_request, signature)
                });
                if ok {
                    return Ok(());
                }
                let string_to_sign = crate::acs3::string_to_sign(canonical_request);
                Err(mismatch(format!(
                    "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign} (the SHA-256 of this canonical request:\n{canonical_request}\n)"
                )))
            }
            Proof::V1 {
                string_to_sign,
                signature,
            } => {
                if v1::matches(macs.rpc_v1(), string_to_sign, signature) {
                    return Ok(());
                }
                Err(mismatch(format!(
                    "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
                )))
            }
        }
    }
}

fn access_key<'a>(snapshot: &'a Snapshot, id: &str) -> Result<&'a AccessKey, IdentityError> {
    snapshot
        .directory
        .access_keys
        .get(id)
        .ok_or_else(|| key_not_found(id))
}

/// 404 `InvalidAccessKeyId.NotFound`.
fn key_not_found(id: &str) -> IdentityError {
    IdentityError::UnknownAccessKey(format!("Specified access key is not found: {id:?} is not an access key of any principal of this account"))
}

/// Parses an ISO 8601 UTC time (`2024-01-02T03:04:05Z`) and checks it is within `skew` of
/// `now`; returns it as Unix seconds.
fn check_time(field: &str, value: &str, skew: Duration, now: i64) -> Result<i64, IdentityError> {
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| IdentityError::TimestampMalformed(format!(
                "Specified time stamp or date value is not well formatted: {field} is {value:?}; use UTC ISO 8601, e.g. 2024-01-02T03:04:05Z"
            )))?
        .unix_timestamp();
    let skew_secs = i64::try_from(skew.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(at) > skew_secs.unsigned_abs() {
        let now_text = OffsetDateTime::from_unix_timestamp(now)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| now.to_string());
        return Err(IdentityError::TimestampExpired(format!(
                "Specified time stamp or date value is expired. {field} is {value}, ramgate's time is {now_text}, and at most {skew_secs}s of difference are accepted; check the client's clock"
            )));
    }
    Ok(at)
}

/// 400 `IncompleteSignature`: the signature material is missing or malformed.
pub(super) fn incomplete(message: impl Into<String>) -> IdentityError {
    IdentityError::IncompleteSignature(message.into())
}

/// 400 `SignatureDoesNotMatch`.
pub(super) fn mismatch(message: impl Into<String>) -> IdentityError {
    IdentityError::SignatureDoesNotMatch(message.into())
}
