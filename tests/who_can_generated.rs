//! `who-can` on the generated 10,000-principal directory (`benches/common`): for random
//! requests, the principals it lists are exactly those for which the planner, asked one
//! principal at a time, allows the request — the shortcut that skips principals whose
//! policies cannot allow the action changes no answer.

#[path = "../benches/common/mod.rs"]
mod common;

use proptest::prelude::*;
use ramgate::cli::explain::offline_caller;
use ramgate::cli::hypothetical::{Hypothetical, Outcome};
use ramgate::cli::who_can;
use ramgate::decision::Authorizer;
use ramgate::model::{ContainerGroupMeta, Tags};
use ramgate::principals::PrincipalId;
use ramgate::snapshot::Snapshot;
use std::sync::OnceLock;

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let world = common::generated_world();
        Snapshot::build(
            std::path::Path::new("generated"),
            common::account(),
            world.sources,
        )
        .expect("the generated directory loads")
    })
}

/// Actions of every kind the planner distinguishes.
const ACTIONS: &[&str] = &[
    "DeleteContainerGroup",
    "RestartContainerGroup",
    "DescribeContainerLog",
    "ExecContainerCommand",
    "UpdateContainerGroup",
    "DescribeContainerGroups",
    "CreateContainerGroup",
    "TagResources",
    "ListTagResources",
    "DescribeRegions",
];

/// A team that some policies name (teams 0..200 exist), an env, or none.
fn tags() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        proptest::option::of(0..common::TEAMS + 5),
        proptest::option::of(prop::sample::select(vec!["dev", "test", "prod"])),
    )
        .prop_map(|(team, env)| {
            let mut tags = Vec::new();
            if let Some(t) = team {
                tags.push(("team".to_owned(), format!("team-{t}")));
            }
            if let Some(e) = env {
                tags.push(("env".to_owned(), e.to_owned()));
            }
            tags
        })
}

fn group() -> impl Strategy<Value = String> {
    (0..common::GROUPS + 2).prop_map(|g| format!("rg-{g}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn who_can_equals_the_planner_asked_principal_by_principal(
        action in prop::sample::select(ACTIONS),
        target in proptest::option::of((group(), tags())),
        resource_group in proptest::option::of(group()),
        request_tags in tags(),
    ) {
        let snapshot = snapshot();
        let mut facts = Hypothetical {
            action: action.to_owned(),
            resource_group,
            tags: request_tags,
            untag_keys: Vec::new(),
            targets: target
                .map(|(g, tags)| ContainerGroupMeta {
                    resource_group: g,
                    tags: Tags::from_pairs(tags),
                })
                .into_iter()
                .collect(),
        };
        // A target where the action takes none, or none where it needs one: drop or
        // supply it, so that every case is a request the proxy would decide.
        let prepared = match facts.prepare(common::REGION) {
            Ok(p) => p,
            Err(_) if !facts.targets.is_empty() => {
                facts.targets.clear();
                facts.prepare(common::REGION)
                    .map_err(|e| TestCaseError::reject(e.to_string()))?
            }
            Err(_) => {
                facts.targets.push(ContainerGroupMeta {
                    resource_group: "rg-1".into(),
                    tags: Tags::from_pairs([("team", "team-1"), ("env", "dev")]),
                });
                facts.prepare(common::REGION)
                    .map_err(|e| TestCaseError::reject(e.to_string()))?
            }
        };
        let listed: Vec<PrincipalId> = who_can::allowed(snapshot, &prepared)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let one_by_one: Vec<PrincipalId> = (0..snapshot.directory.principals.len() as PrincipalId)
            .filter(|&p| {
                let auth = Authorizer::new(snapshot, offline_caller(p));
                prepared.decide(&auth).outcome == Outcome::Allow
            })
            .collect();
        prop_assert_eq!(&listed, &one_by_one, "{:?}", facts);
        // In directory order: root (principal 0) first when it is allowed.
        prop_assert!(listed.windows(2).all(|w| w[0] < w[1]));
    }
}
