//! The pooled client to the container-group backend or to Alibaba Cloud itself, used both
//! to forward authorized requests and to look up metadata. Every call has a deadline; every
//! failure is typed so the caller can answer 502 / 503 / 504 and never forward anything
//! else.
//!
//! `http://` and `https://` upstreams are both served ([`tls`]: rustls, ring, the system
//! roots plus `ca_file`). With `signing = "acs3"` (SPEC §8) every call is rebuilt from an
//! allowlist of headers and signed with ramgate's own credential ([`sign`],
//! [`credentials`]); an answer that rejects that credential is a typed failure (502), never
//! passed on, so the caller never sees ramgate's AccessKey id. Metadata lookups
//! ([`Upstream::call_retrying`]) are retried on throttling and transient failures, each
//! try signed afresh; forwarded calls ([`Upstream::call`]) are never retried.

pub mod credentials;
pub mod retry;
pub mod sign;
pub mod tls;

use crate::config;
use bytes::Bytes;
use credentials::Credentials;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use std::time::{Duration, Instant};
use tls::HttpsClient;

/// Answers larger than this are refused (an authorization proxy must parse what it filters).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// The codes with which Alibaba Cloud rejects the caller's credentials: with
/// `signing = "acs3"`, ramgate's own.
const CREDENTIAL_REJECTIONS: [&str; 4] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
];

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// No answer: the connection failed, or the answer could not be read whole.
    #[error("{0}")]
    Unreachable(String),
    /// An answer that is not what the ECI API answers (not JSON, a 5xx, an error without
    /// a `Code`): never passed on.
    #[error("{0}")]
    Rejected(String),
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The server's certificate did not verify (or TLS failed otherwise): nothing was sent.
    #[error("the upstream's TLS certificate could not be verified, so nothing was sent: {0}")]
    Tls(String),
    /// The upstream refused ramgate's own credential. The code is one of
    /// [`CREDENTIAL_REJECTIONS`]; the answer's message (which may name the key) is dropped.
    #[error("Alibaba Cloud refused ramgate's own credentials ({code}); the request was not carried out. Check ramgate's credential source and the RAM permissions behind it (/v1/status shows which key is in use)")]
    CredentialsRejected { code: &'static str },
    /// No valid credential to sign with: nothing was sent.
    #[error("{0}")]
    NoCredential(String),
}

#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Upstream {
    client: HttpsClient,
    scheme: Scheme,
    /// The backend's authority, parsed once: each request's URI is built from it and the
    /// query rather than parsed whole from a string.
    authority: Authority,
    host: HeaderValue,
    timeout: Duration,
    /// With `signing = "acs3"`: ramgate's credential.
    credentials: Option<Credentials>,
}

impl Upstream {
    /// A plain-HTTP or HTTPS upstream without signing (the in-memory backend, benchmarks).
    pub fn new(url: &str, timeout_ms: u64) -> Result<Self, String> {
        Self::from_config(&config::Upstream {
            url: url.to_owned(),
            timeout_ms,
            ..config::Upstream::default()
        })
    }

    /// The upstream of `[upstream]`. With `signing = "acs3"` it resolves the credential
    /// source (from the process environment) and, for temporary credentials, starts their
    /// refresher: call it within the Tokio runtime.
    pub fn from_config(settings: &config::Upstream) -> Result<Self, String> {
        let url = &settings.url;
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("upstream url {url:?}: {e}"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("upstream url {url:?} has no host"))?;
        let scheme = if uri.scheme() == Some(&Scheme::HTTPS) {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let timeout = Duration::from_millis(settings.timeout_ms);
        // Trust anchors are read only when something may be reached over HTTPS: the
        // upstream itself, or STS for the credentials of `signing = "acs3"`.
        let roots = if scheme == Scheme::HTTPS || settings.signing == config::Signing::Acs3 {
            tls::roots(settings.ca_file.as_deref())?
        } else {
            rustls::RootCertStore::empty()
        };
        let client = tls::client(tls::client_config(roots)?, timeout);
        let credentials = match (&settings.signing, &settings.credentials) {
            (config::Signing::Acs3, Some(c)) => {
                let provider = credentials::resolve(c, &credentials::process_env)
                    .map_err(|e| format!("[upstream.credentials]: {e}"))?;
                Some(Credentials::start(provider, client.clone(), timeout))
            }
            (config::Signing::Acs3, None) => {
                return Err("signing = \"acs3\" needs [upstream.credentials]".to_owned())
            }
            (config::Signing::None, _) => None,
        };
        Ok(Self {
            client,
            scheme,
            host: HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
            authority: authority.clone(),
            timeout,
            credentials,
        })
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout.as_millis() as u64
    }

    /// ramgate's own credential, with `signing = "acs3"`.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `POST /?<query>` with an empty body and exactly `headers` (plus `host`), the answer
    /// read whole within the deadline. Tried once. `query` is ramgate's own encoding of the
    /// canonical parameters ([`crate::request::CanonicalRequest::forward_query`]); with
    /// `signing = "acs3"` it is decoded back into those parameters and signed from them.
    pub async fn call(
        &self,
        query: &str,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let request = self.request(query, headers)?;
        tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout_ms()))?
    }

    /// [`call`](Self::call) for read-only calls (metadata lookups): tried again, with
    /// jittered back-off and a fresh signature (date, nonce), on throttling
    /// (`Throttling*`, `Degrade.Api`), `ServiceUnavailable`, 5xx and connection errors,
    /// while the deadline (`timeout_ms` for all tries together) allows.
    pub async fn call_retrying(
        &self,
        query: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<UpstreamResponse, UpstreamError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let left = self.timeout.saturating_sub(started.elapsed());
            let request = self.request(query, headers.iter().cloned())?;
            let result = tokio::time::timeout(left, self.exchange(request))
                .await
                .map_err(|_| UpstreamError::Timeout(self.timeout_ms()))?;
            let retry = match &result {
                Err(UpstreamError::Unreachable(_) | UpstreamError::Rejected(_)) => true,
                Ok(answer) if !answer.status.is_success() => {
                    retry::error_code(&answer.body).is_some_and(|c| retry::retryable_code(&c))
                }
                _ => false,
            };
            let wait = retry::backoff(attempt);
            if !retry || started.elapsed() + wait >= self.timeout {
                return result;
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let response = self.client.request(request).await.map_err(|e| {
            if tls::is_tls_failure(&e) {
                UpstreamError::Tls(error_chain(&e))
            } else {
                UpstreamError::Unreachable(error_chain(&e))
            }
        })?;
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| UpstreamError::Unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        let body = check_answer(status, content_type.as_ref(), body)?;
        if self.credentials.is_some() && status.is_client_error() {
            if let Some(code) = retry::error_code(&body) {
                if let Some(rejection) = CREDENTIAL_REJECTIONS
                    .iter()
                    .find(|r| code == **r || code.starts_with(&format!("{r}.")))
                {
                    crate::ops::metrics::upstream_auth_failure(rejection);
                    tracing::warn!(code = %code, "the upstream refused ramgate's own credentials");
                    return Err(UpstreamError::CredentialsRejected { code: rejection });
                }
            }
        }
        Ok(UpstreamResponse {
            status,
            content_type,
            body,
        })
    }

    /// `POST /?<query>` to the backend with `host` and `headers`, signed with
    /// `signing = "acs3"`. Built outside the async `call` so that its temporaries are not
    /// part of every request's future, which hyper moves as a whole.
    fn request(
        &self,
        query: &str,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let cannot_build = |e: &dyn std::fmt::Display| {
            UpstreamError::Unreachable(format!("cannot build the request: {e}"))
        };
        let Some(credentials) = &self.credentials else {
            let mut request = self.post(query).map_err(|e| cannot_build(&e))?;
            let headers = headers.into_iter();
            let h = request.headers_mut();
            // The caller's headers, without growing the map on the way.
            h.reserve(headers.size_hint().0);
            for (name, value) in headers {
                h.append(name, value);
            }
            return Ok(request);
        };
        let credential = credentials.current().map_err(UpstreamError::NoCredential)?;
        let params =
            crate::request::encoding::parse_urlencoded(query).map_err(|e| cannot_build(&e))?;
        let host = self.host.to_str().map_err(|e| cannot_build(&e))?;
        let signed = sign::sign(
            &credential,
            host,
            params.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            headers,
            &sign::Freshness::now(),
        )
        .map_err(|e| cannot_build(&e))?;
        let mut request = self.post(&signed.query).map_err(|e| cannot_build(&e))?;
        let h = request.headers_mut();
        for (name, value) in signed.headers {
            h.append(name, value);
        }
        Ok(request)
    }

    /// `POST /?<query>` with `host` and an empty body.
    fn post(&self, query: &str) -> Result<Request<Full<Bytes>>, http::Error> {
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(self.scheme.clone());
        uri.authority = Some(self.authority.clone());
        uri.path_and_query = Some(PathAndQuery::from_maybe_shared(Bytes::from(format!(
            "/?{query}"
        )))?);
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_parts(uri)?;
        request.headers_mut().insert(HOST, self.host.clone());
        Ok(request)
    }
}

/// The fields of an Alibaba-shaped error answer that are passed on to the caller.
const ERROR_FIELDS: &[&str] = &[
    "RequestId",
    "HostId",
    "Code",
    "Message",
    "Recommend",
    "AccessDeniedDetail",
];

/// An answer is accepted only if it is what the ECI API answers; anything else (an HTML
/// error page, a truncated document, a 500, an error carrying items) is
/// [`UpstreamError::Rejected`], which the proxy answers with its own Alibaba-shaped 502 (a
/// 503 for metadata lookups), never a pass-through (tests/faults.rs):
///
/// * its `Content-Type`, when given, is JSON (`application/json`, `text/json`, `*+json`);
/// * its body is one JSON object;
/// * a 5xx is the backend failing: a 502 carrying the backend's status and code;
/// * any other non-2xx must be an Alibaba error (a string `Code`), and only its error
///   fields ([`ERROR_FIELDS`]) are passed on.
fn check_answer(
    status: StatusCode,
    content_type: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Bytes, UpstreamError> {
    let bad = |what: String| {
        UpstreamError::Rejected(format!("the backend answered HTTP {status} with {what}"))
    };
    if let Some(ct) = content_type {
        let media = ct
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !(media == "application/json" || media == "text/json" || media.ends_with("+json")) {
            return Err(bad(format!("Content-Type {ct:?}, not JSON")));
        }
    }
    if status.is_success() {
        // Every answer passes here: checked without building a document (the filters that
        // need one parse it themselves).
        let opens_an_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        return match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
            Ok(_) if opens_an_object => Ok(body),
            Ok(_) => Err(bad("a body that is not a JSON object".to_owned())),
            Err(e) => Err(bad(format!("a body that is not a JSON object ({e})"))),
        };
    }
    let answer: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("a body that is not a JSON object ({e})")))?;
    let field = |name: &str| answer.get(name).and_then(serde_json::Value::as_str);
    if status.is_server_error() {
        return Err(bad(format!(
            "{} ({})",
            field("Code").unwrap_or("no error code"),
            field("Message").unwrap_or("no message")
        )));
    }
    if field("Code").is_none() {
        return Err(bad("an error that has no Code".to_owned()));
    }
    let error: serde_json::Map<String, serde_json::Value> = answer
        .into_iter()
        .filter(|(name, _)| ERROR_FIELDS.contains(&name.as_str()))
        .collect();
    serde_json::to_vec(&error)
        .map(Bytes::from)
        .map_err(|e| bad(format!("an error that cannot be re-encoded ({e})")))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, content_type: Option<&str>, body: &str) -> Result<String, String> {
        let ct = content_type.map(|c| HeaderValue::from_str(c).unwrap());
        check_answer(
            StatusCode::from_u16(status).unwrap(),
            ct.as_ref(),
            Bytes::from(body.to_owned()),
        )
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn json_objects_pass_as_they_are() {
        let ok = r#"{"RequestId":"r","TotalCount":0}"#;
        assert_eq!(
            check(200, Some("application/json;charset=utf-8"), ok).unwrap(),
            ok
        );
        assert_eq!(check(200, None, ok).unwrap(), ok);
        assert_eq!(
            check(200, Some("application/problem+json"), ok).unwrap(),
            ok
        );
    }

    #[test]
    fn anything_else_is_a_failure() {
        let ok = r#"{"RequestId":"r"}"#;
        for (status, ct, body) in [
            (200, Some("text/html"), ok),
            (200, Some("text/plain"), ok),
            (200, None, "<html></html>"),
            (200, None, ""),
            (200, None, "[1]"),
            (200, None, r#"{"RequestId":"#),
            (500, None, r#"{"Code":"InternalError","Message":"m"}"#),
            (503, Some("text/html"), "<h1>down</h1>"),
            (404, None, r#"{"Message":"no code"}"#),
        ] {
            assert!(check(status, ct, body).is_err(), "{status} {ct:?} {body}");
        }
    }

    #[test]
    fn errors_keep_only_their_error_fields() {
        let body = r#"{"RequestId":"r","Code":"InvalidParameter","Message":"m","ContainerGroups":[{"ContainerGroupId":"secret"}],"TotalCount":1}"#;
        let got: serde_json::Value =
            serde_json::from_str(&check(400, None, body).unwrap()).unwrap();
        assert_eq!(
            got,
            serde_json::json!({"RequestId":"r","Code":"InvalidParameter","Message":"m"})
        );
    }
}
