//! The ECI actions the service implements. Each takes the parsed parameters and answers the
//! JSON body without `RequestId` (added by the caller) or an [`ApiError`].

use super::group::{Container, Group, NewGroup};
use super::paging::{group_token, parse_group_token, parse_tag_token, tag_token};
use super::params::{Params, MAX_TAGS};
use super::reply::ApiError;
use super::store::{tags_match, Filter};
use super::Shared;
use crate::model::Tags;
use hyper::StatusCode;
use serde_json::{json, Value};

/// At most this many ids in `ContainerGroupIds`.
const MAX_IDS: usize = 20;
/// At most this many `ResourceId.N` in the tag APIs.
const MAX_RESOURCE_IDS: usize = 50;

pub fn dispatch(shared: &Shared, action: &str, p: &Params) -> Result<Value, ApiError> {
    if let Some(spec) = crate::catalogue::lookup(action) {
        p.tag_params_taken(spec)?;
    }
    match action {
        "CreateContainerGroup" => create(shared, p),
        "DescribeContainerGroups" => describe(shared, p),
        "DeleteContainerGroup" => delete(shared, p),
        "RestartContainerGroup" => restart(shared, p),
        "UpdateContainerGroup" => update(shared, p),
        "DescribeContainerLog" => container_log(shared, p),
        "ExportContainerGroupTemplate" => export(shared, p),
        "ExecContainerCommand" => exec(shared, p),
        "TagResources" => tag_resources(shared, p),
        "UntagResources" => untag_resources(shared, p),
        "ListTagResources" => list_tag_resources(shared, p),
        _ => Err(ApiError::unknown_action()),
    }
}

fn create(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let region = p.required("RegionId")?;
    let name = p.required("ContainerGroupName")?;
    if name.chars().count() > 128 {
        return Err(ApiError::invalid(
            "ContainerGroupName is longer than 128 characters.",
        ));
    }
    let spec = NewGroup {
        name: name.to_owned(),
        region: region.to_owned(),
        resource_group: p.optional("ResourceGroupId").map(str::to_owned),
        tags: p.tags()?,
        containers: containers(p)?,
        zone: p.optional("ZoneId").map(str::to_owned),
        cpu: p.number("Cpu")?,
        memory: p.number("Memory")?,
        restart_policy: restart_policy(p)?,
    };
    let id = shared.store.write().insert(spec).id.clone();
    Ok(json!({ "ContainerGroupId": id }))
}

fn describe(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let limit = p.limit()?;
    let from = parse_group_token(p.get("NextToken"))?;
    let ids = p.json_list("ContainerGroupIds")?;
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_IDS) {
        return Err(ApiError::invalid(format!(
            "At most {MAX_IDS} ContainerGroupIds may be given."
        )));
    }
    let filter = Filter {
        region: p.optional("RegionId").map(str::to_owned),
        ids,
        resource_group: p.optional("ResourceGroupId").map(str::to_owned),
        tags: p.tag_filter()?,
        name: p.optional("ContainerGroupName").map(str::to_owned),
        status: p.optional("Status").map(str::to_owned),
    };
    let ignore_filters = shared.faults.get().ignore_filters;
    let groups = shared.store.read();
    let page = groups.page((!ignore_filters).then_some(&filter), from, limit);
    Ok(json!({
        "TotalCount": page.total,
        "NextToken": page.next.map(group_token).unwrap_or_default(),
        "ContainerGroups": page.items.iter().map(|g| g.describe_json()).collect::<Vec<_>>(),
    }))
}

fn delete(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let id = p.required("ContainerGroupId")?;
    shared
        .store
        .write()
        .remove(id)
        .ok_or_else(|| ApiError::group_not_found(id))?;
    Ok(json!({}))
}

fn restart(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    with_group_mut(shared, p, |g| {
        g.restart_count += 1;
        let line = format!("container group restarted (restart {})", g.restart_count);
        g.log_line(&line);
        g.log_started();
        Ok(json!({}))
    })
}

fn update(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let new_tags = p.tags()?;
    let containers = containers(p)?;
    let cpu = p.number("Cpu")?;
    let memory = p.number("Memory")?;
    let policy = restart_policy(p)?;
    with_group_mut(shared, p, |g| {
        if let Some(rg) = p
            .optional("ResourceGroupId")
            .filter(|rg| *rg != g.resource_group)
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "OperationDenied.ResourceGroupImmutable",
                format!(
                    "The container group {} is in resource group {}; it cannot move to {rg}.",
                    g.id, g.resource_group
                ),
            ));
        }
        g.tags = merged_tags(&g.tags, &new_tags)?;
        if let Some(cpu) = cpu {
            g.cpu = cpu;
        }
        if let Some(memory) = memory {
            g.memory = memory;
        }
        if let Some(policy) = policy {
            g.restart_policy = policy;
        }
        g.log_line("container group updated");
        if !containers.is_empty() {
            g.containers = containers;
            g.log_started();
        }
        Ok(json!({}))
    })
}

fn container_log(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let tail =
        match p.optional("Tail") {
            None => None,
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                ApiError::invalid(format!("Tail must be a whole number, not {v:?}."))
            })?),
        };
    with_group(shared, p, |g| {
        let name = match p.optional("ContainerName") {
            Some(name) => container(g, name)?.name.clone(),
            None => g
                .containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        let content = match tail {
            None => g.log.clone(),
            Some(n) => {
                let lines: Vec<&str> = g.log.lines().collect();
                let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
                if !out.is_empty() {
                    out.push('\n');
                }
                out
            }
        };
        Ok(json!({ "ContainerName": name, "Content": content }))
    })
}

fn export(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    with_group(shared, p, |g| Ok(json!({ "Template": g.template_json() })))
}

fn exec(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let name = p.required("ContainerName")?;
    let command = p
        .json_list("Command")?
        .ok_or_else(|| ApiError::missing("Command"))?;
    let sync = p.flag("Sync")?;
    p.flag("TTY")?;
    p.flag("Stdin")?;
    with_group_mut(shared, p, |g| {
        container(g, name)?;
        let line = format!("exec in {name}: {}", command.join(" "));
        g.log_line(&line);
        let uri = format!(
            "wss://eci-exec.{}.aliyuncs.com/exec?token={}",
            g.region,
            uuid::Uuid::new_v4().simple()
        );
        Ok(if sync {
            json!({ "WebSocketUri": uri, "SyncResponse": fake_output(&command) })
        } else {
            json!({ "WebSocketUri": uri })
        })
    })
}

/// `echo` echoes; anything else reports that it ran.
fn fake_output(command: &[String]) -> String {
    match command.split_first() {
        Some((program, args)) if program == "echo" => format!("{}\n", args.join(" ")),
        _ => format!("ran: {}\n", command.join(" ")),
    }
}

fn tag_resources(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    resource_type(p)?;
    let ids = resource_ids(p)?;
    let tags = p.tags()?;
    if tags.is_empty() {
        return Err(ApiError::missing("Tag.1.Key"));
    }
    let mut groups = shared.store.write();
    // All or nothing: check every id and every result before changing any group.
    let mut results = Vec::with_capacity(ids.len());
    for id in &ids {
        let g = groups
            .get(id)
            .ok_or_else(|| ApiError::group_not_found(id))?;
        results.push(merged_tags(&g.tags, &tags)?);
    }
    for (id, new_tags) in ids.iter().zip(results) {
        if let Some(g) = groups.get_mut(id) {
            g.tags = new_tags;
        }
    }
    Ok(json!({}))
}

fn untag_resources(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    resource_type(p)?;
    let ids = resource_ids(p)?;
    let all = p.flag("All")?;
    let keys = p.list("TagKey")?;
    if !all && keys.is_empty() {
        return Err(ApiError::missing("TagKey.1"));
    }
    let mut groups = shared.store.write();
    if let Some(missing) = ids.iter().find(|id| !groups.contains(id)) {
        return Err(ApiError::group_not_found(missing));
    }
    for id in &ids {
        if let Some(g) = groups.get_mut(id) {
            if all {
                g.tags = Tags::new();
            } else {
                keys.values().for_each(|k| g.tags.remove(k));
            }
        }
    }
    Ok(json!({}))
}

/// One item per (resource, tag). With `Tag.N` filters, only resources carrying all of them,
/// and of those only the tags named by a filter.
fn list_tag_resources(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    resource_type(p)?;
    let limit = p.limit()?;
    let after = parse_tag_token(p.get("NextToken"))?;
    let ids: Vec<String> = p
        .list("ResourceId")?
        .into_values()
        .map(str::to_owned)
        .collect();
    if ids.len() > MAX_RESOURCE_IDS {
        return Err(ApiError::invalid(format!(
            "At most {MAX_RESOURCE_IDS} ResourceId.N may be given."
        )));
    }
    let filter = p.tag_filter()?;
    let ignore_filters = shared.faults.get().ignore_filters;
    let ids = (!ignore_filters && !ids.is_empty()).then_some(ids.as_slice());
    let groups = shared.store.read();

    let mut items = Vec::new();
    let mut next = String::new();
    'groups: for g in groups.candidates(ids) {
        if !ignore_filters && !tags_match(&filter, g) {
            continue;
        }
        for (key, value) in g.tags.iter() {
            let named = ignore_filters || filter.is_empty() || filter.iter().any(|(k, _)| k == key);
            let reached = after
                .as_ref()
                .is_none_or(|(seq, k)| (g.seq, key) >= (*seq, k.as_str()));
            if !named || !reached {
                continue;
            }
            if items.len() == limit {
                next = tag_token(g.seq, key);
                break 'groups;
            }
            items.push(json!({
                "ResourceId": g.id,
                "ResourceType": "ALIYUN::ECI::CONTAINERGROUP",
                "TagKey": key,
                "TagValue": value,
            }));
        }
    }
    Ok(json!({ "NextToken": next, "TagResources": items }))
}

// ---- helpers ----

fn with_group<R>(
    shared: &Shared,
    p: &Params,
    f: impl FnOnce(&Group) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let groups = shared.store.read();
    f(groups
        .get(id)
        .ok_or_else(|| ApiError::group_not_found(id))?)
}

fn with_group_mut<R>(
    shared: &Shared,
    p: &Params,
    f: impl FnOnce(&mut Group) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let mut groups = shared.store.write();
    f(groups
        .get_mut(id)
        .ok_or_else(|| ApiError::group_not_found(id))?)
}

fn container<'a>(g: &'a Group, name: &str) -> Result<&'a Container, ApiError> {
    g.container(name).ok_or_else(|| {
        ApiError::invalid(format!(
            "The container group {} has no container {name:?}.",
            g.id
        ))
    })
}

/// `Container.N.Name` / `Container.N.Image`, in index order; other fields are accepted.
fn containers(p: &Params) -> Result<Vec<Container>, ApiError> {
    let mut out: Vec<Container> = Vec::new();
    for (index, fields) in p.records("Container")? {
        let field = |f: &str| {
            fields
                .get(f)
                .copied()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::missing(&format!("Container.{index}.{f}")))
        };
        let (name, image) = (field("Name")?, field("Image")?);
        if out.iter().any(|c| c.name == name) {
            return Err(ApiError::invalid(format!(
                "The container name {name:?} is used twice."
            )));
        }
        out.push(Container {
            name: name.to_owned(),
            image: image.to_owned(),
        });
    }
    Ok(out)
}

fn restart_policy(p: &Params) -> Result<Option<String>, ApiError> {
    match p.optional("RestartPolicy") {
        None => Ok(None),
        Some(v @ ("Always" | "OnFailure" | "Never")) => Ok(Some(v.to_owned())),
        Some(v) => Err(ApiError::invalid(format!(
            "RestartPolicy must be Always, OnFailure or Never, not {v:?}."
        ))),
    }
}

/// `current` with `changes` added or replacing; at most [`MAX_TAGS`] in the result.
fn merged_tags(current: &Tags, changes: &Tags) -> Result<Tags, ApiError> {
    let mut tags = current.clone();
    for (k, v) in changes.iter() {
        tags.set(k.to_owned(), v.to_owned());
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(format!(
            "A container group can carry at most {MAX_TAGS} tags."
        )));
    }
    Ok(tags)
}

fn resource_type(p: &Params) -> Result<(), ApiError> {
    let t = p.required("ResourceType")?;
    if t.eq_ignore_ascii_case("ContainerGroup")
        || t.eq_ignore_ascii_case("ALIYUN::ECI::CONTAINERGROUP")
    {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "ResourceType must be ContainerGroup, not {t:?}."
        )))
    }
}

/// `ResourceId.N`: at least one.
fn resource_ids(p: &Params) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> = p
        .list("ResourceId")?
        .into_values()
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId.1"));
    }
    if ids.len() > MAX_RESOURCE_IDS {
        return Err(ApiError::invalid(format!(
            "At most {MAX_RESOURCE_IDS} ResourceId.N may be given."
        )));
    }
    Ok(ids)
}
