//! The pooled HTTP client to the container-group backend, used both to forward authorized
//! requests and to look up metadata. Every call has a deadline; every failure is typed so
//! the caller can answer 502 / 504 and never forward anything else.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Answers larger than this are refused (an authorization proxy must parse what it filters).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Unreachable(String),
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
    authority: HeaderValue,
    base: String,
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
            authority: HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
            base: format!("http://{authority}/?"),
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
        let mut request = Request::post(format!("{}{query}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| UpstreamError::Unreachable(format!("cannot build the request: {e}")))?;
        let h = request.headers_mut();
        h.insert(HOST, self.authority.clone());
        for (name, value) in headers {
            h.append(name, value);
        }
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
