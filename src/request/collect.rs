//! Gathering the parameters: decoding the query string and a form body, and refusing every
//! way two parameters could be read as one (duplicates, names differing only in case,
//! misspelt reserved names) before anything looks at their meaning.

use super::encoding::{parse_urlencoded, EncodingError};
use super::{credentials::single_header, RequestError};
use http::{HeaderMap, Method};

/// Names ramgate or Alibaba reads: they must be spelt exactly, since a backend that matched
/// names loosely would read a differently-cased copy that ramgate never authorized. The
/// families (`Tag.N.*`, `TagKey.N`, `ResourceId.N`) are matched on their first segment.
const RESERVED: &[&str] = &[
    "AccessKeyId",
    "Action",
    "All",
    "BearerToken",
    "Command",
    "ContainerGroupId",
    "ContainerGroupIds",
    "Format",
    "Limit",
    "NextToken",
    "RegionId",
    "ResourceGroupId",
    "ResourceType",
    "SecurityToken",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureType",
    "SignatureVersion",
    "Timestamp",
    "Version",
];
const FAMILIES: &[&str] = &["ResourceId", "Tag", "TagKey"];
const FORM: &str = "application/x-www-form-urlencoded";

fn decoding(what: &str, err: EncodingError) -> RequestError {
    RequestError::Malformed(format!(
        "the {what} cannot be decoded ({err}); percent-encode it as UTF-8"
    ))
}

/// Decodes the query string.
pub(super) fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, RequestError> {
    parse_urlencoded(raw).map_err(|e| decoding("query string", e))
}

/// Decodes a form body. Any other non-empty body is refused rather than dropped: ramgate
/// forwards an empty body, so a body it does not understand would silently lose meaning.
pub(super) fn body_pairs(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, RequestError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if method != Method::POST {
        return Err(RequestError::Malformed(format!(
            "a {method} request has a body; send parameters in the query string, or POST them as {FORM}"
        )));
    }
    if let Some(encoding) = single_header(headers, "content-encoding")? {
        if !encoding.trim().eq_ignore_ascii_case("identity") {
            return Err(RequestError::Malformed(format!(
                "the body is {encoding}-encoded; send it uncompressed"
            )));
        }
    }
    let content_type = single_header(headers, "content-type")?.unwrap_or_default();
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case(FORM) {
        let media = if media.is_empty() {
            "no content type"
        } else {
            media
        };
        return Err(RequestError::Malformed(format!(
            "the body ({media}) is not understood; ECI parameters go in the query string or in a {FORM} body"
        )));
    }
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err(RequestError::Malformed(format!(
                "the body's charset {value:?} is not supported; send UTF-8"
            )));
        }
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| RequestError::Malformed("the form body is not ASCII/UTF-8 text".to_owned()))?;
    parse_urlencoded(text).map_err(|e| decoding("form body", e))
}

/// Refuses names that could be read two ways: the same name twice (query, body, or both),
/// names equal but for case, misspelt reserved names and names that are not visible ASCII.
pub(super) fn check_names(
    query: &[(String, String)],
    body: &[(String, String)],
) -> Result<(), RequestError> {
    let mut names: Vec<(&str, bool)> = query
        .iter()
        .map(|(n, _)| (n.as_str(), false))
        .chain(body.iter().map(|(n, _)| (n.as_str(), true)))
        .collect();
    for (name, _) in &names {
        check_spelling(name)?;
    }
    // Sorting case-folded makes every collision adjacent: one O(n log n) pass, no map.
    names.sort_unstable_by(|a, b| folded(a.0).cmp(folded(b.0)));
    for pair in names.windows(2) {
        let [(a, a_body), (b, b_body)] = pair else {
            continue;
        };
        if a == b {
            let place = match (a_body, b_body) {
                (false, false) => "twice in the query string",
                (true, true) => "twice in the body",
                _ => "in both the query string and the body",
            };
            return Err(RequestError::invalid(
                *a,
                format!("it is given {place}; give each parameter once"),
            ));
        }
        if a.eq_ignore_ascii_case(b) {
            return Err(RequestError::invalid(
                *a,
                format!("it is also given as {b:?}; parameter names are case-sensitive, give it once with its exact name"),
            ));
        }
    }
    Ok(())
}

fn folded(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().map(|c| c.to_ascii_lowercase())
}

fn check_spelling(name: &str) -> Result<(), RequestError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::invalid(
            name,
            "parameter names are visible ASCII (letters, digits, dots); remove or rename it",
        ));
    }
    let (head, rest) = match name.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (name, None),
    };
    if let Some(exact) = RESERVED
        .iter()
        .chain(FAMILIES)
        .find(|r| r.eq_ignore_ascii_case(head))
    {
        if *exact != head {
            return Err(RequestError::invalid(
                name,
                format!("parameter names are case-sensitive; write {exact:?}"),
            ));
        }
        if rest.is_some() && RESERVED.contains(exact) {
            return Err(RequestError::invalid(
                name,
                format!("{exact} is a single value, not a list; give it as {exact}=<value>"),
            ));
        }
    }
    Ok(())
}
