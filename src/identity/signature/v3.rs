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
use http::HeaderMap;

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
pub(super) fn claim(headers: &HeaderMap, request: &ParsedRequest) -> Result<Claim, IdentityError> {
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
    let required = |value: &Option<String>, header: &str| {
        value
            .clone()
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
    for (name, _) in headers {
        let name = name.as_str();
        let must = name.starts_with("x-acs-") || name == "host" || name == "content-type";
        if must && !names.iter().any(|n| n == name) {
            return Err(incomplete(format!(
                "the header {name} is not in SignedHeaders; sign host, content-type and every x-acs-* header"
            )));
        }
    }
    let mut canonical_headers: Vec<(&str, String)> = Vec::with_capacity(names.len());
    for name in &names {
        let mut values = Vec::new();
        for value in headers.get_all(name.as_str()) {
            let text = value.to_str().map_err(|_| {
                incomplete(format!("the signed header {name} is not visible ASCII"))
            })?;
            values.push(text);
        }
        // HTTP/2 carries the host in the `:authority` pseudo-header, which the SDK signed
        // as `host`.
        if values.is_empty() && name == "host" {
            if let Some(authority) = request.raw.authority.as_deref() {
                values.push(authority);
            }
        }
        if values.is_empty() {
            return Err(mismatch(format!(
                "Specified signature is not matched with our calculation: SignedHeaders names {name}, which the request does not carry"
            )));
        }
        canonical_headers.push((name, acs3::header_value(values)));
    }
    let canonical_headers: Vec<(&str, &str)> = canonical_headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    let (canonical_request, _) = acs3::canonical_request(
        request.raw.method.as_str(),
        &request.raw.v3_canonical_query(),
        &canonical_headers,
        body_hash,
    );
    let signature = hex::decode(auth.signature).map_err(|_| {
        mismatch("Specified signature is not matched with our calculation: the Authorization Signature is not hex")
    })?;
    Ok(Claim {
        key_id: auth.credential.to_owned(),
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

/// `a;b;c` → lowercase names, in the order given (the SDKs sort them), none twice.
fn signed_header_names(list: &str) -> Result<Vec<String>, IdentityError> {
    let mut names: Vec<String> = Vec::new();
    for name in list.split(';') {
        let name = name.trim().to_ascii_lowercase();
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
