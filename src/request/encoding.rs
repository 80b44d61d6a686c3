//! Percent-encoding as the wire protocol uses it: strict decoding of query strings and
//! form bodies, and RFC 3986 encoding for everything ramgate writes or signs.
//!
//! Decoding is strict on purpose: a malformed escape or bytes that are not UTF-8 make the
//! request ambiguous, and an ambiguous request is refused rather than guessed at.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::borrow::Cow;

/// Everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`) is escaped.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a query string or form body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    #[error("malformed percent-encoding in {0:?}")]
    BadEscape(String),
    #[error("parameter {0:?} is not valid UTF-8 once decoded")]
    NotUtf8(String),
}

/// Splits `a=1&b=2` into decoded pairs, in order, keeping duplicates (the caller decides
/// what a duplicate means). Empty segments (`a=1&&b=2`) are skipped; a name without `=`
/// has an empty value. `+` means a space, as in HTML forms and most SDKs' query strings.
pub fn parse_urlencoded(input: &str) -> Result<Vec<(String, String)>, EncodingError> {
    let mut pairs = Vec::new();
    for segment in input.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
        pairs.push((decode_component(name)?, decode_component(value)?));
    }
    Ok(pairs)
}

/// Decodes one component, refusing stray `%` and invalid UTF-8.
pub fn decode_component(raw: &str) -> Result<String, EncodingError> {
    let bytes = raw.as_bytes();
    let (mut escaped, mut plus) = (false, false);
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(EncodingError::BadEscape(raw.to_owned()));
            }
            escaped = true;
        }
        plus |= *b == b'+';
    }
    // Most components (action names, ids, versions) have neither: they are already their
    // decoded selves, and valid UTF-8 since `raw` is a `str`.
    if !escaped && !plus {
        return Ok(raw.to_owned());
    }
    let spaced: Cow<str> = if plus {
        Cow::Owned(raw.replace('+', " "))
    } else {
        Cow::Borrowed(raw)
    };
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| EncodingError::NotUtf8(raw.to_owned()))
}

/// RFC 3986 encoding (space as `%20`, `~` kept), as Alibaba Cloud's signers use it.
pub fn rfc3986_encode(value: &str) -> Cow<'_, str> {
    utf8_percent_encode(value, RFC3986).into()
}

/// `a=1&b=2` from pairs, each side RFC 3986-encoded, in the order given.
pub fn encode_pairs<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: Clone,
{
    let pairs = pairs.into_iter();
    // Sized for the common case, where nothing needs escaping: no reallocation as it grows.
    let unescaped: usize = pairs.clone().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(unescaped);
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(utf8_percent_encode(name, RFC3986));
        out.push('=');
        out.extend(utf8_percent_encode(value, RFC3986));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_in_order_with_duplicates() {
        let pairs = parse_urlencoded("b=2&a=x%20y&b=3&flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("b".into(), "2".into()),
                ("a".into(), "x y".into()),
                ("b".into(), "3".into()),
                ("flag".into(), "".into())
            ]
        );
    }

    #[test]
    fn plus_is_a_space() {
        assert_eq!(decode_component("a+b").unwrap(), "a b");
        assert_eq!(decode_component("a%2Bb").unwrap(), "a+b");
    }

    #[test]
    fn refuses_bad_escapes_and_invalid_utf8() {
        assert!(matches!(
            decode_component("a%2"),
            Err(EncodingError::BadEscape(_))
        ));
        assert!(matches!(
            decode_component("a%zz"),
            Err(EncodingError::BadEscape(_))
        ));
        assert!(matches!(
            decode_component("%ff%fe"),
            Err(EncodingError::NotUtf8(_))
        ));
    }

    #[test]
    fn encodes_as_rfc3986() {
        assert_eq!(rfc3986_encode("a b*~/é"), "a%20b%2A~%2F%C3%A9");
        assert_eq!(encode_pairs([("Tag.1.Key", "a b")]), "Tag.1.Key=a%20b");
    }
}
