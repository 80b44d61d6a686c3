//! The bodies of ramgate's fuzz targets ([`policy_parser`], [`principals_loader`],
//! [`request_parse`], [`signature`]) and what they share: reading one HTTP request out of
//! the fuzzer's bytes, the demo policy directory (compiled in, so targets need no files at
//! run time), and the invariants every request ramgate accepts must satisfy.
//!
//! The targets in `fuzz_targets/` only call these functions, and `tests/fuzz_regressions.rs`
//! includes this file (`#[path]`) to replay the seeds and every saved finding through the
//! very same checks in `cargo test`.
//!
//! The request format is plain text, so that seeds are readable and libFuzzer's mutations
//! stay meaningful:
//!
//! ```text
//! POST /?Action=DescribeContainerGroups&Version=2018-08-08
//! content-type: application/x-www-form-urlencoded
//! x-acs-action: DescribeContainerGroups
//!
//! RegionId=cn-hangzhou
//! ```
//!
//! The first line is the method and the request target, the header lines follow until an
//! empty line, and the rest is the body. Lines end with `\n` (a trailing `\r` is dropped).

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use ramgate::config;
use ramgate::identity::signature::NonceCache;
use ramgate::identity::{self, Peer};
use ramgate::model::Tags;
use ramgate::policy::document::parse_policy;
use ramgate::policy::Context;
use ramgate::request::encoding::parse_urlencoded;
use ramgate::request::{ParsedRequest, VERSION};
use ramgate::snapshot::{Account, Snapshot};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// One request, as hyper would hand it to ramgate.
#[derive(Debug)]
pub struct HttpInput {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Reads the text format above. `None` when the bytes cannot be a request hyper would
/// accept at all (an invalid method or request target): ramgate never sees those.
/// Header lines that are not valid HTTP headers are skipped for the same reason.
pub fn parse_http(data: &[u8]) -> Option<HttpInput> {
    let mut rest = data;
    let mut line = || -> Option<&[u8]> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (l, r) = rest.split_at(end);
        rest = r.get(1..).unwrap_or_default();
        Some(l.strip_suffix(b"\r").unwrap_or(l))
    };
    let first = line()?;
    let (method, target) = match first.iter().position(|&b| b == b' ') {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => (first, &b"/"[..]),
    };
    let method = Method::from_bytes(method).ok()?;
    let uri = Uri::try_from(target).ok()?;
    let mut headers = HeaderMap::new();
    while let Some(l) = line() {
        if l.is_empty() {
            break;
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&l[..colon], &l[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    Some(HttpInput {
        method,
        uri,
        headers,
        body: rest.to_vec(),
    })
}

/// The demo policy directory (`config/policies`), as `Snapshot::build` takes it.
pub fn demo_sources() -> Vec<(PathBuf, String)> {
    vec![
        (
            PathBuf::from("principals.toml"),
            include_str!("../../config/policies/principals.toml").to_owned(),
        ),
        (
            PathBuf::from("eci-tag-liumi-test.json"),
            include_str!("../../config/policies/eci-tag-liumi-test.json").to_owned(),
        ),
        (
            PathBuf::from("eci-tag-multi.json"),
            include_str!("../../config/policies/eci-tag-multi.json").to_owned(),
        ),
    ]
}

pub fn demo_account() -> Account {
    Account {
        id: "1234567890123456".into(),
        region: "cn-hangzhou".into(),
    }
}

/// The demo snapshot, built once per fuzzing process.
pub fn demo_snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        Snapshot::build(
            std::path::Path::new("/nonexistent/ramgate-fuzz"),
            demo_account(),
            demo_sources(),
        )
        .expect("the demo policies load")
    })
}

/// Target `policy_parser`: the RAM policy parser (`parse_policy`), the hand-written spanned
/// JSON reader under it, the diagnostics it renders, and the evaluation of whatever it
/// compiles. Policy files come from operators, but a ConfigMap can be written by anyone
/// with access to it, and a parser that panics or loops takes every reload down with it.
pub fn policy_parser(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match parse_policy("fuzz", Some(Path::new("fuzz.json")), source) {
        Ok(policy) => {
            // A compiled policy can be evaluated without panicking, whatever its values:
            // numbers, dates, CIDRs and patterns meet request values of every type.
            let tags = Tags::from_pairs([
                ("name", "liumi"),
                ("env", "test"),
                ("n", "12"),
                ("t", "2024-01-01T00:00:00Z"),
            ]);
            let full = Context {
                eci_tags: Some(&tags),
                resource_tags: Some(&tags),
                request_tags: Some(&tags),
                source_ip: "10.1.2.3".parse().ok(),
                secure_transport: Some(true),
                now_unix_nanos: Some(1_700_000_000_000_000_000),
            };
            let empty = Context {
                eci_tags: None,
                resource_tags: None,
                request_tags: None,
                source_ip: None,
                secure_transport: None,
                now_unix_nanos: None,
            };
            for statement in &policy.statements {
                let _ = statement.reads_tags();
                for (action, resource) in [
                    (
                        "eci:describecontainergroups",
                        "acs:eci:cn-hangzhou:1234567890123456:containergroup/eci-1",
                    ),
                    (
                        "eci:createcontainergroup",
                        "acs:eci:cn-hangzhou:1234567890123456:containergroup/*",
                    ),
                    ("ecs:describesecuritygroups", "*"),
                ] {
                    let _ = statement.evaluate(action, resource, &full);
                    let _ = statement.evaluate(action, resource, &empty);
                    let _ = full.describe_facts(&statement.conditions);
                }
            }
        }
        Err(problems) => {
            // Every problem renders, with a position inside the file.
            assert!(!problems.0.is_empty());
            let _ = problems.to_string();
            let lines = source.matches('\n').count() + 1;
            for d in &problems.0 {
                assert!(d.position.line >= 1 && d.position.column >= 1, "{d:?}");
                assert!(d.position.line as usize <= lines, "{d:?}");
            }
        }
    }
}

/// `secret_file` is read at load time: keep the fuzzer away from device and process files
/// (`/dev/zero` would never end). Operators choose that path; attackers do not.
fn names_a_special_file(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => ["dev", "proc", "sys"].iter().any(|d| s.contains(d)),
        toml::Value::Array(items) => items.iter().any(names_a_special_file),
        toml::Value::Table(t) => t.values().any(names_a_special_file),
        _ => false,
    }
}

/// Target `principals_loader`: `Snapshot::build` with the bytes as `principals.toml` beside
/// the demo policies: TOML parsing, reference resolution (policies, resource groups, access
/// keys, mTLS ids), and the diagnostics with their positions.
pub fn principals_loader(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    // The fast reader for the usual shape must read a file as the toml crate does, or
    // leave it to the toml crate.
    ramgate::principals::fast_reader_agrees_with_toml(source);
    if let Ok(table) = source.parse::<toml::Table>() {
        if table.values().any(names_a_special_file) {
            return;
        }
    }
    let mut sources = demo_sources();
    sources.retain(|(p, _)| p != Path::new("principals.toml"));
    sources.push((PathBuf::from("principals.toml"), source.to_owned()));
    match Snapshot::build(
        Path::new("/nonexistent/ramgate-fuzz"),
        demo_account(),
        sources,
    ) {
        Ok(snapshot) => {
            // A loaded directory is consistent: every reference resolved.
            let dir = &snapshot.directory;
            assert!(!dir.principals.is_empty());
            assert!((dir.default_group as usize) < dir.resource_groups.len());
            for p in &dir.principals {
                for id in &p.account_policies {
                    assert!((*id as usize) < snapshot.policies.len());
                }
                for (g, id) in &p.group_policies {
                    assert!((*g as usize) < dir.resource_groups.len());
                    assert!((*id as usize) < snapshot.policies.len());
                }
            }
            for id in &dir.guardrails {
                assert!((*id as usize) < snapshot.policies.len());
            }
            for key in dir.access_keys.values() {
                assert!((key.principal as usize) < dir.principals.len());
                assert!(!key.secret.expose().is_empty());
            }
            for principal in dir.mtls_ids.values() {
                assert!((*principal as usize) < dir.principals.len());
            }
        }
        Err(problems) => {
            assert!(!problems.0.is_empty());
            let _ = problems.to_string();
        }
    }
}

/// Target `request_parse`: the request canonicalizer (`request::parse`) on a request in
/// [`parse_http`]'s format. Besides not panicking, whatever it accepts must satisfy
/// [`check_accepted`] (the backend reads exactly what was authorized), and every refusal is
/// a 4xx with an Alibaba code.
pub fn request_parse(data: &[u8]) {
    let Some(input) = parse_http(data) else {
        return;
    };
    match ramgate::request::parse(&input.method, &input.uri, &input.headers, &input.body) {
        Ok(parsed) => {
            check_accepted(&parsed);
            // The strings a signature verifier rebuilds are total too.
            let _ = parsed.raw.v1_canonicalized();
            let _ = parsed.raw.v3_canonical_query();
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 404), "{e:?}");
            assert!(!e.code().is_empty());
            let _ = e.to_string();
        }
    }
}

/// The time the SDK vectors in `tests/fixtures/signatures` were signed at: seeds made from
/// them verify, so the fuzzer explores past the HMAC check.
pub const SIGNATURE_NOW: i64 = 1_795_838_691;

/// Target `signature`: identity resolution (`identity::resolve`) of a parsed request, which
/// runs the AccessKey signature parsers and verifiers (`identity::signature`: the V3
/// `Authorization` header, the RPC v1 parameters, timestamps, nonces) and the trusted
/// header, against the demo directory (liumi's key `LTAIliumiExampleKey`).
///
/// The first byte chooses the peer (trusted loopback or not, TLS or not, a client
/// certificate identity or none); the rest is a request in [`parse_http`]'s format.
pub fn signature(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(input) = parse_http(rest) else {
        return;
    };
    let Ok(parsed) =
        ramgate::request::parse(&input.method, &input.uri, &input.headers, &input.body)
    else {
        return;
    };
    let addr = if selector & 1 == 0 {
        ([127, 0, 0, 1], 40000)
    } else {
        ([198, 51, 100, 7], 40000)
    };
    let peer = Peer {
        addr: addr.into(),
        secure: selector & 2 != 0,
        client_id: match (selector >> 2) & 3 {
            1 => Some("spiffe://example.org/ns/dev/sa/liumi".to_owned()),
            2 => Some("spiffe://example.org/ns/unknown".to_owned()),
            _ => None,
        },
    };
    let settings = config::Identity::default();
    let window = Duration::from_secs(settings.max_clock_skew_secs);
    let nonces = NonceCache::with_capacity(window, 4);
    let snapshot = demo_snapshot();
    let resolve = || {
        identity::resolve(
            snapshot,
            &settings,
            &nonces,
            &peer,
            &input.headers,
            &parsed,
            SIGNATURE_NOW,
        )
    };
    match resolve() {
        Ok(who) => {
            assert!((who.principal as usize) < snapshot.directory.principals.len());
            let signed = parsed.credentials.has_v3_signature()
                || parsed.credentials.has_v1_signature()
                || parsed.credentials.access_key_id.is_some();
            if signed {
                // An accepted signature spends its nonce: the same request again is a
                // replay, never a second allow.
                assert!(resolve().is_err(), "a signed request was accepted twice");
            }
        }
        Err(e) => {
            let status = ramgate::response::ApiError::from(e.clone())
                .status()
                .as_u16();
            assert!(
                matches!(status, 400 | 401 | 403 | 404 | 503),
                "{status}: {e}"
            );
            let _ = e.to_string();
        }
    }
}

/// Names the canonical parameters must never hold: what ramgate strips or writes itself.
const NEVER_FORWARDED: &[&str] = &[
    "Action",
    "AccessKeyId",
    "BearerToken",
    "Format",
    "SecurityToken",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureType",
    "SignatureVersion",
    "Timestamp",
];

/// What must hold for every request ramgate accepts; panics (a fuzzer finding) otherwise.
///
/// * the forwarded query string uses only RFC 3986 unreserved characters and `%XX`
///   escapes, so every reader decodes it alike (`+` or `;` mean nothing in it);
/// * read back with the backend's parameter reader, it is exactly the canonical
///   parameters plus `Action`, each name once, sorted;
/// * no two forwarded names differ only in case (a case-insensitive backend would see the
///   same request);
/// * credentials and `Format` are never forwarded, `Version` always is;
/// * the derived fields agree with the parameters they come from.
pub fn check_accepted(parsed: &ParsedRequest) {
    let canonical = &parsed.canonical;
    let query = canonical.forward_query();
    assert!(
        query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)),
        "the forwarded query has characters outside RFC 3986's unreserved set: {query:?}"
    );
    let pairs = parse_urlencoded(&query).expect("the forwarded query decodes");
    let mut expected: Vec<(String, String)> = canonical
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    expected.push(("Action".to_owned(), canonical.action.name.to_owned()));
    expected.sort();
    assert_eq!(
        pairs, expected,
        "the backend would read other parameters than were authorized"
    );
    let mut folded = BTreeSet::new();
    for (name, _) in &pairs {
        assert!(
            folded.insert(name.to_ascii_lowercase()),
            "two forwarded names differ only in case: {name:?} in {query:?}"
        );
    }
    for name in NEVER_FORWARDED {
        assert!(
            !canonical.params.contains_key(*name),
            "{name} is in the canonical parameters"
        );
    }
    assert_eq!(canonical.param("Version"), Some(VERSION));
    assert_eq!(
        canonical.resource_group.as_deref(),
        canonical.param("ResourceGroupId")
    );
    // The tags authorized are exactly the Tag.N pairs forwarded (a missing value is "").
    let mut forwarded_tags = Vec::new();
    for n in 1.. {
        let Some(key) = canonical.param(&format!("Tag.{n}.Key")) else {
            break;
        };
        let value = canonical.param(&format!("Tag.{n}.Value")).unwrap_or("");
        forwarded_tags.push((key, value));
    }
    forwarded_tags.sort();
    let authorized: Vec<(&str, &str)> = canonical.tags.iter().collect();
    assert_eq!(
        forwarded_tags, authorized,
        "the forwarded tags differ from the authorized ones"
    );
    if let Some(ids) = canonical.param("ContainerGroupIds") {
        let parsed: Vec<String> = match serde_json_lite_array(ids) {
            Some(v) => v,
            None => panic!("the forwarded ContainerGroupIds is not a JSON string array: {ids:?}"),
        };
        assert_eq!(
            parsed, canonical.ids,
            "the forwarded ids differ from the authorized ones"
        );
    }
    if let Some(id) = canonical.param("ContainerGroupId") {
        assert_eq!(canonical.ids, vec![id.to_owned()]);
    }
}

/// `["a","b"]` as ramgate writes it (serde_json's compact form of plain strings), read
/// back without a JSON library: a second reader of what is forwarded.
fn serde_json_lite_array(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        if chars.next()? != '"' {
            return None;
        }
        let mut s = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    '"' => s.push('"'),
                    '\\' => s.push('\\'),
                    '/' => s.push('/'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => {
                        let hex: String = (0..4).map(|_| chars.next()).collect::<Option<_>>()?;
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        s.push(char::from_u32(code)?);
                    }
                    _ => return None,
                },
                c => s.push(c),
            }
        }
        out.push(s);
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(_) => return None,
        }
    }
    Some(out)
}
