//! The canonical request: the one set of parameters ramgate decides on and forwards, with
//! the fields authorization reads (resource group, tags, target ids) derived from it.

use super::lists::{ListBuilder, TagsBuilder, MAX_RESOURCE_IDS, MAX_TAGS, MAX_TAG_KEYS};
use super::{encoding::encode_pairs, values, RequestError};
use crate::catalogue::{ActionSpec, Kind, TagParams, Targets};
use crate::model::Tags;
use std::collections::BTreeMap;
use std::iter::once;
use std::ops::Bound;

/// A request reduced to its meaning. `params` is what is forwarded; the other fields are
/// views of it, kept consistent by the setters below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    pub action: &'static ActionSpec,
    /// Every parameter once, by exact name, except `Action`, the credentials and `Format`.
    /// `Version` is always present (`2018-08-08`).
    pub params: BTreeMap<String, String>,
    /// `ResourceGroupId`.
    pub resource_group: Option<String>,
    /// The request's `Tag.N`.
    pub tags: Tags,
    /// The container groups named: `ContainerGroupId`, `ContainerGroupIds` or `ResourceId.N`
    /// (whichever the action takes), in the order given.
    pub ids: Vec<String>,
    /// `TagKey.N` (UntagResources), in index order.
    pub tag_keys: Vec<String>,
    /// `All=true` (UntagResources).
    pub untag_all: bool,
}

impl CanonicalRequest {
    /// Every parameter once, `Action` included, sorted by name and RFC 3986-encoded: the
    /// exact query string ramgate forwards (after `POST /?`).
    pub fn forward_query(&self) -> String {
        // `params` never holds `Action`, so splitting the sorted map around it slots the
        // action into its sorted place without collecting anything.
        let split = |lo, hi| {
            self.params
                .range::<str, (Bound<&str>, Bound<&str>)>((lo, hi))
        };
        let before = split(Bound::Unbounded, Bound::Excluded("Action")).map(pair_str);
        let after = split(Bound::Excluded("Action"), Bound::Unbounded).map(pair_str);
        encode_pairs(
            before
                .chain(once(("Action", self.action.name)))
                .chain(after),
        )
    }

    /// Refuses a `RegionId` other than `region`, the region ramgate is configured for and
    /// every ARN it authorizes on names: a request for another region would be authorized
    /// on one region's resources and carried out in another's.
    pub fn check_region(&self, region: &str) -> Result<(), RequestError> {
        match self.param("RegionId") {
            Some(given) if given != region => Err(RequestError::invalid(
                "RegionId",
                format!("ramgate serves the region {region:?} only, not {given:?}; send the request to the ramgate of that region"),
            )),
            _ => Ok(()),
        }
    }

    /// The value of a forwarded parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Sets `ResourceGroupId` (the proxy forwards the resolved group on Create).
    pub fn set_resource_group(&mut self, rg: &str) {
        self.params
            .insert("ResourceGroupId".to_owned(), rg.to_owned());
        self.resource_group = Some(rg.to_owned());
    }

    /// Replaces the targeted ids (the proxy narrows a list to the authorized ones):
    /// `ContainerGroupIds` is rewritten as a JSON array, `ResourceId.N` renumbered from 1.
    /// For an action taking `ContainerGroupId`, exactly one id replaces it; any other count,
    /// or an action naming no groups, changes nothing.
    ///
    /// An empty list is written as an explicit empty list (`ContainerGroupIds=[]`,
    /// `ResourceId.1=`), never by removing the parameter, which would widen the request to
    /// every group. Both ramgate and ECI refuse it: answer the empty result yourself
    /// instead of forwarding.
    pub fn set_ids(&mut self, ids: Vec<String>) {
        match self.action.targets {
            Targets::ContainerGroupIds => {
                self.params
                    .insert("ContainerGroupIds".to_owned(), values::ids_json(&ids));
            }
            Targets::ResourceIds => {
                self.params
                    .retain(|name, _| !name.starts_with("ResourceId."));
                if ids.is_empty() {
                    self.params.insert("ResourceId.1".to_owned(), String::new());
                }
                for (n, id) in (1..).zip(&ids) {
                    self.params.insert(format!("ResourceId.{n}"), id.clone());
                }
            }
            Targets::ContainerGroupId => match ids.as_slice() {
                [id] => {
                    self.params
                        .insert("ContainerGroupId".to_owned(), id.clone());
                }
                _ => return,
            },
            Targets::None => return,
        }
        self.ids = ids;
    }
}

fn pair_str<'a>((name, value): (&'a String, &'a String)) -> (&'a str, &'a str) {
    (name, value)
}

/// Validates the parameters of `action` and derives the canonical fields.
pub(super) fn build(
    action: &'static ActionSpec,
    mut params: BTreeMap<String, String>,
) -> Result<CanonicalRequest, RequestError> {
    let tag_params = action.tag_params();
    let (tags, resource_ids, tag_keys) = lists(&params, tag_params)?;
    if let Some(limit) = params.get("Limit") {
        values::limit(limit)?;
    }
    let untag_all = params
        .get("All")
        .map(|v| values::all(v))
        .transpose()?
        .unwrap_or(false);
    tag_parameters_taken(action, &params, &tags, &tag_keys)?;
    if untag_all && !tag_keys.is_empty() {
        return Err(RequestError::invalid(
            "All",
            "All=true removes every tag, TagKey.N only some: give one or the other",
        ));
    }
    if tag_params == TagParams::Remove && !untag_all && tag_keys.is_empty() {
        return Err(RequestError::missing(
            "TagKey.1",
            format!(
                "{} removes the tag keys TagKey.1, TagKey.2, ... or, with All=true, every tag",
                action.name
            ),
        ));
    }
    if action.name == "ExecContainerCommand" {
        if let Some(command) = params.get("Command") {
            values::command(command)?;
        }
    }
    let resource_group = match params.get("ResourceGroupId") {
        Some(rg) if rg.is_empty() => {
            return Err(RequestError::invalid(
                "ResourceGroupId",
                "it is empty; name a resource group or leave it out",
            ))
        }
        rg => rg.cloned(),
    };
    let ids = targets(action, &mut params, resource_ids)?;
    Ok(CanonicalRequest {
        action,
        params,
        resource_group,
        tags,
        ids,
        tag_keys,
        untag_all,
    })
}

/// Refuses the tag parameters `action` does not take ([`TagParams`]): a parameter the
/// backend would ignore, or read otherwise, must not reach the decision either.
fn tag_parameters_taken(
    action: &ActionSpec,
    params: &BTreeMap<String, String>,
    tags: &Tags,
    tag_keys: &[String],
) -> Result<(), RequestError> {
    let name = action.name;
    let taken = action.tag_params();
    if !taken.takes_tags() && !tags.is_empty() {
        let instead = if taken.takes_removals() {
            "; name the tag keys to remove with TagKey.N, or every tag with All=true"
        } else {
            ""
        };
        return Err(RequestError::invalid(
            "Tag.1.Key",
            format!("{name} does not take Tag.N{instead}"),
        ));
    }
    if !taken.takes_removals() {
        let not_taken = |param: &str| {
            RequestError::invalid(
                param,
                format!("{name} does not take {param}; only UntagResources removes tags (TagKey.N, or All=true)"),
            )
        };
        if !tag_keys.is_empty() {
            return Err(not_taken("TagKey.1"));
        }
        if params.contains_key("All") {
            return Err(not_taken("All"));
        }
    }
    Ok(())
}

/// Parses the flattened lists in one pass over the (sorted) parameters.
fn lists(
    params: &BTreeMap<String, String>,
    tag_params: TagParams,
) -> Result<(Tags, Vec<String>, Vec<String>), RequestError> {
    let mut tags = TagsBuilder::default();
    let mut resource_ids = ListBuilder::new("ResourceId", MAX_RESOURCE_IDS);
    let mut tag_keys = ListBuilder::new("TagKey", MAX_TAG_KEYS);
    for (name, value) in params {
        let (head, rest) = match name.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (name.as_str(), None),
        };
        match (head, rest) {
            ("Tag", Some(rest)) => tags.add(name, rest, value)?,
            ("Tag", None) => {
                return Err(RequestError::invalid(
                    name,
                    format!("tags are given as Tag.N.Key and Tag.N.Value (N from 1 to {MAX_TAGS})"),
                ))
            }
            ("ResourceId", rest) => resource_ids.add(name, rest, value)?,
            ("TagKey", rest) => tag_keys.add(name, rest, value)?,
            _ => {}
        }
    }
    let tags = tags.finish(tag_params == TagParams::Filter)?;
    Ok((tags, resource_ids.finish()?, tag_keys.finish()?))
}

/// Checks that the request names its container groups the way `action` takes them, and
/// returns them. The JSON array of `ContainerGroupIds` is rewritten canonically so that
/// what is forwarded is exactly the list that was authorized.
fn targets(
    action: &'static ActionSpec,
    params: &mut BTreeMap<String, String>,
    resource_ids: Vec<String>,
) -> Result<Vec<String>, RequestError> {
    let name = action.name;
    let has_id = params.contains_key("ContainerGroupId");
    let has_ids = params.contains_key("ContainerGroupIds");
    if has_id && has_ids {
        return Err(RequestError::invalid(
            "ContainerGroupIds",
            "give either ContainerGroupId (one group) or ContainerGroupIds, not both",
        ));
    }
    let not_taken = |param: &str, instead: &str| {
        RequestError::invalid(param, format!("{name} does not take {param}{instead}"))
    };
    if !resource_ids.is_empty() && action.targets != Targets::ResourceIds {
        return Err(not_taken(
            "ResourceId.1",
            "; only the tag APIs take ResourceId.N",
        ));
    }
    match action.targets {
        Targets::ContainerGroupId => {
            if has_ids {
                return Err(not_taken(
                    "ContainerGroupIds",
                    "; name its one group with ContainerGroupId",
                ));
            }
            match params.get("ContainerGroupId") {
                Some(id) if id.is_empty() => {
                    Err(RequestError::invalid("ContainerGroupId", "it is empty"))
                }
                Some(id) => Ok(vec![id.clone()]),
                None => Err(RequestError::missing(
                    "ContainerGroupId",
                    format!("{name} acts on one container group: name it with ContainerGroupId"),
                )),
            }
        }
        Targets::ContainerGroupIds => {
            if has_id {
                return Err(not_taken(
                    "ContainerGroupId",
                    r#"; use ContainerGroupIds=["<id>"]"#,
                ));
            }
            let Some(raw) = params.get_mut("ContainerGroupIds") else {
                return Ok(Vec::new());
            };
            let ids = values::container_group_ids(raw)?;
            *raw = values::ids_json(&ids);
            Ok(ids)
        }
        Targets::ResourceIds => {
            if has_id || has_ids {
                let param = if has_id {
                    "ContainerGroupId"
                } else {
                    "ContainerGroupIds"
                };
                return Err(not_taken(
                    param,
                    "; name the container groups with ResourceId.N",
                ));
            }
            values::resource_type(params.get("ResourceType").map(String::as_str))?;
            if action.kind == Kind::Multi && resource_ids.is_empty() {
                return Err(RequestError::missing(
                    "ResourceId.1",
                    format!("{name} needs the container groups it acts on: ResourceId.1, ResourceId.2, ..."),
                ));
            }
            Ok(resource_ids)
        }
        Targets::None => {
            if has_id || has_ids {
                let param = if has_id {
                    "ContainerGroupId"
                } else {
                    "ContainerGroupIds"
                };
                return Err(not_taken(param, "; it acts on no container group"));
            }
            Ok(Vec::new())
        }
    }
}
