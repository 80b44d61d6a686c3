//! The ECI 2018-08-08 action catalogue: every action ramgate forwards, what kind of
//! authorization it needs and which parameters name the container groups it touches.
//!
//! An action missing from this table is refused for every caller (404
//! `InvalidAction.NotFound`): nothing unknown is forwarded. The table is static and sorted
//! by name, so a lookup is a binary search over `&'static` data and never allocates.

/// How an action relates to container groups, which decides how it is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `CreateContainerGroup`: the target is the request's resource group and tags.
    Create,
    /// `DescribeContainerGroups`: a denial is silent (an empty list) and every returned
    /// item is checked again.
    Describe,
    /// `ContainerGroupId` names one existing container group (required).
    Single,
    /// Several existing groups (`ResourceId.N`); every one must be allowed.
    Multi,
    /// Answers with items that are filtered group by group, like Describe.
    ListFiltered,
    /// No container group involved (regions, image and data caches, virtual nodes...).
    Other,
}

/// Which parameter, if any, names the container groups an action touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Targets {
    /// The action takes none of `ContainerGroupId`, `ContainerGroupIds`, `ResourceId.N`.
    None,
    /// `ContainerGroupId`, one group, required.
    ContainerGroupId,
    /// `ContainerGroupIds`, a JSON array of at most 20 ids, optional.
    ContainerGroupIds,
    /// `ResourceId.N` with `ResourceType=ContainerGroup` (the tag APIs).
    ResourceIds,
}

/// One catalogued action.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ActionSpec {
    /// The canonical, case-sensitive name, e.g. `DeleteContainerGroup`.
    pub name: &'static str,
    /// The RAM action, lowercased for case-insensitive policy matching:
    /// `eci:deletecontainergroup`.
    pub ram_action: &'static str,
    /// The RAM action as Alibaba displays it in denials: `eci:DeleteContainerGroup`.
    pub display: &'static str,
    pub kind: Kind,
    pub targets: Targets,
    /// The action may change a container group's tags (`UpdateContainerGroup` with `Tag.N`,
    /// `TagResources`, `UntagResources`): both the current and the resulting tags count.
    pub changes_tags: bool,
    /// The action changes a container group: the metadata cache must forget or update it.
    pub writes: bool,
}

/// What an action does with the tag parameters (`Tag.N.Key`/`Tag.N.Value`, `TagKey.N`,
/// `All`): the per-action parameter model that the parser, the decision engine
/// (`decision::resulting_tags`) and the backend all read, so that none of them can give a
/// tag parameter a meaning the others do not. A tag parameter an action does not take is
/// refused (400 `InvalidParameter`), never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagParams {
    /// None of `Tag.N`, `TagKey.N`, `All`.
    None,
    /// `Tag.N` are tags to add, or to replace by key (`Tag.N.Key` alone is the empty value).
    Set,
    /// `Tag.N` filter the answer: every `Tag.N.Key` needs its `Tag.N.Value` (ECI would read
    /// a key alone as "any value", which is not what ramgate authorizes).
    Filter,
    /// `TagKey.N` are tag keys to remove, or `All=true` removes every tag; no `Tag.N`.
    Remove,
}

impl TagParams {
    /// Whether the action takes `Tag.N`.
    pub fn takes_tags(self) -> bool {
        matches!(self, TagParams::Set | TagParams::Filter)
    }

    /// Whether the action takes `TagKey.N` and `All`.
    pub fn takes_removals(self) -> bool {
        self == TagParams::Remove
    }
}

impl ActionSpec {
    /// True for the tag APIs, which name groups with `ResourceId.N` and need `ResourceType`.
    pub fn is_tag_api(&self) -> bool {
        self.targets == Targets::ResourceIds
    }

    /// Which tag parameters this action takes and what it does with them (ECI 2018-08-08):
    /// `UntagResources` alone removes (`TagKey.N`, `All`); Create, `TagResources`,
    /// `UpdateContainerGroup` and the other creates and updates that carry tags set
    /// `Tag.N`; the lists that take tags read them as filters; every other action takes
    /// none of them.
    pub fn tag_params(&self) -> TagParams {
        match self.name {
            "UntagResources" => TagParams::Remove,
            "CreateContainerGroup"
            | "TagResources"
            | "UpdateContainerGroup"
            | "CreateImageCache"
            | "CreateDataCache"
            | "CreateVirtualNode"
            | "UpdateImageCache"
            | "UpdateDataCache"
            | "UpdateVirtualNode" => TagParams::Set,
            "DescribeContainerGroups"
            | "DescribeContainerGroupStatus"
            | "DescribeContainerGroupEvents"
            | "ListTagResources"
            | "DescribeImageCaches"
            | "DescribeDataCaches"
            | "DescribeVirtualNodes" => TagParams::Filter,
            _ => TagParams::None,
        }
    }
}

/// One table row; `$lower` is checked against `$name` by a unit test, because `concat!`
/// cannot lowercase.
macro_rules! action {
    ($name:ident, $lower:literal, $kind:ident, $targets:ident, changes_tags: $tags:literal, writes: $writes:literal) => {
        ActionSpec {
            name: stringify!($name),
            ram_action: $lower,
            display: concat!("eci:", stringify!($name)),
            kind: Kind::$kind,
            targets: Targets::$targets,
            changes_tags: $tags,
            writes: $writes,
        }
    };
    ($name:ident, $lower:literal, $kind:ident, $targets:ident) => {
        action!($name, $lower, $kind, $targets, changes_tags: false, writes: false)
    };
}

/// Sorted by name (byte order), which [`lookup`]'s binary search relies on; a test checks it.
static ACTIONS: &[ActionSpec] = &[
    action!(
        CommitContainer,
        "eci:commitcontainer",
        Single,
        ContainerGroupId
    ),
    action!(CopyDataCache, "eci:copydatacache", Other, None),
    action!(CreateContainerGroup, "eci:createcontainergroup", Create, None, changes_tags: false, writes: true),
    action!(CreateDataCache, "eci:createdatacache", Other, None),
    action!(CreateImageCache, "eci:createimagecache", Other, None),
    action!(
        CreateInstanceOpsTask,
        "eci:createinstanceopstask",
        Single,
        ContainerGroupId
    ),
    action!(CreateVirtualNode, "eci:createvirtualnode", Other, None),
    action!(DeleteContainerGroup, "eci:deletecontainergroup", Single, ContainerGroupId, changes_tags: false, writes: true),
    action!(DeleteDataCache, "eci:deletedatacache", Other, None),
    action!(DeleteImageCache, "eci:deleteimagecache", Other, None),
    action!(DeleteVirtualNode, "eci:deletevirtualnode", Other, None),
    action!(
        DescribeAvailableResource,
        "eci:describeavailableresource",
        Other,
        None
    ),
    action!(
        DescribeCommitContainerTask,
        "eci:describecommitcontainertask",
        Single,
        ContainerGroupId
    ),
    action!(
        DescribeContainerGroupEvents,
        "eci:describecontainergroupevents",
        ListFiltered,
        ContainerGroupIds
    ),
    action!(
        DescribeContainerGroupMetric,
        "eci:describecontainergroupmetric",
        Single,
        ContainerGroupId
    ),
    action!(
        DescribeContainerGroupPrice,
        "eci:describecontainergroupprice",
        Other,
        None
    ),
    action!(
        DescribeContainerGroupStatus,
        "eci:describecontainergroupstatus",
        ListFiltered,
        ContainerGroupIds
    ),
    action!(
        DescribeContainerGroups,
        "eci:describecontainergroups",
        Describe,
        ContainerGroupIds
    ),
    action!(
        DescribeContainerLog,
        "eci:describecontainerlog",
        Single,
        ContainerGroupId
    ),
    action!(DescribeDataCaches, "eci:describedatacaches", Other, None),
    action!(DescribeImageCaches, "eci:describeimagecaches", Other, None),
    action!(
        DescribeInstanceOpsRecords,
        "eci:describeinstanceopsrecords",
        Single,
        ContainerGroupId
    ),
    action!(
        DescribeMultiContainerGroupMetric,
        "eci:describemulticontainergroupmetric",
        ListFiltered,
        ContainerGroupIds
    ),
    action!(DescribeRegions, "eci:describeregions", Other, None),
    action!(
        DescribeVirtualNodes,
        "eci:describevirtualnodes",
        Other,
        None
    ),
    action!(
        ExecContainerCommand,
        "eci:execcontainercommand",
        Single,
        ContainerGroupId
    ),
    action!(
        ExportContainerGroupTemplate,
        "eci:exportcontainergrouptemplate",
        Single,
        ContainerGroupId
    ),
    action!(
        ListTagResources,
        "eci:listtagresources",
        ListFiltered,
        ResourceIds
    ),
    action!(ListUsage, "eci:listusage", Other, None),
    action!(ResizeContainerGroupVolume, "eci:resizecontainergroupvolume", Single, ContainerGroupId, changes_tags: false, writes: true),
    action!(RestartContainerGroup, "eci:restartcontainergroup", Single, ContainerGroupId, changes_tags: false, writes: true),
    action!(TagResources, "eci:tagresources", Multi, ResourceIds, changes_tags: true, writes: true),
    action!(UntagResources, "eci:untagresources", Multi, ResourceIds, changes_tags: true, writes: true),
    action!(UpdateContainerGroup, "eci:updatecontainergroup", Single, ContainerGroupId, changes_tags: true, writes: true),
    action!(UpdateDataCache, "eci:updatedatacache", Other, None),
    action!(UpdateImageCache, "eci:updateimagecache", Other, None),
    action!(UpdateVirtualNode, "eci:updatevirtualnode", Other, None),
];

/// The action named exactly `name` (Alibaba action names are case-sensitive).
pub fn lookup(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS
        .binary_search_by(|spec| spec.name.cmp(name))
        .ok()
        .and_then(|i| ACTIONS.get(i))
}

/// Every catalogued action, sorted by name.
pub fn all() -> &'static [ActionSpec] {
    ACTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_consistent() {
        for pair in ACTIONS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for spec in all() {
            assert_eq!(spec.display, format!("eci:{}", spec.name));
            assert_eq!(spec.ram_action, spec.display.to_ascii_lowercase());
            // The kind and the targeting parameter must agree, or the parser and the
            // decision engine would disagree about which groups a request touches.
            let expected = match spec.kind {
                Kind::Create | Kind::Other => &[Targets::None][..],
                Kind::Describe => &[Targets::ContainerGroupIds][..],
                Kind::Single => &[Targets::ContainerGroupId][..],
                Kind::Multi => &[Targets::ResourceIds][..],
                Kind::ListFiltered => &[Targets::ContainerGroupIds, Targets::ResourceIds][..],
            };
            assert!(expected.contains(&spec.targets), "{}", spec.name);
            assert!(!spec.changes_tags || spec.writes, "{}", spec.name);
            // Exactly the actions that change tags take tags to set or remove on groups.
            let changes = spec.kind != Kind::Create
                && spec.targets != Targets::None
                && matches!(spec.tag_params(), TagParams::Set | TagParams::Remove);
            assert_eq!(changes, spec.changes_tags, "{}", spec.name);
        }
    }

    #[test]
    fn lookup_is_exact_and_case_sensitive() {
        let spec = lookup("DeleteContainerGroup").unwrap();
        assert_eq!(spec.kind, Kind::Single);
        assert_eq!(spec.ram_action, "eci:deletecontainergroup");
        assert_eq!(spec.display, "eci:DeleteContainerGroup");
        assert!(spec.writes);
        assert!(lookup("deletecontainergroup").is_none());
        assert!(lookup("DeleteContainerGroup ").is_none());
        assert!(lookup("").is_none());
        assert!(lookup("RunInstances").is_none());
    }

    #[test]
    fn every_action_the_spec_names_is_known() {
        for name in [
            "CreateContainerGroup",
            "DescribeContainerGroups",
            "DeleteContainerGroup",
            "RestartContainerGroup",
            "UpdateContainerGroup",
            "DescribeContainerLog",
            "ExportContainerGroupTemplate",
            "ExecContainerCommand",
            "DescribeContainerGroupStatus",
            "DescribeContainerGroupEvents",
            "DescribeContainerGroupMetric",
            "DescribeMultiContainerGroupMetric",
            "DescribeContainerGroupPrice",
            "DescribeRegions",
            "DescribeAvailableResource",
            "CreateImageCache",
            "DescribeImageCaches",
            "DeleteImageCache",
            "UpdateImageCache",
            "ListUsage",
            "CreateVirtualNode",
            "DescribeVirtualNodes",
            "DeleteVirtualNode",
            "UpdateVirtualNode",
            "ResizeContainerGroupVolume",
            "CreateInstanceOpsTask",
            "DescribeInstanceOpsRecords",
            "TagResources",
            "UntagResources",
            "ListTagResources",
        ] {
            assert_eq!(lookup(name).map(|s| s.name), Some(name));
        }
    }

    #[test]
    fn kinds_and_flags_of_the_tag_apis() {
        let tag = lookup("TagResources").unwrap();
        assert_eq!(
            (tag.kind, tag.changes_tags, tag.writes),
            (Kind::Multi, true, true)
        );
        assert!(tag.is_tag_api());
        let list = lookup("ListTagResources").unwrap();
        assert_eq!(
            (list.kind, list.changes_tags, list.writes),
            (Kind::ListFiltered, false, false)
        );
        let update = lookup("UpdateContainerGroup").unwrap();
        assert_eq!((update.kind, update.changes_tags), (Kind::Single, true));
        assert_eq!(
            lookup("DescribeContainerGroups").unwrap().kind,
            Kind::Describe
        );
        assert_eq!(lookup("CreateContainerGroup").unwrap().kind, Kind::Create);
        assert_eq!(lookup("DescribeRegions").unwrap().kind, Kind::Other);
    }
}
