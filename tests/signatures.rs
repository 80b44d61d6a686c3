//! AccessKey signature verification against fixed vectors recorded from Alibaba Cloud's
//! Python SDKs (`tests/fixtures/signatures/vectors.json`, made by `record.py` beside it):
//! ACS3-HMAC-SHA256 from `alibabacloud-eci20180808`, RPC v1 from the same SDK set to
//! `signature_algorithm='v2'` and from `aliyun-python-sdk-core`.
//!
//! The vectors carry the time they were signed at; the verifier takes `now` as a parameter,
//! so they verify forever, and moving `now` tests the clock-skew window.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use ramgate::config;
use ramgate::identity::signature::{verify, NonceCache};
use ramgate::identity::{self, Peer};
use ramgate::principals::PrincipalId;
use ramgate::request;
use ramgate::response::ApiError;
use ramgate::snapshot::{Account, Snapshot};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
struct Fixtures {
    secret: String,
    wrong_secret: String,
    vectors: Vec<Vector>,
}

#[derive(Debug, Clone, Deserialize)]
struct Vector {
    name: String,
    signed_with: String,
    now: i64,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Vector {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn is_v3(&self) -> bool {
        self.header("authorization").is_some()
    }
}

fn fixtures() -> Fixtures {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signatures/vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vector(name: &str) -> Vector {
    fixtures()
        .vectors
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

/// The demo policy directory, where liumi owns `LTAIliumiExampleKey`.
fn snapshot() -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies");
    Snapshot::load(
        &dir,
        Account {
            id: "1234567890123456".into(),
            region: "cn-hangzhou".into(),
        },
    )
    .unwrap_or_else(|e| panic!("the demo policies load: {e}"))
}

fn liumi(snapshot: &Snapshot) -> PrincipalId {
    snapshot
        .directory
        .user("liumi")
        .expect("liumi is a demo user")
}

fn headers_of(v: &Vector) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &v.headers {
        let name =
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).expect("header name");
        headers.append(name, HeaderValue::from_str(value).expect("header value"));
    }
    headers
}

/// Parses the vector as the proxy would and verifies it at `now`.
fn check_with(v: &Vector, cache: &NonceCache, now: i64) -> Result<PrincipalId, ApiError> {
    let snapshot = snapshot();
    let headers = headers_of(v);
    let method = Method::from_bytes(v.method.as_bytes()).expect("method");
    let uri: Uri = v.path.parse().expect("uri");
    let parsed = request::parse(&method, &uri, &headers, v.body.as_bytes())?;
    verify(
        &snapshot,
        &config::Identity::default(),
        cache,
        &headers,
        &parsed,
        now,
    )
    .map_err(ApiError::from)
}

fn check(v: &Vector) -> Result<PrincipalId, ApiError> {
    check_with(v, &NonceCache::new(Duration::from_secs(900)), v.now)
}

/// Asserts the error's status and code, and that no secret leaks into its message.
fn assert_refused(
    result: Result<PrincipalId, ApiError>,
    status: u16,
    code: &str,
    what: &str,
) -> String {
    let fixtures = fixtures();
    match result {
        Ok(p) => panic!("{what}: accepted as principal {p}, expected {status} {code}"),
        Err(e) => {
            assert_eq!(
                (e.status().as_u16(), e.code()),
                (status, code),
                "{what}: got {} {}: {e}",
                e.status(),
                e.code()
            );
            let message = e.to_string();
            assert!(
                !message.contains(&fixtures.secret) && !message.contains(&fixtures.wrong_secret),
                "{what}: a secret leaked into the message: {message}"
            );
            message
        }
    }
}

fn right_vectors() -> Vec<Vector> {
    fixtures()
        .vectors
        .into_iter()
        .filter(|v| v.signed_with == "right")
        .collect()
}

#[test]
fn every_sdk_vector_verifies_as_its_key_owner() {
    let vectors = right_vectors();
    assert!(vectors.iter().any(Vector::is_v3) && vectors.iter().any(|v| !v.is_v3()));
    let snapshot = snapshot();
    for v in &vectors {
        match check(v) {
            Ok(p) => assert_eq!(p, liumi(&snapshot), "{}", v.name),
            Err(e) => panic!("{}: refused {} {}: {e}", v.name, e.status(), e.code()),
        }
    }
}

#[test]
fn a_wrong_secret_is_signature_does_not_match_with_the_string_to_sign() {
    for v in fixtures()
        .vectors
        .iter()
        .filter(|v| v.signed_with == "wrong")
    {
        let message = assert_refused(check(v), 400, "SignatureDoesNotMatch", &v.name);
        assert!(
            message.contains("Specified signature is not matched with our calculation. server string to sign is:"),
            "{}: {message}",
            v.name
        );
        let expected = if v.is_v3() {
            "ACS3-HMAC-SHA256\n"
        } else {
            "&%2F&"
        };
        assert!(message.contains(expected), "{}: {message}", v.name);
    }
}

#[test]
fn a_tampered_query_is_refused() {
    for mut v in right_vectors() {
        assert!(v.path.contains("RegionId=cn-hangzhou"), "{}", v.name);
        v.path = v
            .path
            .replace("RegionId=cn-hangzhou", "RegionId=cn-shanghai");
        assert_refused(check(&v), 400, "SignatureDoesNotMatch", &v.name);
    }
    // A parameter added to a V3 query is as bad as one changed.
    let mut v = vector("v3_query");
    v.path.push_str("&ResourceGroupId=rg-test-a");
    assert_refused(
        check(&v),
        400,
        "SignatureDoesNotMatch",
        "v3 extra parameter",
    );
}

#[test]
fn a_tampered_body_is_refused() {
    // V3: the body no longer hashes to x-acs-content-sha256...
    let mut v = vector("v3_form_body");
    assert_eq!(v.body, "ContainerGroupId=eci-1");
    v.body = "ContainerGroupId=eci-2".into();
    let message = assert_refused(check(&v), 400, "SignatureDoesNotMatch", "v3 body");
    assert!(message.contains("x-acs-content-sha256"), "{message}");
    // ...and fixing the header up breaks the signature, which covers it.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(v.body.as_bytes()));
    v.set_header("x-acs-content-sha256", &hash);
    assert_refused(check(&v), 400, "SignatureDoesNotMatch", "v3 body and hash");

    // RPC v1 signs form parameters with the query ones.
    let mut v = vector("v1_core_form_body");
    assert!(v.body.contains("Tag.1.Key=name"));
    v.body = v.body.replace("Tag.1.Key=name", "Tag.1.Key=team");
    assert_refused(check(&v), 400, "SignatureDoesNotMatch", "v1 body");
}

#[test]
fn a_changed_header_outside_signed_headers_is_still_valid() {
    let mut v = vector("v3_query");
    let signed = v.header("authorization").expect("v3").to_owned();
    assert!(!signed.contains("accept-encoding"));
    v.set_header("Accept-Encoding", "gzip, br");
    v.set_header("x-forwarded-for", "203.0.113.9");
    check(&v).unwrap_or_else(|e| panic!("unsigned headers do not matter: {e}"));

    // RPC v1 signs no header at all.
    let mut v = vector("v1_core_post_query");
    v.set_header("User-Agent", "something else");
    check(&v).unwrap_or_else(|e| panic!("v1 signs no header: {e}"));
}

#[test]
fn a_changed_signed_header_is_refused() {
    for (header, value) in [
        ("user-agent", "curl/8"),
        ("host", "127.0.0.1:1"),
        ("x-acs-signature-nonce", "0123456789abcdef"),
        ("x-acs-date", "2026-01-01T00:00:00Z"),
    ] {
        let mut v = vector("v3_query");
        let now = v.now;
        v.set_header(header, value);
        // A changed date is first a stale one: check the signature at that date.
        let now = if header == "x-acs-date" {
            1_767_225_600
        } else {
            now
        };
        assert_refused(
            check_with(&v, &NonceCache::new(Duration::from_secs(900)), now),
            400,
            "SignatureDoesNotMatch",
            header,
        );
    }
}

#[test]
fn an_unsigned_acs_header_is_refused() {
    // x-acs-* headers can carry meaning (x-acs-action): all of them must be signed.
    let mut v = vector("v3_query");
    v.set_header("x-acs-extra", "1");
    assert_refused(
        check(&v),
        400,
        "IncompleteSignature",
        "unsigned x-acs-extra",
    );
}

#[test]
fn a_stale_timestamp_is_refused_either_way() {
    let skew = config::Identity::default().max_clock_skew_secs as i64;
    for v in right_vectors() {
        for now in [v.now + skew + 1, v.now - skew - 1] {
            let message = assert_refused(
                check_with(&v, &NonceCache::new(Duration::from_secs(900)), now),
                400,
                "InvalidTimeStamp.Expired",
                &v.name,
            );
            assert!(message.contains("Specified time stamp or date value is expired"));
        }
        // The edges of the window are inside it.
        for now in [v.now + skew, v.now - skew] {
            check_with(&v, &NonceCache::new(Duration::from_secs(900)), now)
                .unwrap_or_else(|e| panic!("{} at the window's edge: {e}", v.name));
        }
    }
}

#[test]
fn a_replayed_nonce_is_refused() {
    for v in right_vectors() {
        let cache = NonceCache::new(Duration::from_secs(900));
        check_with(&v, &cache, v.now).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let message = assert_refused(
            check_with(&v, &cache, v.now + 60),
            400,
            "SignatureNonceUsed",
            &v.name,
        );
        assert!(message.contains("nonce"), "{message}");
    }
}

#[test]
fn a_forged_request_does_not_burn_the_nonce_it_names() {
    let v = vector("v3_query");
    let cache = NonceCache::new(Duration::from_secs(900));
    let mut forged = v.clone();
    forged.path = forged.path.replace("cn-hangzhou", "cn-beijing");
    assert_refused(
        check_with(&forged, &cache, v.now),
        400,
        "SignatureDoesNotMatch",
        "forged",
    );
    check_with(&v, &cache, v.now).unwrap_or_else(|e| panic!("the real request still passes: {e}"));
}

#[test]
fn an_unknown_access_key_is_not_found() {
    let mut v = vector("v3_query");
    let auth = v
        .header("authorization")
        .expect("v3")
        .replace("LTAIliumiExampleKey", "LTAInobodysKey00000");
    v.set_header("Authorization", &auth);
    assert_refused(check(&v), 404, "InvalidAccessKeyId.NotFound", "v3");

    let mut v = vector("v1_core_post_query");
    v.path = v.path.replace(
        "AccessKeyId=LTAIliumiExampleKey",
        "AccessKeyId=LTAInobodysKey00000",
    );
    assert_refused(check(&v), 404, "InvalidAccessKeyId.NotFound", "v1");
}

#[test]
fn v1_needs_the_action_among_the_signed_parameters() {
    // The tea SDK in v1 mode sends Action twice: as a parameter (signed) and as
    // x-acs-action (not signed). Without the parameter, the header alone would decide the
    // action, and nothing would bind it to the signature.
    let mut v = vector("v1_tea_query");
    assert_eq!(v.header("x-acs-action"), Some("DescribeContainerGroups"));
    v.path = v.path.replace("Action=DescribeContainerGroups&", "");
    assert_refused(check(&v), 400, "IncompleteSignature", "v1 without Action");
}

#[test]
fn a_signed_request_with_the_identity_header_is_refused() {
    let snapshot = snapshot();
    let v = vector("v3_query");
    let mut headers = headers_of(&v);
    headers.insert(
        "x-ramgate-principal",
        HeaderValue::from_static("acs:ram::1234567890123456:root"),
    );
    let uri: Uri = v.path.parse().expect("uri");
    let parsed = request::parse(&Method::POST, &uri, &headers, b"").expect("parses");
    let peer = Peer {
        addr: "127.0.0.1:40000".parse().expect("addr"),
        secure: false,
        client_id: None,
    };
    let cache = NonceCache::new(Duration::from_secs(900));
    let result = identity::resolve(
        &snapshot,
        &config::Identity::default(),
        &cache,
        &peer,
        &headers,
        &parsed,
        v.now,
    );
    match result.map_err(ApiError::from) {
        Err(e) => assert_eq!(
            (e.status().as_u16(), e.code()),
            (401, "InvalidIdentity"),
            "{e}"
        ),
        Ok(id) => panic!("accepted as {:?}", id.principal),
    }
}

#[test]
fn an_http2_request_signs_host_as_its_authority() {
    // HTTP/2 has no host header: the SDK's signed `host` arrives as `:authority`, which is
    // the request URI's authority.
    let mut v = vector("v3_query");
    let host = v.header("host").expect("host").to_owned();
    v.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
    v.path = format!("http://{host}{}", v.path);
    check(&v).unwrap_or_else(|e| panic!("the authority stands for host: {e}"));
    v.path = v.path.replace(&host, "127.0.0.1:1");
    assert_refused(check(&v), 400, "SignatureDoesNotMatch", "another authority");
}
