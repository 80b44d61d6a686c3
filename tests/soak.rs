//! Soak: mixed load through the real proxy for `RAMGATE_SOAK_SECS` seconds (default 60)
//! while the policy directory is rewritten every second and the backend is killed and
//! restarted every `RAMGATE_SOAK_RESTART_SECS` (default 15), every answer checked against
//! an independent oracle — the reference evaluator in `tests/reference/` — and the proxy's
//! resident memory (`VmRSS`) sampled every second.
//!
//! Two runs: `soak`, one proxy; and `soak_replicas`, three replicas sharing one
//! `redis-server` (`[cluster]`, SPEC §9) and one backend, with Redis killed and restarted
//! once mid-run. In both, requests go half signed (RPC v1, each user's own AccessKey), half
//! through the trusted header, each to a random replica; one signed request in eight is
//! replayed to another replica, where it must be refused (`SignatureNonceUsed`); and root
//! retags a container group through a random replica every second, after which every
//! replica must decide on the new tags within one second.
//!
//! Run by `scripts/soak.sh [SECONDS]` (both are `#[ignore]`d in a plain `cargo test`).
//!
//! How the oracle stays exact while everything moves:
//! * Policies: each rewrite draws a random world (custom policies from a pool of
//!   statements, random attachments at account or group scope, sometimes a guardrail,
//!   sometimes no service role), writes it atomically file by file, and waits until the
//!   proxy's `/v1/status` shows that very content hash. Workers hold a read lock for each
//!   request and the rewriter a write lock, so every request is decided under one known
//!   world.
//! * Backend restarts: SIGKILL, a new `ramgate backend` on the same port, the container
//!   groups seeded again (new ids). Requests that overlap a restart may legitimately fail
//!   (502/503/504) or see a group gone (a denial, a missing item): those are counted as
//!   errors, not wrong decisions. An allow the oracle denies, or an item the caller may not
//!   see, is never excused.
//!
//! Requests: actions on one container group, Describe with every combination of group,
//! ids and tags (the answer must be exactly the items the oracle shows), Create (with and
//! without tags and groups; created groups are removed again directly on the backend),
//! actions on no container group, and tag changes with random mixes of `Tag.N`,
//! `TagKey.N` and `All` on actions that take them and actions that do not (the reference's
//! per-action parameter model, `reference::tag_change`, says which are refused with 400 and
//! what tags a group has afterwards; only requests that leave the tags as they are, or are
//! refused, are sent, so that the seeded world stays what the oracle knows); callers: the
//! account and six users.
//!
//! * Retags: under the write lock, root untags a group and tags it anew through one
//!   replica; the oracle takes the tags the backend then holds, and the lock is held until
//!   every other replica has received the invalidation (or one second, SPEC §9's bound).
//! * Redis restart: signed requests refused with 503 while Redis is down (`on_unavailable =
//!   "deny"`) are excused like requests overlapping a backend restart; nothing else is.
//!
//! It passes with zero wrong decisions, zero accepted replays, zero unexpected answers, and the resident memory
//! after warm-up not growing (last quarter's peak within 16 MiB or 15% of the peak just
//! after warm-up). A summary goes to stderr (not captured) and to
//! `target/soak-report.txt` (`target/soak-replicas-report.txt` for the replicas).

mod reference;
mod support;

use ramgate::snapshot::{Account, Snapshot};
use reference::{tag_change, CreateOutcome, DescribeRequest, Env, RefTags, Target, Who, World};
use serde_json::Value;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{as_user, Ramgate, RedisServer, SplitMix as Rng};
use tokio::sync::RwLock;

const ACCOUNT: &str = "1234567890123456";
const REGION: &str = "cn-hangzhou";
const GROUPS: &[&str] = &["rg-default", "rg-test-a", "rg-test-b"];
const USERS: &[&str] = &["test", "test2", "liumi", "ro", "multi", "u1"];
const POLICY_FILES: &[&str] = &["p-a", "p-b", "p-c"];
const SINGLE_ACTIONS: &[&str] = &[
    "DescribeContainerLog",
    "RestartContainerGroup",
    "ExportContainerGroupTemplate",
    "ExecContainerCommand",
];
const OTHER_ACTIONS: &[&str] = &["DescribeRegions", "DescribeAvailableResource", "ListUsage"];
const TAG_POOL: &[(&str, &str)] = &[
    ("name", "liumi"),
    ("env", "test"),
    ("env", "prod"),
    ("name", "liumi2"),
    ("env", "pre"),
];

/// The container groups seeded into every new backend: resource group and tags.
const SEED: &[(&str, &[(&str, &str)])] = &[
    ("rg-default", &[("name", "liumi"), ("env", "test")]),
    ("rg-default", &[("name", "liumi"), ("env", "prod")]),
    ("rg-default", &[]),
    ("rg-test-a", &[("env", "test")]),
    ("rg-test-a", &[("name", "liumi2"), ("env", "pre")]),
    ("rg-test-b", &[("name", "liumi"), ("env", "test")]),
    ("rg-test-b", &[("env", "prod")]),
    ("rg-test-a", &[]),
];

/// One statement from a pool of the shapes that matter: tag conditions of each kind,
/// resource patterns, explicit denies, source-IP and transport conditions.
fn statement(rng: &mut Rng) -> String {
    let pool = [
        r#"{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringEquals":{"eci:tag/name":"liumi","eci:tag/env":"test"}}}"#,
        r#"{"Effect":"Allow","Action":"eci:Describe*","Resource":"*"}"#,
        r#"{"Effect":"Allow","Action":["eci:DescribeContainerLog","eci:ExportContainerGroupTemplate"],"Resource":"acs:eci:*:*:containergroup/*"}"#,
        r#"{"Effect":"Deny","Action":"eci:RestartContainerGroup","Resource":"*","Condition":{"StringEquals":{"eci:tag/env":"prod"}}}"#,
        r#"{"Effect":"Allow","Action":"eci:*","Resource":"acs:eci:*:*:containergroup/*"}"#,
        r#"{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringLike":{"eci:tag/name":"liumi*"}}}"#,
        r#"{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"127.0.0.0/8"}}}"#,
        r#"{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}"#,
        r#"{"Effect":"Deny","Action":"eci:*","Resource":"*","Condition":{"NotIpAddress":{"acs:SourceIp":["127.0.0.1/32","::1/128"]}}}"#,
        r#"{"Effect":"Allow","Action":"eci:CreateContainerGroup","Resource":"*","Condition":{"StringEquals":{"acs:RequestTag/env":"test"}}}"#,
        r#"{"Effect":"Allow","Action":"eci:ExecContainerCommand","Resource":"*","Condition":{"StringNotEquals":{"eci:tag/env":"prod"}}}"#,
        r#"{"Effect":"Deny","Action":"eci:Exec*","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"acs:ResourceTag/env":"PROD"}}}"#,
        r#"{"Effect":"Allow","Action":["eci:Describe*","eci:List*"],"Resource":"*","Condition":{"StringEquals":{"eci:tag/env":["test","pre"]}}}"#,
        r#"{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"Bool":{"acs:SecureTransport":"false"}}}"#,
        r#"{"Effect":"Deny","Action":"eci:*","Resource":"acs:eci:*:*:containergroup/*","Condition":{"Bool":{"acs:SecureTransport":"true"}}}"#,
        r#"{"Effect":"Allow","Action":"eci:DescribeRegions","Resource":"*"}"#,
    ];
    rng.pick(&pool).to_string()
}

/// A random policy world over the fixed users, groups and policy file names.
fn random_world(rng: &mut Rng) -> World {
    let mut world = World::new(ACCOUNT, REGION);
    world.resource_groups = GROUPS.iter().map(|g| g.to_string()).collect();
    world.default_group = "rg-default".into();
    for name in POLICY_FILES {
        let statements: Vec<String> = (0..1 + rng.below(3)).map(|_| statement(rng)).collect();
        world.add_policy(
            name,
            &format!(
                r#"{{"Version":"1","Statement":[{}]}}"#,
                statements.join(",")
            ),
        );
    }
    let attachable = [
        "p-a",
        "p-b",
        "p-c",
        "AliyunECIFullAccess",
        "AliyunECIReadOnlyAccess",
    ];
    for user in USERS {
        let attach = (0..rng.below(3))
            .map(|_| {
                let policy = *rng.pick(&attachable);
                if rng.chance(2) {
                    reference::Attachment::account(policy)
                } else {
                    let group = GROUPS[rng.below(GROUPS.len())];
                    reference::Attachment::group(policy, group)
                }
            })
            .collect();
        world.users.insert(user.to_string(), attach);
    }
    if rng.chance(4) {
        world.guardrails = vec![rng.pick(POLICY_FILES).to_string()];
    }
    if !rng.chance(8) {
        world.authorize_service_role();
    }
    world
}

/// `world`'s policy files, each principal with its own AccessKey ([`key_of`]).
fn sources(world: &World) -> Vec<(PathBuf, String)> {
    let mut sources = world.to_sources();
    for (name, text) in &mut sources {
        if name != Path::new("principals.toml") {
            continue;
        }
        let (id, secret) = key_of("root");
        *text = text.replacen(
            "[account]\n",
            &format!("[account]\naccess_keys = [{{ id = {id:?}, secret = {secret:?} }}]\n"),
            1,
        );
        for user in USERS {
            let (id, secret) = key_of(user);
            *text = text.replacen(
                &format!("[[users]]\nname = {user:?}\n"),
                &format!("[[users]]\nname = {user:?}\naccess_keys = [{{ id = {id:?}, secret = {secret:?} }}]\n"),
                1,
            );
        }
    }
    sources
}

/// The AccessKey id and secret of `caller` (`root` or a user).
fn key_of(caller: &str) -> (String, String) {
    (
        format!("LTAIsoak{caller}"),
        format!("soak-secret-of-{caller}"),
    )
}

/// Writes `world` into `dir`, each file atomically (a dot-named temporary, then a rename;
/// names starting with `.` are ignored by the proxy).
fn write_world(dir: &Path, world: &World) {
    for (name, text) in sources(world) {
        let tmp = dir.join(format!(".tmp-{}", name.display()));
        std::fs::write(&tmp, text).expect("write policy file");
        std::fs::rename(&tmp, dir.join(&name)).expect("rename policy file");
    }
}

/// The content hash the proxy reports for a directory holding `world`'s files.
fn expected_hash(world: &World) -> String {
    let snapshot = Snapshot::build(
        Path::new("soak"),
        Account {
            id: ACCOUNT.into(),
            region: REGION.into(),
        },
        sources(world),
    )
    .unwrap_or_else(|e| panic!("a soak world does not load: {e}"));
    snapshot.content_hash_hex()
}

/// What workers read: the policy world and the container groups, swapped under the lock.
struct Phase {
    world: World,
    groups: Vec<Target>,
}

/// Counters of the run.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    allowed: AtomicU64,
    denied: AtomicU64,
    describe_items_checked: AtomicU64,
    errors_during_restarts: AtomicU64,
    excused_during_restarts: AtomicU64,
    wrong_allows: AtomicU64,
    wrong_denials: AtomicU64,
    unexpected: AtomicU64,
    rewrites: AtomicU64,
    restarts: AtomicU64,
    signed: AtomicU64,
    replays_refused: AtomicU64,
    accepted_replays: AtomicU64,
    retags: AtomicU64,
    /// Retags some replica had not heard of within a second (SPEC §9's bound).
    late_invalidations: AtomicU64,
    redis_restarts: AtomicU64,
    /// The first few problems, for the report.
    problems: Mutex<Vec<String>>,
}

impl Tally {
    fn add(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn problem(&self, counter: &AtomicU64, text: String) {
        self.add(counter);
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 20 {
            problems.push(text);
        }
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// How ramgate answered.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Forwarded: a 2xx, or an answer that came from the backend (its own errors).
    Forwarded,
    /// 403 `Forbidden.RAM` from ramgate.
    Denied,
    /// 403 `Forbidden.ServiceRoleNotAuthorized` from ramgate.
    ServiceRoleNotAuthorized,
    /// 502/503/504 from ramgate.
    Failed,
    /// 400 `InvalidParameter`/`MissingParameter` from ramgate.
    Refused,
    /// Anything else ramgate answered itself.
    Other,
}

fn verdict(status: u16, body: &Value) -> Verdict {
    let from_ramgate = body["HostId"] == "ramgate";
    match (status, from_ramgate) {
        (200..=299, _) => Verdict::Forwarded,
        (_, false) => Verdict::Forwarded,
        (403, true) if body["Code"] == "Forbidden.RAM" => Verdict::Denied,
        (403, true) if body["Code"] == "Forbidden.ServiceRoleNotAuthorized" => {
            Verdict::ServiceRoleNotAuthorized
        }
        (502..=504, true) => Verdict::Failed,
        (400, true)
            if matches!(
                body["Code"].as_str(),
                Some("InvalidParameter" | "MissingParameter")
            ) =>
        {
            Verdict::Refused
        }
        _ => Verdict::Other,
    }
}

fn who(caller: &str) -> Who<'_> {
    if caller == "root" {
        Who::Root
    } else {
        Who::User(caller)
    }
}

fn ref_tags(pairs: &[(&str, &str)]) -> RefTags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// 0..=2 request tags with distinct keys.
fn request_tags(rng: &mut Rng) -> RefTags {
    let mut tags = RefTags::new();
    for _ in 0..rng.below(3) {
        let (k, v) = rng.pick(TAG_POOL);
        tags.insert(k.to_string(), v.to_string());
    }
    tags
}

fn tag_params(tags: &RefTags) -> Vec<(String, String)> {
    tags.iter()
        .enumerate()
        .flat_map(|(i, (k, v))| {
            [
                (format!("Tag.{}.Key", i + 1), k.clone()),
                (format!("Tag.{}.Value", i + 1), v.clone()),
            ]
        })
        .collect()
}

/// The tags of a Describe item, as the backend reported them.
fn item_target(item: &Value) -> Option<Target> {
    let tags = item["Tags"]
        .as_array()?
        .iter()
        .map(|t| {
            Some((
                t["Key"].as_str()?.to_owned(),
                t["Value"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect::<Option<RefTags>>()?;
    Some(Target {
        id: item["ContainerGroupId"].as_str()?.to_owned(),
        resource_group: item["ResourceGroupId"].as_str()?.to_owned(),
        tags,
    })
}

/// `action` as `caller` through a random replica: half the time signed with the caller's
/// AccessKey (and one signed request in eight replayed to another replica, which must
/// refuse it), else named by the trusted header.
async fn call(
    shared: &Shared,
    rng: &mut Rng,
    epoch: u64,
    caller: &str,
    action: &str,
    params: &[(String, String)],
) -> (u16, Value) {
    let replica = rng.below(shared.proxies.len());
    let proxy = shared.proxies[replica];
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if rng.chance(2) {
        let tally = &shared.tally;
        tally.add(&tally.signed);
        pairs.push(("Action", action));
        let (id, secret) = key_of(caller);
        let query = support::signed_v1_query(&pairs, &id, &secret);
        let path = format!("/?{query}");
        let (status, _, body) = support::request_json(proxy, "GET", &path, &[], "").await;
        let (status, body) = (status.as_u16(), body);
        // A request refused while parsing never reached the nonce check: replaying it
        // only repeats that refusal.
        let parsed = !matches!(
            body["Code"].as_str(),
            Some("InvalidParameter" | "MissingParameter")
        );
        if parsed && rng.chance(8) && verdict(status, &body) != Verdict::Failed {
            let other = shared.proxies
                [(replica + 1 + rng.below(shared.proxies.len())) % shared.proxies.len()];
            let (again, _, answer) = support::request_json(other, "GET", &path, &[], "").await;
            let what = || format!("replay of {caller} {action} {params:?}: {again} {answer}");
            if again == 400 && answer["Code"] == "SignatureNonceUsed" {
                tally.add(&tally.replays_refused);
            } else if verdict(again.as_u16(), &answer) == Verdict::Forwarded {
                tally.problem(&tally.accepted_replays, what());
            } else if verdict(again.as_u16(), &answer) == Verdict::Failed {
                failed(shared, epoch, what());
            } else {
                tally.problem(&tally.unexpected, what());
            }
        }
        return (status, body);
    }
    let arn = as_user(caller);
    let (status, _, body) = support::v3(
        proxy,
        action,
        &pairs,
        &[("x-ramgate-principal", arn.as_str())],
    )
    .await;
    (status.as_u16(), body)
}

/// Tells whether a request overlapped a backend restart (odd epoch: one in progress).
struct RestartClock(AtomicU64);

impl RestartClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn overlapped(&self, started: u64) -> bool {
        started % 2 == 1 || self.now() != started
    }
}

struct Shared {
    /// The replicas' proxy listeners.
    proxies: Vec<SocketAddr>,
    backend: SocketAddr,
    phase: RwLock<Phase>,
    tally: Tally,
    restarts: RestartClock,
    stop: AtomicBool,
}

/// One request of the mix, checked against the oracle.
async fn one_request(shared: &Shared, rng: &mut Rng) {
    let phase = shared.phase.read().await;
    let epoch = shared.restarts.now();
    let tally = &shared.tally;
    let env = Env {
        source_ip: Some("127.0.0.1".parse().expect("ip")),
        secure_transport: false,
    };
    let caller = if rng.chance(7) {
        "root"
    } else {
        *rng.pick(USERS)
    };
    let world = &phase.world;
    let region = ("RegionId".to_owned(), REGION.to_owned());
    tally.add(&tally.requests);
    match rng.below(12) {
        // One container group.
        0..=3 => {
            let target = rng.pick(&phase.groups).clone();
            let action = *rng.pick(SINGLE_ACTIONS);
            let mut params = vec![region, ("ContainerGroupId".into(), target.id.clone())];
            if action == "ExecContainerCommand" {
                params.push(("ContainerName".into(), "app".into()));
                params.push(("Command".into(), r#"["ls"]"#.into()));
            }
            if action == "DescribeContainerLog" {
                params.push(("ContainerName".into(), "app".into()));
            }
            let allowed = world.single(
                who(caller),
                &format!("eci:{action}"),
                &target,
                &RefTags::new(),
                None,
                env,
            );
            let (status, body) = call(shared, rng, epoch, caller, action, &params).await;
            judge(shared, epoch, allowed, verdict(status, &body), || {
                format!("{caller} {action} on {target:?}: {status} {body}")
            });
        }
        // Describe.
        4..=6 => {
            let group = match rng.below(4) {
                0 => None,
                1 => Some("rg-unknown".to_owned()),
                _ => Some(rng.pick(GROUPS).to_string()),
            };
            let ids: Option<Vec<String>> = rng.chance(2).then(|| {
                let mut ids: Vec<String> = (0..1 + rng.below(3))
                    .map(|_| rng.pick(&phase.groups).id.clone())
                    .collect();
                if rng.chance(5) {
                    ids.push("eci-does-not-exist".into());
                }
                ids.sort();
                ids.dedup();
                ids
            });
            let tags = request_tags(rng);
            let mut params = vec![region];
            if let Some(g) = &group {
                params.push(("ResourceGroupId".into(), g.clone()));
            }
            if let Some(ids) = &ids {
                params.push((
                    "ContainerGroupIds".into(),
                    serde_json::to_string(ids).expect("json"),
                ));
            }
            params.extend(tag_params(&tags));
            let id_refs: Option<Vec<&str>> =
                ids.as_ref().map(|i| i.iter().map(String::as_str).collect());
            let request = DescribeRequest {
                resource_group: group.as_deref(),
                ids: id_refs.as_deref(),
                tags: &tags,
            };
            let (status, body) = call(
                shared,
                rng,
                epoch,
                caller,
                "DescribeContainerGroups",
                &params,
            )
            .await;
            let what = || format!("{caller} Describe {params:?}: {status} {body}");
            match verdict(status, &body) {
                Verdict::Forwarded if status == 200 => {}
                Verdict::Failed => {
                    return failed(shared, epoch, what());
                }
                _ => {
                    return tally.problem(&tally.unexpected, what());
                }
            }
            let items = body["ContainerGroups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut returned = Vec::new();
            for item in &items {
                tally.add(&tally.describe_items_checked);
                let Some(target) = item_target(item) else {
                    tally.problem(&tally.unexpected, format!("unreadable item {item}"));
                    continue;
                };
                if !world.describe_visible(who(caller), &request, &target, env) {
                    tally.problem(
                        &tally.wrong_allows,
                        format!("{} leaked: {}", target.id, what()),
                    );
                }
                returned.push(target.id);
            }
            for target in &phase.groups {
                if world.describe_visible(who(caller), &request, target, env)
                    && !returned.contains(&target.id)
                {
                    if shared.restarts.overlapped(epoch) {
                        tally.add(&tally.excused_during_restarts);
                    } else {
                        tally.problem(
                            &tally.wrong_denials,
                            format!("{} missing: {}", target.id, what()),
                        );
                    }
                }
            }
            if items.is_empty() {
                tally.add(&tally.denied);
            } else {
                tally.add(&tally.allowed);
            }
        }
        // Create.
        7 => {
            let group = match rng.below(4) {
                0 => None,
                1 => Some("rg-unknown".to_owned()),
                _ => Some(rng.pick(GROUPS).to_string()),
            };
            let tags = request_tags(rng);
            let mut params = vec![
                region,
                ("ContainerGroupName".into(), "soak".into()),
                ("Container.1.Name".into(), "app".into()),
                ("Container.1.Image".into(), "nginx".into()),
            ];
            if let Some(g) = &group {
                params.push(("ResourceGroupId".into(), g.clone()));
            }
            params.extend(tag_params(&tags));
            let expected = world.create(who(caller), group.as_deref(), &tags, env);
            let (status, body) =
                call(shared, rng, epoch, caller, "CreateContainerGroup", &params).await;
            let got = verdict(status, &body);
            let what = || format!("{caller} Create {params:?}: {status} {body}");
            if let Some(id) = body["ContainerGroupId"].as_str() {
                // Keep the backend's world as seeded: remove it again, directly. The backend
                // may be restarting (which reseeds it anyway): a failure is no matter.
                let query = support::encode(&[("RegionId", REGION), ("ContainerGroupId", id)]);
                let _ = support::try_request(
                    shared.backend,
                    "POST",
                    &format!("/?{query}"),
                    &[
                        ("x-acs-action", "DeleteContainerGroup"),
                        ("x-acs-version", "2018-08-08"),
                    ],
                    "",
                )
                .await;
            }
            match (&expected, &got) {
                (_, Verdict::Failed) => failed(shared, epoch, what()),
                (CreateOutcome::Allowed { .. }, Verdict::Forwarded) => tally.add(&tally.allowed),
                (CreateOutcome::Denied, Verdict::Denied)
                | (CreateOutcome::ServiceRoleNotAuthorized, Verdict::ServiceRoleNotAuthorized) => {
                    tally.add(&tally.denied)
                }
                (
                    CreateOutcome::Allowed { .. },
                    Verdict::Denied | Verdict::ServiceRoleNotAuthorized,
                )
                | (CreateOutcome::ServiceRoleNotAuthorized, Verdict::Denied)
                | (CreateOutcome::Denied, Verdict::ServiceRoleNotAuthorized) => tally.problem(
                    &tally.wrong_denials,
                    format!("expected {expected:?}: {}", what()),
                ),
                (
                    CreateOutcome::Denied | CreateOutcome::ServiceRoleNotAuthorized,
                    Verdict::Forwarded,
                ) => tally.problem(
                    &tally.wrong_allows,
                    format!("expected {expected:?}: {}", what()),
                ),
                _ => tally.problem(
                    &tally.unexpected,
                    format!("expected {expected:?}: {}", what()),
                ),
            }
        }
        // A tag change, or tag parameters where they are not taken.
        10 | 11 => tag_change_request(shared, rng, epoch, caller, &phase, env).await,
        // No container group.
        _ => {
            let action = *rng.pick(OTHER_ACTIONS);
            let allowed = world.other(who(caller), &format!("eci:{action}"), &RefTags::new(), env);
            let (status, body) = call(shared, rng, epoch, caller, action, &[region]).await;
            judge(shared, epoch, allowed, verdict(status, &body), || {
                format!("{caller} {action}: {status} {body}")
            });
        }
    }
}

/// Actions and parameters for [`tag_change_request`].
const TAG_ACTIONS: &[&str] = &[
    "TagResources",
    "UntagResources",
    "UpdateContainerGroup",
    "DescribeContainerLog",
    "ExportContainerGroupTemplate",
];

/// A random mix of `Tag.N`, `TagKey.N` and `All` on a seeded group, judged by the
/// reference: refused (400) exactly where the parameter model refuses, else allowed exactly
/// where both the current and the resulting tags are. Mixes that would change the group's
/// tags are not sent (the seeded world must stay what the oracle knows).
async fn tag_change_request(
    shared: &Shared,
    rng: &mut Rng,
    epoch: u64,
    caller: &str,
    phase: &Phase,
    env: Env,
) {
    let tally = &shared.tally;
    let target = rng.pick(&phase.groups).clone();
    let action = *rng.pick(TAG_ACTIONS);
    let mut params: Vec<(String, String)> = vec![("RegionId".into(), REGION.into())];
    if action.ends_with("Resources") {
        params.push(("ResourceType".into(), "ContainerGroup".into()));
        params.push(("ResourceId.1".into(), target.id.clone()));
    } else {
        params.push(("ContainerGroupId".into(), target.id.clone()));
    }
    if action == "DescribeContainerLog" {
        params.push(("ContainerName".into(), "app".into()));
    }
    // Tag.N: the group's own pairs (a no-op to set), sometimes a key without its value.
    let own: Vec<(&String, &String)> = target.tags.iter().collect();
    let mut request_tags = RefTags::new();
    if !own.is_empty() && rng.chance(2) {
        let (k, v) = *rng.pick(&own);
        params.push(("Tag.1.Key".into(), k.clone()));
        let with_value = !v.is_empty() || rng.chance(2);
        if with_value {
            params.push(("Tag.1.Value".into(), v.clone()));
        }
        let value = if with_value { v.clone() } else { String::new() };
        request_tags.insert(k.clone(), value);
    }
    // TagKey.N: a key the group may or may not carry; All: either value.
    if rng.chance(2) {
        let key = if rng.chance(2) {
            "absent-key".to_owned()
        } else {
            rng.pick(TAG_POOL).0.to_owned()
        };
        params.push(("TagKey.1".into(), key));
    }
    if rng.chance(3) {
        let all = if rng.chance(2) { "true" } else { "false" };
        params.push(("All".into(), all.into()));
    }
    let expected = tag_change(action, &params[1..], &target.tags);
    if expected.as_ref().is_ok_and(|after| *after != target.tags) {
        return;
    }
    let (status, body) = call(shared, rng, epoch, caller, action, &params).await;
    let got = verdict(status, &body);
    let what = || format!("{caller} {action} {params:?} on {target:?}: {status} {body}");
    match expected {
        Err(_) if got == Verdict::Refused => tally.add(&tally.denied),
        Err(why) => tally.problem(
            &tally.wrong_allows,
            format!("not refused ({}): {}", why.0, what()),
        ),
        Ok(_) if got == Verdict::Refused => tally.problem(&tally.unexpected, what()),
        Ok(after) => {
            let changes = action.ends_with("Resources") || action == "UpdateContainerGroup";
            let allowed = phase.world.single(
                who(caller),
                &format!("eci:{action}"),
                &target,
                &request_tags,
                changes.then_some(&after),
                env,
            );
            judge(shared, epoch, allowed, got, what);
        }
    }
}

/// Compares an allow/deny answer with the oracle.
fn judge(shared: &Shared, epoch: u64, allowed: bool, got: Verdict, what: impl Fn() -> String) {
    let tally = &shared.tally;
    match (allowed, got) {
        (_, Verdict::Failed) => failed(shared, epoch, what()),
        (true, Verdict::Forwarded) => tally.add(&tally.allowed),
        (false, Verdict::Denied) => tally.add(&tally.denied),
        (false, Verdict::Forwarded) => tally.problem(&tally.wrong_allows, what()),
        (true, Verdict::Denied) if shared.restarts.overlapped(epoch) => {
            // The group may be gone with the old backend: it does not exist any more.
            tally.add(&tally.excused_during_restarts)
        }
        (true, Verdict::Denied) => tally.problem(&tally.wrong_denials, what()),
        _ => tally.problem(&tally.unexpected, what()),
    }
}

/// A 502/503/504: fine while the backend restarts, unexpected otherwise.
fn failed(shared: &Shared, epoch: u64, what: String) {
    let tally = &shared.tally;
    if shared.restarts.overlapped(epoch) {
        tally.add(&tally.errors_during_restarts);
    } else {
        tally.problem(
            &tally.unexpected,
            format!("failed outside a restart: {what}"),
        );
    }
}

/// Seeds [`SEED`] into the backend at `addr`; returns the groups with their new ids.
async fn seed(addr: SocketAddr) -> Vec<Target> {
    let mut groups = Vec::new();
    for (group, tags) in SEED {
        let id = support::seed_group(addr, "seed", group, tags).await;
        groups.push(Target {
            id,
            resource_group: group.to_string(),
            tags: ref_tags(tags),
        });
    }
    groups
}

fn start_backend_on(addr: SocketAddr) -> Ramgate {
    Ramgate::start(
        support::command(&["backend", "--listen", &addr.to_string()]),
        &["backend"],
    )
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until the proxy's `/v1/status` reports `hash`.
async fn wait_for_hash(admin: SocketAddr, hash: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (_, status) = support::get_json(admin, "/v1/status").await;
        if status["content_hash"] == hash {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Waits until the replica's `/v1/status` shows it connected to Redis.
async fn wait_for_cluster(admin: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (_, status) = support::get_json(admin, "/v1/status").await;
        if status["cluster"]["connected"] == true {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// A line of the report: to stderr (not captured by the test harness) and the report file.
fn report(file: &mut Option<std::fs::File>, line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Some(f) = file {
        let _ = writeln!(f, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long run: scripts/soak.sh [SECONDS]"]
async fn soak() {
    run(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long run: scripts/soak.sh [SECONDS]"]
async fn soak_replicas() {
    assert!(
        support::redis_available(),
        "the replicas' soak needs redis-server (scripts/test.sh installs it)"
    );
    run(3).await;
}

/// The `ramgate_cluster_invalidations_total{direction="received"}` of each replica.
async fn received(admins: &[SocketAddr]) -> Vec<f64> {
    let mut counts = Vec::new();
    for admin in admins {
        let (_, _, text) = support::request(*admin, "GET", "/metrics", &[], "").await;
        let text = String::from_utf8_lossy(&text);
        counts.push(
            text.lines()
                .find(|l| {
                    l.starts_with("ramgate_cluster_invalidations_total{direction=\"received\"}")
                })
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0.0),
        );
    }
    counts
}

/// Root retags a random group through a random replica (all tags removed, 0..=2 new ones);
/// the oracle takes what the backend then holds. Replicas other than the one written
/// through must have heard of it within a second.
async fn retag(shared: &Shared, admins: &[SocketAddr], phase: &mut Phase, rng: &mut Rng) {
    let index = rng.below(phase.groups.len());
    let id = phase.groups[index].id.clone();
    let replica = rng.below(shared.proxies.len());
    let before = received(admins).await;
    let region = ("RegionId".to_owned(), REGION.to_owned());
    let target = [
        region.clone(),
        ("ResourceType".to_owned(), "ContainerGroup".to_owned()),
        ("ResourceId.1".to_owned(), id.clone()),
    ];
    let mut writes = 0;
    let mut untag = target.to_vec();
    untag.push(("All".into(), "true".into()));
    let tags = request_tags(rng);
    let mut tag = target.to_vec();
    tag.extend(tag_params(&tags));
    let mut steps = vec![("UntagResources", untag)];
    if !tags.is_empty() {
        steps.push(("TagResources", tag));
    }
    for (action, params) in steps {
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, _, _) = support::v3(
            shared.proxies[replica],
            action,
            &pairs,
            &[("x-ramgate-principal", as_user("root").as_str())],
        )
        .await;
        if status.is_success() {
            writes += 1;
        }
    }
    // What the backend holds now (a guardrail may have refused root part of it).
    let (_, state) = support::get_json(shared.backend, "/_backend/state").await;
    let held = state["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["id"] == id.as_str())
        .map(|g| {
            g["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect::<RefTags>()
        });
    if let Some(held) = held {
        phase.groups[index].tags = held;
    }
    shared.tally.add(&shared.tally.retags);
    if admins.len() < 2 || writes == 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let after = received(admins).await;
        let heard = (0..admins.len())
            .filter(|&r| r != replica)
            .all(|r| after[r] >= before[r] + f64::from(writes));
        if heard {
            return;
        }
        if Instant::now() >= deadline {
            // Not heard (Redis may be down): no entry older than a second is used, so
            // the change governs every replica now anyway.
            shared.tally.add(&shared.tally.late_invalidations);
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run(replicas: usize) {
    let seconds = env_secs("RAMGATE_SOAK_SECS", 60);
    let restart_every = Duration::from_secs(env_secs("RAMGATE_SOAK_RESTART_SECS", 15));
    let workers = env_secs("RAMGATE_SOAK_WORKERS", 4) as usize;
    let seed_value = env_secs(
        "RAMGATE_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7),
    );
    let report_name = if replicas > 1 {
        "target/soak-replicas-report.txt"
    } else {
        "target/soak-report.txt"
    };
    let report_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(report_name);
    let mut report_file = std::fs::File::create(&report_path).ok();
    report(
        &mut report_file,
        &format!("soak: {seconds}s, {workers} workers, backend restart every {restart_every:?}, seed {seed_value}"),
    );
    let mut rng = Rng(seed_value);

    // The backend on a fixed port (so that it can be restarted where the proxy expects it).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut backend = start_backend_on(port);
    let groups = seed(port).await;

    let policies = tempfile::tempdir().expect("temp dir");
    let world = random_world(&mut rng);
    write_world(policies.path(), &world);
    let redis = (replicas > 1).then(RedisServer::start);
    let cluster = redis.as_ref().map_or(String::new(), |r| {
        format!(
            "[cluster]\nredis_url = \"{}\"\non_unavailable = \"deny\"\n",
            r.url()
        )
    });
    let proxies: Vec<support::Proxy> = (0..replicas)
        .map(|_| {
            support::start_proxy(
                port,
                policies.path(),
                "",
                &format!("[metadata]\nttl_ms = 2000\nnegative_ttl_ms = 1000\n{cluster}"),
            )
        })
        .collect();
    let admins: Vec<SocketAddr> = proxies.iter().map(|p| p.admin).collect();
    for admin in &admins {
        assert!(
            wait_for_hash(*admin, &expected_hash(&world)).await,
            "the first world was not loaded"
        );
        if redis.is_some() {
            assert!(
                wait_for_cluster(*admin).await,
                "a replica did not connect to Redis"
            );
        }
    }
    let mut redis = redis;
    let shared = Arc::new(Shared {
        proxies: proxies.iter().map(|p| p.addr).collect(),
        backend: port,
        phase: RwLock::new(Phase { world, groups }),
        tally: Tally::default(),
        restarts: RestartClock(AtomicU64::new(0)),
        stop: AtomicBool::new(false),
    });

    let mut tasks = Vec::new();
    for w in 0..workers {
        let shared = shared.clone();
        let mut rng = Rng(seed_value ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(async move {
            while !shared.stop.load(Ordering::Relaxed) {
                one_request(&shared, &mut rng).await;
            }
        }));
    }

    let started = Instant::now();
    let duration = Duration::from_secs(seconds);
    let warm_up = Duration::from_secs((seconds / 4).max(10));
    let mut last_restart = Instant::now();
    let mut last_sample = Instant::now() - Duration::from_secs(1);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let pid = proxies[0].process.pid();
    let mut redis_restarted = false;
    while started.elapsed() < duration {
        // Rewrite the policies, and wait until the proxy has them, with no request in flight.
        {
            let mut phase = shared.phase.write().await;
            let world = random_world(&mut rng);
            write_world(policies.path(), &world);
            let hash = expected_hash(&world);
            for admin in &admins {
                assert!(
                    wait_for_hash(*admin, &hash).await,
                    "the proxy did not load a rewritten policy directory within 10 s"
                );
            }
            phase.world = world;
            shared.tally.add(&shared.tally.rewrites);
            retag(&shared, &admins, &mut phase, &mut rng).await;
        }
        // Once, half-way: Redis killed and restarted with requests in flight.
        if let Some(redis) = redis
            .as_mut()
            .filter(|_| !redis_restarted && started.elapsed() >= duration / 2)
        {
            redis_restarted = true;
            shared.restarts.0.fetch_add(1, Ordering::SeqCst);
            redis.kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            redis.restart();
            for admin in &admins {
                assert!(
                    wait_for_cluster(*admin).await,
                    "a replica did not reconnect to Redis"
                );
            }
            shared.restarts.0.fetch_add(1, Ordering::SeqCst);
            shared.tally.add(&shared.tally.redis_restarts);
        }
        // Restart the backend now and then, with requests in flight.
        if last_restart.elapsed() >= restart_every {
            shared.restarts.0.fetch_add(1, Ordering::SeqCst);
            backend.signal("KILL");
            backend.wait_exit(Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(200)).await;
            backend = start_backend_on(port);
            let groups = seed(port).await;
            shared.phase.write().await.groups = groups;
            shared.restarts.0.fetch_add(1, Ordering::SeqCst);
            shared.tally.add(&shared.tally.restarts);
            last_restart = Instant::now();
        }
        // Sample memory once a second.
        while last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample += Duration::from_secs(1);
            if let Some(kib) = rss_kib(pid) {
                samples.push((started.elapsed(), kib));
            }
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a worker panicked");
    }
    let elapsed = started.elapsed();
    drop(backend);
    drop(proxies);

    // Memory: the peak of the last quarter against the peak just after warm-up.
    let after: Vec<&(Duration, u64)> = samples.iter().filter(|(t, _)| *t >= warm_up).collect();
    let quarter = (after.len() / 4).max(1);
    let peak = |s: &[&(Duration, u64)]| s.iter().map(|(_, k)| *k).max().unwrap_or(0);
    let baseline = peak(&after[..quarter.min(after.len())]);
    let last = peak(&after[after.len().saturating_sub(quarter)..]);
    let max = peak(&after);
    let allowance = (16 * 1024).max(baseline * 15 / 100);

    let t = &shared.tally;
    let g = Tally::get;
    report(
        &mut report_file,
        &format!(
            "soak: {:.0}s, {} requests ({:.0}/s): {} allowed, {} denied, {} Describe items checked; \
             {} policy rewrites, {} backend restarts, {} errors and {} excused denials during restarts",
            elapsed.as_secs_f64(),
            g(&t.requests),
            g(&t.requests) as f64 / elapsed.as_secs_f64(),
            g(&t.allowed),
            g(&t.denied),
            g(&t.describe_items_checked),
            g(&t.rewrites),
            g(&t.restarts),
            g(&t.errors_during_restarts),
            g(&t.excused_during_restarts),
        ),
    );
    report(
        &mut report_file,
        &format!(
            "soak: {replicas} replica(s): {} signed requests, {} replays refused (by another replica when there are several), {} retags ({} not heard of by every replica within 1 s), {} Redis restarts",
            g(&t.signed),
            g(&t.replays_refused),
            g(&t.retags),
            g(&t.late_invalidations),
            g(&t.redis_restarts),
        ),
    );
    report(
        &mut report_file,
        &format!(
            "soak: wrong decisions: {} allows the oracle denies, {} denials the oracle allows; {} accepted replays; {} unexpected answers",
            g(&t.wrong_allows),
            g(&t.wrong_denials),
            g(&t.accepted_replays),
            g(&t.unexpected)
        ),
    );
    report(
        &mut report_file,
        &format!(
            "soak: proxy VmRSS after {warm_up:?} warm-up: {} KiB, last quarter peak {} KiB, overall peak {} KiB ({} samples)",
            baseline,
            last,
            max,
            samples.len()
        ),
    );
    for p in t.problems.lock().unwrap().iter() {
        report(&mut report_file, &format!("soak problem: {p}"));
    }
    assert_eq!(g(&t.wrong_allows), 0, "allows the oracle denies");
    assert_eq!(g(&t.wrong_denials), 0, "denials the oracle allows");
    assert_eq!(g(&t.accepted_replays), 0, "replays accepted");
    assert_eq!(g(&t.unexpected), 0, "unexpected answers");
    assert!(g(&t.replays_refused) > 0, "the mix must replay");
    if replicas > 1 {
        assert_eq!(g(&t.redis_restarts), 1, "Redis is restarted once");
    }
    assert!(
        g(&t.allowed) > 0 && g(&t.denied) > 0,
        "the mix must exercise both outcomes"
    );
    assert!(g(&t.rewrites) > 0);
    assert!(
        last <= baseline + allowance,
        "resident memory grew after warm-up: {baseline} KiB -> {last} KiB"
    );
}
