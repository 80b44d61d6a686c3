//! The ECS instance RAM role, from the instance metadata service: an IMDSv2 token first
//! (`PUT /latest/api/token`), then, with it, the role name (unless
//! `ALIBABA_CLOUD_ECS_METADATA` gives it) and the role's temporary credential. Each call
//! has the SDKs' 1 s timeout. Without a token, token-less (IMDSv1) calls are made only
//! when `ALIBABA_CLOUD_IMDSV1_DISABLED` is not `true`.

use super::{answer_error, exchange, Credential, Env, FetchError, Source, TemporaryKey};
use crate::upstream::tls::HttpsClient;
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use std::time::Duration;

const CALL_TIMEOUT: Duration = Duration::from_secs(1);
const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

#[derive(Debug, Clone)]
pub struct Imds {
    pub endpoint: String,
    pub role: Option<String>,
    pub v1_disabled: bool,
}

impl Imds {
    pub fn new(endpoint: &str, env: Env<'_>) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            role: env("ALIBABA_CLOUD_ECS_METADATA"),
            v1_disabled: env("ALIBABA_CLOUD_IMDSV1_DISABLED").as_deref() == Some("true"),
        }
    }

    /// The last link of the default chain, unless `ALIBABA_CLOUD_ECS_METADATA_DISABLED`.
    pub fn from_env(endpoint: &str, env: Env<'_>) -> Option<Self> {
        (env("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref() != Some("true"))
            .then(|| Self::new(endpoint, env))
    }

    pub async fn fetch(&self, client: &HttpsClient) -> Result<Credential, FetchError> {
        let token = match self.token(client).await {
            Ok(token) => Some(token),
            Err(e) if self.v1_disabled => {
                return Err(FetchError {
                    message: format!(
                        "{} (token-less calls are off: ALIBABA_CLOUD_IMDSV1_DISABLED=true)",
                        e.message
                    ),
                    retryable: e.retryable,
                })
            }
            Err(e) => {
                tracing::debug!(
                    "no IMDSv2 token ({}); falling back to token-less calls",
                    e.message
                );
                None
            }
        };
        let role = match &self.role {
            Some(role) => role.clone(),
            None => {
                let body = self
                    .get(
                        client,
                        CREDENTIALS_PATH,
                        token.as_deref(),
                        "the instance metadata role name",
                    )
                    .await?;
                let text = String::from_utf8_lossy(&body);
                text.lines()
                    .next()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| FetchError::fatal("the instance has no RAM role attached (the metadata service lists none)"))?
            }
        };
        let body = self
            .get(
                client,
                &format!("{CREDENTIALS_PATH}{role}"),
                token.as_deref(),
                "the instance metadata credentials",
            )
            .await?;
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Code")]
            code: String,
            #[serde(flatten)]
            key: TemporaryKey,
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            FetchError::transient(format!(
                "the instance metadata credentials of role {role:?} are not the JSON expected: {e}"
            ))
        })?;
        if answer.code != "Success" {
            return Err(FetchError::transient(format!(
                "the instance metadata credentials of role {role:?} have Code {:?}, not Success",
                answer.code
            )));
        }
        answer.key.into_credential(Source::EcsRamRole)
    }

    async fn token(&self, client: &HttpsClient) -> Result<String, FetchError> {
        let request = http::Request::put(format!("{}/latest/api/token", self.endpoint))
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
            .body(Full::new(Bytes::new()))
            .map_err(|e| FetchError::fatal(format!("cannot build the IMDS token request: {e}")))?;
        let what = "the instance metadata token (IMDSv2)";
        let (status, body) = exchange(client, request, CALL_TIMEOUT, what).await?;
        if !status.is_success() {
            return Err(answer_error(what, status, &body));
        }
        String::from_utf8(body.to_vec())
            .map(|t| t.trim().to_owned())
            .map_err(|_| FetchError::transient(format!("{what} is not text")))
    }

    async fn get(
        &self,
        client: &HttpsClient,
        path: &str,
        token: Option<&str>,
        what: &str,
    ) -> Result<Bytes, FetchError> {
        let mut request = http::Request::get(format!("{}{path}", self.endpoint));
        if let Some(token) = token {
            request = request.header("X-aliyun-ecs-metadata-token", token);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| FetchError::fatal(format!("cannot build the request for {what}: {e}")))?;
        let (status, body) = exchange(client, request, CALL_TIMEOUT, what).await?;
        if !status.is_success() {
            return Err(answer_error(what, status, &body));
        }
        Ok(body)
    }
}
