//! Helpers shared by ramgate's fuzz targets: reading one HTTP request out of the fuzzer's
//! bytes, the demo policy directory (compiled in, so targets need no files at run time),
//! and the invariants every request ramgate accepts must satisfy.
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
use ramgate::request::encoding::parse_urlencoded;
use ramgate::request::{ParsedRequest, VERSION};
use ramgate::snapshot::{Account, Snapshot};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

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
