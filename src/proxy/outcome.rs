//! What one request came to, for the metrics and the decision log.

/// The `decision` label of `ramgate_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    SilentEmpty,
    WouldDeny,
    /// Over quota (`Throttling.User`).
    Throttled,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::SilentEmpty => "silent_empty",
            Outcome::WouldDeny => "would_deny",
            Outcome::Throttled => "throttled",
            Outcome::Error => "error",
        }
    }
}
