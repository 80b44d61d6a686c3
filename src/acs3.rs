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
use std::borrow::Cow;

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The SHA-256 of an empty body: what every call ramgate sends (`POST /?...`) hashes to.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The canonical query of decoded parameters: each side RFC 3986-encoded, sorted by the
/// encoded name (then value), joined by `&`; an empty value is written `name=`. Always
/// computed from decoded parameters, never from a query string as some client wrote it
/// (the Go SDK writes spaces as `+` and signs `%20`).
pub fn canonical_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    write_canonical_query(&mut out, pairs);
    out
}

/// [`canonical_query`], appended to `out`.
pub fn write_canonical_query<'a>(
    out: &mut String,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    // Encoding borrows every side that needs no escaping (all names, most values), so the
    // only allocation is this list; it is sorted encoded, since escaping changes the order
    // (`/` sorts after `.`, its `%2F` before).
    let mut encoded: Vec<(Cow<'a, str>, Cow<'a, str>)> = pairs
        .into_iter()
        .map(|(n, v)| (rfc3986_encode(n), rfc3986_encode(v)))
        .collect();
    encoded.sort_unstable();
    out.reserve(encoded.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
}

/// One signed header's canonical value: its values trimmed, sorted and joined by `,`.
pub fn header_value<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    write_header_value(&mut out, values);
    out
}

/// [`header_value`], appended to `out`.
pub fn write_header_value<'a>(out: &mut String, values: impl IntoIterator<Item = &'a str>) {
    let mut values = values.into_iter().map(str::trim);
    let Some(first) = values.next() else {
        return;
    };
    let Some(second) = values.next() else {
        // One value, as nearly every signed header has: nothing to sort or collect.
        out.push_str(first);
        return;
    };
    let mut all: Vec<&str> = [first, second].into_iter().chain(values).collect();
    all.sort_unstable();
    for (i, value) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(value);
    }
}

/// Writes a canonical request in one buffer, in its order: [`CanonicalBuilder::new`] (the
/// method and path), one query ([`CanonicalBuilder::query`] or
/// [`CanonicalBuilder::query_str`]), the signed headers ([`CanonicalBuilder::header`], in
/// the order they are signed), then [`CanonicalBuilder::finish`] (the signed-headers list and
/// the payload hash).
pub struct CanonicalBuilder {
    text: String,
    signed: String,
}

impl CanonicalBuilder {
    /// `capacity`: the expected length, so that the buffer is allocated once.
    pub fn new(method: &str, capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity);
        text.push_str(method);
        text.push_str("\n/\n");
        Self {
            text,
            signed: String::with_capacity(128),
        }
    }

    /// The query, from decoded parameters ([`canonical_query`]).
    pub fn query<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        write_canonical_query(&mut self.text, pairs);
        self.text.push('\n');
    }

    /// The query, already canonical.
    pub fn query_str(&mut self, query: &str) {
        self.text.push_str(query);
        self.text.push('\n');
    }

    /// One signed header: its lowercase name and its values ([`header_value`]).
    pub fn header<'a>(&mut self, name: &str, values: impl IntoIterator<Item = &'a str>) {
        self.text.push_str(name);
        self.text.push(':');
        write_header_value(&mut self.text, values);
        self.text.push('\n');
        if !self.signed.is_empty() {
            self.signed.push(';');
        }
        self.signed.push_str(name);
    }

    /// The canonical request and the `SignedHeaders` list.
    pub fn finish(mut self, payload_sha256: &str) -> (String, String) {
        self.text.push('\n');
        self.text.push_str(&self.signed);
        self.text.push('\n');
        self.text.push_str(payload_sha256);
        (self.text, self.signed)
    }
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
    let capacity = method.len()
        + query.len()
        + headers
            .iter()
            .map(|(n, v)| 2 * n.len() + v.len() + 2)
            .sum::<usize>()
        + payload_sha256.len()
        + 8;
    let mut builder = CanonicalBuilder::new(method, capacity);
    builder.query_str(query);
    for (name, value) in headers {
        builder.header(name, [*value]);
    }
    builder.finish(payload_sha256)
}

/// `ACS3-HMAC-SHA256\n<hex SHA-256 of the canonical request>`.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Whether `signature` is the HMAC-SHA256, under the key `mac` was made with, of the string
/// to sign of `canonical_request`, compared in constant time. The string to sign is fed to
/// the HMAC in pieces, never built ([`string_to_sign`] builds it for messages).
pub fn verify(mut mac: Hmac<Sha256>, canonical_request: &str, signature: &[u8]) -> bool {
    let digest = Sha256::digest(canonical_request.as_bytes());
    let mut hex_digest = [0u8; 64];
    // 32 bytes are always 64 hex digits: this cannot fail, and would fail closed.
    if hex::encode_to_slice(digest, &mut hex_digest).is_err() {
        return false;
    }
    mac.update(ALGORITHM.as_bytes());
    mac.update(b"\n");
    mac.update(&hex_digest);
    mac.verify_slice(signature).is_ok()
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
        let mac = |key: &str| Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        assert!(verify(mac("secret"), "canonical", &good));
        assert!(!verify(mac("secret2"), "canonical", &good));
        assert!(!verify(mac("secret"), "canonical", &good[..31]));
    }

    #[test]
    fn the_builder_writes_what_canonical_request_writes() {
        let mut builder = CanonicalBuilder::new("GET", 0);
        builder.query([("b", "x/y"), ("a", "1"), ("a.", "")]);
        builder.header("host", [" h "]);
        builder.header("x-acs-a", ["2", " 1"]);
        let built = builder.finish(EMPTY_BODY_SHA256);
        let query = canonical_query([("b", "x/y"), ("a", "1"), ("a.", "")]);
        assert_eq!(query, "a=1&a.=&b=x%2Fy");
        let expected = canonical_request(
            "GET",
            &query,
            &[("host", "h"), ("x-acs-a", &header_value(["2", " 1"]))],
            EMPTY_BODY_SHA256,
        );
        assert_eq!(built, expected);
        assert_eq!(
            built.0,
            format!("GET\n/\n{query}\nhost:h\nx-acs-a:1,2\n\nhost;x-acs-a\n{EMPTY_BODY_SHA256}")
        );
    }
}
