//! One container group as the in-memory service keeps it, and its JSON renderings: the
//! `DescribeContainerGroups` item, the exported template, and the test hook's summary.

use crate::model::{ContainerGroupMeta, Tags};
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

/// The log of a group is capped so that a long benchmark cannot grow it without bound.
const MAX_LOG_BYTES: usize = 64 * 1024;

/// A container of a group: only what the API echoes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image: String,
}

/// What creating a group takes (from `CreateContainerGroup`, or from code seeding a demo).
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    pub region: String,
    /// `None` is the default group, `rg-default`.
    pub resource_group: Option<String>,
    pub tags: Tags,
    pub containers: Vec<Container>,
    pub zone: Option<String>,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub restart_policy: Option<String>,
}

impl NewGroup {
    pub fn new(name: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            region: region.into(),
            ..Self::default()
        }
    }

    pub fn resource_group(mut self, id: impl Into<String>) -> Self {
        self.resource_group = Some(id.into());
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.set(key.into(), value.into());
        self
    }

    pub fn container(mut self, name: impl Into<String>, image: impl Into<String>) -> Self {
        self.containers.push(Container {
            name: name.into(),
            image: image.into(),
        });
        self
    }
}

/// The resource group a group joins when the request names none.
pub const DEFAULT_RESOURCE_GROUP: &str = "rg-default";

#[derive(Debug, Clone)]
pub struct Group {
    /// Creation order: the paging cursor.
    pub seq: u64,
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub resource_group: String,
    pub tags: Tags,
    pub status: String,
    pub created: String,
    pub containers: Vec<Container>,
    pub restart_count: u32,
    pub cpu: f64,
    pub memory: f64,
    pub restart_policy: String,
    pub log: String,
}

impl Group {
    pub fn new(seq: u64, id: String, spec: NewGroup) -> Self {
        let zone = spec.zone.unwrap_or_else(|| format!("{}-a", spec.region));
        let mut group = Self {
            seq,
            id,
            name: spec.name,
            region: spec.region,
            zone,
            resource_group: spec
                .resource_group
                .unwrap_or_else(|| DEFAULT_RESOURCE_GROUP.to_owned()),
            tags: spec.tags,
            status: "Running".to_owned(),
            created: now_iso8601(),
            containers: spec.containers,
            restart_count: 0,
            cpu: spec.cpu.unwrap_or(2.0),
            memory: spec.memory.unwrap_or(4.0),
            restart_policy: spec.restart_policy.unwrap_or_else(|| "Always".to_owned()),
            log: String::new(),
        };
        group.log_started();
        group
    }

    pub fn meta(&self) -> ContainerGroupMeta {
        ContainerGroupMeta {
            resource_group: self.resource_group.clone(),
            tags: self.tags.clone(),
        }
    }

    /// Appends a timestamped line, dropping the oldest lines past the cap.
    pub fn log_line(&mut self, line: &str) {
        self.log.push_str(&now_iso8601());
        self.log.push(' ');
        self.log.push_str(line);
        self.log.push('\n');
        if self.log.len() > MAX_LOG_BYTES {
            let excess = self.log.len() - MAX_LOG_BYTES;
            let cut = self.log[excess..]
                .find('\n')
                .map_or(self.log.len(), |i| excess + i + 1);
            self.log.drain(..cut);
        }
    }

    pub fn log_started(&mut self) {
        if self.containers.is_empty() {
            let line = format!("container group {} is running", self.name);
            self.log_line(&line);
        }
        for c in self.containers.clone() {
            self.log_line(&format!("started container {} (image {})", c.name, c.image));
        }
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// An item of `DescribeContainerGroups`.
    pub fn describe_json(&self) -> Value {
        json!({
            "ContainerGroupId": self.id,
            "ContainerGroupName": self.name,
            "RegionId": self.region,
            "ZoneId": self.zone,
            "ResourceGroupId": self.resource_group,
            "Status": self.status,
            "CreationTime": self.created,
            "Cpu": self.cpu,
            "Memory": self.memory,
            "RestartPolicy": self.restart_policy,
            "Tags": tags_json(&self.tags),
            "Containers": self.containers.iter().map(|c| json!({
                "Name": c.name,
                "Image": c.image,
                "Ready": true,
                "RestartCount": self.restart_count,
                "CurrentState": {"State": "Running"},
            })).collect::<Vec<_>>(),
            "Events": [],
        })
    }

    /// The spec `ExportContainerGroupTemplate` answers: what it takes to create it again.
    pub fn template_json(&self) -> Value {
        json!({
            "RegionId": self.region,
            "ZoneId": self.zone,
            "ContainerGroupName": self.name,
            "ResourceGroupId": self.resource_group,
            "RestartPolicy": self.restart_policy,
            "Cpu": self.cpu,
            "Memory": self.memory,
            "Tags": tags_json(&self.tags),
            "Containers": self.containers.iter().map(|c| json!({"Name": c.name, "Image": c.image})).collect::<Vec<_>>(),
        })
    }

    /// The summary of the `/_backend/state` test hook.
    pub fn state_json(&self) -> Value {
        let tags: serde_json::Map<String, Value> = self
            .tags
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "region": self.region,
            "resource_group": self.resource_group,
            "tags": tags,
            "status": self.status,
            "restart_count": self.restart_count,
            "containers": self.containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            "created": self.created,
        })
    }
}

pub fn tags_json(tags: &Tags) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// `2024-05-01T08:00:00Z`: second precision, UTC, as the ECI API writes times.
pub fn now_iso8601() -> String {
    OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `eci-` and 20 lower-case alphanumerics, from the randomness of a v4 UUID.
pub fn new_id() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut id = String::with_capacity(24);
    id.push_str("eci-");
    for _ in 0..20 {
        id.push(char::from(ALPHABET[(n % 36) as usize]));
        n /= 36;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_eci_shape() {
        let id = new_id();
        assert_eq!(id.len(), 24);
        assert!(id.starts_with("eci-"));
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn times_are_iso8601_utc_seconds() {
        let t = now_iso8601();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn the_log_is_capped_at_line_boundaries() {
        let mut g = Group::new(
            0,
            new_id(),
            NewGroup::new("g", "cn-hangzhou").container("c", "nginx"),
        );
        for i in 0..10_000 {
            g.log_line(&format!("line {i}"));
        }
        assert!(g.log.len() <= MAX_LOG_BYTES);
        assert!(g.log.ends_with("line 9999\n"));
        assert!(
            g.log.starts_with(|c: char| c.is_ascii_digit()),
            "starts with a whole line"
        );
    }
}
