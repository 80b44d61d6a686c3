//! The policy authoring commands run as the real binary: `ramgate test` (SPEC §10 case
//! files, JUnit output), `ramgate who-can` on the demo set (answers written from
//! SCENARIOS.md's tables), and the warnings of `ramgate check` with `--strict`.

mod corpus;
mod support;

use std::path::Path;

use support::run_to_end as ramgate;

fn demo_config() -> String {
    corpus::root()
        .join("config/ramgate.toml")
        .display()
        .to_string()
}

fn run_test(cases: &[&str]) -> (i32, String) {
    let config = demo_config();
    let mut args = vec!["test", "--config", config.as_str()];
    args.extend_from_slice(cases);
    ramgate(&args)
}

#[test]
fn the_demo_case_file_passes() {
    let dir = corpus::root().join("config/policy-tests");
    let (code, out) = run_test(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap_or_default();
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("last line {last:?}"));
    assert!(passed >= 45, "{out}");
    // Every SCENARIOS.md row a case can express has a case.
    let text = std::fs::read_to_string(dir.join("demo.toml")).unwrap();
    for row in (1..=20)
        .map(|n| format!("R{n}"))
        .chain((1..=16).map(|n| format!("T{n}")))
    {
        assert!(
            text.contains(&format!("name = \"{row}: ")),
            "no case for {row}"
        );
    }
}

const WRONG: &str = r#"# one right and one wrong expectation
[[case]]
name = "liumi restarts her own test group"
principal = "acs:ram::1234567890123456:user/liumi"
action = "RestartContainerGroup"
target = { resource_group = "rg-default", tags = { name = "liumi", env = "test" } }
expect = "allow"
because = "eci-tag-liumi-test"

[[case]]
name = "liumi restarts a prod group"
principal = "acs:ram::1234567890123456:user/liumi"
action = "RestartContainerGroup"
target = { resource_group = "rg-default", tags = { name = "liumi", env = "prod" } }
expect = "allow"
"#;

#[test]
fn a_wrong_expectation_fails_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    std::fs::write(&file, WRONG).unwrap();
    let (code, out) = run_test(&[file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let fail = format!(
        "{}:15: FAIL liumi restarts a prod group: expected allow, got deny",
        file.display()
    );
    assert!(out.contains(&fail), "{fail:?} not in\n{out}");
    // The explanation follows: the condition that failed.
    assert!(
        out.contains("condition failed: StringEquals eci:tag/env [\"test\"] (found: \"prod\")"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed"), "{out}");
    assert_eq!(out.matches("FAIL").count(), 1, "{out}");
}

#[test]
fn a_because_the_explanation_lacks_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("because.toml");
    std::fs::write(
        &file,
        WRONG
            .replace(
                "because = \"eci-tag-liumi-test\"",
                "because = \"eci-tag-multi\"",
            )
            .replace(
                "env = \"prod\" } }\nexpect = \"allow\"",
                "env = \"prod\" } }\nexpect = \"deny\"",
            ),
    )
    .unwrap();
    let (code, out) = run_test(&[file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}:8: FAIL liumi restarts her own test group: expected allow because \"eci-tag-multi\"",
            file.display()
        )),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed"), "{out}");
}

#[test]
fn an_invalid_case_file_exits_2_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // TOML that does not parse: the position of the error.
        ("syntax.toml", "[[case]]\nname = \"x\nexpect = \"allow\"\n", "2:"),
        // An unknown field.
        (
            "field.toml",
            "[[case]]\nname = \"x\"\nprincipal = \"acs:ram::1234567890123456:root\"\naction = \"DescribeContainerGroups\"\nexpect = \"allow\"\nexpected = \"deny\"\n",
            "6:1",
        ),
        // An expectation that is not one.
        (
            "word.toml",
            "[[case]]\nname = \"x\"\nprincipal = \"acs:ram::1234567890123456:root\"\naction = \"DescribeContainerGroups\"\nexpect = \"allowed\"\n",
            "5:10",
        ),
        // A principal the directory does not have.
        (
            "principal.toml",
            "[[case]]\nname = \"x\"\nprincipal = \"acs:ram::1234567890123456:user/nobody\"\naction = \"DescribeContainerGroups\"\nexpect = \"allow\"\n",
            "3:13",
        ),
        // An action acting on a group, with no target.
        (
            "target.toml",
            "[[case]]\nname = \"x\"\nprincipal = \"acs:ram::1234567890123456:root\"\naction = \"DeleteContainerGroup\"\nexpect = \"allow\"\n",
            "4:10",
        ),
    ];
    for (name, content, at) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let (code, out) = run_test(&[file.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}");
        let location = format!("{}:{at}", file.display());
        let line = out
            .lines()
            .find(|l| l.starts_with(&location))
            .unwrap_or_else(|| panic!("{name}: {location:?} not in\n{out}"));
        assert!(line.contains(": error: "), "{name}: {line}");
        assert!(out.contains("\nhint: "), "{name}: no hint in\n{out}");
        assert!(!out.contains("passed"), "{name}: cases ran:\n{out}");
    }
}

#[test]
fn junit_output_parses_as_junit_xml() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong & <odd>.toml");
    std::fs::write(&file, WRONG).unwrap();
    let demo = corpus::root().join("config/policy-tests/demo.toml");
    let junit = dir.path().join("junit.xml");
    let (code, out) = run_test(&[
        demo.to_str().unwrap(),
        file.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2, "{xml}");
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(
        root.attribute("tests").and_then(|t| t.parse().ok()),
        Some(cases.len())
    );
    assert_eq!(root.attribute("failures"), Some("1"));
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].attribute("name"),
        Some("liumi restarts a prod group")
    );
    assert_eq!(failed[0].attribute("classname"), file.to_str());
    let failure = failed[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("expected allow, got deny")
    );
    assert!(
        failure
            .text()
            .unwrap_or_default()
            .contains("found: \"prod\""),
        "{xml}"
    );
}

// ---- who-can, from SCENARIOS.md's tables ----

const ROOT: &str = "acs:ram::1234567890123456:root";

fn user(name: &str) -> String {
    format!("acs:ram::1234567890123456:user/{name}")
}

/// The ARNs `who-can --action ACTION --target-group GROUP --resource-tag k=v...` lists, in
/// order, and its full output.
fn who_can(action: &str, group: &str, resource_tags: &[&str]) -> (Vec<String>, String) {
    let config = demo_config();
    let mut args = vec!["who-can", "--config", config.as_str(), "--action", action];
    args.extend(["--target-group", group]);
    for tag in resource_tags {
        args.extend(["--resource-tag", tag]);
    }
    let (code, out) = ramgate(&args);
    assert_eq!(code, 0, "{out}");
    let arns = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    (arns, out)
}

#[test]
fn who_may_delete_in_test_a() {
    // R16 (test, FullAccess on test_a), R18 (root); R17/R20: test2 (default only), ro
    // (read-only) and liumi/multi (tags that do not match) may not.
    let (arns, out) = who_can("DeleteContainerGroup", "rg-test-a", &["team=x"]);
    assert_eq!(arns, [ROOT.to_owned(), user("test")], "{out}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("not subject to identity policies"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}  allowed by statement 1 of policy AliyunECIFullAccess [built-in]",
            user("test")
        )),
        "{out}"
    );
}

#[test]
fn who_may_restart_a_group_tagged_name_liumi_env_test() {
    // T5 (liumi), T16's first statement (multi), R16/R18 (FullAccess on the group's own
    // resource group: test2 for rg-default), root.
    let (arns, out) = who_can(
        "RestartContainerGroup",
        "rg-default",
        &["name=liumi", "env=test"],
    );
    assert_eq!(
        arns,
        [ROOT.to_owned(), user("test2"), user("liumi"), user("multi")],
        "{out}"
    );
    assert!(
        out.contains("allowed by statement 1 of policy eci-tag-liumi-test [")
            && out.contains("eci-tag-liumi-test.json:2]"),
        "{out}"
    );
    assert!(
        out.contains("statement 1 (Sid \"liumi-test\") of policy eci-tag-multi"),
        "{out}"
    );
    // The same group in test_a: test instead of test2.
    let (arns, _) = who_can(
        "RestartContainerGroup",
        "rg-test-a",
        &["name=liumi", "env=test"],
    );
    assert_eq!(
        arns,
        [ROOT.to_owned(), user("test"), user("liumi"), user("multi")]
    );
}

#[test]
fn who_may_read_logs_in_test_b() {
    // R17: test may not; R18: root may; R19: ro may; nobody has FullAccess on test_b.
    let (arns, out) = who_can("DescribeContainerLog", "rg-test-b", &["name=other"]);
    assert_eq!(arns, [ROOT.to_owned(), user("ro")], "{out}");
    assert!(
        out.contains("allowed by statement 1 of policy AliyunECIReadOnlyAccess [built-in]"),
        "{out}"
    );
}

#[test]
fn who_can_refuses_what_the_proxy_would_not_decide() {
    let config = demo_config();
    let (code, out) = ramgate(&[
        "who-can",
        "--config",
        &config,
        "--action",
        "DeleteContainerGroup",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--target-group"), "{out}");
    let (code, out) = ramgate(&["who-can", "--config", &config, "--action", "eci:Frobnicate"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("InvalidAction.NotFound"), "{out}");
}

// ---- check's warnings ----

fn check(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    ramgate(&args)
}

/// The demo directory with one more policy file, attached to liumi unless `attach` is false.
fn with_policy(json: &str, attach: bool) -> tempfile::TempDir {
    let dir = corpus::policy_dir("demo");
    std::fs::write(dir.path().join("extra.json"), json).unwrap();
    if attach {
        let principals = dir.path().join("principals.toml");
        let text = std::fs::read_to_string(&principals).unwrap().replace(
            "attach = [{ policy = \"eci-tag-liumi-test\" }]",
            "attach = [{ policy = \"eci-tag-liumi-test\" }, { policy = \"extra\" }]",
        );
        std::fs::write(&principals, text).unwrap();
    }
    dir
}

/// A policy allowing `eci:*` on `resource`, its Resource at line 2, column 49.
fn allow_eci_on(resource: &str) -> String {
    format!(
        "{{\"Version\":\"1\",\"Statement\":[\n  {{\"Effect\":\"Allow\",\"Action\":\"eci:*\",\"Resource\":\"{resource}\"}}]}}"
    )
}

/// `extra.json` (attached to liumi unless `attach` is false) draws exactly one warning
/// from `check DIR extra_args...`, at `at` (line:column), with `message` and a hint
/// containing `hint`; the check passes without `--strict` and fails with it.
fn assert_warns(
    json: &str,
    attach: bool,
    extra_args: &[&str],
    at: &str,
    message: &str,
    hint: &str,
) {
    let dir = with_policy(json, attach);
    let (code, out) = check(dir.path(), extra_args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches(": warning: ").count(), 1, "{out}");
    let mut lines = out.lines().skip_while(|l| !l.contains(": warning: "));
    let line = lines.next().unwrap_or_default();
    assert!(
        line.contains(&format!("extra.json:{at}: warning: ")),
        "{line}"
    );
    assert!(line.contains(message), "{line}");
    let hint_line = lines.next().unwrap_or_default();
    assert!(
        hint_line.starts_with("hint: ") && hint_line.contains(hint),
        "{out}"
    );
    let strict: Vec<&str> = extra_args.iter().copied().chain(["--strict"]).collect();
    let (code, out) = check(dir.path(), &strict);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--strict"), "{out}");
}

#[test]
fn the_demo_policies_produce_no_warning() {
    let dir = corpus::root().join("config/policies");
    let config = demo_config();
    for extra in [&["--strict"][..], &["--strict", "--config", &config]] {
        let (code, out) = check(&dir, extra);
        assert_eq!(code, 0, "{out}");
        assert!(!out.contains("warning"), "{out}");
    }
}

#[test]
fn a_misspelt_action_is_a_warning_with_did_you_mean() {
    assert_warns(
        r#"{"Version":"1","Statement":[
  {"Effect":"Allow","Action":["eci:DescribeContainerGroups",
     "eci:DescribeContainerGroup"],"Resource":"*"}]}"#,
        true,
        &[],
        "3:6",
        "\"eci:DescribeContainerGroup\" matches no ECI action",
        "did you mean \"eci:DescribeContainerGroups\"?",
    );
}

#[test]
fn a_resource_of_another_account_or_region_is_a_warning() {
    let config = demo_config();
    let beijing = &allow_eci_on("acs:eci:cn-beijing:*:containergroup/*");
    // Without a config, any region could be meant.
    let (code, out) = check(with_policy(beijing, true).path(), &["--strict"]);
    assert_eq!(code, 0, "{out}");
    assert_warns(
        beijing,
        true,
        &["--config", &config],
        "2:49",
        "can match no container group of account 1234567890123456 in region cn-hangzhou",
        "acs:eci:cn-hangzhou:1234567890123456:containergroup/*",
    );
    // A resource no ECI ARN has is reported without a config too.
    assert_warns(
        &allow_eci_on("acs:ecs:*:*:instance/*"),
        true,
        &[],
        "2:49",
        "can match no ECI container group",
        "\"*\"",
    );
}

/// Issue 11, finding 9: a `Resource` whose type segment differs in case from
/// `containergroup` silently never matched; `check` now says so.
#[test]
fn resource_type_segment_in_another_case_than_containergroup_is_a_check_warning() {
    assert_warns(
        &allow_eci_on("acs:eci:*:*:ContainerGroup/*"),
        true,
        &[],
        "2:49",
        "is not spelt \"containergroup\"",
        "write \"acs:eci:*:*:containergroup/*\"",
    );
}

#[test]
fn a_policy_attached_to_no_principal_is_a_warning() {
    assert_warns(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:*","Resource":"*"}]}"#,
        false,
        &[],
        "1:1",
        "attached to no principal",
        "attach = [{ policy = \"extra\" }]",
    );
}
