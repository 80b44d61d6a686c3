//! Alibaba-shaped answers: JSON bodies that always carry a `RequestId`, and the error shape
//! `{"RequestId","HostId","Code","Message"}` the SDKs turn into their usual exception.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

/// The `HostId` of every error this service answers.
pub const HOST_ID: &str = "ramgate-backend";

/// An API error: status, Alibaba error code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn missing(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }

    pub fn unknown_action() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )
    }

    pub fn group_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "InvalidContainerGroup.NotFound",
            format!("The specified container group {id} does not exist."),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

/// A fresh request id, upper-case like Alibaba's.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}

/// 200 with `body` (an object) plus `RequestId`.
pub fn ok(body: Value) -> Response<Full<Bytes>> {
    let id = request_id();
    let mut object = match body {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("Data".to_owned(), other);
            map
        }
    };
    object.insert("RequestId".to_owned(), Value::String(id.clone()));
    json_response(StatusCode::OK, &Value::Object(object), Some(&id))
}

pub fn error(e: &ApiError) -> Response<Full<Bytes>> {
    let id = request_id();
    let body = json!({"RequestId": id, "HostId": HOST_ID, "Code": e.code, "Message": e.message});
    json_response(e.status, &body, Some(&id))
}

/// Any JSON answer (also used by the test hooks, which carry no request id).
pub fn json_response(
    status: StatusCode,
    body: &Value,
    request_id: Option<&str>,
) -> Response<Full<Bytes>> {
    // Serialising a `Value` cannot fail (keys are strings); fall back to `{}` regardless.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert("x-acs-request-id", id);
    }
    response
}
