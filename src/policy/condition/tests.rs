//! Each operator: lists, missing keys, case rules, wildcards, types.

use super::*;

fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
    Condition::build(op, key, values).unwrap_or_else(|e| panic!("{op} {key}: {e:?}"))
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::from_pairs(pairs.iter().copied())
}

fn with_tags(t: &Tags) -> Context<'_> {
    Context {
        eci_tags: Some(t),
        resource_tags: Some(t),
        request_tags: Some(t),
        ..Context::default()
    }
}

#[test]
fn string_equals_is_case_sensitive_and_ors_values() {
    let c = cond("StringEquals", "eci:tag/env", &["test", "pre"]);
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "test")]))), Ok(true));
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "pre")]))), Ok(true));
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "Test")]))), Ok(false));
    assert_eq!(
        c.evaluate(&with_tags(&tags(&[("ENV", "test")]))),
        Ok(false),
        "tag keys are case-sensitive"
    );
}

#[test]
fn missing_key_is_false_for_positive_and_true_for_negated() {
    let none = tags(&[]);
    let ctx = with_tags(&none);
    for op in [
        "StringEquals",
        "StringEqualsIgnoreCase",
        "StringLike",
        "NumericEquals",
        "DateEquals",
        "Bool",
        "IpAddress",
    ] {
        let v = match op {
            "NumericEquals" => "1",
            "DateEquals" => "2026-01-01",
            "Bool" => "true",
            "IpAddress" => "10.0.0.0/8",
            _ => "x",
        };
        assert_eq!(
            cond(op, "eci:tag/k", &[v]).evaluate(&ctx),
            Ok(false),
            "{op}"
        );
    }
    for op in [
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "NotIpAddress",
    ] {
        let v = match op {
            "NumericNotEquals" => "1",
            "DateNotEquals" => "2026-01-01",
            "NotIpAddress" => "10.0.0.0/8",
            _ => "x",
        };
        assert_eq!(cond(op, "eci:tag/k", &[v]).evaluate(&ctx), Ok(true), "{op}");
    }
    // Unbound tag sets read as missing too.
    assert_eq!(
        cond("StringNotEquals", "eci:tag/k", &["x"]).evaluate(&Context::default()),
        Ok(true)
    );
}

#[test]
fn negated_string_operators() {
    let c = cond("StringNotEquals", "eci:tag/env", &["prod", "pre"]);
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "test")]))), Ok(true));
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "pre")]))), Ok(false));
    let c = cond("StringNotEqualsIgnoreCase", "eci:tag/env", &["PROD"]);
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "prod")]))), Ok(false));
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "dev")]))), Ok(true));
}

#[test]
fn ignore_case_variants() {
    let c = cond("StringEqualsIgnoreCase", "eci:tag/env", &["TeSt"]);
    assert_eq!(c.evaluate(&with_tags(&tags(&[("env", "tEST")]))), Ok(true));
    assert_eq!(
        c.evaluate(&with_tags(&tags(&[("env", "tests")]))),
        Ok(false)
    );
}

#[test]
fn string_like_wildcards() {
    let c = cond("StringLike", "eci:tag/name", &["li*", "x?z"]);
    let t = |v| with_tags_owned(v);
    assert_eq!(c.evaluate(&t("liumi").ctx()), Ok(true));
    assert_eq!(c.evaluate(&t("xyz").ctx()), Ok(true));
    assert_eq!(c.evaluate(&t("xz").ctx()), Ok(false));
    assert_eq!(c.evaluate(&t("Liumi").ctx()), Ok(false));
    let c = cond("StringNotLike", "eci:tag/name", &["*prod*"]);
    assert_eq!(c.evaluate(&t("my-prod-1").ctx()), Ok(false));
    assert_eq!(c.evaluate(&t("dev").ctx()), Ok(true));
}

struct Owned(Tags);
impl Owned {
    fn ctx(&self) -> Context<'_> {
        with_tags(&self.0)
    }
}
fn with_tags_owned(name: &str) -> Owned {
    Owned(tags(&[("name", name)]))
}

#[test]
fn numeric_operators_and_type_errors() {
    let t = |v: &str| Owned(tags(&[("n", v)]));
    let check = |op: &str, wanted: &str, found: &str| {
        cond(op, "eci:tag/n", &[wanted]).evaluate(&t(found).ctx())
    };
    assert_eq!(check("NumericEquals", "10", "10.0"), Ok(true));
    assert_eq!(check("NumericNotEquals", "10", "11"), Ok(true));
    assert_eq!(check("NumericLessThan", "10", "9"), Ok(true));
    assert_eq!(check("NumericLessThan", "10", "10"), Ok(false));
    assert_eq!(check("NumericLessThanEquals", "10", "10"), Ok(true));
    assert_eq!(check("NumericGreaterThan", "10", "11"), Ok(true));
    assert_eq!(check("NumericGreaterThanEquals", "10", "9"), Ok(false));
    assert!(
        check("NumericEquals", "10", "ten").is_err(),
        "a non-number is an error, not a mismatch"
    );
    assert!(
        check("NumericNotEquals", "10", "ten").is_err(),
        "negation never turns an error into true"
    );
    assert!(Condition::build("NumericEquals", "eci:tag/n", &["x"]).is_err());
}

#[test]
fn date_operators_on_current_time_and_tags() {
    let at = parse_date("2026-06-01T00:00:00Z");
    let ctx = Context {
        now_unix_nanos: at,
        ..Context::default()
    };
    assert_eq!(
        cond("DateLessThan", "acs:CurrentTime", &["2027-01-01T00:00:00Z"]).evaluate(&ctx),
        Ok(true)
    );
    assert_eq!(
        cond("DateGreaterThan", "acs:CurrentTime", &["2027-01-01"]).evaluate(&ctx),
        Ok(false)
    );
    assert_eq!(
        cond(
            "DateEquals",
            "acs:CurrentTime",
            &["2026-06-01T08:00:00+08:00"]
        )
        .evaluate(&ctx),
        Ok(true)
    );
    assert_eq!(
        cond("DateGreaterThanEquals", "acs:CurrentTime", &["2026-06-01"]).evaluate(&ctx),
        Ok(true)
    );
    assert_eq!(
        cond("DateLessThanEquals", "acs:CurrentTime", &["2026-05-31"]).evaluate(&ctx),
        Ok(false)
    );
    assert_eq!(
        cond("DateNotEquals", "acs:CurrentTime", &["2026-05-31"]).evaluate(&ctx),
        Ok(true)
    );
    let bad = Owned(tags(&[("d", "yesterday")]));
    assert!(cond("DateLessThan", "eci:tag/d", &["2027-01-01"])
        .evaluate(&bad.ctx())
        .is_err());
    assert!(Condition::build("DateLessThan", "acs:CurrentTime", &["soon"]).is_err());
}

#[test]
fn bool_and_secure_transport() {
    let yes = Context {
        secure_transport: Some(true),
        ..Context::default()
    };
    let no = Context {
        secure_transport: Some(false),
        ..Context::default()
    };
    let c = cond("Bool", "acs:SecureTransport", &["true"]);
    assert_eq!(c.evaluate(&yes), Ok(true));
    assert_eq!(c.evaluate(&no), Ok(false));
    assert!(Condition::build("StringEquals", "acs:SecureTransport", &["true"]).is_err());
}

#[test]
fn ip_address_with_cidrs() {
    let ctx = |ip: &str| Context {
        source_ip: ip.parse().ok(),
        ..Context::default()
    };
    let c = cond("IpAddress", "acs:SourceIp", &["10.0.0.0/8", "192.168.1.7"]);
    assert_eq!(c.evaluate(&ctx("10.1.2.3")), Ok(true));
    assert_eq!(c.evaluate(&ctx("192.168.1.7")), Ok(true));
    assert_eq!(c.evaluate(&ctx("192.168.1.8")), Ok(false));
    assert_eq!(
        c.evaluate(&ctx("::ffff:10.9.9.9")),
        Ok(true),
        "IPv4-mapped peers are IPv4"
    );
    let not = cond("NotIpAddress", "acs:SourceIp", &["10.0.0.0/8"]);
    assert_eq!(not.evaluate(&ctx("11.0.0.1")), Ok(true));
    assert_eq!(not.evaluate(&ctx("10.0.0.1")), Ok(false));
    let v6 = cond("IpAddress", "acs:SourceIp", &["2001:db8::/32"]);
    assert_eq!(v6.evaluate(&ctx("2001:db8::1")), Ok(true));
    assert!(Condition::build("IpAddress", "acs:SourceIp", &["10.0.0.0/33"]).is_err());
    assert!(Condition::build("StringEquals", "acs:SourceIp", &["10.0.0.1"]).is_err());
}

#[test]
fn keys_resolve_to_the_right_tag_sets() {
    let own = tags(&[("env", "test")]);
    let req = tags(&[("env", "prod")]);
    let ctx = Context {
        eci_tags: Some(&req),
        resource_tags: Some(&own),
        request_tags: Some(&req),
        ..Context::default()
    };
    assert_eq!(
        cond("StringEquals", "acs:ResourceTag/env", &["test"]).evaluate(&ctx),
        Ok(true)
    );
    assert_eq!(
        cond("StringEquals", "acs:RequestTag/env", &["prod"]).evaluate(&ctx),
        Ok(true)
    );
    assert_eq!(
        cond("StringEquals", "eci:tag/env", &["prod"]).evaluate(&ctx),
        Ok(true)
    );
    assert_eq!(
        cond("StringEquals", "ECI:Tag/env", &["prod"]).evaluate(&ctx),
        Ok(true),
        "key prefixes are case-insensitive"
    );
}

#[test]
fn unknown_operators_and_keys_are_rejected() {
    assert!(Condition::build("StringEqualz", "eci:tag/a", &["x"]).is_err());
    assert!(Condition::build("stringequals", "eci:tag/a", &["x"]).is_err());
    assert!(Condition::build("StringEquals", "acs:UserAgent", &["x"]).is_err());
    assert!(Condition::build("StringEquals", "eci:tag/", &["x"]).is_err());
    assert!(Condition::build("StringEquals", "eci:tag/a", &[]).is_err());
}
