//! A request described by its facts instead of its wire form — the action, the request's
//! resource group, tags and untag keys, and the container groups it targets — turned into
//! the [`CanonicalRequest`] and metadata the proxy would hold, and decided by the planner
//! the proxy calls ([`decision::plan`]). `explain`, `test` and `who-can` all go through
//! here, so none of them can answer differently from the proxy: the request is built by
//! the proxy's own parser, and the outcome is read off the planner's [`Plan`] only.

use crate::catalogue::{self, Targets};
use crate::decision::{self, Allowed, Authorizer, Decision, Denied, Plan};
use crate::model::ContainerGroupMeta;
use crate::request::{self, encoding, CanonicalRequest, RequestError};
use crate::snapshot::Snapshot;

/// The id given to the first target (the others are numbered after it); only shapes ARNs.
pub const TARGET_ID: &str = "eci-target";

/// A request by its facts. `targets` are existing container groups the request names.
#[derive(Debug, Clone, Default)]
pub struct Hypothetical {
    /// `DeleteContainerGroup` or `eci:DeleteContainerGroup`.
    pub action: String,
    /// The request's `ResourceGroupId`.
    pub resource_group: Option<String>,
    /// The request's `Tag.N` (tags set, for tag changes; filters, for lists).
    pub tags: Vec<(String, String)>,
    /// The request's `TagKey.N` (UntagResources).
    pub untag_keys: Vec<String>,
    pub targets: Vec<ContainerGroupMeta>,
}

/// Why a hypothetical request cannot be decided: it is not one the proxy would decide.
#[derive(Debug, thiserror::Error)]
pub enum HypotheticalError {
    #[error("{0} is not an ECI action ramgate forwards; the proxy answers it with 404 InvalidAction.NotFound for every caller")]
    UnknownAction(String),
    #[error("{0} acts on an existing container group: give its resource group and tags (explain: --target-group and --resource-tag k=v; a case: target = {{ resource_group = ..., tags = {{ ... }} }})")]
    TargetRequired(&'static str),
    #[error("{0} acts on no existing container group: leave the target out")]
    TargetNotTaken(&'static str),
    #[error("{0} names one container group, not {1}")]
    OneTarget(&'static str, usize),
    #[error("the proxy refuses this request before deciding it (400): {0}")]
    Refused(#[from] RequestError),
}

/// What the caller would see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded (a list: with at least one target visible, or whole and filtered).
    Allow,
    /// Refused with 403 (or 400 for a resource-group move).
    Deny,
    /// A list answered empty: denied silently, or every target filtered out.
    Empty,
}

impl Outcome {
    /// The words of a case file's `expect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Empty => "empty",
        }
    }

    pub fn parse(word: &str) -> Option<Outcome> {
        [Outcome::Allow, Outcome::Deny, Outcome::Empty]
            .into_iter()
            .find(|o| o.as_str() == word)
    }
}

/// A hypothetical request ready to be decided for any number of callers.
#[derive(Debug, Clone)]
pub struct Prepared {
    request: CanonicalRequest,
    targets: Vec<(String, ContainerGroupMeta)>,
}

/// The planner's answer for one caller, and what it means to that caller.
#[derive(Debug, Clone)]
pub struct Decided {
    pub outcome: Outcome,
    pub plan: Plan,
    /// The request as the proxy would forward it (Create: with its resolved group).
    pub request: CanonicalRequest,
    /// Of the targets, the ids a list answer would return (lists only).
    pub returned: Vec<String>,
}

impl Decided {
    /// The decision and its reason, when the planner reached one by policy.
    pub fn decision(&self) -> Option<Decision> {
        match &self.plan {
            Plan::Allow(allowed) => Some(Decision::allowed(allowed.reason)),
            Plan::Deny(Denied::Forbidden(reason) | Denied::SilentEmpty(reason)) => {
                Some(Decision::denied(*reason))
            }
            Plan::Deny(Denied::ServiceRoleNotAuthorized | Denied::ResourceGroupImmutable) => None,
        }
    }

    /// The Alibaba `Code` of a refusal (None when forwarded or answered empty).
    pub fn code(&self) -> Option<&'static str> {
        match self.plan {
            Plan::Deny(Denied::Forbidden(_)) => Some("Forbidden.RAM"),
            Plan::Deny(Denied::ServiceRoleNotAuthorized) => {
                Some("Forbidden.ServiceRoleNotAuthorized")
            }
            Plan::Deny(Denied::ResourceGroupImmutable) => {
                Some("OperationDenied.ResourceGroupImmutable")
            }
            Plan::Allow(_) | Plan::Deny(Denied::SilentEmpty(_)) => None,
        }
    }

    /// The reason in words, as the decision log and `explain` give it.
    pub fn describe(&self, snapshot: &Snapshot) -> String {
        match (&self.plan, self.decision()) {
            (Plan::Deny(Denied::ServiceRoleNotAuthorized), _) => format!(
                "denied (403 Forbidden.ServiceRoleNotAuthorized): the ECI service role is not authorized; {}",
                crate::principals::service_role_hint()
            ),
            (Plan::Deny(Denied::ResourceGroupImmutable), _) => {
                "refused (400 OperationDenied.ResourceGroupImmutable): a container group never changes resource group".into()
            }
            (_, Some(d)) => d.reason.describe(snapshot, d.allowed),
            (_, None) => String::new(),
        }
    }

    /// What the proxy does besides allowing or denying, in words (empty when nothing).
    pub fn detail(&self) -> String {
        match &self.plan {
            Plan::Allow(Allowed { filter: None, .. })
                if self.request.action.kind == catalogue::Kind::Create =>
            {
                format!(
                    "created in resource group {}",
                    self.request.resource_group.as_deref().unwrap_or_default()
                )
            }
            Plan::Allow(Allowed {
                filter: Some(_), ..
            }) if self.targets_named() => match self.returned.len() {
                0 => "forwarded, but no target is returned: each lacks the request's tag filters"
                    .into(),
                n => format!(
                    "forwarded; {n} of the targets returned, each checked again on its own tags"
                ),
            },
            Plan::Allow(Allowed {
                filter: Some(_), ..
            }) => "forwarded; each returned item is checked again on its own tags".into(),
            Plan::Deny(Denied::SilentEmpty(_)) => {
                "answered with an empty list (silent denial)".into()
            }
            Plan::Deny(Denied::Forbidden(reason)) => format!(
                "AccessDeniedDetail: NoPermissionType={} PolicyType={}",
                reason.no_permission_type(false).as_str(),
                reason.policy_type().as_str()
            ),
            _ => String::new(),
        }
    }

    fn targets_named(&self) -> bool {
        !self.request.ids.is_empty()
    }
}

/// The request flags `explain` and `who-can` share (SPEC §6): `--resource-group` and
/// `--tag` are the request's, `--target-group` and `--resource-tag` the target's.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestFlags {
    /// e.g. DeleteContainerGroup or eci:DescribeContainerGroups
    #[arg(long)]
    pub action: String,
    /// The request's ResourceGroupId.
    #[arg(long)]
    pub resource_group: Option<String>,
    /// A request tag (Tag.N), key=value; repeatable.
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// The target container group's resource group.
    #[arg(long)]
    pub target_group: Option<String>,
    /// A tag of the target container group, key=value; repeatable.
    #[arg(long = "resource-tag", value_parser = parse_tag)]
    pub resource_tags: Vec<(String, String)>,
}

/// `k=v` for `--tag` and `--resource-tag`.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

impl RequestFlags {
    pub fn hypothetical(&self) -> Hypothetical {
        Hypothetical {
            action: self.action.clone(),
            resource_group: self.resource_group.clone(),
            tags: self.tags.clone(),
            untag_keys: Vec::new(),
            targets: self
                .target_group
                .iter()
                .map(|g| ContainerGroupMeta {
                    resource_group: g.clone(),
                    tags: crate::model::Tags::from_pairs(self.resource_tags.iter().cloned()),
                })
                .collect(),
        }
    }
}

impl Hypothetical {
    /// Builds the wire parameters and parses them with the proxy's parser. `region` is the
    /// configured region (`RegionId`).
    pub fn prepare(&self, region: &str) -> Result<Prepared, HypotheticalError> {
        let name = self.action.strip_prefix("eci:").unwrap_or(&self.action);
        let spec = catalogue::lookup(name)
            .filter(|_| !self.action.contains(':') || self.action.starts_with("eci:"))
            .ok_or_else(|| HypotheticalError::UnknownAction(self.action.clone()))?;
        let targets: Vec<(String, ContainerGroupMeta)> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, meta)| {
                let id = match i {
                    0 => TARGET_ID.to_owned(),
                    n => format!("{TARGET_ID}-{}", n + 1),
                };
                (id, meta.clone())
            })
            .collect();
        let mut params: Vec<(String, String)> = vec![
            ("Version".into(), request::VERSION.into()),
            ("RegionId".into(), region.into()),
        ];
        if let Some(g) = &self.resource_group {
            params.push(("ResourceGroupId".into(), g.clone()));
        }
        for (n, (k, v)) in (1..).zip(&self.tags) {
            params.push((format!("Tag.{n}.Key"), k.clone()));
            params.push((format!("Tag.{n}.Value"), v.clone()));
        }
        for (n, k) in (1..).zip(&self.untag_keys) {
            params.push((format!("TagKey.{n}"), k.clone()));
        }
        let ids: Vec<String> = targets.iter().map(|(id, _)| id.clone()).collect();
        match (spec.targets, ids.as_slice()) {
            (Targets::None, []) | (Targets::ContainerGroupIds, []) => {}
            (Targets::None, _) => return Err(HypotheticalError::TargetNotTaken(spec.display)),
            (Targets::ContainerGroupId, []) => {
                return Err(HypotheticalError::TargetRequired(spec.display))
            }
            (Targets::ResourceIds, []) if spec.kind == catalogue::Kind::Multi => {
                return Err(HypotheticalError::TargetRequired(spec.display))
            }
            (Targets::ContainerGroupId, [id]) => {
                params.push(("ContainerGroupId".into(), id.clone()));
            }
            (Targets::ContainerGroupId, many) => {
                return Err(HypotheticalError::OneTarget(spec.display, many.len()))
            }
            (Targets::ContainerGroupIds, ids) => {
                let json = serde_json::to_string(ids).unwrap_or_default();
                params.push(("ContainerGroupIds".into(), json));
            }
            (Targets::ResourceIds, ids) => {
                params.push(("ResourceType".into(), "ContainerGroup".into()));
                for (n, id) in (1..).zip(ids) {
                    params.push((format!("ResourceId.{n}"), id.clone()));
                }
            }
        }
        let mut pairs: Vec<(&str, &str)> = vec![("Action", spec.name)];
        pairs.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let uri: http::Uri = format!("/?{}", encoding::encode_pairs(pairs))
            .parse()
            .map_err(|e: http::uri::InvalidUri| {
                RequestError::Malformed(format!("the request cannot be written as a URI: {e}"))
            })?;
        let parsed = request::parse(&http::Method::POST, &uri, &http::HeaderMap::new(), b"")?;
        Ok(Prepared {
            request: parsed.canonical,
            targets,
        })
    }
}

impl Prepared {
    pub fn request(&self) -> &CanonicalRequest {
        &self.request
    }

    /// Decides for `auth`'s caller with the planner, and reads what the caller would see.
    pub fn decide(&self, auth: &Authorizer<'_>) -> Decided {
        let mut request = self.request.clone();
        let metas: Vec<Option<&ContainerGroupMeta>> = request
            .ids
            .iter()
            .map(|id| {
                self.targets
                    .iter()
                    .find(|(target, _)| target == id)
                    .map(|(_, meta)| meta)
            })
            .collect();
        let plan = decision::plan(auth, &request, &metas);
        if let Plan::Allow(allowed) = &plan {
            allowed.rewrite.clone().apply(&mut request);
        }
        let returned: Vec<String> = match &plan {
            Plan::Allow(Allowed {
                filter: Some(visibility),
                ..
            }) => self
                .targets
                .iter()
                .filter(|(id, meta)| {
                    request.ids.contains(id)
                        && auth.visible(request.action.ram_action, visibility, id, meta)
                })
                .map(|(id, _)| id.clone())
                .collect(),
            _ => Vec::new(),
        };
        let outcome = match &plan {
            Plan::Allow(Allowed {
                filter: Some(_), ..
            }) if !request.ids.is_empty() && returned.is_empty() => Outcome::Empty,
            Plan::Allow(_) => Outcome::Allow,
            Plan::Deny(Denied::SilentEmpty(_)) => Outcome::Empty,
            Plan::Deny(_) => Outcome::Deny,
        };
        Decided {
            outcome,
            plan,
            request,
            returned,
        }
    }
}
