//! The one place typed errors become HTTP responses: Alibaba's JSON error shape (with
//! `AccessDeniedDetail` on denials), which the SDKs raise as their usual exception, and
//! the silent empty answer of a denied Describe.

use crate::decision::Reason;
use crate::filter::FilterError;
use crate::identity::IdentityError;
use crate::metadata::LookupError;
use crate::request::RequestError;
use crate::upstream::UpstreamError;
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

/// Every way a request can be refused or fail: each layer's own error, wrapped as it is.
/// The status, `Code` and message of each are chosen here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("The request body is larger than {limit} bytes.")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Identity(#[from] IdentityError),
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
    #[error(
        "The container group metadata needed to authorize this request could not be looked up: {0}"
    )]
    Lookup(#[from] LookupError),
    #[error("{}", upstream_message(.0))]
    Upstream(#[from] UpstreamError),
    #[error("The backend's answer was refused: {0}")]
    Filter(#[from] FilterError),
    /// Over the caller's `[[quotas]]` limit (SPEC §9).
    #[error("Request was denied due to user flow control.")]
    Throttled { retry_after_ms: u64 },
}

fn upstream_message(e: &UpstreamError) -> String {
    match e {
        UpstreamError::Unreachable(m) => format!("The backend could not be reached: {m}"),
        UpstreamError::Rejected(m) => format!("The backend's answer was refused: {m}"),
        UpstreamError::Timeout(ms) => format!("The backend did not answer within {ms} ms."),
        UpstreamError::Tls(_) | UpstreamError::CredentialsRejected { .. } => {
            format!("The backend could not be reached: {e}")
        }
        UpstreamError::NoCredential(m) => format!(
            "ramgate has no valid credential to call Alibaba Cloud with, so nothing was sent: {m}"
        ),
    }
}

/// A failed metadata lookup fails the request closed (SPEC §1): 503, or 502 when the
/// upstream's certificate or its answer to ramgate's own credential was the problem; a
/// missing credential of ramgate's own is 503 as for a forwarded call.
fn lookup_is_bad_gateway(e: &LookupError) -> bool {
    matches!(
        e,
        LookupError::Upstream(UpstreamError::Tls(_) | UpstreamError::CredentialsRejected { .. })
    )
}

impl RequestError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::PathNotFound(_) | Self::ActionNotFound(_) => 404,
            Self::Missing { .. } | Self::Invalid { .. } | Self::Malformed(_) => 400,
        }
    }

    /// The Alibaba error `Code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PathNotFound(_) | Self::ActionNotFound(_) => "InvalidAction.NotFound",
            Self::Missing { .. } => "MissingParameter",
            Self::Invalid { .. } | Self::Malformed(_) => "InvalidParameter",
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        let code = match self {
            ApiError::Request(e) => e.status(),
            ApiError::TooLarge { .. } => 413,
            ApiError::Identity(e) => match e {
                IdentityError::Refused(_) => 401,
                IdentityError::UnknownAccessKey(_) => 404,
                IdentityError::NonceStoreFull | IdentityError::NonceStoreUnavailable(_) => 503,
                IdentityError::IncompleteSignature(_)
                | IdentityError::SignatureDoesNotMatch(_)
                | IdentityError::TimestampMalformed(_)
                | IdentityError::TimestampExpired(_)
                | IdentityError::NonceUsed(_) => 400,
            },
            ApiError::Denied { .. } | ApiError::ServiceRoleNotAuthorized { .. } => 403,
            ApiError::ResourceGroupImmutable => 400,
            ApiError::Lookup(e) if lookup_is_bad_gateway(e) => 502,
            ApiError::Lookup(_) => 503,
            ApiError::Upstream(UpstreamError::Timeout(_)) => 504,
            ApiError::Upstream(UpstreamError::NoCredential(_)) => 503,
            ApiError::Upstream(_) | ApiError::Filter(_) => 502,
            ApiError::Throttled { .. } => 400,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Request(e) => e.code(),
            ApiError::TooLarge { .. } => "RequestTooLarge",
            ApiError::Identity(e) => match e {
                IdentityError::Refused(_) => "InvalidIdentity",
                IdentityError::IncompleteSignature(_) => "IncompleteSignature",
                IdentityError::SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
                IdentityError::UnknownAccessKey(_) => "InvalidAccessKeyId.NotFound",
                IdentityError::TimestampMalformed(_) => "InvalidTimeStamp.Format",
                IdentityError::TimestampExpired(_) => "InvalidTimeStamp.Expired",
                IdentityError::NonceUsed(_) => "SignatureNonceUsed",
                IdentityError::NonceStoreFull | IdentityError::NonceStoreUnavailable(_) => {
                    "ServiceUnavailable"
                }
            },
            ApiError::Denied { .. } => "Forbidden.RAM",
            ApiError::ServiceRoleNotAuthorized { .. } => "Forbidden.ServiceRoleNotAuthorized",
            ApiError::ResourceGroupImmutable => "OperationDenied.ResourceGroupImmutable",
            ApiError::Lookup(e) if lookup_is_bad_gateway(e) => "BadGateway",
            ApiError::Lookup(_) => "ServiceUnavailable",
            ApiError::Upstream(UpstreamError::Timeout(_)) => "GatewayTimeout",
            ApiError::Upstream(UpstreamError::NoCredential(_)) => "ServiceUnavailable",
            ApiError::Upstream(_) | ApiError::Filter(_) => "BadGateway",
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
pub(crate) fn silent_empty(request_id: &str, list_field: &str) -> Response<Body> {
    let body = json!({"RequestId": request_id, "TotalCount": 0, list_field: []});
    json_response(StatusCode::OK, request_id, body.to_string().into())
}

/// A backend answer passed on (filtered, for a list), with its own status and content type.
pub(crate) fn forwarded(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
    request_id: &str,
) -> Response<Body> {
    let mut response = json_response(status, request_id, body);
    if let Some(ct) = content_type {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, ct);
    }
    response
}

pub(crate) fn json_response(status: StatusCode, request_id: &str, body: Bytes) -> Response<Body> {
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
