//! RPC v1 (`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`): what
//! `aliyun-python-sdk-core`, older tools and SDKs set to `signature_algorithm='v2'` send.
//!
//! Every parameter of the query and the form body together, except `Signature`, sorted by
//! name and RFC 3986-encoded, is the canonicalized query; the string to sign is
//! `METHOD&%2F&<canonicalized query, encoded once more>`; the signature is
//! base64(HMAC-SHA1(secret + "&", string to sign)).
//!
//! v1 signs parameters only, never headers, so the action must come from the signed
//! `Action` parameter: an `x-acs-action` header alone (which the parser also accepts) would
//! let anyone change what a valid signature authorizes.

use super::{incomplete, mismatch, Claim, Proof};
use crate::identity::IdentityError;
use crate::request::ParsedRequest;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Reads a v1-signed request into a [`Claim`]: everything but the secret.
pub(super) fn claim(request: &ParsedRequest) -> Result<Claim<'_>, IdentityError> {
    let credentials = &request.credentials;
    fn need<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, IdentityError> {
        value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
            incomplete(format!(
                "an RPC v1 signed request needs the {name} parameter"
            ))
        })
    }
    let method = need(&credentials.signature_method, "SignatureMethod")?;
    if method != "HMAC-SHA1" {
        return Err(incomplete(format!(
            "SignatureMethod {method:?} is not supported; use HMAC-SHA1 (or an ACS3-HMAC-SHA256 Authorization header)"
        )));
    }
    let version = need(&credentials.signature_version, "SignatureVersion")?;
    if version != "1.0" {
        return Err(incomplete(format!(
            "SignatureVersion {version:?} is not supported; use 1.0"
        )));
    }
    if let Some(kind) = credentials
        .signature_type
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        return Err(incomplete(format!(
            "SignatureType {kind:?} is not supported; leave it empty to sign with an AccessKey"
        )));
    }
    let key_id = need(&credentials.access_key_id, "AccessKeyId")?;
    let nonce = need(&credentials.signature_nonce, "SignatureNonce")?;
    let time = need(&credentials.timestamp, "Timestamp")?;
    let signature_text = need(&credentials.signature, "Signature")?;
    let raw = &request.raw;
    let named = |name: &str| raw.query.iter().chain(&raw.body).any(|(n, _)| n == name);
    if !named("Action") {
        return Err(incomplete(
            "an RPC v1 signed request names its action in the Action parameter, which the signature covers; the x-acs-action header is not signed",
        ));
    }
    let string_to_sign = raw.v1_string_to_sign();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_text.as_bytes())
        .map_err(|_| {
            mismatch(format!(
                "Specified signature is not matched with our calculation: the Signature parameter is not base64. server string to sign is:{string_to_sign}"
            ))
        })?;
    Ok(Claim {
        key_id,
        time_field: "Timestamp",
        time,
        nonce_field: "SignatureNonce",
        nonce,
        proof: Proof::V1 {
            string_to_sign,
            signature,
        },
    })
}

/// Whether `signature` is HMAC-SHA1(secret + "&", string_to_sign), in constant time; `mac`
/// comes keyed with `secret&` ([`crate::principals::KeyedMacs::rpc_v1`]).
pub(super) fn matches(mut mac: Hmac<Sha1>, string_to_sign: &str, signature: &[u8]) -> bool {
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(signature).is_ok()
}
