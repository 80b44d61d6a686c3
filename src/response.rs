//! The one place typed errors become HTTP responses: Alibaba's JSON error shape (with
//! `AccessDeniedDetail` on denials), which the SDKs raise as their usual exception, and
//! the silent empty answer of a denied Describe.

use crate::decision::Reason;
use crate::request::RequestError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

pub type Body = Full<Bytes>;

/// Who a denial was for, as `AccessDeniedDetail` reports it.
#[derive(Debug, Clone)]
pub struct DeniedPrincipal {
    /// `SubUser`, `AssumedRoleUser` or `Account`.
    pub kind: &'static str,
    pub owner_id: String,
    pub display_name: String,
}

/// Every way a request can be refused or fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("The request body is larger than {limit} bytes.")]
    TooLarge { limit: usize },
    /// 401: no identity, an unknown principal, an untrusted identity header, two identities.
    #[error("{0}")]
    Identity(String),
    /// Signature problems, with Alibaba's own codes and statuses.
    #[error("{message}")]
    Signature {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error("You are not authorized to do this operation. Action: {action}")]
    Denied {
        action: &'static str,
        principal: DeniedPrincipal,
        reason: Reason,
    },
    #[error("The service role AliyunECIContainerGroupRole is not authorized for this account, so ECI cannot create container groups for it. {hint}")]
    ServiceRoleNotAuthorized { hint: String },
    #[error("A container group's resource group cannot be changed; it stays in the group it was created in.")]
    ResourceGroupImmutable,
    #[error("The backend could not be reached: {0}")]
    BadGateway(String),
    #[error(
        "The container group metadata needed to authorize this request could not be looked up: {0}"
    )]
    MetadataUnavailable(String),
    #[error("The backend did not answer within {0} ms.")]
    GatewayTimeout(u64),
    /// `signing = "acs3"` without a valid credential of ramgate's own (SPEC §8).
    #[error(
        "ramgate has no valid credential to call Alibaba Cloud with, so nothing was sent: {0}"
    )]
    NoUpstreamCredential(String),
    /// `[cluster] on_unavailable = "deny"` and Redis could not be asked about a nonce.
    #[error("The shared nonce store (Redis) is unreachable ({0}), so the request's nonce cannot be checked against the other replicas; retry later.")]
    NonceStoreUnavailable(String),
    /// Over the caller's `[[quotas]]` limit (SPEC §9).
    #[error("Request was denied due to user flow control.")]
    Throttled { retry_after_ms: u64 },
}

impl From<crate::metadata::LookupError> for ApiError {
    fn from(e: crate::metadata::LookupError) -> Self {
        use crate::metadata::LookupError;
        match e {
            LookupError::Unavailable(m) => ApiError::MetadataUnavailable(m),
            LookupError::BadGateway(m) => ApiError::BadGateway(m),
            LookupError::NoCredential(m) => ApiError::NoUpstreamCredential(m),
        }
    }
}

impl From<crate::upstream::UpstreamError> for ApiError {
    fn from(e: crate::upstream::UpstreamError) -> Self {
        use crate::upstream::UpstreamError;
        match e {
            UpstreamError::Timeout(ms) => ApiError::GatewayTimeout(ms),
            UpstreamError::NoCredential(m) => ApiError::NoUpstreamCredential(m),
            e @ (UpstreamError::Unreachable(_)
            | UpstreamError::Tls(_)
            | UpstreamError::CredentialsRejected { .. }) => ApiError::BadGateway(e.to_string()),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        let code = match self {
            ApiError::Request(e) => e.status(),
            ApiError::TooLarge { .. } => 413,
            ApiError::Identity(_) => 401,
            ApiError::Signature { status, .. } => *status,
            ApiError::Denied { .. } | ApiError::ServiceRoleNotAuthorized { .. } => 403,
            ApiError::ResourceGroupImmutable => 400,
            ApiError::BadGateway(_) => 502,
            ApiError::MetadataUnavailable(_) | ApiError::NoUpstreamCredential(_) => 503,
            ApiError::GatewayTimeout(_) => 504,
            ApiError::NonceStoreUnavailable(_) => 503,
            ApiError::Throttled { .. } => 400,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Request(e) => e.code(),
            ApiError::TooLarge { .. } => "RequestTooLarge",
            ApiError::Identity(_) => "InvalidIdentity",
            ApiError::Signature { code, .. } => code,
            ApiError::Denied { .. } => "Forbidden.RAM",
            ApiError::ServiceRoleNotAuthorized { .. } => "Forbidden.ServiceRoleNotAuthorized",
            ApiError::ResourceGroupImmutable => "OperationDenied.ResourceGroupImmutable",
            ApiError::BadGateway(_) => "BadGateway",
            ApiError::MetadataUnavailable(_) | ApiError::NoUpstreamCredential(_) => {
                "ServiceUnavailable"
            }
            ApiError::GatewayTimeout(_) => "GatewayTimeout",
            ApiError::NonceStoreUnavailable(_) => "ServiceUnavailable",
            ApiError::Throttled { .. } => "Throttling.User",
        }
    }

    /// The JSON error response.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let mut body = json!({
            "RequestId": request_id,
            "HostId": "ramgate",
            "Code": self.code(),
            "Message": self.to_string(),
        });
        if let ApiError::Denied {
            action,
            principal,
            reason,
        } = &self
        {
            body["AccessDeniedDetail"] = json!({
                "AuthAction": action,
                "AuthPrincipalType": principal.kind,
                "AuthPrincipalOwnerId": principal.owner_id,
                "AuthPrincipalDisplayName": principal.display_name,
                "NoPermissionType": reason.no_permission_type(false).as_str(),
                "PolicyType": reason.policy_type().as_str(),
            });
        }
        let mut response = json_response(self.status(), request_id, body.to_string().into());
        if let ApiError::Throttled { retry_after_ms } = self {
            // What newer SDKs read as "throttled, retry after this many milliseconds".
            response
                .headers_mut()
                .insert("x-acs-retry-after", HeaderValue::from(retry_after_ms));
        }
        response
    }
}

/// The answer to a denied Describe (or list): 200 with nothing in it.
pub fn silent_empty(request_id: &str, list_field: &str) -> Response<Body> {
    let body = json!({"RequestId": request_id, "TotalCount": 0, list_field: []});
    json_response(StatusCode::OK, request_id, body.to_string().into())
}

pub fn json_response(status: StatusCode, request_id: &str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{NoPermissionType, PolicyType, StatementRef};
    use http_body_util::BodyExt;

    async fn body_of(r: Response<Body>) -> serde_json::Value {
        let bytes = r
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn denial_has_alibabas_shape() {
        let reason = Reason::Statement(
            StatementRef {
                policy: 0,
                statement: 0,
                group_scoped: true,
            },
            NoPermissionType::ExplicitDeny,
        );
        let e = ApiError::Denied {
            action: "eci:DeleteContainerGroup",
            principal: DeniedPrincipal {
                kind: "SubUser",
                owner_id: "1234567890123456".into(),
                display_name: "test".into(),
            },
            reason,
        };
        let r = e.into_response("req-1");
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["x-acs-request-id"], "req-1");
        let v = body_of(r).await;
        assert_eq!(v["Code"], "Forbidden.RAM");
        assert_eq!(
            v["Message"],
            "You are not authorized to do this operation. Action: eci:DeleteContainerGroup"
        );
        assert_eq!(v["AccessDeniedDetail"]["NoPermissionType"], "ExplicitDeny");
        assert_eq!(
            v["AccessDeniedDetail"]["PolicyType"],
            PolicyType::ResourceGroupLevelIdentityBasedPolicy.as_str()
        );
        assert_eq!(v["AccessDeniedDetail"]["AuthPrincipalDisplayName"], "test");
    }

    #[tokio::test]
    async fn throttling_is_alibabas_with_a_retry_after() {
        let r = ApiError::Throttled {
            retry_after_ms: 1500,
        }
        .into_response("req-2");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-acs-retry-after"], "1500");
        let v = body_of(r).await;
        assert_eq!(v["Code"], "Throttling.User");
        assert_eq!(v["Message"], "Request was denied due to user flow control.");
    }

    #[tokio::test]
    async fn silent_empty_is_an_empty_list() {
        let v = body_of(silent_empty("r", "ContainerGroups")).await;
        assert_eq!(
            v,
            json!({"RequestId": "r", "TotalCount": 0, "ContainerGroups": []})
        );
    }
}
