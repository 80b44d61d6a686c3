use super::*;

fn errors(source: &str) -> Vec<Diagnostic> {
    match parse_policy("p", Some(Path::new("p.json")), source) {
        Ok(_) => panic!("expected errors for {source}"),
        Err(d) => d.0,
    }
}

#[test]
fn compiles_the_tag_policy() {
    let src = r#"{"Version":"1","Statement":[
 {"Action":"eci:*","Resource":"*","Effect":"Allow",
  "Condition":{"StringEquals":{"eci:tag/name":"liumi","eci:tag/env":"test"}}},
 {"Action":["ecs:DescribeSecurityGroups"],"Resource":"*","Effect":"Allow"}]}"#;
    let p = parse_policy("eci-tag-liumi-test", Some(Path::new("x.json")), src).unwrap();
    assert_eq!(p.statements.len(), 2);
    assert_eq!(p.statements[0].conditions.len(), 2);
    assert_eq!(p.statements[0].line, 2);
    assert!(p.statements[0].covers("eci:createcontainergroup", "*"));
    assert!(!p.statements[1].covers("eci:createcontainergroup", "*"));
}

#[test]
fn repeated_condition_key_is_named_with_line_and_hint() {
    let src = "{\"Version\":\"1\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"eci:*\",\"Resource\":\"*\",\n\"Condition\":{\"StringEquals\":{\n  \"eci:tag/name\":\"liumi\",\n  \"eci:tag/name\":\"liumi2\"}}}]}";
    let e = errors(src);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].position, Position { line: 4, column: 3 });
    assert!(e[0].message.contains("eci:tag/name"), "{}", e[0].message);
    assert!(e[0].message.contains("repeated"), "{}", e[0].message);
    let hint = e[0].hint.as_deref().unwrap();
    assert!(
        hint.contains("[\"v1\", \"v2\"]") && hint.contains("separate statements"),
        "{hint}"
    );
}

#[test]
fn misplaced_brackets_give_line_and_column() {
    let src = "{\"Version\":\"1\",\"Statement\":[\n  {\"Effect\":\"Allow\",\"Action\":\"eci:*\",\"Resource\":\"*\"]\n}";
    let e = errors(src);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].position.line, 2);
    assert_eq!(e[0].position.column, 52);
    assert!(e[0].message.starts_with("invalid JSON"), "{}", e[0].message);
    assert!(e[0].hint.is_some());
}

#[test]
fn collects_every_problem() {
    let src = r#"{"Version":"2","Statement":[
  {"Effect":"Permit","Action":"eci:*","Resource":"*"},
  {"Effect":"Allow","Action":"nonsense","Resource":"*","Extra":1},
  {"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringEqualz":{"eci:tag/a":"b"}}},
  {"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringEquals":{"acs:Whatever":"b"}}}],
 "Comment":"x"}"#;
    let e = errors(src);
    let lines: Vec<u32> = e.iter().map(|d| d.position.line).collect();
    assert_eq!(e.len(), 7, "{e:#?}");
    assert_eq!(lines, vec![1, 2, 3, 3, 4, 5, 6]);
    assert!(e[4].message.contains("StringEqualz"));
    assert!(e[5].message.contains("acs:Whatever"));
}

#[test]
fn missing_fields_and_wrong_types() {
    let e = errors(r#"{"Statement":[{"Action":"eci:*"}]}"#);
    let messages: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("no \"Effect\"")));
    assert!(messages.iter().any(|m| m.contains("no \"Resource\"")));
    assert!(messages.iter().any(|m| m.contains("no \"Version\"")));
    let e =
        errors(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":[],"Resource":[1]}]}"#);
    assert_eq!(e.len(), 2);
    let e = errors(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:*","NotAction":"eci:x","Resource":"*"}]}"#,
    );
    assert!(e[0].message.contains("both"));
    let e = errors(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":"*","Action":"eci:*","Resource":"*"}]}"#,
    );
    assert!(e[0].message.contains("Principal"));
    let e = errors(r#"{"Version":"1","Version":"1","Statement":[]}"#);
    assert!(e[0].message.contains("twice"));
}

#[test]
fn repeated_operator_in_a_block_is_an_error() {
    let e = errors(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringEquals":{"eci:tag/a":"1"},"StringEquals":{"eci:tag/b":"2"}}}]}"#,
    );
    assert!(e[0].message.contains("appears twice"), "{e:?}");
}

#[test]
fn not_action_and_value_types() {
    let p = parse_policy(
        "n",
        None,
        r#"{"Version":"1","Statement":{"Effect":"Deny","NotAction":"eci:Describe*","Resource":"*","Condition":{"NumericLessThan":{"eci:tag/n":10},"Bool":{"acs:SecureTransport":false}}}}"#,
    )
    .unwrap();
    let s = &p.statements[0];
    assert!(s.covers("eci:deletecontainergroup", "x"));
    assert!(!s.covers("eci:describecontainergroups", "x"));
    assert_eq!(s.conditions.len(), 2);
}

#[test]
fn many_repeated_keys_list_a_hundred_problems_and_count_the_rest() {
    // 40 distinct keys (indexed, not compared pairwise), each given 5 times: 160 repeats.
    let keys: Vec<String> = (0..200)
        .map(|i| format!("\"eci:tag/k{}\":\"v\"", i % 40))
        .collect();
    let src = format!(
        "{{\"Version\":\"1\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\n\"Condition\":{{\"StringEquals\":{{{}}}}}}}]}}",
        keys.join(",\n")
    );
    let e = errors(&src);
    assert_eq!(e.len(), MAX_LISTED + 1, "{e:?}");
    // The first repeat is key 40 (`k0` again), on line 42, naming line 2 as the first.
    assert_eq!(e[0].position.line, 42);
    assert!(e[0].message.contains("first on line 2"), "{}", e[0].message);
    assert!(
        e[MAX_LISTED].message.starts_with("60 more problems"),
        "{}",
        e[MAX_LISTED].message
    );
}
