//! The identity of a verified client certificate (SPEC §2, mTLS): its first URI SAN (a
//! SPIFFE id, typically), else its first DNS SAN, else its subject's common name. The
//! certificate has already been verified against `client_ca` by the TLS handshake; this
//! only names it, and [`crate::identity::resolve`] matches the name to a principal.
//!
//! The SANs are read with webpki (already in the build for rustls, and the very parser that
//! verified the certificate); webpki gives the subject only as raw DER, so the common name
//! is read from it by the small, bounds-checked DER walk below rather than by a full X.509
//! library.

use rustls::pki_types::CertificateDer;
use webpki::EndEntityCert;

/// The name a DER-encoded certificate stands for, or `None` when it has none (or cannot be
/// read, which a verified certificate always can).
pub fn client_id(der: &[u8]) -> Option<String> {
    let der = CertificateDer::from(der);
    let cert = EndEntityCert::try_from(&der).ok()?;
    let san = cert
        .valid_uri_names()
        .find(|n| !n.is_empty())
        .or_else(|| cert.valid_dns_names().find(|n| !n.is_empty()));
    if let Some(name) = san {
        return Some(name.to_owned());
    }
    common_name(cert.subject()).filter(|cn| !cn.is_empty())
}

/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const BMP_STRING: u8 = 0x1e;

/// The first common name of a subject given as the contents of its `Name` SEQUENCE (a
/// sequence of `SET OF AttributeTypeAndValue`), as webpki returns it.
fn common_name(subject: &[u8]) -> Option<String> {
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (tag, attributes, rest) = tlv(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let mut attributes = attributes;
        while !attributes.is_empty() {
            let (tag, attribute, rest) = tlv(attributes)?;
            attributes = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag != OID || oid != COMMON_NAME {
                continue;
            }
            let (tag, text, _) = tlv(value)?;
            return match tag {
                UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
                    std::str::from_utf8(text).ok().map(str::to_owned)
                }
                BMP_STRING if text.len() % 2 == 0 => char::decode_utf16(
                    text.chunks_exact(2)
                        .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
                )
                .collect::<Result<String, _>>()
                .ok(),
                // T61String and the rest: not a name ramgate can match reliably.
                _ => None,
            };
        }
    }
    None
}

/// Splits one DER element off `input`: its tag, its contents and what follows. Definite
/// lengths of up to four bytes only (DER); anything else is `None`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SET { SEQUENCE { OID, value } }` for one attribute.
    fn rdn(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut atv = vec![OID, oid.len() as u8];
        atv.extend_from_slice(oid);
        atv.extend_from_slice(&[tag, value.len() as u8]);
        atv.extend_from_slice(value);
        let mut seq = vec![SEQUENCE, atv.len() as u8];
        seq.extend(atv);
        let mut set = vec![SET, seq.len() as u8];
        set.extend(seq);
        set
    }

    #[test]
    fn finds_the_common_name_after_other_attributes() {
        let organisation = [0x55, 0x04, 0x0a];
        let mut subject = rdn(&organisation, UTF8_STRING, b"Example");
        subject.extend(rdn(COMMON_NAME, PRINTABLE_STRING, b"liumi"));
        assert_eq!(common_name(&subject).as_deref(), Some("liumi"));
        assert_eq!(
            common_name(&rdn(COMMON_NAME, BMP_STRING, &[0, b'a', 0, b'b'])).as_deref(),
            Some("ab")
        );
        assert_eq!(common_name(&rdn(&organisation, UTF8_STRING, b"x")), None);
    }

    #[test]
    fn malformed_subjects_are_none_not_a_panic() {
        let good = rdn(COMMON_NAME, UTF8_STRING, b"liumi");
        for cut in 0..good.len() {
            let _ = common_name(&good[..cut]);
        }
        assert_eq!(common_name(&[SET, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[SET, 0x80]), None);
        assert_eq!(common_name(&[SEQUENCE, 0]), None);
    }
}
