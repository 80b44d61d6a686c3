//! Explicit Deny over Allow across account- and group-scoped attachments; errors never allow.

use super::*;
use crate::model::{ContainerGroupMeta, Tags};
use crate::snapshot::{Account, Snapshot};
use std::path::{Path, PathBuf};

fn snapshot(principals: &str, policies: &[(&str, &str)]) -> Snapshot {
    let mut sources = vec![(PathBuf::from("principals.toml"), principals.to_owned())];
    sources.extend(
        policies
            .iter()
            .map(|(n, s)| (PathBuf::from(format!("{n}.json")), s.to_string())),
    );
    let account = Account {
        id: "123".into(),
        region: "cn-hangzhou".into(),
    };
    Snapshot::build(Path::new("."), account, sources).unwrap_or_else(|e| panic!("{e}"))
}

const ALLOW_ALL: &str =
    r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:*","Resource":"*"}]}"#;
const DENY_DELETE: &str = r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"eci:DeleteContainerGroup","Resource":"*"}]}"#;
const DENY_ON_BAD_NUMBER: &str = r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"eci:*","Resource":"*","Condition":{"NumericLessThan":{"eci:tag/n":"5"}}}]}"#;
const DENY_DELETE_ON_BAD_NUMBER: &str = r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"eci:DeleteContainerGroup","Resource":"*","Condition":{"NumericLessThan":{"eci:tag/n":"5"}}}]}"#;
const ALLOW_ON_BAD_NUMBER: &str = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"NumericLessThan":{"eci:tag/n":"5"}}}]}"#;

fn principals(attach: &str) -> String {
    format!(
        "[[resource_groups]]\nid = \"rg-default\"\ndefault = true\n[[resource_groups]]\nid = \"rg-a\"\n\
         [[users]]\nname = \"u\"\nattach = {attach}\n\
         [[roles]]\nname = \"AliyunECIContainerGroupRole\"\nattach = [{{ policy = \"AliyunECIContainerGroupRolePolicy\" }}]\n"
    )
}

fn caller(snap: &Snapshot) -> Caller {
    Caller {
        principal: snap.directory.user("u").unwrap(),
        source_ip: None,
        secure_transport: false,
        now_unix_nanos: 0,
    }
}

fn meta(group: &str, tags: &[(&str, &str)]) -> ContainerGroupMeta {
    ContainerGroupMeta {
        resource_group: group.into(),
        tags: Tags::from_pairs(tags.iter().copied()),
    }
}

fn delete(snap: &Snapshot, m: &ContainerGroupMeta) -> Decision {
    Authorizer::new(snap, caller(snap)).decide_resource(
        "eci:deletecontainergroup",
        "eci-1",
        Some(m),
        &Tags::new(),
        None,
    )
}

#[test]
fn group_scoped_deny_beats_account_allow() {
    let s = snapshot(
        &principals(r#"[{ policy = "all" }, { policy = "nodelete", resource_group = "rg-a" }]"#),
        &[("all", ALLOW_ALL), ("nodelete", DENY_DELETE)],
    );
    let d = delete(&s, &meta("rg-a", &[]));
    assert!(!d.allowed);
    assert_eq!(
        d.reason.no_permission_type(false),
        NoPermissionType::ExplicitDeny
    );
    assert_eq!(
        d.reason.policy_type(),
        PolicyType::ResourceGroupLevelIdentityBasedPolicy
    );
    assert!(
        delete(&s, &meta("rg-default", &[])).allowed,
        "the deny is scoped to rg-a"
    );
}

#[test]
fn account_scoped_deny_beats_group_allow() {
    let s = snapshot(
        &principals(r#"[{ policy = "all", resource_group = "rg-a" }, { policy = "nodelete" }]"#),
        &[("all", ALLOW_ALL), ("nodelete", DENY_DELETE)],
    );
    let d = delete(&s, &meta("rg-a", &[]));
    assert!(!d.allowed);
    assert_eq!(
        d.reason.policy_type(),
        PolicyType::AccountLevelIdentityBasedPolicy
    );
    let restart = Authorizer::new(&s, caller(&s)).decide_resource(
        "eci:restartcontainergroup",
        "eci-1",
        Some(&meta("rg-a", &[])),
        &Tags::new(),
        None,
    );
    assert!(restart.allowed);
    assert_eq!(
        restart.reason.policy_type(),
        PolicyType::ResourceGroupLevelIdentityBasedPolicy
    );
}

#[test]
fn an_erroring_deny_denies_and_an_erroring_allow_does_not_allow() {
    let s = snapshot(
        &principals(r#"[{ policy = "all" }, { policy = "denyn" }]"#),
        &[("all", ALLOW_ALL), ("denyn", DENY_DELETE_ON_BAD_NUMBER)],
    );
    let d = delete(&s, &meta("rg-a", &[("n", "not-a-number")]));
    assert!(!d.allowed);
    assert!(matches!(d.reason, Reason::DenyErrored(..)));
    assert!(delete(&s, &meta("rg-a", &[("n", "7")])).allowed);

    // The same Deny on every action: the caller may not even see the group, so its denial
    // is that of an id that does not exist (issue 11, finding 4).
    let s = snapshot(
        &principals(r#"[{ policy = "all" }, { policy = "denyn" }]"#),
        &[("all", ALLOW_ALL), ("denyn", DENY_ON_BAD_NUMBER)],
    );
    let d = delete(&s, &meta("rg-a", &[("n", "not-a-number")]));
    assert!(matches!(d.reason, Reason::Concealed(Some(_))), "{d:?}");
    let missing = Decision::denied(Reason::NotFound).reason;
    assert_eq!(
        (d.reason.policy_type(), d.reason.no_permission_type(false)),
        (missing.policy_type(), missing.no_permission_type(false))
    );

    let s = snapshot(
        &principals(r#"[{ policy = "allown" }]"#),
        &[("allown", ALLOW_ON_BAD_NUMBER)],
    );
    assert!(!delete(&s, &meta("rg-a", &[("n", "x")])).allowed);
    assert!(delete(&s, &meta("rg-a", &[("n", "1")])).allowed);
}

#[test]
fn unknown_ids_look_like_denials_to_users() {
    let s = snapshot(
        &principals(r#"[{ policy = "all" }]"#),
        &[("all", ALLOW_ALL)],
    );
    let d = Authorizer::new(&s, caller(&s)).decide_resource(
        "eci:deletecontainergroup",
        "eci-x",
        None,
        &Tags::new(),
        None,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reason.no_permission_type(false),
        NoPermissionType::ImplicitDeny
    );
}

#[test]
fn root_on_a_missing_group_still_passes_the_guardrails() {
    let principals = principals(r#"[{ policy = "all" }]"#).replace(
        "[[resource_groups]]\nid = \"rg-default\"",
        "[account]\nguardrails = [\"nodelete\"]\n[[resource_groups]]\nid = \"rg-default\"",
    );
    let s = snapshot(
        &principals,
        &[("all", ALLOW_ALL), ("nodelete", DENY_DELETE)],
    );
    let root = Caller {
        principal: crate::principals::ROOT,
        ..caller(&s)
    };
    let auth = Authorizer::new(&s, root);
    let delete = auth.decide_resource(
        "eci:deletecontainergroup",
        "eci-gone",
        None,
        &Tags::new(),
        None,
    );
    assert!(
        !delete.allowed,
        "the guardrail has no Allow and denies deletes"
    );
    assert!(matches!(
        delete.reason,
        Reason::Guardrail(_) | Reason::ImplicitDeny(PolicyType::ControlPolicy)
    ));
}
