//! ACS3-HMAC-SHA256, the signature current Alibaba Cloud SDKs send by default:
//! `Authorization: ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>`.
//!
//! The canonical request is rebuilt from what arrived: the method, the path (`/`, the only
//! one ramgate serves), the query re-encoded and sorted, exactly the headers named in
//! `SignedHeaders` (`name:trimmed value`, several values sorted and joined by `,`, as the
//! SDKs do), the signed-headers list, and the SHA-256 of the body ramgate actually read —
//! which must also be what `x-acs-content-sha256` claims. The string to sign is
//! `ACS3-HMAC-SHA256\n<hex SHA-256 of the canonical request>`.
//!
//! Choice where the protocol leaves room: every `x-acs-*` header of the request, and `host`
//! and `content-type` when present, must be signed, as Alibaba documents. Otherwise an
//! unsigned `x-acs-action` could change what a valid signature authorizes.

use super::{incomplete, mismatch, Claim, Proof};
use crate::acs3::{self, ALGORITHM};
use crate::identity::IdentityError;
use crate::request::ParsedRequest;
use http::{HeaderMap, HeaderValue};
use std::borrow::Cow;

/// The parts of the `Authorization` header.
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization<'a>(value: &'a str) -> Result<Authorization<'a>, IdentityError> {
    let (algorithm, rest) = value
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "the Authorization header uses {algorithm:?}; ramgate verifies {ALGORITHM} (the SDKs' default) and RPC v1 HMAC-SHA1 signatures"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let Some((name, value)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "the Authorization header has {part:?} where name=value was expected; the form is {ALGORITHM} Credential=<AccessKeyId>,SignedHeaders=<names>,Signature=<hex>"
            )));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(incomplete(format!(
                    "the Authorization header has an unknown part {other:?}; the form is {ALGORITHM} Credential=<AccessKeyId>,SignedHeaders=<names>,Signature=<hex>"
                )))
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(incomplete(format!(
                "the Authorization header gives {} twice",
                name.trim()
            )));
        }
    }
    let need = |slot: Option<&'a str>, what: &str| {
        slot.filter(|v| !v.is_empty()).ok_or_else(|| {
            incomplete(format!(
                "the Authorization header has no {what}; the form is {ALGORITHM} Credential=<AccessKeyId>,SignedHeaders=<names>,Signature=<hex>"
            ))
        })
    };
    Ok(Authorization {
        credential: need(credential, "Credential")?,
        signed_headers: need(signed_headers, "SignedHeaders")?,
        signature: need(signature, "Signature")?,
    })
}

/// Reads a V3-signed request into a [`Claim`]: everything but the secret.
pub(super) fn claim<'a>(
    headers: &'a HeaderMap,
    request: &'a ParsedRequest,
) -> Result<Claim<'a>, IdentityError> {
    let credentials = &request.credentials;
    let value = credentials.authorization.as_deref().unwrap_or_default();
    let auth = parse_authorization(value)?;
    if let Some(id) = &credentials.access_key_id {
        if id != auth.credential {
            return Err(incomplete(format!(
                "the AccessKeyId parameter ({id:?}) and the Authorization Credential ({:?}) differ; give one",
                auth.credential
            )));
        }
    }
    let required = |value: &'a Option<String>, header: &str| {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| incomplete(format!("an {ALGORITHM} request needs the {header} header")))
    };
    let date = required(&credentials.acs_date, "x-acs-date")?;
    let nonce = required(&credentials.acs_signature_nonce, "x-acs-signature-nonce")?;
    let claimed_hash = required(&credentials.acs_content_sha256, "x-acs-content-sha256")?;
    // Computed by the parser for every request with an Authorization header; its absence
    // would be a bug, and a bug must not let a request through.
    let body_hash = request.raw.body_sha256.as_deref().ok_or_else(|| {
        incomplete("the body's hash is not available; the request cannot be verified")
    })?;
    if !claimed_hash.eq_ignore_ascii_case(body_hash) {
        return Err(mismatch(format!(
            "Specified signature is not matched with our calculation: x-acs-content-sha256 is {claimed_hash} but the body ramgate received hashes to {body_hash}; hash exactly the bytes sent"
        )));
    }

    let names = signed_header_names(auth.signed_headers)?;
    // One pass over the request's headers: every x-acs-*, host and content-type header must
    // be signed; for each signed name, its first value and how many it has.
    let mut found: Vec<(Option<&HeaderValue>, usize)> = vec![(None, 0); names.len()];
    for (name, value) in headers {
        let name = name.as_str();
        match names.iter().position(|n| n == name) {
            Some(i) => {
                let (first, count) = &mut found[i];
                first.get_or_insert(value);
                *count += 1;
            }
            None if name.starts_with("x-acs-") || name == "host" || name == "content-type" => {
                return Err(incomplete(format!(
                    "the header {name} is not in SignedHeaders; sign host, content-type and every x-acs-* header"
                )));
            }
            None => {}
        }
    }
    // The canonical request is written once, into one buffer sized for it: the request
    // line's query and the headers' bytes bound it, bar escapes.
    let raw = &request.raw;
    let capacity = 128
        + 2 * auth.signed_headers.len()
        + raw.raw_query.len()
        + headers.iter().map(|(_, v)| v.len() + 2).sum::<usize>();
    let mut canonical = acs3::CanonicalBuilder::new(raw.method.as_str(), capacity);
    canonical.query(raw.query.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let text = |name: &str, value: &'a HeaderValue| {
        value
            .to_str()
            .map_err(|_| incomplete(format!("the signed header {name} is not visible ASCII")))
    };
    for (name, (first, count)) in names.iter().zip(&found) {
        let name: &str = name;
        match (first, count) {
            // One value, as nearly every signed header has.
            (Some(value), 1) => canonical.header(name, [text(name, value)?]),
            // Several: all of them, in the order a look-up gives them.
            (Some(_), _) => {
                let values = headers
                    .get_all(name)
                    .iter()
                    .map(|value| text(name, value))
                    .collect::<Result<Vec<&str>, _>>()?;
                canonical.header(name, values);
            }
            // HTTP/2 carries the host in the `:authority` pseudo-header, which the SDK
            // signed as `host`.
            (None, _) => match raw.authority.as_deref().filter(|_| name == "host") {
                Some(authority) => canonical.header(name, [authority]),
                None => {
                    return Err(mismatch(format!(
                        "Specified signature is not matched with our calculation: SignedHeaders names {name}, which the request does not carry"
                    )))
                }
            },
        }
    }
    let (canonical_request, _) = canonical.finish(body_hash);
    let signature = decode_signature(auth.signature)?;
    Ok(Claim {
        key_id: auth.credential,
        time_field: "x-acs-date",
        time: date,
        nonce_field: "x-acs-signature-nonce",
        nonce,
        proof: Proof::V3 {
            canonical_request,
            signature,
        },
    })
}

/// The hex `Signature`: 32 bytes, as HMAC-SHA256 gives, or `None` for hex of another
/// length (which matches no signature: the mismatch is reported with the string to sign).
fn decode_signature(text: &str) -> Result<Option<[u8; 32]>, IdentityError> {
    let not_hex = || {
        mismatch("Specified signature is not matched with our calculation: the Authorization Signature is not hex")
    };
    let mut bytes = [0u8; 32];
    if text.len() == 64 {
        hex::decode_to_slice(text, &mut bytes).map_err(|_| not_hex())?;
        return Ok(Some(bytes));
    }
    hex::decode(text).map_err(|_| not_hex())?;
    Ok(None)
}

/// `a;b;c` → lowercase names, in the order given (the SDKs sort them), none twice. Names
/// already lowercase, as the SDKs send them, are borrowed.
fn signed_header_names(list: &str) -> Result<Vec<Cow<'_, str>>, IdentityError> {
    let mut names: Vec<Cow<'_, str>> = Vec::with_capacity(8);
    for name in list.split(';') {
        let name = name.trim();
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        if name.is_empty() {
            return Err(incomplete(format!(
                "SignedHeaders {list:?} has an empty name; list header names separated by ;"
            )));
        }
        if names.contains(&name) {
            return Err(incomplete(format!("SignedHeaders names {name} twice")));
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<impl Sized, IdentityError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(e) => crate::response::ApiError::from(e).code(),
        }
    }

    #[test]
    fn reads_the_sdk_authorization_header() {
        let auth = parse_authorization(
            "ACS3-HMAC-SHA256 Credential=LTAIx,SignedHeaders=host;x-acs-date,Signature=ab01",
        )
        .unwrap();
        assert_eq!(
            (auth.credential, auth.signed_headers, auth.signature),
            ("LTAIx", "host;x-acs-date", "ab01")
        );
        // Spaces after the commas are tolerated, as some signers write them.
        assert!(parse_authorization(
            "ACS3-HMAC-SHA256 Credential=LTAIx, SignedHeaders=host, Signature=ab01"
        )
        .is_ok());
    }

    #[test]
    fn refuses_malformed_authorization_headers() {
        for bad in [
            "",
            "ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=ab",
            "Bearer token",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=ab,Signature=cd",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=ab,Extra=1",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=a;SignedHeaders=host;Signature=ab",
        ] {
            assert_eq!(
                code(parse_authorization(bad)),
                "IncompleteSignature",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn signed_header_names_are_lowercased_and_unique() {
        assert_eq!(
            signed_header_names("Host;x-acs-date").unwrap(),
            vec!["host", "x-acs-date"]
        );
        assert_eq!(code(signed_header_names("host;;x")), "IncompleteSignature");
        assert_eq!(
            code(signed_header_names("host;HOST")),
            "IncompleteSignature"
        );
    }
}
