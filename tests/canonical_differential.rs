//! Differential test of the request canonicalizer (`ramgate::request::parse`): whatever it
//! accepts, the request ramgate forwards must mean to the backend exactly what was
//! authorized.
//!
//! Each case starts from a *meaning*: an action and its parameters. It is written on the
//! wire in one of many equivalent ways — V3 (action in `x-acs-action`) or RPC (`Action`
//! in the query or a form body), parameters shuffled and split between the query and the
//! body, every character of every name and value re-encoded at random (`A` or `%41` or
//! `%41`'s lowercase twin, a space as `+` or `%20`, UTF-8 escaped with either hex case),
//! `Format=JSON` in any case, `ContainerGroupIds` with any JSON spacing. Then, for part of
//! the cases, one ambiguity is injected: a parameter given twice (same or another value),
//! in both the query and the body, a second name differing only in case, a reserved name
//! re-cased, conflicting `Action` and `x-acs-action`, a gap in `Tag.N`, a tag value
//! without its key, an action name in the wrong case, a tag parameter the action does not
//! take (`All`/`TagKey.N` outside `UntagResources`, `Tag.N` on it), a filter's
//! `Tag.N.Key` without its value. Whether the last two must be refused is asked of the
//! reference evaluator's per-action parameter model (`reference::tag_change`), not of
//! ramgate's catalogue.
//!
//! The oracle:
//! * an ambiguous request is refused (400, or 404 for the action name), never accepted;
//! * an unambiguous one is accepted (and the reference's parameter model takes it too), and
//!   its canonical parameters are the meaning
//!   (credentials and `Format` dropped, `Version` added, `ContainerGroupIds` compacted);
//! * what is forwarded (`CanonicalRequest::forward_query`), read back with the backend's
//!   own parameter reader (`ramgate::request::encoding::parse_urlencoded`), is exactly the
//!   canonical parameters plus `Action`, in characters that every reader decodes alike.
//!
//! The last test sends a sample of the same requests through the real proxy to the
//! in-memory backend and compares what the backend received with the meaning.

mod reference;
mod support;

use support::SplitMix as Choices;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use ramgate::request::encoding::parse_urlencoded;
use std::collections::{BTreeMap, BTreeSet};

const VERSION: &str = "2018-08-08";

/// A request's meaning: the action and its parameters (without `Action` and `Version`).
#[derive(Debug, Clone)]
struct Meaning {
    action: &'static str,
    params: Vec<(String, String)>,
    /// `ContainerGroupIds` as a list, when given (its wire form has random JSON spacing).
    ids: Option<Vec<String>>,
}

impl Meaning {
    /// The canonical parameters ramgate must derive: the meaning, `Version`, and the ids
    /// as compact JSON.
    fn canonical(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self.params.iter().cloned().collect();
        if let Some(ids) = &self.ids {
            out.insert(
                "ContainerGroupIds".into(),
                serde_json::to_string(ids).expect("json"),
            );
        }
        out.insert("Version".into(), VERSION.into());
        out
    }
}

/// Free text: letters, digits and every character that means something in a query string.
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('0', '9'),
        4 => proptest::sample::select(vec![
            ' ', '+', '%', '&', '=', '~', '*', '/', '"', '\\', '#', ';', ',', '.', ':', '-', '_',
            '?', '[', ']', '\'', '!', '$', '(', ')', '@', '<', '>', '`', '{', '}', '|', '^',
            '\t', 'é', 'ß', '中', '😀', '\u{7f}',
        ]),
    ];
    vec(chars, min..=max).prop_map(|c| c.into_iter().collect())
}

fn tags(min: usize, max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    btree_set(text(1, 8), min..=max).prop_flat_map(|keys| {
        let n = keys.len();
        (Just(keys), vec(text(0, 8), n)).prop_map(|(keys, values)| {
            let mut out = Vec::new();
            for (i, (k, v)) in keys.into_iter().zip(values).enumerate() {
                out.push((format!("Tag.{}.Key", i + 1), k));
                out.push((format!("Tag.{}.Value", i + 1), v));
            }
            out
        })
    })
}

fn numbered(family: &str, values: BTreeSet<String>) -> Vec<(String, String)> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{family}.{}", i + 1), v))
        .collect()
}

fn region() -> impl Strategy<Value = (String, String)> {
    prop_oneof![Just("cn-hangzhou".to_owned()), text(1, 6)].prop_map(|r| ("RegionId".into(), r))
}

fn meaning() -> impl Strategy<Value = Meaning> {
    let describe = (
        region(),
        proptest::option::of(prop_oneof![Just("rg-test-a".to_owned()), text(1, 6)]),
        tags(0, 3),
        proptest::option::of(btree_set(text(1, 6), 1..=3)),
        proptest::option::of(1u32..=20),
        proptest::option::of(text(0, 6)),
        proptest::option::of(text(0, 6)),
    )
        .prop_map(|(region, rg, tags, ids, limit, token, name)| {
            let mut params = vec![region];
            params.extend(rg.map(|g| ("ResourceGroupId".to_owned(), g)));
            params.extend(tags);
            params.extend(limit.map(|l| ("Limit".to_owned(), l.to_string())));
            params.extend(token.map(|t| ("NextToken".to_owned(), t)));
            params.extend(name.map(|n| ("ContainerGroupName".to_owned(), n)));
            Meaning {
                action: "DescribeContainerGroups",
                params,
                ids: ids.map(|i| i.into_iter().collect()),
            }
        });
    let single = (
        prop_oneof![
            Just("DeleteContainerGroup"),
            Just("DescribeContainerLog"),
            Just("RestartContainerGroup")
        ],
        region(),
        text(1, 8),
        proptest::option::of(text(0, 8)),
    )
        .prop_map(|(action, region, id, container)| {
            let mut params = vec![region, ("ContainerGroupId".to_owned(), id)];
            if action == "DescribeContainerLog" {
                params.extend(container.map(|c| ("ContainerName".to_owned(), c)));
            }
            Meaning {
                action,
                params,
                ids: None,
            }
        });
    let tag =
        (region(), btree_set(text(1, 6), 1..=3), tags(1, 3)).prop_map(|(region, ids, tags)| {
            let mut params = vec![
                region,
                ("ResourceType".to_owned(), "ContainerGroup".to_owned()),
            ];
            params.extend(numbered("ResourceId", ids));
            params.extend(tags);
            Meaning {
                action: "TagResources",
                params,
                ids: None,
            }
        });
    let untag = (
        region(),
        btree_set(text(1, 6), 1..=2),
        prop_oneof![btree_set(text(1, 6), 1..=2).prop_map(Some), Just(None)],
    )
        .prop_map(|(region, ids, keys)| {
            let mut params = vec![
                region,
                ("ResourceType".to_owned(), "ContainerGroup".to_owned()),
            ];
            params.extend(numbered("ResourceId", ids));
            match keys {
                Some(keys) => params.extend(numbered("TagKey", keys)),
                None => params.push(("All".to_owned(), "true".to_owned())),
            }
            Meaning {
                action: "UntagResources",
                params,
                ids: None,
            }
        });
    let exec = (region(), text(1, 6), text(1, 6), vec(text(0, 6), 1..=3)).prop_map(
        |(region, id, container, command)| Meaning {
            action: "ExecContainerCommand",
            params: vec![
                region,
                ("ContainerGroupId".to_owned(), id),
                ("ContainerName".to_owned(), container),
                (
                    "Command".to_owned(),
                    serde_json::to_string(&command).expect("json"),
                ),
            ],
            ids: None,
        },
    );
    let create =
        (region(), text(1, 8), text(1, 6), tags(0, 2)).prop_map(|(region, name, image, tags)| {
            let mut params = vec![
                region,
                ("ContainerGroupName".to_owned(), name),
                ("Container.1.Name".to_owned(), "app".to_owned()),
                ("Container.1.Image".to_owned(), image),
            ];
            params.extend(tags);
            Meaning {
                action: "CreateContainerGroup",
                params,
                ids: None,
            }
        });
    prop_oneof![3 => describe, 2 => single, 1 => tag, 1 => untag, 1 => exec, 1 => create]
}

/// One way to make a request ambiguous (or otherwise refusable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Injection {
    DuplicateSame,
    DuplicateOther,
    QueryAndBody,
    CaseTwin,
    ReservedRecased,
    ActionConflict,
    TagGap,
    ValueWithoutKey,
    ActionRecased,
    NotTaken,
    FilterKeyAlone,
}

fn injection() -> impl Strategy<Value = Option<Injection>> {
    use Injection::*;
    prop_oneof![
        5 => Just(None),
        1 => proptest::sample::select(vec![
            DuplicateSame, DuplicateOther, QueryAndBody, CaseTwin, ReservedRecased,
            ActionConflict, TagGap, ValueWithoutKey, ActionRecased, NotTaken, FilterKeyAlone,
        ]).prop_map(Some),
    ]
}

/// Percent-encodes one name or value, each character its own way: unreserved characters
/// literal or escaped, a space as `+` or `%20`, sub-delimiters a request target may carry
/// literally (`* , ; : @ ! $ ' ( ) / ?`) sometimes so, everything else escaped, with
/// upper- or lowercase hex.
fn encode(text: &str, c: &mut Choices) -> String {
    let mut out = String::new();
    let escape = |b: u8, c: &mut Choices, out: &mut String| {
        if c.chance(2) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    };
    for ch in text.chars() {
        let mut buf = [0u8; 4];
        let bytes = ch.encode_utf8(&mut buf).as_bytes();
        match ch {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '~' if c.chance(3) => {
                escape(bytes[0], c, &mut out)
            }
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '~' => out.push(ch),
            ' ' if c.chance(2) => out.push('+'),
            '*' | ',' | ';' | ':' | '@' | '!' | '$' | '\'' | '(' | ')' | '/' | '?'
                if c.chance(2) =>
            {
                out.push(ch)
            }
            _ => bytes.iter().for_each(|b| escape(*b, c, &mut out)),
        }
    }
    out
}

/// A request on the wire, and whether the generator made it ambiguous.
#[derive(Debug)]
struct Wire {
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
    /// The status the request must be refused with, when an injection makes it refusable.
    refused_with: Option<u16>,
}

impl Wire {
    fn parse(&self) -> Result<ramgate::request::ParsedRequest, ramgate::request::RequestError> {
        let uri: Uri = self.target.parse().expect("a valid request target");
        let mut headers = HeaderMap::new();
        for (n, v) in &self.headers {
            headers.append(
                HeaderName::from_bytes(n.as_bytes()).expect("a header name"),
                HeaderValue::from_str(v).expect("a header value"),
            );
        }
        ramgate::request::parse(&self.method, &uri, &headers, self.body.as_bytes())
    }
}

/// Flips the case of the first letter of `name` that has another case.
fn recase(name: &str) -> String {
    let mut done = false;
    name.chars()
        .map(|ch| {
            if !done && ch.is_ascii_alphabetic() {
                done = true;
                if ch.is_ascii_uppercase() {
                    ch.to_ascii_lowercase()
                } else {
                    ch.to_ascii_uppercase()
                }
            } else {
                ch
            }
        })
        .collect()
}

/// Writes `meaning` on the wire, the way `seed` says, with `injection` applied.
fn wire(meaning: &Meaning, seed: u64, injection: Option<Injection>) -> Wire {
    let mut c = Choices(seed);
    let mut params: Vec<(String, String)> = meaning.params.clone();
    if let Some(ids) = &meaning.ids {
        let sep = [",", ", ", " ,  ", ",\n"][c.below(4)];
        let items: Vec<String> = ids
            .iter()
            .map(|i| serde_json::to_string(i).expect("json"))
            .collect();
        let pad = [" ", "", "\t"][c.below(3)];
        params.push((
            "ContainerGroupIds".into(),
            format!("[{pad}{}{pad}]", items.join(sep)),
        ));
    }
    let v3 = c.chance(2);
    let mut headers: Vec<(String, String)> = Vec::new();
    if v3 {
        headers.push(("x-acs-action".into(), meaning.action.into()));
        if c.chance(3) {
            params.push(("Action".into(), meaning.action.into()));
        }
    } else {
        params.push(("Action".into(), meaning.action.into()));
    }
    match c.below(3) {
        0 => headers.push(("x-acs-version".into(), VERSION.into())),
        1 => params.push(("Version".into(), VERSION.into())),
        _ => {
            headers.push(("x-acs-version".into(), VERSION.into()));
            params.push(("Version".into(), VERSION.into()));
        }
    }
    if c.chance(4) {
        params.push(("Format".into(), ["JSON", "json", "Json"][c.below(3)].into()));
    }
    // Shuffle, then split between the query (false) and the body (true).
    for i in (1..params.len()).rev() {
        params.swap(i, c.below(i + 1));
    }
    let use_body = c.chance(2);
    let mut placed: Vec<(String, String, bool)> = params
        .into_iter()
        .map(|(n, v)| {
            let in_body = use_body && c.chance(2);
            (n, v, in_body)
        })
        .collect();

    let mut refused_with = None;
    if let Some(kind) = injection {
        let pick = c.below(placed.len());
        let (name, value, in_body) = placed[pick].clone();
        refused_with = Some(400);
        match kind {
            Injection::DuplicateSame => placed.push((name, value, in_body)),
            Injection::DuplicateOther => placed.push((name, format!("{value}x"), in_body)),
            Injection::QueryAndBody => placed.push((name, value, !in_body)),
            Injection::CaseTwin => placed.push((recase(&name), value, c.chance(2))),
            Injection::ReservedRecased => {
                let reserved = placed.iter().position(|(n, _, _)| {
                    ["RegionId", "Version", "Action", "ResourceType"].contains(&n.as_str())
                });
                match reserved {
                    Some(i) => placed[i].0 = recase(&placed[i].0),
                    None => refused_with = None,
                }
            }
            Injection::ActionConflict => {
                let other = if meaning.action == "DeleteContainerGroup" {
                    "DescribeContainerGroups"
                } else {
                    "DeleteContainerGroup"
                };
                if headers.iter().any(|(n, _)| n == "x-acs-action") {
                    placed.push(("Action".into(), other.into(), false));
                    placed.retain(|(n, v, _)| n != "Action" || v == other);
                } else {
                    headers.push(("x-acs-action".into(), other.into()));
                }
            }
            Injection::TagGap => {
                let last = placed
                    .iter()
                    .filter_map(|(n, _, _)| {
                        n.strip_prefix("Tag.")?
                            .split('.')
                            .next()?
                            .parse::<usize>()
                            .ok()
                    })
                    .max();
                match last {
                    Some(n) => {
                        for (name, _, _) in placed.iter_mut() {
                            if let Some(field) = name.strip_prefix(&format!("Tag.{n}.")) {
                                *name = format!("Tag.{}.{field}", n + 1);
                            }
                        }
                    }
                    None => refused_with = None,
                }
            }
            Injection::ValueWithoutKey => {
                let n = placed
                    .iter()
                    .filter(|(n, _, _)| n.starts_with("Tag.") && n.ends_with(".Key"))
                    .count();
                placed.push((format!("Tag.{}.Value", n + 1), "v".into(), false));
            }
            Injection::NotTaken => {
                // A tag parameter of another action: Tag.N on UntagResources, else All or
                // TagKey.N.
                let extra: Vec<(String, String)> = if meaning.action == "UntagResources" {
                    vec![
                        ("Tag.1.Key".into(), "k".into()),
                        ("Tag.1.Value".into(), "v".into()),
                    ]
                } else if c.chance(2) {
                    vec![("All".into(), ["true", "false"][c.below(2)].into())]
                } else {
                    vec![("TagKey.1".into(), "k".into())]
                };
                let mut given = meaning.params.clone();
                given.extend(extra.iter().cloned());
                if reference::tag_change(meaning.action, &given, &Default::default()).is_ok() {
                    refused_with = None;
                } else {
                    placed.extend(extra.into_iter().map(|(n, v)| (n, v, c.chance(2))));
                }
            }
            Injection::FilterKeyAlone => {
                let value = placed
                    .iter()
                    .position(|(n, _, _)| n.starts_with("Tag.") && n.ends_with(".Value"));
                let mut given = meaning.params.clone();
                match value {
                    Some(i) => {
                        given.retain(|(n, _)| *n != placed[i].0);
                        if reference::tag_change(meaning.action, &given, &Default::default())
                            .is_ok()
                        {
                            refused_with = None;
                        } else {
                            placed.remove(i);
                        }
                    }
                    None => refused_with = None,
                }
            }
            Injection::ActionRecased => {
                refused_with = Some(404);
                let lower = meaning.action.to_ascii_lowercase();
                for (n, v, _) in placed.iter_mut() {
                    if n == "Action" {
                        *v = lower.clone();
                    }
                }
                for (n, v) in headers.iter_mut() {
                    if n == "x-acs-action" {
                        *v = lower.clone();
                    }
                }
            }
        }
    }

    let join = |in_body: bool, c: &mut Choices| -> String {
        placed
            .iter()
            .filter(|(_, _, b)| *b == in_body)
            .map(|(n, v, _)| format!("{}={}", encode(n, c), encode(v, c)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let query = join(false, &mut c);
    let body = join(true, &mut c);
    if !body.is_empty() {
        let ct = [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "Application/X-WWW-Form-Urlencoded",
        ][c.below(3)];
        headers.push(("content-type".into(), ct.into()));
    }
    let method = if body.is_empty() && c.chance(4) {
        Method::GET
    } else {
        Method::POST
    };
    Wire {
        method,
        target: format!("/?{query}"),
        headers,
        body,
        refused_with,
    }
}

/// The oracle, for one request.
fn check(meaning: &Meaning, wire: &Wire) -> Result<(), TestCaseError> {
    match (wire.parse(), wire.refused_with) {
        (Err(e), Some(status)) => {
            prop_assert_eq!(e.status(), status, "refused otherwise: {:?}", e);
            Ok(())
        }
        (Err(e), None) => Err(TestCaseError::fail(format!(
            "an unambiguous request was refused: {e} ({e:?})"
        ))),
        (Ok(parsed), Some(_)) => Err(TestCaseError::fail(format!(
            "an ambiguous request was accepted as {:?}",
            parsed.canonical.params
        ))),
        (Ok(parsed), None) => {
            let canonical = &parsed.canonical;
            prop_assert!(
                reference::tag_change(meaning.action, &meaning.params, &Default::default()).is_ok(),
                "accepted, but the reference's parameter model refuses it"
            );
            prop_assert_eq!(canonical.action.name, meaning.action);
            prop_assert_eq!(
                &canonical.params,
                &meaning.canonical(),
                "the meaning changed"
            );
            let forwarded = canonical.forward_query();
            prop_assert!(
                forwarded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)),
                "not RFC 3986-encoded: {}",
                forwarded
            );
            let read = parse_urlencoded(&forwarded).expect("the forwarded query decodes");
            let mut expected: Vec<(String, String)> = meaning.canonical().into_iter().collect();
            expected.push(("Action".into(), meaning.action.into()));
            expected.sort();
            prop_assert_eq!(read, expected, "the backend reads something else");
            Ok(())
        }
    }
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    // 3000 cases by default; PROPTEST_CASES=<n> for a longer run.
    #![proptest_config(Config::with_cases(cases(3000)))]

    #[test]
    fn accepted_requests_forward_exactly_their_meaning(
        meaning in meaning(),
        seed in any::<u64>(),
        injection in injection(),
    ) {
        let wire = wire(&meaning, seed, injection);
        check(&meaning, &wire)?;
    }
}

#[test]
fn the_generator_covers_both_outcomes() {
    // Guard against a generator that drifted into refusing (or accepting) everything.
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    let counts = std::cell::Cell::new((0u32, 0u32));
    runner
        .run(&(meaning(), any::<u64>(), injection()), |(m, seed, inj)| {
            let wire = wire(&m, seed, inj);
            let (accepted, refused) = counts.get();
            if wire.parse().is_ok() {
                counts.set((accepted + 1, refused));
            } else {
                counts.set((accepted, refused + 1));
            }
            Ok(())
        })
        .expect("runs");
    let (accepted, refused) = counts.get();
    assert!(
        accepted >= 200 && refused >= 40,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn examples_of_each_rewriting() {
    // Hand-picked equivalences: each must canonicalize to the same parameters.
    let same = [
        "/?Action=DescribeContainerGroups&Version=2018-08-08&ContainerGroupName=A%20b%2Bc",
        "/?%41ction=Describe%43ontainerGroups&Version=2018-08-08&ContainerGroupName=%41+b%2bc",
        "/?ContainerGroupName=A+b%2Bc&Version=2018%2D08%2D08&Action=DescribeContainerGroups",
    ];
    let parse = |target: &str| {
        ramgate::request::parse(
            &Method::POST,
            &target.parse().unwrap(),
            &HeaderMap::new(),
            b"",
        )
        .map(|p| p.canonical.params)
    };
    let first = parse(same[0]).expect("accepted");
    assert_eq!(first["ContainerGroupName"], "A b+c");
    for target in &same[1..] {
        assert_eq!(parse(target).expect("accepted"), first, "{target}");
    }
    for ambiguous in [
        "/?Action=DescribeContainerGroups&Version=2018-08-08&ContainerGroupName=a&ContainerGroupName=a",
        "/?Action=DescribeContainerGroups&Version=2018-08-08&ContainerGroupName=a&containerGroupName=b",
        "/?Action=DescribeContainerGroups&Version=2018-08-08&%52egionId=a&RegionId=a",
        "/?Action=DescribeContainerGroups&Version=2018-08-08&regionId=a",
    ] {
        assert_eq!(parse(ambiguous).map_err(|e| e.status()), Err(400), "{ambiguous}");
    }
}

/// A sample of the generated requests through the real proxy (as the account, so that
/// authorization lets them through) to the in-memory backend: what the backend received
/// at `/` must be the meaning (plus the default resource group a Create is resolved to).
#[test]
fn the_backend_receives_the_meaning_end_to_end() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_backend_process, backend) = support::start_backend();
    let policies = tempfile::tempdir().expect("temp dir");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies");
    for entry in std::fs::read_dir(&demo).expect("config/policies") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), policies.path().join(entry.file_name())).expect("copy");
    }
    let proxy = support::start_proxy(backend, policies.path(), "", "");
    let root = support::as_user("root");
    let mut runner = TestRunner::new(Config {
        cases: 60,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(meaning(), any::<u64>(), injection()),
            |(mut meaning, seed, injection)| {
                // ramgate serves its configured region only (a RegionId of another is 400).
                for (name, value) in meaning.params.iter_mut() {
                    if name == "RegionId" {
                        *value = "cn-hangzhou".into();
                    }
                }
                // The account sees an unknown group, and ids that do not exist, as an
                // empty list answered by ramgate itself: keep Describe to what is forwarded.
                if meaning.action == "DescribeContainerGroups" {
                    meaning.ids = None;
                    for (name, value) in meaning.params.iter_mut() {
                        if name == "ResourceGroupId" {
                            *value = "rg-test-a".into();
                        }
                    }
                }
                let wire = wire(&meaning, seed, injection);
                runtime.block_on(async {
                    support::request_json(backend, "DELETE", "/_backend/requests", &[], "").await;
                    let mut headers: Vec<(&str, &str)> = wire
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    headers.push(("x-ramgate-principal", root.as_str()));
                    let (status, _, answer) = support::request_json(
                        proxy.addr,
                        wire.method.as_str(),
                        &wire.target,
                        &headers,
                        wire.body.clone(),
                    )
                    .await;
                    let (_, log) = support::get_json(backend, "/_backend/requests").await;
                    let forwarded: Vec<&serde_json::Value> = log
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|r| {
                                    r["headers"]["x-ramgate-principal"] != "ramgate-metadata"
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    if wire.refused_with.is_some() {
                        prop_assert!(status.is_client_error(), "{} {}", status, answer);
                        prop_assert_eq!(
                            answer["HostId"].as_str(),
                            Some("ramgate"),
                            "refused by ramgate: {}",
                            answer
                        );
                        prop_assert!(
                            forwarded.is_empty(),
                            "a refused request was forwarded: {:?}",
                            forwarded
                        );
                        return Ok(());
                    }
                    prop_assert_eq!(forwarded.len(), 1, "{} {}", status, answer);
                    let r = forwarded[0];
                    prop_assert_eq!(r["method"].as_str(), Some("POST"));
                    prop_assert_eq!(r["body"].as_str(), Some(""));
                    let path = r["path"].as_str().unwrap_or_default();
                    let query = path.strip_prefix("/?").unwrap_or_default();
                    let read: BTreeMap<String, String> = parse_urlencoded(query)
                        .expect("decodes")
                        .into_iter()
                        .collect();
                    let mut expected = meaning.canonical();
                    expected.insert("Action".into(), meaning.action.into());
                    if meaning.action == "CreateContainerGroup" {
                        expected
                            .entry("ResourceGroupId".into())
                            .or_insert_with(|| "rg-default".into());
                    }
                    prop_assert_eq!(
                        read,
                        expected,
                        "the backend read something else from {}",
                        path
                    );
                    Ok(())
                })
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The per-action parameter model, ramgate's against the reference's: for random mixes of
/// `Tag.N` (sometimes a key alone), `TagKey.N` and `All` on every action that concerns
/// container groups, ramgate's parser refuses exactly what the reference refuses, and
/// where both accept, `decision::resulting_tags` is the reference's resulting tags.
#[test]
fn the_parameter_model_agrees_with_the_reference() {
    use ramgate::catalogue::{Kind, Targets};
    let actions: Vec<&'static ramgate::catalogue::ActionSpec> = ramgate::catalogue::all()
        .iter()
        .filter(|a| a.kind != Kind::Other)
        .collect();
    let mut c = Choices(0x5eed);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..3000 {
        let action = *c.pick(&actions);
        let mut params: Vec<(String, String)> = match action.targets {
            Targets::ContainerGroupId => vec![("ContainerGroupId".into(), "eci-1".into())],
            Targets::ResourceIds => vec![
                ("ResourceType".into(), "ContainerGroup".into()),
                ("ResourceId.1".into(), "eci-1".into()),
            ],
            _ => Vec::new(),
        };
        let keys = ["a", "b", "env"];
        for n in 1..=c.below(3) {
            params.push((format!("Tag.{n}.Key"), keys[n - 1].into()));
            if !c.chance(4) {
                params.push((
                    format!("Tag.{n}.Value"),
                    ["", "x", "prod"][c.below(3)].into(),
                ));
            }
        }
        for n in 1..=c.below(3) {
            params.push((format!("TagKey.{n}"), keys[3 - n].into()));
        }
        match c.below(4) {
            0 => params.push(("All".into(), "true".into())),
            1 => params.push(("All".into(), "false".into())),
            _ => {}
        }
        let current = reference::tags(&[("a", "1"), ("env", "test")]);
        let oracle = reference::tag_change(action.name, &params, &current);
        let query: String = std::iter::once(("Action".to_owned(), action.name.to_owned()))
            .chain(std::iter::once(("Version".to_owned(), VERSION.to_owned())))
            .chain(params.iter().cloned())
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let parsed = ramgate::request::parse(
            &Method::POST,
            &format!("/?{query}").parse().expect("uri"),
            &HeaderMap::new(),
            b"",
        );
        match (parsed, oracle) {
            (Err(_), Err(_)) => refused += 1,
            (Ok(p), Ok(after)) => {
                accepted += 1;
                let current = ramgate::model::Tags::from_pairs(
                    current.iter().map(|(k, v)| (k.clone(), v.clone())),
                );
                let mine: BTreeMap<String, String> =
                    ramgate::decision::resulting_tags(&p.canonical, &current)
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                let expected = if action.name == "CreateContainerGroup" {
                    mine.clone() // Create has no current tags; its tags are the request's.
                } else {
                    after
                };
                assert_eq!(mine, expected, "case {case}: {query}");
            }
            (Ok(p), Err(why)) => panic!(
                "case {case}: {query}: accepted as {:?}, the reference refuses: {}",
                p.canonical.params, why.0
            ),
            (Err(e), Ok(_)) => {
                panic!("case {case}: {query}: refused ({e}), the reference takes it")
            }
        }
    }
    assert!(
        accepted > 300 && refused > 300,
        "accepted {accepted}, refused {refused}"
    );
}
