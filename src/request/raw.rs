//! The parameters exactly as received, kept for the signature verifier: a signature covers
//! what the client sent (credentials included), not ramgate's canonical form.

use super::encoding::rfc3986_encode_twice_into;
use http::Method;

/// Decoded query and form pairs in the order received, and the raw query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawParams {
    pub query: Vec<(String, String)>,
    pub body: Vec<(String, String)>,
    /// The query string as it arrived, without the `?` (empty when there was none).
    pub raw_query: String,
    /// The HTTP method: both signature versions sign it.
    pub method: Method,
    /// Lowercase hex SHA-256 of the body as received, computed only for requests with a V3
    /// `Authorization` header (the only ones that sign the body's hash); `None` otherwise.
    pub body_sha256: Option<String>,
    /// The request URI's authority: what HTTP/2 sends instead of a `host` header (signed
    /// as `host` by V3 clients).
    pub authority: Option<String>,
}

impl RawParams {
    /// RPC v1 canonicalized query: every parameter of the query and the form body except
    /// `Signature`, sorted by name, RFC 3986-encoded, joined with `&`. (The string to sign
    /// is `METHOD&%2F&` followed by this, itself encoded.) Names are unique: the parser
    /// refused duplicates.
    pub fn v1_canonicalized(&self) -> String {
        super::encoding::encode_pairs(self.v1_pairs())
    }

    /// What RPC v1 signs: every parameter but `Signature`, sorted by name.
    fn v1_pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .query
            .iter()
            .chain(&self.body)
            .filter(|(name, _)| name != "Signature")
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    /// RPC v1 string to sign: `METHOD&%2F&` and the [`RawParams::v1_canonicalized`] query
    /// encoded once more, written in one pass into one buffer (no intermediate query).
    pub fn v1_string_to_sign(&self) -> String {
        let pairs = self.v1_pairs();
        let method = self.method.as_str();
        // Unescaped length, plus a margin for the few escapes a query has (each byte
        // escaped costs four more).
        let plain: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
        let mut out = String::with_capacity(method.len() + 5 + plain + plain / 4);
        out.push_str(method);
        out.push_str("&%2F&");
        for (i, (name, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push_str("%26");
            }
            rfc3986_encode_twice_into(&mut out, name);
            out.push_str("%3D");
            rfc3986_encode_twice_into(&mut out, value);
        }
        out
    }

    /// V3 canonical query string: the query's pairs, each side RFC 3986-encoded, sorted by
    /// encoded name. (The Python SDK sorts and writes names unencoded, Java and Go encode
    /// them; names are visible ASCII here and ECI's are unreserved characters, so the two
    /// agree on every name an SDK sends.) Form-body pairs are not part of it: V3 covers the
    /// body through its hash.
    pub fn v3_canonical_query(&self) -> String {
        crate::acs3::canonical_query(self.query.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }
}
