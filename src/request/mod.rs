//! Request parsing: both wire dialects (V3 with `x-acs-action`, RPC v1 with `Action` in the
//! query or a form body) into one canonical parameter set, with the credentials set apart
//! and the raw parameters kept for the signature verifier.
//!
//! The parser refuses rather than guesses: a request that could be read two ways (a
//! parameter twice, names differing only in case, conflicting action headers, gaps in a
//! flattened list, a body it does not understand) is a 400, because what ramgate authorizes
//! must be exactly what the backend reads.
//!
//! Choices where the specification is silent:
//! * methods other than GET and POST, and a body on GET, are 400 `InvalidParameter`;
//! * `Version` (parameter or `x-acs-version`) is required and must be `2018-08-08`;
//! * `Format` must be `JSON` (any case) if given, and is dropped: ramgate answers JSON;
//! * `ResourceType` on the tag APIs must be exactly `ContainerGroup` (no case folding, like
//!   action names): ramgate cannot authorize tags on other resource types;
//! * `Limit` is checked (1..=20) on every action, as the spec's table says;
//! * reserved names (`Action`, `ResourceGroupId`, `Tag.N.*`, the credentials...) spelt in
//!   another case, and parameter names that are not visible ASCII, are 400 even alone.

mod canonical;
mod collect;
mod credentials;
pub mod encoding;
mod error;
mod lists;
mod raw;
mod values;

#[cfg(test)]
mod tests;

pub use canonical::CanonicalRequest;
pub use credentials::Credentials;
pub use error::RequestError;
pub use raw::RawParams;

use crate::catalogue;
use http::{HeaderMap, Method, Uri};
use std::collections::BTreeMap;

/// The only API version ramgate speaks.
pub const VERSION: &str = "2018-08-08";

/// A parsed request: what it means, who it claims to be, and what was actually sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    pub canonical: CanonicalRequest,
    pub credentials: Credentials,
    pub raw: RawParams,
}

/// Parses one request. The caller has already refused bodies over `max_body_bytes`.
pub fn parse(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ParsedRequest, RequestError> {
    if uri.path() != "/" {
        return Err(RequestError::PathNotFound(uri.path().to_owned()));
    }
    if method != Method::GET && method != Method::POST {
        return Err(RequestError::Malformed(format!(
            "the method {method} is not supported; use POST (or GET)"
        )));
    }
    // Request smuggling guard (tests/abuse.rs). hyper frames a request that carries both
    // Content-Length and Transfer-Encoding by the latter and drops the former before
    // ramgate sees it, so the conflict cannot be detected here; a front proxy that framed
    // it by Content-Length would have read a different request. ECI parameters are small
    // and the SDKs send them with Content-Length, so any Transfer-Encoding is refused.
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Err(RequestError::Malformed(
            "a request body with Transfer-Encoding is refused (it is how requests are smuggled past proxies); send it with Content-Length".to_owned(),
        ));
    }
    let raw_query = uri.query().unwrap_or_default().to_owned();
    let query = collect::query_pairs(&raw_query)?;
    let raw_body = body;
    let body = collect::body_pairs(method, headers, body)?;
    collect::check_names(&query, &body)?;
    let mut credentials = Credentials::from_headers(headers)?;

    let mut params = BTreeMap::new();
    let (mut action, mut version) = (None, None);
    for (name, value) in query.iter().chain(&body) {
        match name.as_str() {
            "Action" => action = Some(value.as_str()),
            "Version" => version = Some(value.as_str()),
            "Format" if value.eq_ignore_ascii_case("JSON") => {}
            "Format" => {
                return Err(RequestError::invalid(
                    "Format",
                    "ramgate answers JSON only: use Format=JSON or leave it out",
                ))
            }
            _ if credentials.take_param(name, value) => {}
            _ => {
                params.insert(name.clone(), value.clone());
            }
        }
    }

    let action =
        reconcile("Action", action, credentials.header_action.as_deref())?.ok_or_else(|| {
            RequestError::missing(
                "Action",
                "give the action in the Action parameter or the x-acs-action header",
            )
        })?;
    let spec =
        catalogue::lookup(action).ok_or_else(|| RequestError::ActionNotFound(action.to_owned()))?;
    match reconcile("Version", version, credentials.header_version.as_deref())? {
        Some(VERSION) => {}
        Some(other) => {
            return Err(RequestError::invalid(
                "Version",
                format!("ramgate serves the ECI API version {VERSION}, not {other:?}"),
            ))
        }
        None => {
            return Err(RequestError::missing(
                "Version",
                format!("give Version={VERSION} or the x-acs-version header"),
            ))
        }
    }
    params.insert("Version".to_owned(), VERSION.to_owned());

    let canonical = canonical::build(spec, params)?;
    // Only a V3 signature covers the body (by its hash): skip hashing for everyone else.
    // Most signed calls have no body, whose hash is a constant.
    let body_sha256 = credentials.has_v3_signature().then(|| {
        if raw_body.is_empty() {
            crate::acs3::EMPTY_BODY_SHA256.to_owned()
        } else {
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw_body))
        }
    });
    Ok(ParsedRequest {
        canonical,
        credentials,
        raw: RawParams {
            query,
            body,
            raw_query,
            method: method.clone(),
            body_sha256,
            authority: uri.authority().map(|a| a.as_str().to_owned()),
        },
    })
}

/// One value from a parameter and its `x-acs-*` header: equal values are one (SDKs in v1
/// mode send both), different ones are ambiguous. An empty value counts as absent.
fn reconcile<'a>(
    param: &'static str,
    from_params: Option<&'a str>,
    from_header: Option<&'a str>,
) -> Result<Option<&'a str>, RequestError> {
    match (from_params, from_header) {
        (Some(p), Some(h)) if p != h => Err(RequestError::invalid(
            param,
            format!(
                "the parameter says {p:?} but the x-acs-{} header says {h:?}; send one value",
                param.to_ascii_lowercase()
            ),
        )),
        (p, h) => Ok(p.or(h).filter(|v| !v.is_empty())),
    }
}
