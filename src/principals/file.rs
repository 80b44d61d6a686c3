//! The serde shape of `principals.toml`, exactly as SPEC §5 shows it. Unknown fields are
//! errors; spans are kept for every name so later checks can point at them.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalsFile {
    pub account: Option<AccountEntry>,
    #[serde(default)]
    pub resource_groups: Vec<GroupEntry>,
    #[serde(default)]
    pub users: Vec<PrincipalEntry>,
    #[serde(default)]
    pub roles: Vec<PrincipalEntry>,
    #[serde(default)]
    pub quotas: Vec<QuotaEntry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    #[serde(default)]
    pub guardrails: Vec<Spanned<String>>,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyEntry>,
    #[serde(default)]
    pub mtls: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub id: Spanned<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalEntry {
    pub name: Spanned<String>,
    #[serde(default)]
    pub attach: Vec<Attachment>,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyEntry>,
    #[serde(default)]
    pub mtls: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub policy: Spanned<String>,
    pub resource_group: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyEntry {
    pub id: Spanned<String>,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
}

/// `[[quotas]]` (SPEC §9): a per-minute limit per principal and action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaEntry {
    pub principals: Spanned<Vec<Spanned<String>>>,
    pub actions: Spanned<Vec<Spanned<String>>>,
    /// Signed, so that a negative number gets ramgate's own message and hint.
    pub per_minute: Spanned<i64>,
}

/// A hint for the serde messages users most often meet.
pub fn hint_for(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("remove the field or fix its spelling; the fields are listed in the message".into())
    } else if message.starts_with("missing field") {
        Some("add the field named in the message".into())
    } else if message.contains("invalid type") {
        Some("check the value's type: names are strings in quotes, lists use [ ... ]".into())
    } else {
        None
    }
}
