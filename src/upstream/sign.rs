//! Signing what ramgate sends to Alibaba Cloud (SPEC §8, `signing = "acs3"`): each call is
//! rebuilt from an allowlist of headers and signed ACS3-HMAC-SHA256 with ramgate's own
//! credential, through [`crate::acs3`], the canonical form verification uses too.
//!
//! What goes upstream: `host`, `x-acs-action`, `x-acs-version`, `x-acs-date`,
//! `x-acs-signature-nonce`, `x-acs-content-sha256`, and with a temporary credential
//! `x-acs-security-token` and `x-acs-accesskey-id` — all signed — plus `accept`,
//! `user-agent` (ramgate's) and `Authorization`, unsigned (a proxy on the way may rewrite
//! them). Any other header a caller of [`crate::upstream::Upstream::call`] passes
//! (`x-ramgate-*`, `x-forwarded-for`, the caller's user agent) is dropped, so nothing of
//! the caller's identity or credentials goes upstream.

use super::credentials::Credential;
use crate::acs3::{self, EMPTY_BODY_SHA256};
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use time::macros::format_description;
use time::OffsetDateTime;

/// The caller-given headers that may go upstream; everything else is dropped.
const ALLOWED: [&str; 3] = ["x-acs-action", "x-acs-version", "accept"];

const USER_AGENT_VALUE: &str = concat!("ramgate/", env!("CARGO_PKG_VERSION"));

/// The date and nonce of one attempt: fresh for every try, retries included.
pub struct Freshness {
    pub date: String,
    pub nonce: String,
}

impl Freshness {
    /// Now, in UTC `yyyy-MM-ddTHH:mm:ssZ`, and 32 random hex digits.
    pub fn now() -> Self {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        Self {
            date: OffsetDateTime::now_utc()
                .format(&format)
                .unwrap_or_default(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// A signed call: the query to send (`POST /?<query>`) and every header but `host`.
#[derive(Debug)]
pub struct Signed {
    pub query: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub authorization: String,
}

/// Why a call could not be signed (a value that cannot be a header).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the upstream call: {0}")]
pub struct SignError(String);

/// Signs `POST /?<params>` for `host` with `credential`. `params` are the decoded
/// canonical parameters; `given` the headers the caller would send, of which only
/// [`ALLOWED`] are kept.
pub fn sign<'a>(
    credential: &Credential,
    host: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    given: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    fresh: &Freshness,
) -> Result<Signed, SignError> {
    let query = acs3::canonical_query(params);
    let mut signed: Vec<(&'static str, String)> = vec![
        ("host", host.to_owned()),
        ("x-acs-date", fresh.date.clone()),
        ("x-acs-signature-nonce", fresh.nonce.clone()),
        ("x-acs-content-sha256", EMPTY_BODY_SHA256.to_owned()),
    ];
    if let Some(token) = credential.security_token() {
        signed.push(("x-acs-security-token", token.to_owned()));
        signed.push(("x-acs-accesskey-id", credential.access_key_id.clone()));
    }
    let mut accept = None;
    for (name, value) in given {
        let Some(allowed) = ALLOWED.iter().find(|a| **a == name.as_str()) else {
            continue;
        };
        if name == ACCEPT {
            accept = Some(value);
        } else if !signed.iter().any(|(n, _)| n == allowed) {
            let text = value
                .to_str()
                .map_err(|_| SignError(format!("the {name} header is not visible ASCII")))?;
            signed.push((*allowed, text.to_owned()));
        }
    }
    signed.sort_unstable();
    let canonical_headers: Vec<(&str, String)> = signed
        .iter()
        .map(|(n, v)| (*n, acs3::header_value([v.as_str()])))
        .collect();
    let pairs: Vec<(&str, &str)> = canonical_headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    let (canonical, signed_names) =
        acs3::canonical_request("POST", &query, &pairs, EMPTY_BODY_SHA256);
    let signature = acs3::signature(credential.secret(), &acs3::string_to_sign(&canonical));
    let authorization = acs3::authorization(&credential.access_key_id, &signed_names, &signature);

    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|e| SignError(format!("a header value: {e}")))
    };
    let mut headers = Vec::with_capacity(signed.len() + 3);
    for (name, text) in &signed {
        if *name == "host" {
            continue;
        }
        let mut v = value(text)?;
        if *name == "x-acs-security-token" {
            v.set_sensitive(true);
        }
        headers.push((HeaderName::from_static(name), v));
    }
    headers.push((
        ACCEPT,
        accept.unwrap_or_else(|| HeaderValue::from_static("application/json")),
    ));
    headers.push((USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)));
    let mut auth = value(&authorization)?;
    auth.set_sensitive(true);
    headers.push((AUTHORIZATION, auth));
    Ok(Signed {
        query,
        headers,
        authorization,
    })
}
