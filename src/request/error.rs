//! Why a request could not be parsed: each error carries the HTTP status and the Alibaba
//! `Code` the SDKs expect, and a message naming the parameter and what to do about it.
//! Another module renders it as Alibaba's JSON error.

/// A request refused before any identity or policy is looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A path other than `/`: the ECI OpenAPI lives at the root only.
    #[error("The specified path {0:?} is not found. The ECI OpenAPI is served at \"/\" only: send the action in the Action parameter or the x-acs-action header.")]
    PathNotFound(String),
    /// An action ramgate does not know; nothing unknown is forwarded.
    #[error("The specified action {0:?} is not found. ramgate forwards the ECI 2018-08-08 actions only, spelled exactly (names are case-sensitive, e.g. DescribeContainerGroups).")]
    ActionNotFound(String),
    /// A mandatory parameter is absent.
    #[error("The input parameter {param:?} that is mandatory for processing this request is not supplied: {hint}")]
    Missing { param: String, hint: String },
    /// A parameter is malformed or ambiguous.
    #[error("The parameter {param:?} is invalid: {reason}")]
    Invalid { param: String, reason: String },
    /// The request as a whole is not understood (method, body, encoding).
    #[error("The request is not understood: {0}")]
    Malformed(String),
}

impl RequestError {
    pub(crate) fn invalid(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            param: param.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(param: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Missing {
            param: param.into(),
            hint: hint.into(),
        }
    }

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

    /// The parameter the error is about, when it is about one.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Missing { param, .. } | Self::Invalid { param, .. } => Some(param),
            Self::ActionNotFound(_) => Some("Action"),
            Self::PathNotFound(_) | Self::Malformed(_) => None,
        }
    }
}
