//! Response filtering for list answers: every item is checked again, on its own resource
//! group and tags, before it is returned, and `TotalCount` is corrected by the number
//! removed. An answer that cannot be read item by item is refused, never passed through.
//!
//! What a filtered page may reveal (docs/SECURITY.md): when the caller may see every item
//! the backend can answer with ([`Visibility::exhaustive`]), the page passes as SPEC §3
//! says. Otherwise the backend's `TotalCount` and `NextToken` describe items the caller may
//! not see (the backend's token even names the next item's group and tag key), so the page
//! tells only what is on it: `TotalCount` is the number of items returned and `NextToken`
//! is empty.

use crate::decision::{Authorizer, Visibility};
use crate::metadata::GroupItem;
use crate::model::ContainerGroupMeta;
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("the backend's answer cannot be filtered: {0}")]
pub struct FilterError(String);

/// Filters a DescribeContainerGroups answer.
///
/// On the path of every allowed Describe, with answers of tens of kilobytes: the answer is
/// read once, borrowing each item's raw JSON, only the fields authorization needs are
/// decoded, and the items kept are copied out as the backend wrote them — no document tree
/// is built and nothing is re-serialised but the corrected `TotalCount`.
pub fn describe(
    auth: &Authorizer<'_>,
    action_lower: &str,
    visibility: &Visibility,
    body: &[u8],
) -> Result<Bytes, FilterError> {
    let answer: BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|e| FilterError(format!("not a JSON object: {e}")))?;
    let groups = answer
        .get("ContainerGroups")
        .ok_or_else(|| FilterError("no ContainerGroups list".into()))?;
    let items: Vec<&RawValue> = serde_json::from_str(groups.get())
        .map_err(|e| FilterError(format!("ContainerGroups is not a list: {e}")))?;
    let mut kept = Vec::with_capacity(items.len());
    for item in &items {
        let group: GroupItem = serde_json::from_str(item.get())
            .map_err(|e| FilterError(format!("an item lacks its id, group or tags: {e}")))?;
        let (id, meta) = group.into_meta();
        if auth.visible(action_lower, visibility, &id, &meta) {
            kept.push(*item);
        }
    }
    let removed = items.len() - kept.len();
    let kept_count = kept.len();

    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    for (i, (key, value)) in answer.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key).map_err(|e| FilterError(e.to_string()))?;
        out.push(b':');
        match key.as_str() {
            "ContainerGroups" => {
                out.push(b'[');
                for (j, item) in kept.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(item.get().as_bytes());
                }
                out.push(b']');
            }
            "TotalCount" if !visibility.exhaustive => {
                out.extend_from_slice(kept_count.to_string().as_bytes());
            }
            "TotalCount" => {
                let total: Value =
                    serde_json::from_str(value.get()).map_err(|e| FilterError(e.to_string()))?;
                let corrected = total.as_u64().unwrap_or(0).saturating_sub(removed as u64);
                out.extend_from_slice(corrected.to_string().as_bytes());
            }
            "NextToken" if !visibility.exhaustive => out.extend_from_slice(b"\"\""),
            _ => {
                // Small fields (RequestId, NextToken): read whole, so a container group
                // placed here cannot pass unchecked.
                let other: Value =
                    serde_json::from_str(value.get()).map_err(|e| FilterError(e.to_string()))?;
                if names_a_group(&other) {
                    return Err(FilterError(format!(
                        "{key:?} names container groups outside the lists ramgate filters"
                    )));
                }
                out.extend_from_slice(value.get().as_bytes());
            }
        }
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The ids of the container groups a list answer's items refer to (`ContainerGroupId` or
/// `ResourceId` of the items of its top-level lists), for looking up their metadata.
pub fn item_ids(body: &[u8]) -> Result<Vec<String>, FilterError> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| FilterError(format!("not JSON: {e}")))?;
    let mut ids: Vec<String> = Vec::new();
    for list in lists(&answer) {
        for item in list {
            if let Some(id) = item_id(item) {
                if !ids.iter().any(|i| i == id) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    Ok(ids)
}

/// Filters an answer whose top-level lists hold items naming a container group
/// (`ListTagResources`, metrics, status): an item is kept when its group exists and is
/// visible. Items that name no group are removed: what cannot be checked is not shown.
pub fn list(
    auth: &Authorizer<'_>,
    action_lower: &str,
    visibility: &Visibility,
    body: &[u8],
    metas: &HashMap<String, Option<Arc<ContainerGroupMeta>>>,
) -> Result<Bytes, FilterError> {
    let mut answer: Value =
        serde_json::from_slice(body).map_err(|e| FilterError(format!("not JSON: {e}")))?;
    // Top-level lists are filtered item by item below; anything else must not name a group.
    refuse_hidden_groups(&answer)?;
    let Some(object) = answer.as_object_mut() else {
        return Err(FilterError("not a JSON object".into()));
    };
    let (mut removed, mut kept) = (0, 0);
    for value in object.values_mut() {
        let Some(items) = value.as_array_mut() else {
            continue;
        };
        let before = items.len();
        items.retain(|item| {
            item_id(item).is_some_and(|id| {
                metas
                    .get(id)
                    .and_then(Option::as_ref)
                    .is_some_and(|meta| auth.visible(action_lower, visibility, id, meta))
            })
        });
        removed += before - items.len();
        kept += items.len();
    }
    if visibility.exhaustive {
        correct_total(&mut answer, removed);
    } else {
        page_only(&mut answer, kept);
    }
    serde_json::to_vec(&answer)
        .map(Bytes::from)
        .map_err(|e| FilterError(e.to_string()))
}

/// Only top-level lists are filtered item by item, so an answer that names a container
/// group (`ContainerGroupId` or `ResourceId`) anywhere else (a list nested in an object,
/// another key of a Describe answer) cannot be filtered: it is refused (502), never passed
/// through (tests/faults.rs, `HiddenItems`).
fn refuse_hidden_groups(answer: &Value) -> Result<(), FilterError> {
    let Some(object) = answer.as_object() else {
        return Err(FilterError("not a JSON object".into()));
    };
    for (key, value) in object {
        if !value.is_array() && names_a_group(value) {
            return Err(FilterError(format!(
                "{key:?} names container groups outside the lists ramgate filters"
            )));
        }
    }
    Ok(())
}

/// True when `value` holds, at any depth, an object with a `ContainerGroupId` or
/// `ResourceId`. (serde_json bounds the nesting, so the recursion is bounded too.)
fn names_a_group(value: &Value) -> bool {
    match value {
        Value::Object(o) => {
            o.contains_key("ContainerGroupId")
                || o.contains_key("ResourceId")
                || o.values().any(names_a_group)
        }
        Value::Array(items) => items.iter().any(names_a_group),
        _ => false,
    }
}

fn lists(answer: &Value) -> impl Iterator<Item = &Vec<Value>> {
    answer
        .as_object()
        .into_iter()
        .flat_map(|o| o.values())
        .filter_map(Value::as_array)
}

fn item_id(item: &Value) -> Option<&str> {
    item.get("ContainerGroupId")
        .or_else(|| item.get("ResourceId"))
        .and_then(Value::as_str)
}

/// A page that tells only what is on it: `TotalCount` the items returned, no `NextToken`.
fn page_only(answer: &mut Value, kept: usize) {
    if let Some(total) = answer.get_mut("TotalCount") {
        *total = Value::from(kept);
    }
    if let Some(token) = answer.get_mut("NextToken") {
        *token = Value::from("");
    }
}

/// The backend's `TotalCount` minus the items removed from this page.
fn correct_total(answer: &mut Value, removed: usize) {
    if let Some(total) = answer.get_mut("TotalCount") {
        let n = total.as_u64().unwrap_or(0).saturating_sub(removed as u64);
        *total = Value::from(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_outside_the_filtered_lists_are_refused() {
        let nested = json!({"Result": {"TagResources": [{"ResourceId": "x"}]}});
        assert!(refuse_hidden_groups(&nested).is_err());
        let lists = json!({"TagResources": [{"ResourceId": "x"}], "NextToken": "t"});
        assert!(refuse_hidden_groups(&lists).is_ok());
        assert!(refuse_hidden_groups(&json!([1])).is_err());
        assert!(names_a_group(
            &json!({"Extra": {"Items": [{"ContainerGroupId": "x"}]}})
        ));
        assert!(!names_a_group(&json!({"RequestId": "r", "NextToken": ""})));
    }
}
