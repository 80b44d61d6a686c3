//! ACS3-HMAC-SHA256's canonical form, the one place both directions build it: verifying
//! what callers sign ([`crate::identity::signature`]) and signing what ramgate sends to
//! Alibaba Cloud ([`crate::upstream`]). Sharing it means the two cannot drift apart.
//!
//! The canonical request is
//! `METHOD \n / \n QUERY \n HEADERS \n SIGNED \n PAYLOAD_HASH`, where QUERY is every decoded
//! parameter, each side RFC 3986-encoded, sorted, joined `name=value` by `&`; HEADERS is
//! each signed header as `lowercase-name:value\n` (several values trimmed, sorted and
//! joined by `,`); SIGNED the same names joined by `;`. The string to sign is
//! `ACS3-HMAC-SHA256\n<hex SHA-256 of the canonical request>`, and the signature the hex
//! HMAC-SHA256 of it under the raw secret (no derived key).

use crate::request::encoding::rfc3986_encode;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The SHA-256 of an empty body: what every call ramgate sends (`POST /?...`) hashes to.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The canonical query of decoded parameters: each side RFC 3986-encoded, sorted by the
/// encoded name (then value), joined by `&`; an empty value is written `name=`. Always
/// computed from decoded parameters, never from a query string as some client wrote it
/// (the Go SDK writes spaces as `+` and signs `%20`).
pub fn canonical_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(n, v)| {
            (
                rfc3986_encode(n).into_owned(),
                rfc3986_encode(v).into_owned(),
            )
        })
        .collect();
    encoded.sort_unstable();
    let mut out = String::with_capacity(encoded.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (name, value) in &encoded {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// One signed header's canonical value: its values trimmed, sorted and joined by `,`.
pub fn header_value<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut values: Vec<&str> = values.into_iter().map(str::trim).collect();
    values.sort_unstable();
    values.join(",")
}

/// The canonical request and the `SignedHeaders` list. `headers` are lowercase names with
/// their canonical values ([`header_value`]), in the order they are signed (signers sort
/// them; a verifier keeps the order the request names).
pub fn canonical_request(
    method: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> (String, String) {
    let mut canonical_headers = String::new();
    for (name, value) in headers {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let signed = headers
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(";");
    let canonical =
        format!("{method}\n/\n{query}\n{canonical_headers}\n{signed}\n{payload_sha256}");
    (canonical, signed)
}

/// `ACS3-HMAC-SHA256\n<hex SHA-256 of the canonical request>`.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn mac(secret: &str, string_to_sign: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(string_to_sign.as_bytes());
    Some(mac)
}

/// The lowercase hex HMAC-SHA256 of `string_to_sign` under `secret`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    mac(secret, string_to_sign)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Whether `signature` is HMAC-SHA256(secret, string_to_sign), compared in constant time.
pub fn matches(secret: &str, string_to_sign: &str, signature: &[u8]) -> bool {
    mac(secret, string_to_sign).is_some_and(|m| m.verify_slice(signature).is_ok())
}

/// `ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>`.
pub fn authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!("{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// REFERENCE.md's two vectors, computed with the Python SDK's `get_authorization`.
    fn reference(
        params: &[(&str, &str)],
        action: &str,
        extra: &[(&str, &str)],
    ) -> (String, String) {
        let query = canonical_query(params.iter().copied());
        let mut headers = vec![
            ("host", "eci.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", action),
            ("x-acs-content-sha256", EMPTY_BODY_SHA256),
            ("x-acs-date", "2024-01-01T00:00:00Z"),
            ("x-acs-signature-nonce", "0123456789abcdef0123456789abcdef"),
            ("x-acs-version", "2018-08-08"),
        ];
        headers.extend_from_slice(extra);
        headers.sort_unstable();
        let (canonical, _) = canonical_request("POST", &query, &headers, EMPTY_BODY_SHA256);
        (query, signature("testSecret", &string_to_sign(&canonical)))
    }

    #[test]
    fn reproduces_the_reference_vectors() {
        let (query, sig) = reference(
            &[
                ("RegionId", "cn-hangzhou"),
                ("Container.1.Name", "c 1"),
                ("Container.1.Image", "nginx:latest"),
                ("ContainerGroupName", "demo*~"),
            ],
            "CreateContainerGroup",
            &[],
        );
        assert_eq!(
            query,
            "Container.1.Image=nginx%3Alatest&Container.1.Name=c%201&ContainerGroupName=demo%2A~&RegionId=cn-hangzhou"
        );
        assert_eq!(
            sig,
            "61a1621a04025131d00cdf15146c4e054ed3e6b99e9f44c81ecde63994efc70b"
        );
        let (_, sig) = reference(
            &[
                ("RegionId", "cn-hangzhou"),
                ("ContainerGroupIds", "[\"eci-abc\"]"),
            ],
            "DescribeContainerGroups",
            &[
                ("x-acs-accesskey-id", "STS.testAK"),
                ("x-acs-security-token", "testToken"),
            ],
        );
        assert_eq!(
            sig,
            "eb5fec3f5a2dd1aeae1cee75357b8a82c4abbbc0727c2e9d82bd166e4f5091b5"
        );
    }

    #[test]
    fn empty_values_and_header_values() {
        assert_eq!(canonical_query([("b", ""), ("a", "x y")]), "a=x%20y&b=");
        assert_eq!(header_value([" b ", "a"]), "a,b");
    }

    #[test]
    fn signatures_compare_exactly() {
        let sts = string_to_sign("canonical");
        let good = hex::decode(signature("secret", &sts)).unwrap();
        assert!(matches("secret", &sts, &good));
        assert!(!matches("secret2", &sts, &good));
        assert!(!matches("secret", &sts, &good[..31]));
    }
}
