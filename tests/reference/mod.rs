//! The reference evaluator: a second, deliberately naive implementation of SPEC §3 (the
//! authorization model), used as the *oracle* that tests compare the real engine against.
//!
//! `tests/reference_model.rs` (a proptest over random policies) uses it today; later tests
//! (hot reload, soak) are meant to reuse it: build a [`World`] (by hand, with
//! [`World::add_policy`] and the public fields, or from a policy directory's files with
//! [`World::from_sources`]), write it out with [`World::to_sources`] for the engine, and ask
//! both the same questions:
//!
//! * [`World::single`] — an action on one existing container group (with the resulting
//!   tags of a tag change, if any);
//! * [`World::create`] — `CreateContainerGroup`;
//! * [`World::describe_visible`] — whether one container group appears in a
//!   `DescribeContainerGroups` answer;
//! * [`World::other`] — an action that involves no container group;
//! * [`tag_change`] — the per-action parameter model of SPEC §1: whether an action takes
//!   the tag parameters a request carries, and the tags a group has afterwards.
//!
//! It shares no code with the engine on purpose: policies stay raw `serde_json::Value`s and
//! are walked on every question, wildcards are matched by a recursive function, CIDRs by
//! hand, principals are a map of names to attachments. It is slow and obviously correct
//! rather than fast; when it and the engine disagree, SPEC §3 decides which one is wrong.
//!
//! Conventions (SPEC §3):
//! * actions match case-insensitively, resources and tag keys/values case-sensitively;
//! * condition values listed for one key are ORed; keys and operators are ANDed; a key
//!   absent from the request makes a positive operator false and a negated one true;
//! * a condition whose request value has the wrong type (a tag `"abc"` under
//!   `NumericLessThan`) *errors*; an applicable statement with any erroring condition
//!   "cannot be evaluated": as an Allow it does not allow, as a Deny it denies (fail closed,
//!   whatever the order of the conditions);
//! * explicit Deny beats Allow; no Allow means deny;
//! * guardrails apply to every principal, root included (some guardrail Allow matches and
//!   no guardrail Deny does); root skips identity policies;
//! * attachments at account scope always count, those scoped to a resource group only when
//!   that group is the one in question.
//!
//! Unsupported inputs (the `Date*` operators, `acs:CurrentTime`) panic: an oracle that
//! silently guessed would be worse than none.

#![allow(dead_code)] // each test crate that includes this module uses a different part

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

/// Tags: key → value (keys unique, case-sensitive).
pub type RefTags = BTreeMap<String, String>;

/// Builds [`RefTags`] from pairs.
pub fn tags(pairs: &[(&str, &str)]) -> RefTags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The ECI service role and its policy (SPEC §3): without them Create is refused.
pub const SERVICE_ROLE: &str = "AliyunECIContainerGroupRole";
pub const SERVICE_ROLE_POLICY: &str = "AliyunECIContainerGroupRolePolicy";

/// The built-in system policies, transcribed from SPEC §3 (not from the engine's copy).
const BUILTINS: &[(&str, &str)] = &[
    (
        "AliyunECIFullAccess",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*","Action":[
            "eci:*","ecs:DescribeSecurityGroups",
            "vpc:DescribeVSwitches","vpc:DescribeVpcs","vpc:DescribeEipAddresses"]}]}"#,
    ),
    (
        "AliyunECIReadOnlyAccess",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*","Action":[
            "eci:Describe*","eci:List*","ecs:DescribeSecurityGroups",
            "vpc:DescribeVpcs","vpc:DescribeVSwitches"]}]}"#,
    ),
    (
        SERVICE_ROLE_POLICY,
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*","Action":[
            "ecs:CreateNetworkInterfacePermission","ecs:DeleteNetworkInterfacePermission",
            "ecs:CreateNetworkInterface","ecs:DescribeNetworkInterfaces",
            "ecs:AttachNetworkInterface","ecs:DetachNetworkInterface",
            "ecs:DeleteNetworkInterface","ecs:DescribeSecurityGroups",
            "vpc:DescribeVSwitches","vpc:DescribeVpcs","vpc:AssociateEipAddress",
            "vpc:DescribeEipAddresses","cr:Get*","cr:List*","cr:PullRepository"]}]}"#,
    ),
];

/// One policy attachment of a user or role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub policy: String,
    /// `None`: account scope. `Some(g)`: counts only for resource group `g`.
    pub resource_group: Option<String>,
}

impl Attachment {
    pub fn account(policy: &str) -> Self {
        Self {
            policy: policy.to_owned(),
            resource_group: None,
        }
    }

    pub fn group(policy: &str, group: &str) -> Self {
        Self {
            policy: policy.to_owned(),
            resource_group: Some(group.to_owned()),
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    Root,
    User(&'a str),
    Role(&'a str),
}

/// The transport facts conditions may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Env {
    /// `acs:SourceIp` (absent when `None`).
    pub source_ip: Option<IpAddr>,
    /// `acs:SecureTransport`.
    pub secure_transport: bool,
}

/// An existing container group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub resource_group: String,
    pub tags: RefTags,
}

/// The answer to a Create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Allowed, into this resource group (the requested one, or the default).
    Allowed { resource_group: String },
    /// 403 `Forbidden.RAM`.
    Denied,
    /// Allowed by policy, but the account has not authorized the ECI service role.
    ServiceRoleNotAuthorized,
}

/// A `DescribeContainerGroups` request, as far as authorization cares.
#[derive(Debug, Clone, Copy)]
pub struct DescribeRequest<'a> {
    /// `ResourceGroupId`.
    pub resource_group: Option<&'a str>,
    /// `ContainerGroupIds` (`None` or empty: the request names no ids).
    pub ids: Option<&'a [&'a str]>,
    /// `Tag.N`.
    pub tags: &'a RefTags,
}

/// The whole policy directory, as the reference sees it.
#[derive(Debug, Clone)]
pub struct World {
    pub account_id: String,
    pub region: String,
    /// Declared resource group ids, in declaration order.
    pub resource_groups: Vec<String>,
    pub default_group: String,
    /// Every policy by name, built-ins included, as parsed JSON.
    pub policies: BTreeMap<String, Value>,
    /// The text of every custom (file) policy, by name, for [`World::to_sources`].
    pub policy_files: BTreeMap<String, String>,
    /// Policy names every principal must pass, root included.
    pub guardrails: Vec<String>,
    pub users: BTreeMap<String, Vec<Attachment>>,
    pub roles: BTreeMap<String, Vec<Attachment>>,
}

/// What one set of policies says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny,
    NoAllow,
}

/// What one statement says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    Yes,
    No,
    Error,
}

/// Everything a statement can look at.
struct Facts<'a> {
    action: &'a str,
    resource: &'a str,
    /// `eci:tag/<k>`.
    tags_in_play: Option<&'a RefTags>,
    /// `acs:ResourceTag/<k>`.
    resource_tags: Option<&'a RefTags>,
    /// `acs:RequestTag/<k>`.
    request_tags: Option<&'a RefTags>,
    env: Env,
}

/// A request value a condition key reads.
enum Fact {
    Text(String),
    Ip(IpAddr),
    Bool(bool),
}

impl World {
    /// An empty world: the built-in policies, one default resource group `rg-default`, no
    /// users, no roles (so no service role: add it with [`World::authorize_service_role`]).
    pub fn new(account_id: &str, region: &str) -> Self {
        let policies = BUILTINS
            .iter()
            .map(|(name, text)| {
                let doc = serde_json::from_str(text).expect("a built-in policy is valid JSON");
                (name.to_string(), doc)
            })
            .collect();
        Self {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            resource_groups: vec!["rg-default".to_owned()],
            default_group: "rg-default".to_owned(),
            policies,
            policy_files: BTreeMap::new(),
            guardrails: Vec::new(),
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a custom policy from its JSON text. Panics on invalid JSON: the
    /// reference is only ever given valid policies.
    pub fn add_policy(&mut self, name: &str, text: &str) {
        let doc = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("reference: policy {name} is not JSON: {e}"));
        self.policies.insert(name.to_owned(), doc);
        self.policy_files.insert(name.to_owned(), text.to_owned());
    }

    /// Declares the ECI service role with its policy at account scope.
    pub fn authorize_service_role(&mut self) {
        self.roles.insert(
            SERVICE_ROLE.to_owned(),
            vec![Attachment::account(SERVICE_ROLE_POLICY)],
        );
    }

    /// Builds a world from a policy directory's files (`principals.toml` and
    /// `<PolicyName>.json`), e.g. `config/policies`. Only the fields authorization needs are
    /// read; credentials are ignored.
    pub fn from_sources(account_id: &str, region: &str, sources: &[(PathBuf, String)]) -> Self {
        let mut world = Self::new(account_id, region);
        world.resource_groups.clear();
        world.default_group.clear();
        let mut principals = None;
        for (path, text) in sources {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a file name");
            if name == "principals.toml" {
                principals = Some(text);
            } else if let Some(policy) = name.strip_suffix(".json") {
                world.add_policy(policy, text);
            }
        }
        let text = principals.expect("reference: no principals.toml");
        let doc: toml::Table = toml::from_str(text).expect("reference: principals.toml parses");
        let strings = |v: Option<&toml::Value>| -> Vec<String> {
            v.and_then(toml::Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().expect("a string").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let tables = |key: &str| -> Vec<toml::Table> {
            doc.get(key)
                .and_then(toml::Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|t| t.as_table().expect("a table").clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(account) = doc.get("account").and_then(toml::Value::as_table) {
            world.guardrails = strings(account.get("guardrails"));
        }
        for group in tables("resource_groups") {
            let id = group["id"].as_str().expect("a group id").to_owned();
            if group.get("default").and_then(toml::Value::as_bool) == Some(true) {
                world.default_group = id.clone();
            }
            world.resource_groups.push(id);
        }
        for (key, into) in [("users", &mut world.users), ("roles", &mut world.roles)] {
            for entry in tables(key) {
                let name = entry["name"].as_str().expect("a name").to_owned();
                let attach = entry
                    .get("attach")
                    .and_then(toml::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|t| Attachment {
                                policy: t["policy"].as_str().expect("a policy").to_owned(),
                                resource_group: t
                                    .get("resource_group")
                                    .and_then(toml::Value::as_str)
                                    .map(str::to_owned),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                into.insert(name, attach);
            }
        }
        world
    }

    /// The files of a policy directory for this world: `principals.toml` (no credentials)
    /// and one `<name>.json` per custom policy, ready for `Snapshot::build`.
    pub fn to_sources(&self) -> Vec<(PathBuf, String)> {
        let quote = |s: &str| format!("{s:?}"); // names are plain ASCII: Rust and TOML agree
        let mut toml = String::new();
        let guardrails: Vec<String> = self.guardrails.iter().map(|g| quote(g)).collect();
        writeln!(
            toml,
            "[account]\nguardrails = [{}]\n",
            guardrails.join(", ")
        )
        .unwrap();
        for g in &self.resource_groups {
            writeln!(toml, "[[resource_groups]]\nid = {}", quote(g)).unwrap();
            if *g == self.default_group {
                toml.push_str("default = true\n");
            }
            toml.push('\n');
        }
        for (table, principals) in [("users", &self.users), ("roles", &self.roles)] {
            for (name, attach) in principals {
                let attach: Vec<String> = attach
                    .iter()
                    .map(|a| match &a.resource_group {
                        None => format!("{{ policy = {} }}", quote(&a.policy)),
                        Some(g) => format!(
                            "{{ policy = {}, resource_group = {} }}",
                            quote(&a.policy),
                            quote(g)
                        ),
                    })
                    .collect();
                writeln!(
                    toml,
                    "[[{table}]]\nname = {}\nattach = [{}]\n",
                    quote(name),
                    attach.join(", ")
                )
                .unwrap();
            }
        }
        let mut sources = vec![(PathBuf::from("principals.toml"), toml)];
        for (name, text) in &self.policy_files {
            sources.push((PathBuf::from(format!("{name}.json")), text.clone()));
        }
        sources
    }

    /// `acs:eci:<region>:<account>:containergroup/<id>`.
    pub fn arn(&self, id: &str) -> String {
        format!(
            "acs:eci:{}:{}:containergroup/{id}",
            self.region, self.account_id
        )
    }

    fn is_declared(&self, group: &str) -> bool {
        self.resource_groups.iter().any(|g| g == group)
    }

    /// An action on one existing container group. `resulting_tags`: for a tag change, the
    /// tags it would have afterwards; then both the current and the resulting tags must be
    /// allowed (the resulting ones as `eci:tag`, `acs:ResourceTag` stays the current ones).
    pub fn single(
        &self,
        who: Who<'_>,
        action: &str,
        target: &Target,
        request_tags: &RefTags,
        resulting_tags: Option<&RefTags>,
        env: Env,
    ) -> bool {
        let resource = self.arn(&target.id);
        let facts = |in_play| Facts {
            action,
            resource: &resource,
            tags_in_play: Some(in_play),
            resource_tags: Some(&target.tags),
            request_tags: Some(request_tags),
            env,
        };
        let group = Some(target.resource_group.as_str());
        self.allowed(who, group, &facts(&target.tags))
            && resulting_tags.is_none_or(|r| self.allowed(who, group, &facts(r)))
    }

    /// `eci:CreateContainerGroup` into `requested_group` (`None`: the default group).
    pub fn create(
        &self,
        who: Who<'_>,
        requested_group: Option<&str>,
        request_tags: &RefTags,
        env: Env,
    ) -> CreateOutcome {
        let group = match requested_group {
            None => self.default_group.clone(),
            Some(g) if self.is_declared(g) => g.to_owned(),
            Some(_) if who == Who::Root => self.default_group.clone(),
            Some(_) => return CreateOutcome::Denied,
        };
        let resource = self.arn("*");
        let facts = Facts {
            action: "eci:CreateContainerGroup",
            resource: &resource,
            tags_in_play: Some(request_tags),
            resource_tags: None,
            request_tags: Some(request_tags),
            env,
        };
        if !self.allowed(who, Some(&group), &facts) {
            return CreateOutcome::Denied;
        }
        let role_ok = self
            .roles
            .get(SERVICE_ROLE)
            .is_some_and(|attached| attached.contains(&Attachment::account(SERVICE_ROLE_POLICY)));
        if !role_ok {
            return CreateOutcome::ServiceRoleNotAuthorized;
        }
        CreateOutcome::Allowed {
            resource_group: group,
        }
    }

    /// Whether `item` (an existing container group the backend would return) appears in
    /// the answer to `request` (`eci:DescribeContainerGroups`).
    pub fn describe_visible(
        &self,
        who: Who<'_>,
        request: &DescribeRequest<'_>,
        item: &Target,
        env: Env,
    ) -> bool {
        let action = "eci:DescribeContainerGroups";
        // The named group decides which attachments count, and bounds what is returned.
        if let Some(g) = request.resource_group {
            if !self.is_declared(g) || item.resource_group != g {
                return false;
            }
        }
        let ids = request.ids.filter(|ids| !ids.is_empty());
        match ids {
            Some(ids) => {
                if !ids.contains(&item.id.as_str()) {
                    return false;
                }
            }
            None => {
                // No ids: the request's tags are the tags in play for the list itself.
                let all = self.arn("*");
                let list = Facts {
                    action,
                    resource: &all,
                    tags_in_play: Some(request.tags),
                    resource_tags: None,
                    request_tags: Some(request.tags),
                    env,
                };
                if !self.allowed(who, request.resource_group, &list) {
                    return false;
                }
            }
        }
        // Request tags only ever narrow: the item must carry them.
        if request
            .tags
            .iter()
            .any(|(k, v)| item.tags.get(k) != Some(v))
        {
            return false;
        }
        let resource = self.arn(&item.id);
        let own = Facts {
            action,
            resource: &resource,
            tags_in_play: Some(&item.tags),
            resource_tags: Some(&item.tags),
            request_tags: Some(request.tags),
            env,
        };
        self.allowed(who, request.resource_group, &own)
    }

    /// An action that involves no container group: account-scoped attachments only,
    /// resource `*`, no tags in play.
    pub fn other(&self, who: Who<'_>, action: &str, request_tags: &RefTags, env: Env) -> bool {
        let facts = Facts {
            action,
            resource: "*",
            tags_in_play: None,
            resource_tags: None,
            request_tags: Some(request_tags),
            env,
        };
        self.allowed(who, None, &facts)
    }

    /// Guardrails, then (except for root) the attachments that count for `group`.
    fn allowed(&self, who: Who<'_>, group: Option<&str>, facts: &Facts<'_>) -> bool {
        if !self.guardrails.is_empty() {
            let guardrails = self.guardrails.iter().map(|name| self.policy(name));
            if verdict(guardrails, facts) != Verdict::Allow {
                return false;
            }
        }
        let attachments = match who {
            Who::Root => return true,
            Who::User(name) => self.users.get(name),
            Who::Role(name) => self.roles.get(name),
        };
        let Some(attachments) = attachments else {
            return false; // not a principal of this account
        };
        let counted = attachments
            .iter()
            .filter(|a| a.resource_group.is_none() || a.resource_group.as_deref() == group)
            .map(|a| self.policy(&a.policy));
        verdict(counted, facts) == Verdict::Allow
    }

    fn policy(&self, name: &str) -> &Value {
        self.policies
            .get(name)
            .unwrap_or_else(|| panic!("reference: no policy named {name}"))
    }
}

/// Why [`tag_change`] refuses a request (400 `InvalidParameter`/`MissingParameter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// SPEC §1's per-action parameter model, written out from the spec's words rather than
/// from ramgate's catalogue: which of `Tag.N.Key`/`Tag.N.Value`, `TagKey.N` and `All` the
/// action takes, and the tags a container group carrying `current` has after it.
///
/// * `UntagResources` takes `TagKey.N` (or `All=true`), never `Tag.N`; it removes those
///   keys, or every tag;
/// * `TagResources` and `UpdateContainerGroup` take `Tag.N` and add or replace those keys;
///   `CreateContainerGroup` takes `Tag.N` as the new group's tags;
/// * `DescribeContainerGroups` and `ListTagResources` (and the other lists) read `Tag.N` as
///   a filter: each key needs its value;
/// * no other action on container groups takes any of them; `All` and `TagKey.N` are
///   taken by `UntagResources` alone.
///
/// `params` are the request's parameters (names exact, each once). Ok(tags afterwards);
/// the same as `current` for an action that changes no tags.
pub fn tag_change(
    action: &str,
    params: &[(String, String)],
    current: &RefTags,
) -> Result<RefTags, Refused> {
    let has = |prefix: &str| {
        params
            .iter()
            .any(|(n, _)| n == prefix || n.starts_with(&format!("{prefix}.")))
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let (sets, filters, removes) = match action {
        "UntagResources" => (false, false, true),
        "TagResources" | "UpdateContainerGroup" | "CreateContainerGroup" => (true, false, false),
        "DescribeContainerGroups"
        | "ListTagResources"
        | "DescribeContainerGroupStatus"
        | "DescribeContainerGroupEvents" => (false, true, false),
        _ => (false, false, false),
    };
    if has("Tag") && !(sets || filters) {
        return Err(Refused(format!("{action} does not take Tag.N")));
    }
    if (has("TagKey") || has("All")) && !removes {
        return Err(Refused(format!("{action} does not take TagKey.N or All")));
    }
    // Tag.N as given, 1..n; a filter key needs its value.
    let mut given = Vec::new();
    for n in 1.. {
        let key = get(&format!("Tag.{n}.Key"));
        let value = get(&format!("Tag.{n}.Value"));
        match (key, value) {
            (None, None) => break,
            (None, Some(_)) => return Err(Refused(format!("Tag.{n}.Value without its key"))),
            (Some(_), None) if filters => {
                return Err(Refused(format!("the filter Tag.{n}.Key without its value")))
            }
            (Some(k), v) => given.push((k.to_owned(), v.unwrap_or("").to_owned())),
        }
    }
    let mut after = current.clone();
    if sets && action != "CreateContainerGroup" {
        for (k, v) in given {
            after.insert(k, v);
        }
    }
    if removes {
        let all = match get("All") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(Refused(format!("All={other}"))),
        };
        let keys: Vec<&str> = (1..).map_while(|n| get(&format!("TagKey.{n}"))).collect();
        match (all, keys.is_empty()) {
            (true, false) => return Err(Refused("All=true with TagKey.N".into())),
            (false, true) => return Err(Refused("no TagKey.N and no All=true".into())),
            (true, true) => after.clear(),
            (false, false) => keys.iter().for_each(|k| {
                after.remove(*k);
            }),
        }
    }
    Ok(after)
}

/// Explicit Deny (including a Deny that errors) beats any Allow; no Allow means no.
fn verdict<'v>(policies: impl Iterator<Item = &'v Value>, facts: &Facts<'_>) -> Verdict {
    let mut allowed = false;
    for policy in policies {
        for statement in one_or_many(&policy["Statement"]) {
            let deny = statement["Effect"] == "Deny";
            match applies(statement, facts) {
                Applies::Yes | Applies::Error if deny => return Verdict::Deny,
                Applies::Yes => allowed = true,
                Applies::Error | Applies::No => {}
            }
        }
    }
    if allowed {
        Verdict::Allow
    } else {
        Verdict::NoAllow
    }
}

/// A JSON value that is either one item or a list of items.
fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// A condition value or pattern as text (numbers and booleans as written).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("reference: unexpected value {other}"),
    }
}

fn applies(statement: &Value, facts: &Facts<'_>) -> Applies {
    let action = facts.action.to_lowercase();
    let (patterns, negated) = match statement.get("NotAction") {
        Some(not) => (not, true),
        None => (&statement["Action"], false),
    };
    let listed = one_or_many(patterns)
        .into_iter()
        .any(|p| wildcard(&text(p).to_lowercase(), &action));
    let resource = one_or_many(&statement["Resource"])
        .into_iter()
        .any(|p| wildcard(&text(p), facts.resource));
    if listed == negated || !resource {
        return Applies::No;
    }
    let (mut any_false, mut any_error) = (false, false);
    if let Some(block) = statement.get("Condition").and_then(Value::as_object) {
        for (operator, keys) in block {
            let keys = keys.as_object().expect("an operator maps keys to values");
            for (key, values) in keys {
                let values: Vec<String> = one_or_many(values).into_iter().map(text).collect();
                match condition(operator, key, &values, facts) {
                    Ok(true) => {}
                    Ok(false) => any_false = true,
                    Err(()) => any_error = true,
                }
            }
        }
    }
    if any_error {
        Applies::Error
    } else if any_false {
        Applies::No
    } else {
        Applies::Yes
    }
}

/// `Err(())`: the request's value cannot be read as the operator's type.
fn condition(operator: &str, key: &str, values: &[String], facts: &Facts<'_>) -> Result<bool, ()> {
    let negated = matches!(
        operator,
        "StringNotEquals"
            | "StringNotEqualsIgnoreCase"
            | "StringNotLike"
            | "NumericNotEquals"
            | "NotIpAddress"
    );
    let Some(fact) = lookup(key, facts) else {
        return Ok(negated);
    };
    let as_text = || match &fact {
        Fact::Text(t) => Ok(t.clone()),
        _ => Err(()),
    };
    let positive = match operator {
        "StringEquals" | "StringNotEquals" => {
            let t = as_text()?;
            values.contains(&t)
        }
        "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => {
            let t = as_text()?.to_lowercase();
            values.iter().any(|v| v.to_lowercase() == t)
        }
        "StringLike" | "StringNotLike" => {
            let t = as_text()?;
            values.iter().any(|v| wildcard(v, &t))
        }
        numeric if numeric.starts_with("Numeric") => {
            let n = number(&as_text()?).ok_or(())?;
            let compare = |v: &String| {
                let v = number(v).expect("reference: a numeric policy value");
                match &numeric["Numeric".len()..] {
                    "Equals" | "NotEquals" => n == v,
                    "LessThan" => n < v,
                    "LessThanEquals" => n <= v,
                    "GreaterThan" => n > v,
                    "GreaterThanEquals" => n >= v,
                    other => panic!("reference: unknown operator Numeric{other}"),
                }
            };
            values.iter().any(compare)
        }
        "Bool" => {
            let b = match &fact {
                Fact::Bool(b) => *b,
                Fact::Text(t) => boolean(t).ok_or(())?,
                Fact::Ip(_) => return Err(()),
            };
            values
                .iter()
                .any(|v| boolean(v).expect("reference: a boolean policy value") == b)
        }
        "IpAddress" | "NotIpAddress" => {
            let ip = match &fact {
                Fact::Ip(ip) => *ip,
                Fact::Text(t) => t.parse().map_err(|_| ())?,
                Fact::Bool(_) => return Err(()),
            };
            values.iter().any(|v| in_network(ip, v))
        }
        other => panic!("reference: unsupported operator {other}"),
    };
    Ok(positive != negated)
}

/// What the request holds for a condition key (key names are case-insensitive, the tag
/// key after the `/` is not).
fn lookup(key: &str, facts: &Facts<'_>) -> Option<Fact> {
    let lower = key.to_ascii_lowercase();
    let tag = |prefix: &str, tags: Option<&RefTags>| {
        lower
            .starts_with(prefix)
            .then(|| tags?.get(&key[prefix.len()..]).cloned())
    };
    for (prefix, tags) in [
        ("eci:tag/", facts.tags_in_play),
        ("acs:resourcetag/", facts.resource_tags),
        ("acs:requesttag/", facts.request_tags),
    ] {
        if let Some(found) = tag(prefix, tags) {
            return found.map(Fact::Text);
        }
    }
    match lower.as_str() {
        "acs:sourceip" => facts.env.source_ip.map(Fact::Ip),
        "acs:securetransport" => Some(Fact::Bool(facts.env.secure_transport)),
        _ => panic!("reference: unsupported condition key {key}"),
    }
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn boolean(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `ip` lies in `network` (`a.b.c.d/len`, an IPv6 CIDR, or a single address). An
/// IPv4-mapped IPv6 address is the IPv4 address it carries.
fn in_network(ip: IpAddr, network: &str) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (address, prefix) = match network.split_once('/') {
        Some((a, p)) => (
            a,
            Some(p.parse::<u32>().expect("reference: a prefix length")),
        ),
        None => (network, None),
    };
    let address: IpAddr = address.parse().expect("reference: an IP address");
    // Compare the leading `prefix` bits of both addresses, as integers.
    let same_prefix = |a: u128, b: u128, bits: u32, prefix: u32| {
        let shift = bits - prefix.min(bits);
        shift == bits || (a >> shift) == (b >> shift)
    };
    match (ip, address) {
        (IpAddr::V4(a), IpAddr::V4(b)) => same_prefix(
            u32::from(a).into(),
            u32::from(b).into(),
            32,
            prefix.unwrap_or(32),
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            same_prefix(u128::from(a), u128::from(b), 128, prefix.unwrap_or(128))
        }
        _ => false,
    }
}

/// `*` matches any run of characters (including none), `?` exactly one; everything else
/// matches itself. Plain recursion: inputs here are short.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|skip| go(rest, &t[skip..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod self_tests {
    //! The oracle's own sanity checks, independent of the engine.

    use super::*;

    #[test]
    fn wildcard_basics() {
        assert!(wildcard("eci:*", "eci:deletecontainergroup"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("x", "X"));
        assert!(wildcard("a*b*c", "aXbYc"));
    }

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("10.1.2.3"), "10.0.0.0/8"));
        assert!(!in_network(ip("11.1.2.3"), "10.0.0.0/8"));
        assert!(in_network(ip("::ffff:10.1.2.3"), "10.0.0.0/8"));
        assert!(in_network(ip("192.168.1.1"), "192.168.1.1"));
        assert!(in_network(ip("1.2.3.4"), "0.0.0.0/0"));
        assert!(!in_network(ip("1.2.3.4"), "::/0"));
    }
}
