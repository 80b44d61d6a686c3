//! Percent-encoding as the wire protocol uses it: strict decoding of query strings and
//! form bodies, and RFC 3986 encoding for everything ramgate writes or signs.
//!
//! Decoding is strict on purpose: a malformed escape or bytes that are not UTF-8 make the
//! request ambiguous, and an ambiguous request is refused rather than guessed at.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
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
    if input.is_empty() {
        return Ok(Vec::new());
    }
    // One allocation for the list: there are at most as many pairs as segments.
    let mut pairs = Vec::with_capacity(input.bytes().filter(|b| *b == b'&').count() + 1);
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
    // One pass into one buffer: `+` is a space, `%XX` its byte (every `%` was checked
    // above to be followed by two hex digits), anything else itself.
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?))
                    .ok_or_else(|| EncodingError::BadEscape(raw.to_owned()))?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| EncodingError::NotUtf8(raw.to_owned()))
}

/// The value of one hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 encoding (space as `%20`, `~` kept), as Alibaba Cloud's signers use it.
pub fn rfc3986_encode(value: &str) -> Cow<'_, str> {
    // Most names and values need no escape: one table look-up per byte says so.
    if value.bytes().all(is_unreserved) {
        return Cow::Borrowed(value);
    }
    utf8_percent_encode(value, RFC3986).into()
}

/// Appends [`rfc3986_encode`]`(value)` to `out`.
fn rfc3986_encode_into(out: &mut String, value: &str) {
    if value.bytes().all(is_unreserved) {
        out.push_str(value);
    } else {
        out.extend(utf8_percent_encode(value, RFC3986));
    }
}

/// Appends `encode(encode(value))` to `out`, [`rfc3986_encode`] twice, in one pass: an
/// unreserved byte is itself both times, any other byte `b` is `%XX` once and `%25XX` twice
/// (the `%` is escaped, the hex digits are unreserved). RPC v1's string to sign encodes
/// the encoded query once more.
pub fn rfc3986_encode_twice_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = value;
    while !rest.is_empty() {
        let plain = rest
            .bytes()
            .position(|b| !is_unreserved(b))
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(plain);
        out.push_str(head);
        let Some(&b) = tail.as_bytes().first() else {
            break;
        };
        out.push_str("%25");
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
        // A byte that is not unreserved may be the first of a multi-byte character: go on
        // byte by byte until the next character boundary, escaping each.
        let mut next = 1;
        while !tail.is_char_boundary(next) {
            let b = tail.as_bytes()[next];
            out.push_str("%25");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
            next += 1;
        }
        rest = &tail[next..];
    }
}

/// The RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`), which are never escaped:
/// the complement of [`RFC3986`].
fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// [`is_unreserved`] as a table, one look-up per byte.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

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
        rfc3986_encode_into(&mut out, name);
        out.push('=');
        rfc3986_encode_into(&mut out, value);
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
    fn decodes_as_percent_decoding_after_plus_to_space() {
        for raw in ["a%20b", "%E6%97%A5+x", "%2b%2B+", "%41%7e~", "", "plain"] {
            let reference = percent_encoding::percent_decode_str(&raw.replace('+', " "))
                .decode_utf8()
                .unwrap()
                .into_owned();
            assert_eq!(decode_component(raw).unwrap(), reference, "{raw:?}");
        }
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

    #[test]
    fn the_unreserved_table_is_the_complement_of_the_escaped_set() {
        for b in 0..128u8 {
            let text = char::from(b).to_string();
            let kept = utf8_percent_encode(&text, RFC3986).to_string() == text;
            assert_eq!(is_unreserved(b), kept, "{b}");
        }
        // Bytes of multi-byte characters are always escaped.
        assert!((128..=255u8).all(|b| !is_unreserved(b)));
    }

    #[test]
    fn encoding_twice_in_one_pass_is_encoding_twice() {
        for value in [
            "",
            "plain-_.~09AZaz",
            "a b*~/é",
            "%2F&=+",
            "日本語x",
            "é",
            "\u{7f}\u{0}",
        ] {
            let mut once_more = String::new();
            rfc3986_encode_twice_into(&mut once_more, value);
            assert_eq!(
                once_more,
                rfc3986_encode(&rfc3986_encode(value)),
                "{value:?}"
            );
        }
    }
}
