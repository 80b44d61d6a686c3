//! Tests of the parser: both dialects, every refused ambiguity, credential stripping and
//! the canonical forward query (including a round-trip property).

use super::*;
use http::HeaderValue;

const V: &str = "Version=2018-08-08";
const FORM: &str = "application/x-www-form-urlencoded";

fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<ParsedRequest, RequestError> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = uri.parse().unwrap();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    parse(&method, &uri, &map, body.as_bytes())
}

/// `GET /?<query>&Version=..`
fn get(query: &str) -> Result<ParsedRequest, RequestError> {
    request("GET", &format!("/?{query}&{V}"), &[], "")
}

fn ok(query: &str) -> CanonicalRequest {
    match get(query) {
        Ok(parsed) => parsed.canonical,
        Err(e) => panic!("{query}: {e}"),
    }
}

/// Asserts `query` is refused with `code`, about `param`.
fn refused(query: &str, code: &str, param: &str) {
    match get(query) {
        Ok(parsed) => panic!("{query} was accepted: {:?}", parsed.canonical),
        Err(e) => {
            assert_eq!((e.code(), e.param()), (code, Some(param)), "{query}: {e}");
            assert!(e.to_string().contains(param), "{e}");
        }
    }
}

fn invalid(query: &str, param: &str) {
    refused(query, "InvalidParameter", param)
}

fn malformed(result: Result<ParsedRequest, RequestError>) -> RequestError {
    let e = result.unwrap_err();
    assert_eq!((e.status(), e.code()), (400, "InvalidParameter"), "{e}");
    e
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::from_pairs(pairs.iter().copied())
}

use crate::model::Tags;

// ---- dialects -------------------------------------------------------------------------

#[test]
fn v3_action_in_header_params_in_query() {
    let headers = [
        ("x-acs-action", "DeleteContainerGroup"),
        ("x-acs-version", "2018-08-08"),
        (
            "authorization",
            "ACS3-HMAC-SHA256 Credential=LTAIexample,SignedHeaders=host;x-acs-action,Signature=ab",
        ),
        ("x-acs-date", "2024-01-01T00:00:00Z"),
        ("x-acs-signature-nonce", "n-1"),
        ("x-acs-content-sha256", "e3b0"),
        ("x-acs-security-token", "tok"),
        ("x-acs-other", "dropped"),
    ];
    let parsed = request(
        "POST",
        "/?RegionId=cn-hangzhou&ContainerGroupId=eci-1",
        &headers,
        "",
    )
    .unwrap();
    let c = &parsed.canonical;
    assert_eq!(c.action.name, "DeleteContainerGroup");
    assert_eq!(c.ids, vec!["eci-1"]);
    assert_eq!(
        c.forward_query(),
        "Action=DeleteContainerGroup&ContainerGroupId=eci-1&RegionId=cn-hangzhou&Version=2018-08-08"
    );
    let creds = &parsed.credentials;
    assert!(creds.has_v3_signature() && !creds.has_v1_signature());
    assert_eq!(creds.header_action.as_deref(), Some("DeleteContainerGroup"));
    assert_eq!(creds.acs_date.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(creds.acs_signature_nonce.as_deref(), Some("n-1"));
    assert_eq!(creds.acs_content_sha256.as_deref(), Some("e3b0"));
    assert_eq!(creds.acs_security_token.as_deref(), Some("tok"));
    assert_eq!(
        parsed.raw.raw_query,
        "RegionId=cn-hangzhou&ContainerGroupId=eci-1"
    );
    assert_eq!(
        parsed.raw.v3_canonical_query(),
        "ContainerGroupId=eci-1&RegionId=cn-hangzhou"
    );
}

const V1_CREDS: &str = "AccessKeyId=LTAIexample&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0\
&SignatureNonce=n-2&Timestamp=2024-01-01T00%3A00%3A00Z&SignatureType=&SecurityToken=st&BearerToken=bt\
&Format=JSON&Signature=c2ln";

#[test]
fn rpc_everything_in_the_query() {
    let parsed = get(&format!(
        "Action=DescribeContainerGroups&RegionId=cn-hangzhou&{V1_CREDS}"
    ))
    .unwrap();
    let c = &parsed.canonical;
    assert_eq!(c.action.name, "DescribeContainerGroups");
    let names: Vec<&str> = c.params.keys().map(String::as_str).collect();
    assert_eq!(names, ["RegionId", "Version"]);
    let creds = &parsed.credentials;
    assert!(creds.has_v1_signature());
    assert_eq!(creds.access_key_id.as_deref(), Some("LTAIexample"));
    assert_eq!(creds.signature.as_deref(), Some("c2ln"));
    assert_eq!(creds.signature_method.as_deref(), Some("HMAC-SHA1"));
    assert_eq!(creds.signature_version.as_deref(), Some("1.0"));
    assert_eq!(creds.signature_nonce.as_deref(), Some("n-2"));
    assert_eq!(creds.signature_type.as_deref(), Some(""));
    assert_eq!(creds.timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(creds.security_token.as_deref(), Some("st"));
    assert_eq!(creds.bearer_token.as_deref(), Some("bt"));
    // The verifier signs over everything the client sent but the signature itself.
    let signed = parsed.raw.v1_canonicalized();
    assert!(signed.starts_with(
        "AccessKeyId=LTAIexample&Action=DescribeContainerGroups&BearerToken=bt&Format=JSON"
    ));
    assert!(signed.contains("Timestamp=2024-01-01T00%3A00%3A00Z"));
    assert!(!signed.contains("Signature=c2ln"));
    assert_eq!(parsed.raw.query.len(), 13);
    // The string to sign, written in one pass, is the canonicalized query encoded again.
    assert_eq!(
        parsed.raw.v1_string_to_sign(),
        format!("GET&%2F&{}", super::encoding::rfc3986_encode(&signed))
    );
}

#[test]
fn rpc_everything_in_a_form_body() {
    let body = format!("Action=RestartContainerGroup&ContainerGroupId=eci-9&{V}&{V1_CREDS}");
    let headers = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    )];
    let parsed = request("POST", "/", &headers, &body).unwrap();
    assert_eq!(parsed.canonical.action.name, "RestartContainerGroup");
    assert_eq!(parsed.canonical.ids, vec!["eci-9"]);
    assert_eq!(parsed.credentials.signature.as_deref(), Some("c2ln"));
    assert!(parsed.raw.query.is_empty() && parsed.raw.raw_query.is_empty());
    assert_eq!(parsed.raw.body.len(), 13);
    // Query and body together, any split, mean the same.
    let split = request(
        "POST",
        "/?Action=RestartContainerGroup&Version=2018-08-08",
        &[("content-type", FORM)],
        "ContainerGroupId=eci-9",
    )
    .unwrap();
    assert_eq!(split.canonical, parsed.canonical);
}

#[test]
fn action_and_version_from_params_and_headers() {
    let same = [
        ("x-acs-action", "DescribeRegions"),
        ("x-acs-version", "2018-08-08"),
    ];
    let both = request(
        "POST",
        "/?Action=DescribeRegions&Version=2018-08-08",
        &same,
        "",
    )
    .unwrap();
    assert_eq!(both.canonical.action.name, "DescribeRegions");
    assert_eq!(
        both.canonical.forward_query(),
        "Action=DescribeRegions&Version=2018-08-08"
    );

    let e = request(
        "POST",
        "/?Action=DescribeRegions&Version=2018-08-08",
        &[("x-acs-action", "DeleteContainerGroup")],
        "",
    )
    .unwrap_err();
    assert_eq!((e.code(), e.param()), ("InvalidParameter", Some("Action")));
    let e = request(
        "POST",
        "/?Action=DescribeRegions&Version=2018-08-08",
        &[("x-acs-version", "2019-01-01")],
        "",
    )
    .unwrap_err();
    assert_eq!((e.code(), e.param()), ("InvalidParameter", Some("Version")));
    let e = request(
        "POST",
        "/",
        &[
            ("x-acs-action", "DescribeRegions"),
            ("x-acs-action", "DescribeRegions"),
        ],
        "",
    )
    .unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
}

#[test]
fn missing_unknown_and_misspelt_actions() {
    refused("RegionId=cn-hangzhou", "MissingParameter", "Action");
    refused("Action=", "MissingParameter", "Action");
    for action in [
        "RunInstances",
        "deletecontainergroup",
        "DeleteContainerGroup%20",
    ] {
        let e = get(&format!("Action={action}")).unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (404, "InvalidAction.NotFound"),
            "{action}"
        );
    }
    let e = request("GET", "/?Action=DescribeRegions", &[], "").unwrap_err();
    assert_eq!((e.code(), e.param()), ("MissingParameter", Some("Version")));
    invalid("Action=DescribeRegions&Version=2019-01-01", "Version");
}

#[test]
fn paths_methods_and_bodies() {
    let e = request(
        "GET",
        "/v1/containers?Action=DescribeRegions&Version=2018-08-08",
        &[],
        "",
    )
    .unwrap_err();
    assert_eq!((e.status(), e.code()), (404, "InvalidAction.NotFound"));
    assert!(e.to_string().contains("/v1/containers"));
    malformed(request(
        "PUT",
        "/?Action=DescribeRegions&Version=2018-08-08",
        &[],
        "",
    ));
    malformed(request(
        "DELETE",
        "/?Action=DescribeRegions&Version=2018-08-08",
        &[],
        "",
    ));
    let q = "/?Action=DescribeRegions&Version=2018-08-08";
    malformed(request(
        "POST",
        q,
        &[("content-type", "application/json")],
        r#"{"RegionId":"x"}"#,
    ));
    malformed(request("POST", q, &[], "RegionId=x"));
    malformed(request("GET", q, &[("content-type", FORM)], "RegionId=x"));
    malformed(request(
        "POST",
        q,
        &[("content-type", FORM), ("content-encoding", "gzip")],
        "RegionId=x",
    ));
    malformed(request(
        "POST",
        q,
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=latin1",
        )],
        "RegionId=x",
    ));
    malformed(request(
        "POST",
        q,
        &[("content-type", FORM)],
        "RegionId=%zz",
    ));
    malformed(request(
        "GET",
        "/?Action=DescribeRegions&Version=2018-08-08&RegionId=%ff",
        &[],
        "",
    ));
    // An empty body is fine whatever its content type (V3 SDKs send one).
    assert!(request("POST", q, &[("content-type", "application/json")], "").is_ok());
    assert!(request(
        "POST",
        q,
        &[("content-type", "APPLICATION/X-WWW-FORM-URLENCODED")],
        "RegionId=x"
    )
    .is_ok());
}

// ---- ambiguity ------------------------------------------------------------------------

#[test]
fn a_parameter_given_twice_is_refused_wherever_it_is() {
    invalid("Action=DescribeRegions&RegionId=a&RegionId=a", "RegionId");
    invalid("Action=DescribeRegions&Action=DescribeRegions", "Action");
    let q = "/?Action=DescribeRegions&Version=2018-08-08&RegionId=a";
    let e = malformed(request("POST", q, &[("content-type", FORM)], "RegionId=b"));
    assert!(
        e.to_string().contains("both the query string and the body"),
        "{e}"
    );
    let e = malformed(request(
        "POST",
        "/?Action=DescribeRegions&Version=2018-08-08",
        &[("content-type", FORM)],
        "ZoneId=b&ZoneId=b",
    ));
    assert!(e.to_string().contains("twice in the body"), "{e}");
    // Credentials count too: two signatures are two readings.
    invalid(
        "Action=DescribeRegions&Signature=a&Signature=b",
        "Signature",
    );
}

#[test]
fn names_differing_only_in_case_are_refused() {
    let e = get("Action=DescribeRegions&action=DescribeRegions").unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    let e = get("Action=DescribeContainerGroups&Tag.1.Key=a&tag.1.key=b").unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    invalid("Action=DescribeRegions&ZoneName=a&zonename=b", "ZoneName");
    // Reserved names must be spelt exactly, even alone: a loose backend would read them.
    invalid(
        "Action=CreateContainerGroup&resourcegroupid=rg-1",
        "resourcegroupid",
    );
    invalid("Action=CreateContainerGroup&tag.1.Key=a", "tag.1.Key");
    invalid("Action=CreateContainerGroup&TAG.1.Key=a", "TAG.1.Key");
    invalid("Action=DescribeRegions&accesskeyid=LTAI", "accesskeyid");
    invalid("Action=DescribeRegions&version=2018-08-08", "version");
    invalid(
        "Action=DescribeContainerGroups&containergroupids=%5B%22a%22%5D",
        "containergroupids",
    );
    invalid(
        "Action=TagResources&resourceid.1=a&ResourceType=ContainerGroup",
        "resourceid.1",
    );
    invalid(
        "Action=DeleteContainerGroup&ContainerGroupId.1=a",
        "ContainerGroupId.1",
    );
    invalid("Action=DescribeRegions&Region%20Id=a", "Region Id");
    let e = get("Action=DescribeRegions&=a").unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
}

// ---- tags -----------------------------------------------------------------------------

#[test]
fn tags_are_parsed_and_validated() {
    let c = ok("Action=CreateContainerGroup&Tag.2.Key=team&Tag.1.Key=env&Tag.1.Value=test&Tag.2.Value=a%20b");
    assert_eq!(c.tags, tags(&[("env", "test"), ("team", "a b")]));
    assert_eq!(
        ok("Action=CreateContainerGroup&Tag.1.Key=solo").tags,
        tags(&[("solo", "")])
    );
    let ten: String = (1..=10)
        .map(|n| format!("&Tag.{n}.Key=k{n}&Tag.{n}.Value=v"))
        .collect();
    assert_eq!(
        ok(&format!("Action=CreateContainerGroup{ten}")).tags.len(),
        10
    );
    let long_key = "k".repeat(64);
    let long_value = "v".repeat(128);
    ok(&format!(
        "Action=CreateContainerGroup&Tag.1.Key={long_key}&Tag.1.Value={long_value}"
    ));
    // Characters, not bytes.
    ok(&format!(
        "Action=CreateContainerGroup&Tag.1.Key={}",
        "%C3%A9".repeat(64)
    ));
}

#[test]
fn malformed_tags_are_refused() {
    let q = "Action=CreateContainerGroup";
    invalid(&format!("{q}&Tag.1.Key=a&Tag.3.Key=c"), "Tag.3");
    invalid(&format!("{q}&Tag.2.Key=b"), "Tag.2");
    refused(
        &format!("{q}&Tag.1.Value=x"),
        "MissingParameter",
        "Tag.1.Key",
    );
    refused(
        &format!("{q}&Tag.1.Key=a&Tag.2.Value=x"),
        "MissingParameter",
        "Tag.2.Key",
    );
    invalid(&format!("{q}&Tag.1.Key=a&Tag.2.Key=a"), "Tag.2.Key");
    invalid(&format!("{q}&Tag.1.Key="), "Tag.1.Key");
    invalid(&format!("{q}&Tag.1.Key={}", "k".repeat(65)), "Tag.1.Key");
    invalid(
        &format!("{q}&Tag.1.Key=a&Tag.1.Value={}", "v".repeat(129)),
        "Tag.1.Value",
    );
    for bad in [
        "Tag.01.Key",
        "Tag.0.Key",
        "Tag.21.Key",
        "Tag.1.Foo",
        "Tag.1.key",
        "Tag",
        "Tag.1",
        "Tag.x.Key",
        "Tag.1.Key.2",
    ] {
        invalid(&format!("{q}&{bad}=a"), bad);
    }
}

// ---- container group ids ----------------------------------------------------------------

#[test]
fn describe_ids_are_optional_and_canonicalized() {
    let c = ok("Action=DescribeContainerGroups&RegionId=r");
    assert!(c.ids.is_empty());
    let c = ok(
        "Action=DescribeContainerGroups&ContainerGroupIds=%5B%20%22eci-1%22%2C%20%22eci-2%22%20%5D",
    );
    assert_eq!(c.ids, vec!["eci-1", "eci-2"]);
    assert_eq!(c.param("ContainerGroupIds"), Some(r#"["eci-1","eci-2"]"#));
    let q = "Action=DescribeContainerGroups&ContainerGroupIds=";
    for bad in [
        "",
        "eci-1",
        "%5B%5D",
        "%5B1%5D",
        "%5B%22a%22%2C%22a%22%5D",
        "%5B%22%22%5D",
    ] {
        invalid(&format!("{q}{bad}"), "ContainerGroupIds");
    }
    let many: Vec<String> = (0..21).map(|i| format!("eci-{i}")).collect();
    let json = encoding::rfc3986_encode(&values::ids_json(&many)).into_owned();
    invalid(&format!("{q}{json}"), "ContainerGroupIds");
    invalid(
        "Action=DescribeContainerGroups&ContainerGroupId=eci-1",
        "ContainerGroupId",
    );
    invalid(
        "Action=DescribeContainerGroupStatus&ContainerGroupIds=%5B%22a%22%5D&ContainerGroupId=a",
        "ContainerGroupIds",
    );
}

#[test]
fn single_actions_need_exactly_their_one_group() {
    assert_eq!(
        ok("Action=DescribeContainerLog&ContainerGroupId=eci-1&ContainerName=c").ids,
        vec!["eci-1"]
    );
    refused(
        "Action=DeleteContainerGroup",
        "MissingParameter",
        "ContainerGroupId",
    );
    invalid(
        "Action=DeleteContainerGroup&ContainerGroupId=",
        "ContainerGroupId",
    );
    invalid(
        "Action=DeleteContainerGroup&ContainerGroupId=a&ContainerGroupIds=%5B%22a%22%5D",
        "ContainerGroupIds",
    );
    invalid(
        "Action=DeleteContainerGroup&ContainerGroupIds=%5B%22a%22%5D",
        "ContainerGroupIds",
    );
    invalid(
        "Action=DeleteContainerGroup&ContainerGroupId=a&ResourceId.1=a",
        "ResourceId.1",
    );
    invalid(
        "Action=DescribeRegions&ContainerGroupId=a",
        "ContainerGroupId",
    );
    invalid(
        "Action=CreateContainerGroup&ContainerGroupIds=%5B%22a%22%5D",
        "ContainerGroupIds",
    );
}

#[test]
fn update_with_tags_and_resource_group() {
    let c = ok("Action=UpdateContainerGroup&ContainerGroupId=eci-1&Tag.1.Key=env&Tag.1.Value=prod&ResourceGroupId=rg-1");
    assert_eq!(
        (c.ids.as_slice(), c.resource_group.as_deref()),
        (&["eci-1".to_owned()][..], Some("rg-1"))
    );
    assert_eq!(c.tags, tags(&[("env", "prod")]));
    invalid(
        "Action=CreateContainerGroup&ResourceGroupId=",
        "ResourceGroupId",
    );
}

// ---- tag APIs -------------------------------------------------------------------------

#[test]
fn tag_resources() {
    let c = ok("Action=TagResources&ResourceType=ContainerGroup&ResourceId.2=eci-b&ResourceId.1=eci-a&Tag.1.Key=k&Tag.1.Value=v");
    assert_eq!(c.ids, vec!["eci-a", "eci-b"]);
    assert_eq!(c.tags, tags(&[("k", "v")]));
    let q = "Action=TagResources&Tag.1.Key=k";
    refused(
        &format!("{q}&ResourceId.1=a"),
        "MissingParameter",
        "ResourceType",
    );
    invalid(
        &format!("{q}&ResourceId.1=a&ResourceType=ImageCache"),
        "ResourceType",
    );
    invalid(
        &format!("{q}&ResourceId.1=a&ResourceType=containergroup"),
        "ResourceType",
    );
    refused(
        &format!("{q}&ResourceType=ContainerGroup"),
        "MissingParameter",
        "ResourceId.1",
    );
    let q = "Action=TagResources&ResourceType=ContainerGroup";
    invalid(
        &format!("{q}&ResourceId.1=a&ResourceId.3=c"),
        "ResourceId.3",
    );
    invalid(
        &format!("{q}&ResourceId.1=a&ResourceId.2=a"),
        "ResourceId.2",
    );
    invalid(&format!("{q}&ResourceId.1="), "ResourceId.1");
    invalid(&format!("{q}&ResourceId=a"), "ResourceId");
    invalid(&format!("{q}&ResourceId.1.Foo=a"), "ResourceId.1.Foo");
    invalid(&format!("{q}&ResourceId.51=a"), "ResourceId.51");
    let fifty: String = (1..=50)
        .map(|n| format!("&ResourceId.{n}=eci-{n}"))
        .collect();
    assert_eq!(ok(&format!("{q}{fifty}")).ids.len(), 50);
    invalid(
        &format!("{q}&ResourceId.1=a&ContainerGroupId=a"),
        "ContainerGroupId",
    );
}

#[test]
fn untag_resources() {
    let q = "Action=UntagResources&ResourceType=ContainerGroup&ResourceId.1=eci-a";
    let c = ok(&format!("{q}&TagKey.1=env&TagKey.2=team"));
    assert_eq!(c.tag_keys, vec!["env", "team"]);
    assert!(!c.untag_all);
    assert!(ok(&format!("{q}&All=true")).untag_all);
    assert!(!ok(&format!("{q}&All=false&TagKey.1=env")).untag_all);
    invalid(&format!("{q}&All=true&TagKey.1=env"), "All");
    invalid(&format!("{q}&All=yes"), "All");
    invalid(&format!("{q}&TagKey.2=env"), "TagKey.2");
    invalid(&format!("{q}&TagKey.1=env&TagKey.2=env"), "TagKey.2");
    invalid(&format!("{q}&TagKey.21=env"), "TagKey.21");
}

#[test]
fn list_tag_resources_filters_by_ids_or_tags() {
    let c = ok("Action=ListTagResources&ResourceType=ContainerGroup&Tag.1.Key=env&Tag.1.Value=");
    assert!(c.ids.is_empty());
    // A filter's key without its value would match any value at the backend (issue 11,
    // finding 8): refused rather than authorized as the empty value.
    invalid(
        "Action=ListTagResources&ResourceType=ContainerGroup&Tag.1.Key=env",
        "Tag.1.Key",
    );
    assert_eq!(c.action.kind, crate::catalogue::Kind::ListFiltered);
    refused(
        "Action=ListTagResources&Tag.1.Key=env&Tag.1.Value=test",
        "MissingParameter",
        "ResourceType",
    );
    invalid(
        "Action=DescribeContainerGroups&ResourceId.1=a",
        "ResourceId.1",
    );
}

// ---- other values ---------------------------------------------------------------------

#[test]
fn limit_command_and_format() {
    assert_eq!(
        ok("Action=DescribeContainerGroups&Limit=20").param("Limit"),
        Some("20")
    );
    for bad in ["0", "21", "abc", "05", "-1", ""] {
        invalid(
            &format!("Action=DescribeContainerGroups&Limit={bad}"),
            "Limit",
        );
    }
    ok("Action=ExecContainerCommand&ContainerGroupId=a&ContainerName=c&Command=%5B%22ls%22%5D");
    invalid(
        "Action=ExecContainerCommand&ContainerGroupId=a&Command=ls",
        "Command",
    );
    let c = ok("Action=DescribeRegions&Format=json");
    assert_eq!(c.param("Format"), None);
    invalid("Action=DescribeRegions&Format=XML", "Format");
}

// ---- forwarding ---------------------------------------------------------------------

#[test]
fn forward_query_is_sorted_and_rfc3986_encoded() {
    let c = ok("Action=CreateContainerGroup&ZoneId=z&AcrRegistryInfo.1.Domain=d&ContainerGroupName=a+b%2A~%2B%2F%C3%A9");
    assert_eq!(
        c.forward_query(),
        "AcrRegistryInfo.1.Domain=d&Action=CreateContainerGroup&ContainerGroupName=a%20b%2A~%2B%2F%C3%A9\
         &Version=2018-08-08&ZoneId=z"
    );
    // Credentials and Format never reach the backend.
    let c = get(&format!("Action=DescribeRegions&{V1_CREDS}"))
        .unwrap()
        .canonical;
    assert_eq!(
        c.forward_query(),
        "Action=DescribeRegions&Version=2018-08-08"
    );
}

#[test]
fn setters_keep_derived_fields_consistent() {
    let mut c = ok("Action=CreateContainerGroup&RegionId=r");
    c.set_resource_group("rg-default");
    assert_eq!(c.resource_group.as_deref(), Some("rg-default"));
    assert!(c.forward_query().contains("&ResourceGroupId=rg-default&"));

    let mut c =
        ok("Action=DescribeContainerGroups&ContainerGroupIds=%5B%22a%22%2C%22b%22%2C%22c%22%5D");
    c.set_ids(vec!["a".into(), "c".into()]);
    assert_eq!(c.ids, vec!["a", "c"]);
    assert_eq!(c.param("ContainerGroupIds"), Some(r#"["a","c"]"#));
    c.set_ids(Vec::new());
    assert_eq!(
        c.param("ContainerGroupIds"),
        Some("[]"),
        "never widened by removal"
    );

    let mut c = ok("Action=TagResources&ResourceType=ContainerGroup&ResourceId.1=a&ResourceId.2=b&ResourceId.3=c");
    c.set_ids(vec!["c".into()]);
    assert_eq!(c.ids, vec!["c"]);
    assert!(c.forward_query().contains("&ResourceId.1=c&ResourceType"));
    assert_eq!(c.param("ResourceId.2"), None);
    c.set_ids(Vec::new());
    assert_eq!(c.param("ResourceId.1"), Some(""));

    let mut c = ok("Action=DeleteContainerGroup&ContainerGroupId=a");
    c.set_ids(vec!["b".into(), "c".into()]);
    assert_eq!(
        (c.ids.as_slice(), c.param("ContainerGroupId")),
        (&["a".to_owned()][..], Some("a"))
    );
}

#[test]
fn error_statuses_and_codes() {
    let cases = [
        (
            RequestError::PathNotFound("/x".into()),
            404,
            "InvalidAction.NotFound",
        ),
        (
            RequestError::ActionNotFound("X".into()),
            404,
            "InvalidAction.NotFound",
        ),
        (RequestError::missing("A", "h"), 400, "MissingParameter"),
        (RequestError::invalid("A", "r"), 400, "InvalidParameter"),
        (RequestError::Malformed("m".into()), 400, "InvalidParameter"),
    ];
    for (e, status, code) in cases {
        assert_eq!((e.status(), e.code()), (status, code));
    }
}

// ---- properties ---------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const NAMES: &[&str] = &[
        "RegionId",
        "ZoneId",
        "NextToken",
        "Limit",
        "VSwitchId",
        "SecurityGroupId",
        "Status",
        "ContainerGroupName",
        "Container.1.Name",
        "Container.1.Image",
        "Container.2.Name",
        "Z~weird_name-1",
        "AcrRegistryInfo.1.Domain",
    ];

    fn value() -> impl Strategy<Value = String> {
        "[ -~éü中\t]{0,12}"
    }

    type Generated = (
        Vec<&'static str>,
        Vec<String>,
        BTreeMap<String, String>,
        Option<BTreeSet<String>>,
        u32,
    );

    fn input() -> impl Strategy<Value = Vec<(String, String)>> {
        (
            proptest::sample::subsequence(NAMES, 0..NAMES.len()),
            proptest::collection::vec(value(), NAMES.len()),
            proptest::collection::btree_map("[ -~é]{1,10}", value(), 0..5),
            proptest::option::of(proptest::collection::btree_set("eci-[a-z0-9]{1,6}", 1..5)),
            1..=20u32,
        )
            .prop_map(|(names, values, tags, ids, limit): Generated| {
                let mut pairs = vec![
                    ("Action".to_owned(), "DescribeContainerGroups".to_owned()),
                    ("Version".to_owned(), VERSION.to_owned()),
                ];
                for (name, value) in names.into_iter().zip(values) {
                    let value = if name == "Limit" {
                        limit.to_string()
                    } else {
                        value
                    };
                    pairs.push((name.to_owned(), value));
                }
                for (n, (key, value)) in (1..).zip(tags) {
                    pairs.push((format!("Tag.{n}.Key"), key));
                    pairs.push((format!("Tag.{n}.Value"), value));
                }
                if let Some(ids) = ids {
                    let ids: Vec<String> = ids.into_iter().collect();
                    pairs.push((
                        "ContainerGroupIds".to_owned(),
                        serde_json::to_string_pretty(&ids).unwrap(),
                    ));
                }
                pairs
            })
    }

    fn encode(pairs: &[(String, String)]) -> String {
        encoding::encode_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    proptest! {
        #[test]
        fn forward_query_round_trips(pairs in input()) {
            let first = request("GET", &format!("/?{}", encode(&pairs)), &[], "").unwrap().canonical;
            let forwarded = first.forward_query();
            let again = request("POST", &format!("/?{forwarded}"), &[], "").unwrap().canonical;
            prop_assert_eq!(&again, &first);
            prop_assert_eq!(again.forward_query(), forwarded);
        }

        #[test]
        fn reorderings_and_splits_forward_the_same(
            (pairs, shuffled) in input().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
            split in any::<proptest::sample::Index>(),
        ) {
            let expected = request("GET", &format!("/?{}", encode(&pairs)), &[], "").unwrap().canonical;
            let at = split.index(shuffled.len() + 1);
            let (query, body) = shuffled.split_at(at);
            let parsed = request("POST", &format!("/?{}", encode(query)), &[("content-type", FORM)], &encode(body))
                .unwrap()
                .canonical;
            prop_assert_eq!(parsed.forward_query(), expected.forward_query());
            prop_assert_eq!(parsed, expected);
        }
    }
}

// ---- the per-action parameter model (issue 11) -------------------------------------------

/// Asserts `query` is refused as a parameter `action` does not take, naming both.
fn not_taken(query: &str, param: &str, action: &str) {
    let e = get(query).expect_err(query);
    assert_eq!(
        (e.code(), e.param()),
        ("InvalidParameter", Some(param)),
        "{query}: {e}"
    );
    assert!(e.to_string().contains(action), "{e}");
}

#[test]
fn tag_parameters_are_taken_only_by_the_actions_that_read_them() {
    const TAG: &str = "ResourceType=ContainerGroup&ResourceId.1=eci-1";
    not_taken(
        &format!("Action=UntagResources&{TAG}&TagKey.1=env&Tag.1.Key=env&Tag.1.Value=test"),
        "Tag.1.Key",
        "UntagResources",
    );
    not_taken(
        &format!("Action=TagResources&{TAG}&Tag.1.Key=env&Tag.1.Value=prod&All=true"),
        "All",
        "TagResources",
    );
    not_taken(
        &format!("Action=TagResources&{TAG}&Tag.1.Key=env&Tag.1.Value=prod&TagKey.1=x"),
        "TagKey.1",
        "TagResources",
    );
    not_taken(
        "Action=UpdateContainerGroup&ContainerGroupId=eci-1&Tag.1.Key=env&Tag.1.Value=p&All=true",
        "All",
        "UpdateContainerGroup",
    );
    not_taken(
        "Action=DeleteContainerGroup&ContainerGroupId=eci-1&Tag.1.Key=env&Tag.1.Value=p",
        "Tag.1.Key",
        "DeleteContainerGroup",
    );
    not_taken(
        "Action=DescribeContainerGroups&All=false",
        "All",
        "DescribeContainerGroups",
    );
    refused(
        &format!("Action=UntagResources&{TAG}"),
        "MissingParameter",
        "TagKey.1",
    );
    refused(
        &format!("Action=UntagResources&{TAG}&All=false"),
        "MissingParameter",
        "TagKey.1",
    );
    // What each action takes is accepted.
    let untag = ok(&format!("Action=UntagResources&{TAG}&All=true"));
    assert!(untag.untag_all);
    let untag = ok(&format!("Action=UntagResources&{TAG}&TagKey.1=env"));
    assert_eq!(untag.tag_keys, ["env"]);
    let tag = ok(&format!("Action=TagResources&{TAG}&Tag.1.Key=env"));
    assert_eq!(
        tag.tags,
        tags(&[("env", "")]),
        "a key alone sets the empty value"
    );
    // Filters need their values; tags to set do not.
    invalid("Action=DescribeContainerGroups&Tag.1.Key=env", "Tag.1.Key");
    ok("Action=DescribeContainerGroups&Tag.1.Key=env&Tag.1.Value=");
    ok("Action=CreateContainerGroup&Tag.1.Key=env");
}

#[test]
fn resulting_tags_follow_what_each_action_does() {
    use crate::decision::resulting_tags;
    let current = tags(&[("name", "liumi"), ("env", "test")]);
    const TAG: &str = "ResourceType=ContainerGroup&ResourceId.1=eci-1";
    let untag = ok(&format!("Action=UntagResources&{TAG}&TagKey.1=env"));
    assert_eq!(resulting_tags(&untag, &current), tags(&[("name", "liumi")]));
    let all = ok(&format!("Action=UntagResources&{TAG}&All=true"));
    assert_eq!(resulting_tags(&all, &current), Tags::new());
    let tag = ok(&format!(
        "Action=TagResources&{TAG}&Tag.1.Key=env&Tag.1.Value=prod"
    ));
    assert_eq!(
        resulting_tags(&tag, &current),
        tags(&[("name", "liumi"), ("env", "prod")])
    );
    let update = ok("Action=UpdateContainerGroup&ContainerGroupId=eci-1&Tag.1.Key=a&Tag.1.Value=b");
    assert_eq!(
        resulting_tags(&update, &current),
        tags(&[("name", "liumi"), ("env", "test"), ("a", "b")])
    );
}

#[test]
fn region_other_than_the_configured_one_is_refused() {
    let c = ok("Action=DescribeContainerGroups&RegionId=cn-hangzhou");
    assert_eq!(c.check_region("cn-hangzhou"), Ok(()));
    let e = c.check_region("cn-shanghai").unwrap_err();
    assert_eq!(
        (e.code(), e.param()),
        ("InvalidParameter", Some("RegionId"))
    );
    assert_eq!(
        ok("Action=DescribeRegions").check_region("cn-shanghai"),
        Ok(())
    );
}
