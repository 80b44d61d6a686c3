//! OIDC / RRSA (Kubernetes on ACK): STS `AssumeRoleWithOIDC` with the service account's
//! token. The call is unsigned (the token is the proof) and is a `POST` whose form body
//! carries the token, so it never sits in a URL (and so in no access log). The token file
//! is re-read at every refresh: RRSA rotates it.

use super::{answer_error, exchange, unix_now, Credential, Env, FetchError, Source, TemporaryKey};
use crate::request::encoding::encode_pairs;
use crate::upstream::tls::HttpsClient;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http_body_util::Full;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The default STS endpoint; `ALIBABA_CLOUD_STS_REGION` (and
/// `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`) choose a regional one when the configuration
/// keeps this default.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";

#[derive(Debug, Clone)]
pub struct Oidc {
    pub endpoint: String,
    pub role_arn: String,
    pub provider_arn: String,
    pub token_file: PathBuf,
    pub session_name: String,
}

impl Oidc {
    /// From `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`,
    /// `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (all three, or none: `None`), and the optional
    /// `ALIBABA_CLOUD_ROLE_SESSION_NAME`.
    pub fn from_env(sts_endpoint: &str, env: Env<'_>) -> Result<Option<Self>, String> {
        let names = [
            "ALIBABA_CLOUD_ROLE_ARN",
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        ];
        let [role, provider, file] = names.map(env);
        let (role_arn, provider_arn, token_file) = match (role, provider, file) {
            (Some(r), Some(p), Some(f)) => (r, p, f),
            (None, None, None) => return Ok(None),
            given => {
                let missing: Vec<&str> = [given.0.is_none(), given.1.is_none(), given.2.is_none()]
                    .iter()
                    .zip(names)
                    .filter(|(m, _)| **m)
                    .map(|(_, n)| n)
                    .collect();
                return Err(format!(
                    "OIDC (RRSA) needs {} too: set all of {}",
                    missing.join(" and "),
                    names.join(", ")
                ));
            }
        };
        let endpoint = if sts_endpoint == DEFAULT_STS_ENDPOINT {
            match env("ALIBABA_CLOUD_STS_REGION") {
                Some(region)
                    if env("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED").as_deref() == Some("true") =>
                {
                    format!("https://sts-vpc.{region}.aliyuncs.com")
                }
                Some(region) => format!("https://sts.{region}.aliyuncs.com"),
                None => sts_endpoint.to_owned(),
            }
        } else {
            sts_endpoint.to_owned()
        };
        Ok(Some(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            role_arn,
            provider_arn,
            token_file: token_file.into(),
            session_name: env("ALIBABA_CLOUD_ROLE_SESSION_NAME")
                .unwrap_or_else(|| format!("ramgate-{}", unix_now())),
        }))
    }

    pub async fn fetch(
        &self,
        client: &HttpsClient,
        deadline: Duration,
    ) -> Result<Credential, FetchError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| {
                FetchError::fatal(format!(
                    "cannot read the OIDC token file {} (ALIBABA_CLOUD_OIDC_TOKEN_FILE): {e}",
                    self.token_file.display()
                ))
            })?;
        let timestamp = super::rfc3339(unix_now());
        let query = encode_pairs([
            ("Action", "AssumeRoleWithOIDC"),
            ("Format", "JSON"),
            ("Timestamp", timestamp.as_str()),
            ("Version", "2015-04-01"),
        ]);
        let body = encode_pairs([
            ("DurationSeconds", "3600"),
            ("OIDCProviderArn", self.provider_arn.as_str()),
            ("OIDCToken", token.trim()),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
        ]);
        let request = http::Request::post(format!("{}/?{query}", self.endpoint))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| FetchError::fatal(format!("cannot build the STS request: {e}")))?;
        let what = "STS AssumeRoleWithOIDC";
        let (status, body) = exchange(client, request, deadline, what).await?;
        if !status.is_success() {
            return Err(answer_error(what, status, &body));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            credentials: TemporaryKey,
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            FetchError::transient(format!(
                "{what} answered JSON without the Credentials expected: {e}"
            ))
        })?;
        answer.credentials.into_credential(Source::Oidc)
    }
}
