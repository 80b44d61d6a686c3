//! The fuzz targets' checks, in `cargo test`: every seed (`fuzz/seeds/<target>/`) and every
//! saved finding (`fuzz/regressions/<target>/`) is replayed through the very functions the
//! libFuzzer targets call (`fuzz/src/lib.rs`, included below), and hand-built hostile
//! inputs too large or too regular to keep as files (deep nesting, huge values, thousands
//! of parameters) are checked for crashes and for time.
//!
//! A fuzzer finding becomes a regression test by copying its input from
//! `fuzz/artifacts/<target>/` into `fuzz/regressions/<target>/` with a name that says what
//! it was (see docs/SECURITY.md); this file then replays it on every run.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The files under `fuzz/<kind>/<target>/`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs `check` on every seed and saved finding of `target`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", path.display());
    }
}

/// Runs `check` on `data`, which must finish within `limit` (generous: a debug build, two
/// shared cores; what it catches is quadratic or exponential blow-ups).
fn timed(what: &str, limit: Duration, check: impl FnOnce()) {
    let started = Instant::now();
    check();
    let took = started.elapsed();
    assert!(took < limit, "{what} took {took:?}");
}

#[test]
fn policy_parser_seeds_and_findings() {
    replay("policy_parser", fuzz::policy_parser);
}

#[test]
fn principals_loader_seeds_and_findings() {
    replay("principals_loader", fuzz::principals_loader);
}

#[test]
fn request_parse_seeds_and_findings() {
    replay("request_parse", fuzz::request_parse);
}

#[test]
fn signature_seeds_and_findings() {
    replay("signature", fuzz::signature);
}

#[test]
fn hostile_policies() {
    let limit = Duration::from_secs(5);
    let statement = r#"{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringLike":{"eci:tag/a":"*a*a*a*a*a*a*a*a*b"}}}"#;
    let cases: Vec<(&str, String)> = vec![
        ("100k nested arrays", "[".repeat(100_000)),
        ("100k nested objects", r#"{"a":"#.repeat(100_000)),
        (
            "a 4 MiB string",
            format!(r#"{{"Version":"1","Statement":"{}"}}"#, "a".repeat(4 << 20)),
        ),
        (
            "10k statements",
            format!(
                r#"{{"Version":"1","Statement":[{}]}}"#,
                vec![statement; 10_000].join(",")
            ),
        ),
        (
            "a 1 MiB wildcard pattern",
            format!(
                r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"{}","Resource":"*"}}]}}"#,
                "*a".repeat(1 << 19)
            ),
        ),
        ("a lone surrogate", r#"{"Version":"\ud800"}"#.to_owned()),
        (
            "a huge number",
            format!(r#"{{"Version":1{}}}"#, "0".repeat(100_000)),
        ),
        (
            "an exponent overflow",
            r#"{"Version":1e999999999999}"#.to_owned(),
        ),
        (
            "a NUL and a BOM",
            "\u{feff}{\"Version\":\"1\u{0}\"}".to_owned(),
        ),
        (
            "1000 duplicate keys",
            format!("{{{}}}", vec![r#""Version":"1""#; 1_000].join(",")),
        ),
    ];
    for (what, source) in cases {
        timed(what, limit, || fuzz::policy_parser(source.as_bytes()));
    }
}

/// Found while writing these tests, then fixed: a policy file repeating a key many times
/// took quadratic time to reject, twice over — each key was compared with every earlier
/// one (`src/policy/document.rs`), and each problem found its line by scanning the file
/// from the start. 100k duplicates (1.4 MB) took 20 s in a release build, stalling every
/// reload. Large objects are now indexed, and a file lists at most 100 problems (the rest
/// are counted).
#[test]
fn policy_with_100k_duplicate_keys_is_rejected_quickly() {
    let limit = Duration::from_secs(5);
    let top = format!("{{{}}}", vec![r#""Version":"1""#; 100_000].join(","));
    timed("100k duplicate top-level keys", limit, || {
        fuzz::policy_parser(top.as_bytes())
    });
    let keys = vec![r#""eci:tag/a":"x""#; 100_000].join(",");
    let condition = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"StringEquals":{{{keys}}}}}}}]}}"#
    );
    timed("100k duplicate condition keys", limit, || {
        fuzz::policy_parser(condition.as_bytes())
    });
}

#[test]
fn hostile_principals_files() {
    let limit = Duration::from_secs(5);
    let users: String = (0..5_000)
        .map(|i| format!("[[users]]\nname = \"u{i}\"\nattach = [{{ policy = \"AliyunECIFullAccess\", resource_group = \"rg-default\" }}]\n"))
        .collect();
    let cases: Vec<(&str, String)> = vec![
        ("100k nested arrays", format!("x = {}", "[".repeat(100_000))),
        ("100k nested inline tables", format!("x = {}", "{a=".repeat(100_000))),
        ("100k dotted keys", format!("{}x = 1", "a.".repeat(100_000))),
        (
            "5000 users",
            format!("[[resource_groups]]\nid = \"rg-default\"\ndefault = true\n{users}"),
        ),
        ("a 4 MiB string", format!("x = \"{}\"", "a".repeat(4 << 20))),
        (
            "a duplicate access key",
            "[[resource_groups]]\nid = \"g\"\ndefault = true\n[[users]]\nname = \"a\"\naccess_keys = [{ id = \"K\", secret = \"s\" }]\n[[users]]\nname = \"b\"\naccess_keys = [{ id = \"K\", secret = \"t\" }]\n".to_owned(),
        ),
    ];
    for (what, source) in cases {
        timed(what, limit, || fuzz::principals_loader(source.as_bytes()));
    }
}

#[test]
fn hostile_requests() {
    let limit = Duration::from_secs(5);
    let base = "POST /?Action=DescribeContainerGroups&Version=2018-08-08";
    let many: String = (0..20_000).map(|i| format!("&P{i}=v")).collect();
    let many_tags: String = (1..=5_000)
        .map(|i| format!("&Tag.{i}.Key=k{i}&Tag.{i}.Value=v"))
        .collect();
    let deep_ids = format!("{}{}", "%5B".repeat(10_000), "%5D".repeat(10_000));
    let cases: Vec<(&str, String)> = vec![
        ("20k parameters", format!("{base}{many}\n\n")),
        ("5000 tags", format!("{base}{many_tags}\n\n")),
        ("100k separators", format!("{base}{}\n\n", "&".repeat(100_000))),
        (
            "a 1 MiB value",
            format!("{base}&ContainerGroupName={}\n\n", "%41".repeat(1 << 18)),
        ),
        (
            "deeply nested ContainerGroupIds",
            format!("{base}&ContainerGroupIds={deep_ids}\n\n"),
        ),
        (
            "deeply nested Command",
            format!(
                "POST /?Action=ExecContainerCommand&Version=2018-08-08&ContainerGroupId=a&Command={deep_ids}\n\n"
            ),
        ),
        (
            "20k parameters in a form body",
            format!(
                "POST /\ncontent-type: application/x-www-form-urlencoded\n\nAction=DescribeContainerGroups&Version=2018-08-08{many}"
            ),
        ),
        (
            "5000 case twins",
            format!(
                "{base}{}\n\n",
                (0..5_000).map(|i| format!("&p{i}=1&P{i}=2")).collect::<String>()
            ),
        ),
    ];
    for (what, request) in cases {
        timed(what, limit, || fuzz::request_parse(request.as_bytes()));
    }
}

#[test]
fn hostile_signatures() {
    let limit = Duration::from_secs(5);
    let v3 = |authorization: &str, extra: &str| -> Vec<u8> {
        let mut data = vec![0u8];
        data.extend_from_slice(
            format!(
                "POST /?RegionId=cn-hangzhou\nhost: 127.0.0.1\nx-acs-action: DescribeContainerGroups\n\
                 x-acs-version: 2018-08-08\nx-acs-date: 2026-11-28T04:04:51Z\n\
                 x-acs-signature-nonce: n1\nx-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
                 authorization: {authorization}\n{extra}\n"
            )
            .as_bytes(),
        );
        data
    };
    let many_headers: String = (0..5_000).map(|i| format!("h{i};")).collect();
    let v1 = |params: &str| -> Vec<u8> {
        let mut data = vec![0u8];
        data.extend_from_slice(
            format!(
                "GET /?Action=DescribeContainerGroups&Version=2018-08-08&AccessKeyId=LTAIliumiExampleKey&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0{params}\n\n"
            )
            .as_bytes(),
        );
        data
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "10k commas",
            v3(&format!("ACS3-HMAC-SHA256 {}", ",".repeat(10_000)), ""),
        ),
        (
            "5000 signed headers",
            v3(
                &format!(
                    "ACS3-HMAC-SHA256 Credential=LTAIliumiExampleKey,SignedHeaders={many_headers},Signature=00"
                ),
                "",
            ),
        ),
        (
            "a 1 MiB signature",
            v3(
                &format!(
                    "ACS3-HMAC-SHA256 Credential=LTAIliumiExampleKey,SignedHeaders=host,Signature={}",
                    "0".repeat(1 << 20)
                ),
                "",
            ),
        ),
        (
            "an odd-length hex signature",
            v3(
                "ACS3-HMAC-SHA256 Credential=LTAIliumiExampleKey,SignedHeaders=host,Signature=abc",
                "",
            ),
        ),
        (
            "a repeated signed header",
            v3(
                "ACS3-HMAC-SHA256 Credential=LTAIliumiExampleKey,SignedHeaders=host;host;x-acs-date,Signature=00",
                "",
            ),
        ),
        (
            "a far-future timestamp",
            v1("&Timestamp=9999-12-31T23:59:59Z&SignatureNonce=n&Signature=AAAA"),
        ),
        (
            "an out-of-range timestamp",
            v1("&Timestamp=99999-01-01T00:00:00Z&SignatureNonce=n&Signature=AAAA"),
        ),
        (
            "a negative-year timestamp",
            v1("&Timestamp=-0001-01-01T00:00:00Z&SignatureNonce=n&Signature=AAAA"),
        ),
        (
            "a 1 MiB nonce",
            v1(&format!(
                "&Timestamp=2026-11-28T04:04:51Z&SignatureNonce={}&Signature=AAAA",
                "n".repeat(1 << 20)
            )),
        ),
        (
            "a signature that is not base64",
            v1("&Timestamp=2026-11-28T04:04:51Z&SignatureNonce=n&Signature=%00%FF"),
        ),
    ];
    for (what, data) in cases {
        timed(what, limit, || fuzz::signature(&data));
    }
}

/// The signature seeds made from the SDK vectors still verify (so the fuzzer starts past
/// the HMAC check, and the replay assertion of the `signature` target is exercised).
#[test]
fn signature_seeds_reach_a_verified_identity() {
    use ramgate::identity::{self, signature::NonceCache, Peer};
    let mut verified = Vec::new();
    for path in inputs("seeds", "signature") {
        let data = std::fs::read(&path).expect("read seed");
        let Some(input) = fuzz::parse_http(&data[1..]) else {
            continue;
        };
        let Ok(parsed) =
            ramgate::request::parse(&input.method, &input.uri, &input.headers, &input.body)
        else {
            continue;
        };
        if !parsed.credentials.has_v3_signature() && !parsed.credentials.has_v1_signature() {
            continue;
        }
        let peer = Peer {
            addr: ([127, 0, 0, 1], 40000).into(),
            secure: false,
            client_id: None,
        };
        let settings = ramgate::config::Identity::default();
        let nonces = NonceCache::default();
        let resolved = identity::resolve(
            fuzz::demo_snapshot(),
            &settings,
            &nonces,
            &peer,
            &input.headers,
            &parsed,
            fuzz::SIGNATURE_NOW,
        );
        if resolved.is_ok() {
            verified.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        verified.iter().any(|n| n.starts_with("v3_"))
            && verified.iter().any(|n| n.starts_with("v1_")),
        "signed seeds that verify: {verified:?}"
    );
}
