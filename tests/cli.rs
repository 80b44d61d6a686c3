//! `ramgate check` and `ramgate explain`, run as the real binary.

mod corpus;
mod support;

use support::run_to_end as ramgate;

#[test]
fn check_accepts_the_demo_policies() {
    let dir = corpus::root().join("config/policies");
    let (code, out) = ramgate(&["check", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn check_rejects_p1_and_p2_with_file_line_column_and_hint() {
    for case in corpus::policy_file_cases().cases {
        let dir = corpus::policy_dir("demo");
        std::fs::write(dir.path().join(&case.file), &case.content).unwrap();
        let (code, out) = ramgate(&["check", dir.path().to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {out}", case.row);
        let location = format!(
            "{}:{}:{}: error: ",
            case.file, case.expect.line, case.expect.column
        );
        assert!(
            out.contains(&location),
            "{}: {location:?} not in\n{out}",
            case.row
        );
        assert!(out.contains("\nhint: "), "{}: no hint in\n{out}", case.row);
    }
}

#[test]
fn check_reports_every_error_of_every_file() {
    let dir = corpus::policy_dir("demo");
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"Version":"2","Statement":[{"Effect":"Maybe","Action":"eci:*","Resource":"*"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), "{").unwrap();
    let (code, out) = ramgate(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(out.matches(": error: ").count(), 3, "{out}");
}

#[test]
fn check_warns_without_the_service_role() {
    let dir = corpus::policy_dir("no_service_role");
    let (code, out) = ramgate(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning:") && out.contains("AliyunECIContainerGroupRole"),
        "{out}"
    );
}

fn explain(extra: &[&str]) -> (i32, String) {
    let config = corpus::root().join("config/ramgate.toml");
    let mut args = vec!["explain", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    ramgate(&args)
}

#[test]
fn explain_names_the_failed_condition_of_a_denial() {
    let (code, out) = explain(&[
        "--principal",
        "acs:ram::1234567890123456:user/liumi",
        "--action",
        "RestartContainerGroup",
        "--target-group",
        "rg-default",
        "--resource-tag",
        "name=liumi",
        "--resource-tag",
        "env=prod",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("DENIED"), "{out}");
    assert!(out.contains("NoPermissionType=ImplicitDeny"), "{out}");
    assert!(out.contains("eci-tag-liumi-test statement 1"), "{out}");
    assert!(
        out.contains("condition failed: StringEquals eci:tag/env [\"test\"] (found: \"prod\")"),
        "{out}"
    );
}

#[test]
fn explain_names_the_statement_that_allowed() {
    let (code, out) = explain(&[
        "--principal",
        "acs:ram::1234567890123456:user/liumi",
        "--action",
        "eci:RestartContainerGroup",
        "--target-group",
        "rg-default",
        "--resource-tag",
        "name=liumi",
        "--resource-tag",
        "env=test",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ALLOWED"), "{out}");
    assert!(
        out.contains("allowed by statement 1 of policy eci-tag-liumi-test"),
        "{out}"
    );
    assert!(out.contains("eci-tag-liumi-test.json:2"), "{out}");
}

#[test]
fn explain_create_and_describe_and_bad_input() {
    let (code, out) = explain(&[
        "--principal",
        "acs:ram::1234567890123456:user/test",
        "--action",
        "CreateContainerGroup",
        "--resource-group",
        "rg-test-a",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created in resource group rg-test-a"), "{out}");
    let (code, out) = explain(&[
        "--principal",
        "acs:ram::1234567890123456:user/test",
        "--action",
        "DescribeContainerGroups",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("empty list"), "{out}");
    let (code, out) = explain(&[
        "--principal",
        "acs:ram::1234567890123456:user/nobody",
        "--action",
        "DescribeContainerGroups",
    ]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = explain(&[
        "--principal",
        "acs:ram::1234567890123456:user/test",
        "--action",
        "DeleteContainerGroup",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--target-group"), "{out}");
}
