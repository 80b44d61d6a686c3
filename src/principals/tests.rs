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
