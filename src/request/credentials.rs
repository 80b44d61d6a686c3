//! The credentials a request carries, kept apart from its canonical parameters: they are
//! read by the signature verifier and never forwarded.

use super::RequestError;
use http::{HeaderMap, HeaderValue};

/// Signature material from the `Authorization` and `x-acs-*` headers (V3) and from the
/// `AccessKeyId` / `Signature*` / `Timestamp` / token parameters (RPC v1). Every field is
/// the value as received (decoded, for parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `Authorization` (V3: `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`).
    pub authorization: Option<String>,
    /// `x-acs-action` and `x-acs-version`, as sent (already reconciled with the parameters).
    pub header_action: Option<String>,
    pub header_version: Option<String>,
    pub acs_date: Option<String>,
    pub acs_signature_nonce: Option<String>,
    pub acs_content_sha256: Option<String>,
    pub acs_security_token: Option<String>,
    pub access_key_id: Option<String>,
    pub signature: Option<String>,
    pub signature_method: Option<String>,
    pub signature_version: Option<String>,
    pub signature_nonce: Option<String>,
    pub signature_type: Option<String>,
    pub timestamp: Option<String>,
    pub security_token: Option<String>,
    pub bearer_token: Option<String>,
}

impl Credentials {
    /// True when the request carries a V3 `Authorization` header.
    pub fn has_v3_signature(&self) -> bool {
        self.authorization.is_some()
    }

    /// True when the request carries an RPC v1 `Signature` parameter.
    pub fn has_v1_signature(&self) -> bool {
        self.signature.is_some()
    }

    /// Reads the credential headers. A header given twice is refused: a verifier cannot know
    /// which one was meant.
    pub(super) fn from_headers(headers: &HeaderMap) -> Result<Self, RequestError> {
        // One pass over the request's few headers rather than one hashed look-up per
        // credential header: most requests carry none of them.
        let mut seen: [Seen; 7] = Default::default();
        for (name, value) in headers {
            let slot = HEADERS
                .iter()
                .position(|h| *h == name.as_str())
                .and_then(|i| seen.get_mut(i));
            if let Some(slot) = slot {
                slot.twice |= slot.value.is_some();
                slot.value = Some(value);
            }
        }
        // Read in the order of HEADERS, so the first problem reported is the same as ever.
        let [authorization, header_action, header_version, acs_date, acs_signature_nonce, acs_content_sha256, acs_security_token] =
            std::array::from_fn(|i| seen[i].read(HEADERS[i]));
        Ok(Self {
            authorization: authorization?,
            header_action: header_action?,
            header_version: header_version?,
            acs_date: acs_date?,
            acs_signature_nonce: acs_signature_nonce?,
            acs_content_sha256: acs_content_sha256?,
            acs_security_token: acs_security_token?,
            ..Self::default()
        })
    }

    /// Stores a credential parameter; `false` when `name` is not one (the caller keeps it).
    pub(super) fn take_param(&mut self, name: &str, value: &str) -> bool {
        let slot = match name {
            "AccessKeyId" => &mut self.access_key_id,
            "BearerToken" => &mut self.bearer_token,
            "SecurityToken" => &mut self.security_token,
            "Signature" => &mut self.signature,
            "SignatureMethod" => &mut self.signature_method,
            "SignatureNonce" => &mut self.signature_nonce,
            "SignatureType" => &mut self.signature_type,
            "SignatureVersion" => &mut self.signature_version,
            "Timestamp" => &mut self.timestamp,
            _ => return false,
        };
        *slot = Some(value.to_owned());
        true
    }
}

/// The credential headers, in the order [`Credentials::from_headers`] reads them.
const HEADERS: [&str; 7] = [
    "authorization",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "x-acs-security-token",
];

/// What a request carries of one header: a value, and whether there was more than one.
#[derive(Default, Clone, Copy)]
struct Seen<'a> {
    value: Option<&'a HeaderValue>,
    twice: bool,
}

impl Seen<'_> {
    /// The one value of header `name`, if present; twice, or not visible ASCII, is refused.
    fn read(self, name: &str) -> Result<Option<String>, RequestError> {
        let Some(value) = self.value else {
            return Ok(None);
        };
        if self.twice {
            return Err(RequestError::Malformed(format!(
                "the header {name} is given more than once; send it once"
            )));
        }
        value
            .to_str()
            .map(|v| Some(v.to_owned()))
            .map_err(|_| RequestError::Malformed(format!("the header {name} is not visible ASCII")))
    }
}

/// The one value of header `name`, if present; twice, or not visible ASCII, is refused.
pub(super) fn single_header(
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<String>, RequestError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next();
    Seen {
        value,
        twice: values.next().is_some(),
    }
    .read(name)
}
