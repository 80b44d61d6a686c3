//! ramgate's own Alibaba Cloud credential (SPEC §8), from the sources and in the order of
//! Alibaba Cloud's credential libraries: the environment ([`Source::Env`]), OIDC / RRSA
//! ([`oidc`]), the credentials file ([`file`]), the ECS instance RAM role ([`imds`]).
//!
//! Each call takes id, secret and token together from one `arc-swap` snapshot
//! ([`Credentials::current`]). A temporary credential is refreshed in the background by
//! one task (single-flight: there is never a second refresh under way), well before it
//! expires: when half its lifetime, at most 15 minutes, remains. A request never waits for
//! a refresh; while no valid credential is held, [`Credentials::current`] fails and the
//! call is answered 503 without anything being sent. A refresh that fails keeps the
//! current credential while it is valid and tries again with jittered back-off.
//!
//! Secrets stay secret: [`Credential`]'s `Debug` hides the secret and token, and logs,
//! metrics and `/v1/status` name only the source, the AccessKey id and the expiry.

pub mod file;
pub mod imds;
pub mod oidc;

use super::retry;
use super::tls::HttpsClient;
use crate::config::{CredentialSource, UpstreamCredentials};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// One credential: id, secret and (temporary ones) token and expiry, always together.
#[derive(Clone)]
pub struct Credential {
    pub access_key_id: String,
    secret: String,
    security_token: Option<String>,
    /// Unix seconds; `None` for a long-term AccessKey.
    pub expiration: Option<i64>,
    /// Until when ramgate signs with it: a little before `expiration`, so that a call
    /// signed now is not received after it.
    usable_until: Option<i64>,
    /// When a background refresh starts.
    refresh_at: Option<i64>,
    pub source: Source,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .field("expiration", &self.expiration)
            .field("source", &self.source)
            .finish()
    }
}

impl Credential {
    /// A credential obtained at `now` (Unix seconds).
    pub fn new(
        access_key_id: String,
        secret: String,
        security_token: Option<String>,
        expiration: Option<i64>,
        source: Source,
        now: i64,
    ) -> Self {
        let (usable_until, refresh_at) = match expiration {
            Some(at) => {
                let lifetime = (at - now).max(0);
                let margin = (lifetime / 10).min(30);
                let ahead = (lifetime / 2).min(15 * 60);
                (Some(at - margin), Some(at - ahead))
            }
            None => (None, None),
        };
        Self {
            access_key_id,
            secret,
            security_token: security_token.filter(|t| !t.is_empty()),
            expiration,
            usable_until,
            refresh_at,
            source,
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Whether ramgate may sign with it at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }
}

/// Where the credential came from (a bounded label for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env,
    Oidc,
    File,
    EcsRamRole,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Env => "env",
            Source::Oidc => "oidc",
            Source::File => "file",
            Source::EcsRamRole => "ecs_ram_role",
        }
    }
}

/// Why a credential could not be obtained. `retryable`: the service may answer later
/// (throttling, unavailable, 5xx, connection errors).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

impl FetchError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

/// A temporary key as STS (`Credentials`) and instance metadata write it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemporaryKey {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

impl TemporaryKey {
    /// The credential, obtained now from `source`.
    pub fn into_credential(self, source: Source) -> Result<Credential, FetchError> {
        Ok(Credential::new(
            self.access_key_id,
            self.access_key_secret,
            Some(self.security_token),
            Some(parse_expiration(&self.expiration)?),
            source,
            unix_now(),
        ))
    }
}

/// Reads an environment variable (tests pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A source that must be asked again before its credential expires.
#[derive(Debug)]
pub enum Refreshing {
    Oidc(oidc::Oidc),
    EcsRamRole(imds::Imds),
}

impl Refreshing {
    fn source(&self) -> Source {
        match self {
            Refreshing::Oidc(_) => Source::Oidc,
            Refreshing::EcsRamRole(_) => Source::EcsRamRole,
        }
    }

    async fn fetch(
        &self,
        client: &HttpsClient,
        deadline: Duration,
    ) -> Result<Credential, FetchError> {
        match self {
            Refreshing::Oidc(o) => o.fetch(client, deadline).await,
            Refreshing::EcsRamRole(i) => i.fetch(client).await,
        }
    }
}

/// The chosen source: a credential known now, or one to fetch and refresh.
#[derive(Debug)]
pub enum Provider {
    Static(Credential),
    Refreshing(Refreshing),
}

/// Chooses the source as `[upstream.credentials] source` says: one source, or the
/// default chain (environment → OIDC → credentials file → ECS RAM role), each taken when
/// its variables or file are present. Errors are configuration errors, in plain words.
pub fn resolve(settings: &UpstreamCredentials, env: Env<'_>) -> Result<Provider, String> {
    let now = unix_now();
    let env_pair = || {
        match (
            env("ALIBABA_CLOUD_ACCESS_KEY_ID"),
            env("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ) {
            (Some(id), Some(secret)) => Ok(Some(Credential::new(
                id,
                secret,
                env("ALIBABA_CLOUD_SECURITY_TOKEN"),
                None,
                Source::Env,
                now,
            ))),
            (None, None) => Ok(None),
            (Some(_), None) => Err("ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not; set both".to_owned()),
            (None, Some(_)) => Err("ALIBABA_CLOUD_ACCESS_KEY_SECRET is set but ALIBABA_CLOUD_ACCESS_KEY_ID is not; set both".to_owned()),
        }
    };
    let oidc = || oidc::Oidc::from_env(&settings.sts_endpoint, env);
    let file = || file::from_env(env, now);
    let ecs = || imds::Imds::from_env(&settings.imds_endpoint, env);
    match settings.source {
        CredentialSource::Env => env_pair()?.map(Provider::Static).ok_or_else(|| {
            "source = \"env\" needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for a temporary key)".to_owned()
        }),
        CredentialSource::Oidc => oidc()?
            .map(|o| Provider::Refreshing(Refreshing::Oidc(o)))
            .ok_or_else(|| "source = \"oidc\" needs ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE (set by RRSA on ACK)".to_owned()),
        CredentialSource::File => file()?.map(Provider::Static).ok_or_else(|| {
            "source = \"file\" found no credentials file: set ALIBABA_CLOUD_CREDENTIALS_FILE or create ~/.alibabacloud/credentials".to_owned()
        }),
        CredentialSource::EcsRamRole => Ok(Provider::Refreshing(Refreshing::EcsRamRole(
            imds::Imds::new(&settings.imds_endpoint, env),
        ))),
        CredentialSource::Default => {
            if let Some(c) = env_pair()? {
                return Ok(Provider::Static(c));
            }
            if let Some(o) = oidc()? {
                return Ok(Provider::Refreshing(Refreshing::Oidc(o)));
            }
            if let Some(c) = file()? {
                return Ok(Provider::Static(c));
            }
            ecs().map(|i| Provider::Refreshing(Refreshing::EcsRamRole(i))).ok_or_else(|| {
                "no credential found for signing = \"acs3\": set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or the RRSA variables (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE), or a credentials file; the ECS RAM role is disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED".to_owned()
            })
        }
    }
}

/// What `/v1/status` shows of the credential.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    pub source: &'static str,
    pub access_key_id: Option<String>,
    pub expiration: Option<String>,
    pub valid: bool,
    pub last_refresh_error: Option<String>,
}

struct Shared {
    current: ArcSwapOption<Credential>,
    source: Source,
    last_error: Mutex<Option<String>>,
}

/// ramgate's credential, shared by every call; cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    shared: Arc<Shared>,
}

impl Credentials {
    /// Takes the provider's credential, or starts the background task that fetches and
    /// refreshes it (until the process ends). Must be called within the Tokio runtime.
    pub fn start(provider: Provider, client: HttpsClient, deadline: Duration) -> Self {
        let (source, first, refreshing) = match provider {
            Provider::Static(c) => (c.source, Some(Arc::new(c)), None),
            Provider::Refreshing(r) => (r.source(), None, Some(r)),
        };
        let this = Self {
            shared: Arc::new(Shared {
                current: ArcSwapOption::new(first),
                source,
                last_error: Mutex::new(None),
            }),
        };
        if let Some(first) = this.shared.current.load_full() {
            announce(&first);
        }
        if let Some(refreshing) = refreshing {
            let shared = this.shared.clone();
            tokio::spawn(refresh_forever(shared, refreshing, client, deadline));
        }
        this
    }

    /// The credential to sign with now, or why there is none.
    pub fn current(&self) -> Result<Arc<Credential>, String> {
        let now = unix_now();
        match self.shared.current.load_full() {
            Some(c) if c.usable(now) => Ok(c),
            Some(_) => Err(format!(
                "ramgate's {} credential has expired and could not be refreshed{}",
                self.shared.source.as_str(),
                self.last_error_suffix()
            )),
            None => Err(format!(
                "ramgate has no {} credential yet{}",
                self.shared.source.as_str(),
                self.last_error_suffix()
            )),
        }
    }

    fn last_error_suffix(&self) -> String {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    }

    pub fn status(&self) -> Status {
        let current = self.shared.current.load_full();
        Status {
            source: self.shared.source.as_str(),
            access_key_id: current.as_ref().map(|c| c.access_key_id.clone()),
            expiration: current
                .as_ref()
                .and_then(|c| c.expiration)
                .map(crate::upstream::credentials::rfc3339),
            valid: current.is_some_and(|c| c.usable(unix_now())),
            last_refresh_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

fn announce(c: &Credential) {
    tracing::info!(
        source = c.source.as_str(),
        access_key_id = %c.access_key_id,
        expiration = c.expiration.map(rfc3339).unwrap_or_else(|| "never".into()),
        "upstream credential in use"
    );
}

/// The one refresher of a temporary credential: fetch, keep it, sleep until its refresh
/// time, again. A failed fetch is retried with jittered back-off while the old credential
/// stays in use as long as it is valid.
async fn refresh_forever(
    shared: Arc<Shared>,
    source: Refreshing,
    client: HttpsClient,
    deadline: Duration,
) {
    let mut failures: u32 = 0;
    loop {
        match fetch_with_retries(&shared, &source, &client, deadline).await {
            Ok(credential) => {
                crate::ops::metrics::credential_refresh(source.source().as_str(), true);
                failures = 0;
                *shared
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                announce(&credential);
                let wait = credential
                    .refresh_at
                    .map(|at| (at - unix_now()).max(1))
                    .unwrap_or(3600);
                shared.current.store(Some(Arc::new(credential)));
                tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(1))).await;
            }
            Err(e) => {
                crate::ops::metrics::credential_refresh(source.source().as_str(), false);
                tracing::warn!(
                    source = source.source().as_str(),
                    "refreshing the upstream credential failed: {}",
                    e.message
                );
                *shared
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(e.message);
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry::backoff(failures.min(8))).await;
            }
        }
    }
}

/// One refresh: tries again on transient failures, within `deadline`; each failed try is
/// shown as the last error at once.
async fn fetch_with_retries(
    shared: &Shared,
    source: &Refreshing,
    client: &HttpsClient,
    deadline: Duration,
) -> Result<Credential, FetchError> {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        let result = match tokio::time::timeout(left, source.fetch(client, left)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::transient(format!(
                "no answer within {} ms",
                deadline.as_millis()
            ))),
        };
        if let Err(e) = &result {
            *shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(e.message.clone());
        }
        match result {
            Err(e) if e.retryable => {
                let wait = retry::backoff(attempt);
                if started.elapsed() + wait >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Sends one request to a credential service and reads its answer (at most 1 MiB) within
/// `deadline`. Connection errors and 5xx are transient.
pub async fn exchange(
    client: &HttpsClient,
    request: http::Request<Full<Bytes>>,
    deadline: Duration,
    what: &str,
) -> Result<(http::StatusCode, Bytes), FetchError> {
    let send = async {
        let response = client.request(request).await.map_err(|e| {
            let tls = super::tls::is_tls_failure(&e);
            let message = format!("{what}: {}", super::error_chain(&e));
            if tls {
                FetchError::fatal(message)
            } else {
                FetchError::transient(message)
            }
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| FetchError::transient(format!("{what}: reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(deadline, send).await.map_err(|_| {
        FetchError::transient(format!(
            "{what}: no answer within {} ms",
            deadline.as_millis()
        ))
    })?
}

/// A non-2xx answer of a credential service as a [`FetchError`], classified by `Code`
/// (else by status). The service's message is kept: STS and IMDS messages name no secret.
pub fn answer_error(what: &str, status: http::StatusCode, body: &[u8]) -> FetchError {
    let code = retry::error_code(body);
    let retryable = status.is_server_error() || code.as_deref().is_some_and(retry::retryable_code);
    FetchError {
        message: format!(
            "{what} answered HTTP {status}{}",
            code.map(|c| format!(" {c}")).unwrap_or_default()
        ),
        retryable,
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix seconds as `2006-01-02T15:04:05Z`.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `2006-01-02T15:04:05Z` (as STS and IMDS write `Expiration`) → Unix seconds.
pub fn parse_expiration(text: &str) -> Result<i64, FetchError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            FetchError::fatal(format!(
                "the Expiration {text:?} is not an ISO 8601 UTC time"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn settings(source: CredentialSource) -> UpstreamCredentials {
        UpstreamCredentials {
            source,
            ..UpstreamCredentials::default()
        }
    }

    #[test]
    fn the_default_chain_takes_the_first_source_present() {
        let env = env_of(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s"),
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1:oidc-provider/p",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
        ]);
        match resolve(&settings(CredentialSource::Default), &env).unwrap() {
            Provider::Static(c) => {
                assert_eq!(c.access_key_id, "LTAIenv");
                assert_eq!(c.security_token(), None);
            }
            other => panic!("{other:?}"),
        }
        let env = env_of(&[
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1:oidc-provider/p",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
            ("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent"),
        ]);
        assert!(matches!(
            resolve(&settings(CredentialSource::Default), &env).unwrap(),
            Provider::Refreshing(Refreshing::Oidc(_))
        ));
        let env = env_of(&[("HOME", "/nonexistent")]);
        assert!(matches!(
            resolve(&settings(CredentialSource::Default), &env).unwrap(),
            Provider::Refreshing(Refreshing::EcsRamRole(_))
        ));
        let env = env_of(&[
            ("HOME", "/nonexistent"),
            ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true"),
        ]);
        let e = resolve(&settings(CredentialSource::Default), &env).unwrap_err();
        assert!(e.contains("no credential found"), "{e}");
    }

    #[test]
    fn half_set_variables_are_errors() {
        let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv")]);
        let e = resolve(&settings(CredentialSource::Default), &env).unwrap_err();
        assert!(e.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), "{e}");
        let e = resolve(&settings(CredentialSource::Oidc), &env_of(&[])).unwrap_err();
        assert!(e.contains("ALIBABA_CLOUD_ROLE_ARN"), "{e}");
    }

    #[test]
    fn temporary_credentials_refresh_early_and_stop_before_expiry() {
        let hour = Credential::new(
            "a".into(),
            "s".into(),
            Some("t".into()),
            Some(10_000 + 3600),
            Source::Oidc,
            10_000,
        );
        assert_eq!(hour.refresh_at, Some(10_000 + 3600 - 900));
        assert!(hour.usable(10_000 + 3600 - 31));
        assert!(!hour.usable(10_000 + 3600 - 30));
        let short = Credential::new(
            "a".into(),
            "s".into(),
            None,
            Some(100 + 10),
            Source::Oidc,
            100,
        );
        assert_eq!(short.refresh_at, Some(105));
        assert!(short.usable(108) && !short.usable(109));
        let long_term = Credential::new("a".into(), "s".into(), None, None, Source::Env, 0);
        assert!(long_term.usable(i64::MAX));
        let shown = format!("{hour:?}");
        assert!(
            !shown.contains("\"s\"") && !shown.contains("\"t\""),
            "{shown}"
        );
    }
}
