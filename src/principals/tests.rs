use super::*;
use std::collections::HashMap;

struct Names(HashMap<&'static str, PolicyId>);
impl PolicyNames for Names {
    fn policy_id(&self, name: &str) -> Option<PolicyId> {
        self.0.get(name).copied()
    }
}

fn names() -> Names {
    Names(HashMap::from([
        ("AliyunECIFullAccess", 0),
        ("AliyunECIContainerGroupRolePolicy", 2),
        ("custom", 3),
    ]))
}

const GOOD: &str = r#"
[account]
guardrails = ["custom"]
access_keys = [{ id = "LTAIroot", secret = "s1" }]
mtls = ["spiffe://x/root"]

[[resource_groups]]
id = "rg-default"
name = "default"
default = true

[[resource_groups]]
id = "rg-a"

[[users]]
name = "test"
attach = [{ policy = "AliyunECIFullAccess", resource_group = "rg-a" }, { policy = "custom" }]
access_keys = [{ id = "LTAItest", secret = "s2" }]

[[roles]]
name = "AliyunECIContainerGroupRole"
attach = [{ policy = "AliyunECIContainerGroupRolePolicy" }]
"#;

#[test]
fn loads_and_resolves() {
    let (d, warnings) = load(Path::new("principals.toml"), GOOD, &names()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(d.guardrails, vec![3]);
    let test = d.user("test").unwrap();
    assert_eq!(d.principal(test).account_policies, vec![3]);
    assert_eq!(d.principal(test).group_policies, vec![(1, 0)]);
    assert_eq!(d.access_keys["LTAItest"].principal, test);
    assert_eq!(d.access_keys["LTAItest"].secret.expose(), "s2");
    assert_eq!(d.mtls_ids["spiffe://x/root"], ROOT);
    assert_eq!(d.by_arn("123", "acs:ram::123:user/test"), Some(test));
    assert_eq!(d.by_arn("123", "acs:ram::123:root"), Some(ROOT));
    let role = d.role("AliyunECIContainerGroupRole");
    assert_eq!(
        d.by_arn(
            "123",
            "acs:ram::123:assumed-role/AliyunECIContainerGroupRole/s1"
        ),
        role
    );
    assert_eq!(
        d.by_arn("123", "acs:ram::999:user/test"),
        None,
        "another account is unknown"
    );
    assert_eq!(d.by_arn("123", "acs:ram::123:user/nobody"), None);
    assert_eq!(d.default_group, 0);
    assert!(
        !format!("{:?}", d.access_keys["LTAItest"]).contains("s2"),
        "secrets never print"
    );
}

#[test]
fn reports_every_bad_reference_with_its_line() {
    let src = r#"
[[resource_groups]]
id = "rg-default"
default = true

[[users]]
name = "a"
attach = [{ policy = "missing" }, { policy = "custom", resource_group = "rg-nope" }]
access_keys = [{ id = "K1", secret = "x" }]

[[users]]
name = "b"
access_keys = [{ id = "K1", secret = "y" }, { id = "K2" }]
"#;
    let e = load(Path::new("principals.toml"), src, &names())
        .unwrap_err()
        .0;
    let summary: Vec<(u32, &str)> = e
        .iter()
        .map(|d| (d.position.line, d.message.as_str()))
        .collect();
    assert_eq!(e.len(), 4, "{summary:#?}");
    assert_eq!(e[0].position.line, 8);
    assert!(e[0].message.contains("\"missing\""));
    assert!(e[1].message.contains("rg-nope"));
    assert_eq!(e[2].position.line, 13);
    assert!(e[2].message.contains("already belongs to user a"));
    assert!(e[3].message.contains("exactly one of secret"));
}

#[test]
fn thousands_of_bad_references_list_a_hundred_and_count_the_rest_quickly() {
    let mut src = String::from("[[resource_groups]]\nid = \"rg-default\"\ndefault = true\n");
    for u in 0..20_000 {
        src.push_str(&format!(
            "\n[[users]]\nname = \"u{u}\"\nattach = [{{ policy = \"missing{u}\" }}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let e = load(Path::new("principals.toml"), &src, &names())
        .unwrap_err()
        .0;
    // Listing all 20,000 scanned the file for each one's line: seconds, in a release build.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(e.len(), MAX_LISTED + 1);
    assert!(e[0].message.contains("\"missing0\""), "{}", e[0]);
    assert_eq!(e[0].position.line, 7);
    let last = &e[MAX_LISTED];
    assert_eq!(
        last.message,
        "19900 more problems in this file are not listed"
    );
    assert!(last.hint.is_some());
}

#[test]
fn unknown_fields_name_the_field_and_line() {
    let e = load(
        Path::new("p.toml"),
        "[[users]]\nname = \"x\"\npolicies = []\n",
        &names(),
    )
    .unwrap_err()
    .0;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].position.line, 3);
    assert!(e[0].message.contains("policies"), "{}", e[0].message);
    assert!(e[0].hint.is_some());
}

#[test]
fn default_group_is_required_once() {
    let e = load(
        Path::new("p.toml"),
        "[[resource_groups]]\nid = \"a\"\n",
        &names(),
    )
    .unwrap_err()
    .0;
    assert!(e[0].message.contains("default"));
    let src = "[[resource_groups]]\nid = \"a\"\ndefault = true\n[[resource_groups]]\nid = \"b\"\ndefault = true\n";
    let e = load(Path::new("p.toml"), src, &names()).unwrap_err().0;
    assert!(e[0].message.contains("more than one"));
}

#[test]
fn warns_without_service_role_and_resolves_secret_sources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), "from-file\n").unwrap();
    std::env::set_var("RAMGATE_TEST_SECRET_X", "from-env");
    let src = r#"
[account]
access_keys = [{ id = "A", secret_env = "RAMGATE_TEST_SECRET_X" }, { id = "B", secret_file = "k" }]
[[resource_groups]]
id = "rg"
default = true
"#;
    let path = dir.path().join("principals.toml");
    let (d, warnings) = load(&path, src, &names()).unwrap();
    assert_eq!(d.access_keys["A"].secret.expose(), "from-env");
    assert_eq!(d.access_keys["B"].secret.expose(), "from-file");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("AliyunECIContainerGroupRole"));
    let missing = src.replace("RAMGATE_TEST_SECRET_X", "RAMGATE_TEST_SECRET_UNSET");
    let e = load(&path, &missing, &names()).unwrap_err().0;
    assert!(
        e[0].message.contains("RAMGATE_TEST_SECRET_UNSET") && !e[0].message.contains("from-env")
    );
}

use super::fast_reader_agrees_with_toml as fast_agrees_with_toml;

#[test]
fn fast_reader_reads_the_usual_files_as_toml_does() {
    let mut generated = String::from(
        "[account]\nguardrails = []\n\n[[resource_groups]]\nid = \"rg-0\"\ndefault = true\n\n",
    );
    for u in 0..50 {
        generated.push_str(&format!(
            "[[users]]\nname = \"user-{u}\"\nattach = [{{ policy = \"p{u}\" }}, {{ policy = \"p1\", resource_group = \"rg-0\" }}]\n\n"
        ));
    }
    let demo = include_str!("../../config/policies/principals.toml");
    let spaced = "  [account] # c\n\tmtls = [\n  \"a\", # one\n\n  \"é\",\n]\n[[users]]\nname=\"x\"\t\naccess_keys = []";
    for src in [
        GOOD,
        demo,
        &generated,
        &GOOD.replace('\n', "\r\n"),
        "",
        spaced,
    ] {
        assert!(fast_agrees_with_toml(src), "not read fast:\n{src}");
    }
}

#[test]
fn fast_reader_leaves_the_unusual_to_toml() {
    for src in [
        "[[users]]\nname = 'x'\n",
        "[[users]]\nname = \"a\\u0062\"\n",
        "[[users]]\n\"name\" = \"x\"\n",
        "[[users]]\nname = \"x\"\nname = \"y\"\n",
        "[[users]]\nattach = []\n",
        "[[users]]\nname = \"x\"\nattach = [{ resource_group = \"g\" }]\n",
        "[[users]]\nname = \"x\"\nattach = [{ policy = \"p\", }]\n",
        "[[users]]\nname = \"x\"\npolicies = []\n",
        "[account]\n[account]\n",
        "[ account ]\n",
        "[[resource_groups]]\nid = \"a\"\ndefault = \"true\"\n",
        "[[users]]\nname = \"x\" y\n",
        "[[users]]\r name = \"x\"\n",
        "users = [{ name = \"x\" }]\n",
    ] {
        assert!(!fast_agrees_with_toml(src), "read fast:\n{src}");
    }
}

mod fast_differential {
    use super::*;
    use proptest::prelude::*;

    /// Lines, good and bad, that principals files are made of.
    const PIECES: &[&str] = &[
        "[account]\n",
        "[[resource_groups]]\n",
        "[[users]]\n",
        "[[roles]]\n",
        "[users]\n",
        "# a comment\n",
        "\n",
        "\r\n",
        "\r",
        "name = \"u\"\n",
        "name = \"\"\n",
        "name = 'u'\n",
        "name = \"a\\\"b\"\n",
        "name = \"é\" # c\n",
        "name = 5\n",
        "id = \"rg\"\n",
        "default = true\n",
        "default = false # d\n",
        "default = truex\n",
        "guardrails = [\"p\", \"q\",]\n",
        "guardrails = [\n  \"p\", # c\n  \"q\"\n]\n",
        "mtls = []\n",
        "mtls = [\"m\"\n",
        "attach = [{ policy = \"p\" }, { policy = \"q\", resource_group = \"rg\" }]\n",
        "attach = [{policy=\"p\"}]\n",
        "attach = [{ policy = \"p\", policy = \"q\" }]\n",
        "attach = [{ }]\n",
        "attach = [{ policy = \"p\"\n}]\n",
        "access_keys = [{ id = \"k\", secret = \"s\" }]\n",
        "access_keys = [{ id = \"k\", secret_env = \"E\", secret_file = \"f\" }]\n",
        "x = 1\n",
        "  ",
        "\t",
        "\"",
        "=",
        ",",
        "[",
        "]",
        "{",
        "}",
    ];

    proptest! {
        #[test]
        fn fast_reader_agrees_with_toml(picks in proptest::collection::vec(0..PIECES.len(), 0..16)) {
            let src: String = picks.iter().map(|&i| PIECES[i]).collect();
            fast_agrees_with_toml(&src);
        }
    }
}

#[test]
fn quotas_resolve_and_the_smallest_matching_one_wins() {
    let source = format!(
        "{GOOD}\n[[quotas]]\nprincipals = [\"user/*\", \"root\"]\nactions = [\"*\"]\nper_minute = 100\n\
         \n[[quotas]]\nprincipals = [\"user/test\"]\nactions = [\"DescribeContainerLog\", \"ExecContainerCommand\"]\nper_minute = 5\n\
         \n[[quotas]]\nprincipals = [\"role/*\"]\nactions = [\"DescribeContainerLog\"]\nper_minute = 7\n"
    );
    // Files with quotas are the `toml` crate's to read.
    assert!(fast::read(&source).is_none());
    let (d, _) = load(Path::new("principals.toml"), &source, &names()).unwrap();
    let test = d.user("test").unwrap();
    let role = d.role("AliyunECIContainerGroupRole").unwrap();
    assert_eq!(d.quota(test, "DescribeContainerLog"), Some(5));
    assert_eq!(d.quota(test, "DescribeRegions"), Some(100));
    assert_eq!(d.quota(ROOT, "DescribeContainerLog"), Some(100));
    assert_eq!(d.quota(role, "DescribeContainerLog"), Some(7));
    assert_eq!(d.quota(role, "DescribeRegions"), None);
    assert_eq!(d.quota_name(test), "user/test");
    assert_eq!(d.quota_name(role), "role/AliyunECIContainerGroupRole");
    assert_eq!(d.quota_name(ROOT), "root");
}

#[test]
fn quota_mistakes_are_located() {
    let source = format!(
        "{GOOD}\n[[quotas]]\nprincipals = [\"user/nobody\", \"group/x\"]\nactions = [\"DescribeContainerLogs\"]\nper_minute = 0\n"
    );
    let e = load(Path::new("principals.toml"), &source, &names()).unwrap_err();
    let line = |needle: &str| {
        source
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32 + 1)
            .unwrap()
    };
    let found: Vec<(u32, &str)> =
        e.0.iter()
            .map(|d| (d.position.line, d.message.as_str()))
            .collect();
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found[0].0, line("user/nobody"));
    assert!(
        found[0].1.contains("\"user/nobody\" is not declared"),
        "{found:?}"
    );
    assert!(
        found[1].1.contains("\"group/x\" does not name a principal"),
        "{found:?}"
    );
    assert_eq!(found[2].0, line("DescribeContainerLogs"));
    assert!(found[2].1.contains("not an ECI action"), "{found:?}");
    assert_eq!(found[3].0, line("per_minute = 0"));
    assert!(e.0.iter().all(|d| d.hint.is_some()));
    // Columns point at the value.
    let column = source
        .lines()
        .nth(line("user/nobody") as usize - 1)
        .unwrap()
        .find("\"user/nobody\"")
        .unwrap() as u32
        + 1;
    assert_eq!(e.0[0].position.column, column);
    // A misspelt field is the toml crate's error, located too.
    let source =
        format!("{GOOD}\n[[quotas]]\nprincipal = [\"root\"]\nactions = [\"*\"]\nper_minute = 1\n");
    let e = load(Path::new("principals.toml"), &source, &names()).unwrap_err();
    assert!(e.0[0].message.contains("principal"), "{:?}", e.0);
    assert!(e.0[0].position.line > 1);
}
