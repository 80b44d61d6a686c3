//! Every row of SCENARIOS.md, run against the decision engine: the request is parsed from
//! its wire parameters by the real canonicalizer, planned by the engine against the demo
//! policies, and the plan is played against the scenario world (a list of container groups
//! standing in for the backend). Expected outcomes come from `tests/scenarios/*.json`,
//! written from the table.

mod corpus;

use corpus::{Expect, WorldGroup};
use ramgate::decision::{plan, Allowed, Authorizer, Caller, Denied, Plan, Rewrite};
use ramgate::model::{ContainerGroupMeta, Tags};
use ramgate::request::{self, CanonicalRequest};
use ramgate::snapshot::{Account, Snapshot};

fn id_of(name: &str) -> String {
    format!("eci-{name}")
}

/// A container group of the world: its id and metadata.
type Group = (String, ContainerGroupMeta);

fn group(g: &WorldGroup) -> Group {
    let meta = ContainerGroupMeta {
        resource_group: g.resource_group.clone(),
        tags: Tags::from_pairs(g.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    };
    (id_of(&g.name), meta)
}

fn parse(action: &str, params: &[(String, String)]) -> CanonicalRequest {
    let mut all = vec![("Action", action)];
    all.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let uri: http::Uri = format!("/?{}", ramgate::request::encoding::encode_pairs(all))
        .parse()
        .expect("uri");
    match request::parse(&http::Method::POST, &uri, &http::HeaderMap::new(), b"") {
        Ok(parsed) => parsed.canonical,
        Err(e) => panic!("{action} {params:?}: {e}"),
    }
}

/// What the backend would answer to a forwarded Describe: the world, filtered by the
/// forwarded request's own filters.
fn backend_describe<'w>(world: &'w [Group], req: &CanonicalRequest) -> Vec<&'w Group> {
    world
        .iter()
        .filter(|(_, m)| {
            req.resource_group
                .as_ref()
                .is_none_or(|g| *g == m.resource_group)
        })
        .filter(|(id, _)| req.ids.is_empty() || req.ids.contains(id))
        .filter(|(_, m)| m.tags.contains_all(&req.tags))
        .collect()
}

#[test]
fn every_scenario_row_holds_in_the_engine() {
    let world: Vec<Group> = corpus::world().groups.iter().map(group).collect();
    let mut failures = Vec::new();
    let mut rows = std::collections::BTreeSet::new();
    for (file, scenarios) in corpus::decision_files() {
        let dir = corpus::policy_dir(&scenarios.setting);
        let account = Account {
            id: "1234567890123456".into(),
            region: "cn-hangzhou".into(),
        };
        let snapshot =
            Snapshot::load(dir.path(), account).unwrap_or_else(|e| panic!("{file}: {e}"));
        for case in &scenarios.cases {
            rows.insert(case.row.clone());
            let principal = snapshot
                .directory
                .by_arn("1234567890123456", &corpus::arn(&case.caller))
                .unwrap_or_else(|| panic!("unknown caller {}", case.caller));
            let caller = Caller {
                principal,
                source_ip: None,
                secure_transport: false,
                now_unix_nanos: 0,
            };
            let auth = Authorizer::new(&snapshot, caller);
            let req = parse(&case.action, &corpus::wire_params(case, &id_of));
            let metas: Vec<Option<&ContainerGroupMeta>> = req
                .ids
                .iter()
                .map(|id| world.iter().find(|(g, _)| g == id).map(|(_, m)| m))
                .collect();
            let planned = plan(&auth, &req, &metas);
            let got = match (&case.expect, &planned) {
                (Expect::Word(_), Plan::Allow(_)) => Expect::Word("allow".into()),
                (Expect::Word(_), Plan::Deny(Denied::Forbidden(_))) => Expect::Word("deny".into()),
                (
                    Expect::CreatedIn { .. },
                    Plan::Allow(Allowed {
                        rewrite: Rewrite::ResourceGroup(group),
                        ..
                    }),
                ) => Expect::CreatedIn {
                    created_in: group.clone(),
                },
                (Expect::Returns { .. }, Plan::Deny(Denied::SilentEmpty(_))) => {
                    Expect::Returns { returns: vec![] }
                }
                (
                    Expect::Returns { .. },
                    Plan::Allow(Allowed {
                        filter: Some(v),
                        rewrite,
                        ..
                    }),
                ) => {
                    let mut forwarded = req.clone();
                    rewrite.clone().apply(&mut forwarded);
                    let mut names: Vec<String> = backend_describe(&world, &forwarded)
                        .iter()
                        .filter(|(id, m)| auth.visible(req.action.ram_action, v, id, m))
                        .map(|(id, _)| id.trim_start_matches("eci-").to_owned())
                        .collect();
                    names.sort();
                    Expect::Returns { returns: names }
                }
                (_, Plan::Deny(Denied::ServiceRoleNotAuthorized)) => Expect::Error {
                    error: "Forbidden.ServiceRoleNotAuthorized".into(),
                },
                (_, Plan::Deny(Denied::Forbidden(_))) => Expect::Word("deny".into()),
                (_, other) => Expect::Word(format!("{other:?}")),
            };
            if got != case.expect {
                failures.push(format!(
                    "{file} {} ({:?}): expected {:?}, got {got:?} [{planned:?}]",
                    case.row, case.note, case.expect
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for n in 1..=21 {
        assert!(rows.contains(&format!("R{n}")), "row R{n} has no case");
    }
    for n in 1..=18 {
        assert!(rows.contains(&format!("T{n}")), "row T{n} has no case");
    }
}

#[test]
fn policy_file_rows_are_rejected_with_position_and_hint() {
    for case in corpus::policy_file_cases().cases {
        let dir = corpus::policy_dir("demo");
        std::fs::write(dir.path().join(&case.file), &case.content).expect("write");
        let account = Account {
            id: "1".into(),
            region: "r".into(),
        };
        let errors = Snapshot::load(dir.path(), account).expect_err(&case.row).0;
        assert_eq!(errors.len(), 1, "{}: {errors:?}", case.row);
        let e = &errors[0];
        assert!(
            e.file.ends_with(&case.file),
            "{}: {}",
            case.row,
            e.file.display()
        );
        assert_eq!(
            (e.position.line, e.position.column),
            (case.expect.line, case.expect.column),
            "{}: {e}",
            case.row
        );
        for want in &case.expect.message_contains {
            assert!(
                e.message.contains(want.as_str()),
                "{}: {:?} lacks {want:?}",
                case.row,
                e.message
            );
        }
        let hint = e.hint.as_deref().unwrap_or_default();
        for want in &case.expect.hint_contains {
            assert!(
                hint.contains(want.as_str()),
                "{}: hint {hint:?} lacks {want:?}",
                case.row
            );
        }
    }
}
