//! The pooled HTTP client to the container-group backend, used both to forward authorized
//! requests and to look up metadata. Every call has a deadline; every failure is typed so
//! the caller can answer 502 / 504 and never forward anything else.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Answers larger than this are refused (an authorization proxy must parse what it filters).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

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
}

#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The backend's authority, parsed once: each request's URI is built from it and the
    /// query rather than parsed whole from a string.
    authority: Authority,
    host: HeaderValue,
    timeout: Duration,
}

impl Upstream {
    pub fn new(url: &str, timeout_ms: u64) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("upstream url {url:?}: {e}"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("upstream url {url:?} has no host"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(timeout_ms)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        Ok(Self {
            client,
            host: HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
            authority: authority.clone(),
            timeout: Duration::from_millis(timeout_ms),
        })
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout.as_millis() as u64
    }

    /// `POST /?<query>` with an empty body and exactly `headers` (plus `host`), the answer
    /// read whole within the deadline.
    pub async fn call(
        &self,
        query: &str,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let request = self.request(query, headers)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| UpstreamError::Unreachable(error_chain(&e)))?;
            let status = response.status();
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| UpstreamError::Unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            let body = check_answer(status, content_type.as_ref(), body)?;
            Ok(UpstreamResponse {
                status,
                content_type,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout_ms()))?
    }

    /// `POST /?<query>` to the backend with `host` and `headers`. Built outside the async
    /// `call` so that its temporaries are not part of every request's future, which hyper
    /// moves as a whole.
    fn request(
        &self,
        query: &str,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let cannot_build = |e: &dyn std::fmt::Display| {
            UpstreamError::Unreachable(format!("cannot build the request: {e}"))
        };
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        uri.path_and_query = Some(
            PathAndQuery::from_maybe_shared(Bytes::from(format!("/?{query}")))
                .map_err(|e| cannot_build(&e))?,
        );
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_parts(uri).map_err(|e| cannot_build(&e))?;
        let headers = headers.into_iter();
        let h = request.headers_mut();
        // `host` and the caller's headers, without growing the map on the way.
        h.reserve(1 + headers.size_hint().0);
        h.insert(HOST, self.host.clone());
        for (name, value) in headers {
            h.append(name, value);
        }
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

fn error_chain(e: &dyn std::error::Error) -> String {
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
