//! Why a request could not be parsed: a message naming the parameter and what to do about
//! it. `response.rs` gives each its HTTP status and the Alibaba `Code` the SDKs expect.

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

    /// The parameter the error is about, when it is about one.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Missing { param, .. } | Self::Invalid { param, .. } => Some(param),
            Self::ActionNotFound(_) => Some("Action"),
            Self::PathNotFound(_) | Self::Malformed(_) => None,
        }
    }
}
