//! Access key secrets: resolved at load from exactly one of `secret`, `secret_env` or
//! `secret_file`, and never printed — `Debug` is redacted so a stray `{:?}` cannot leak one.
//! The HMAC states keyed with a secret ([`KeyedMacs`]) are as good as the secret, and are
//! redacted the same way.

use super::file::AccessKeyEntry;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use std::path::Path;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: impl Into<Box<str>>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The two HMACs a signature is verified with, keyed once with an access key's secret (when
/// the policies load) so that a request only clones the keyed state: keying hashes the
/// padded key twice, which would otherwise be paid again on every signed request.
#[derive(Clone)]
pub struct KeyedMacs {
    /// ACS3-HMAC-SHA256: keyed with the secret as is.
    acs3: Hmac<Sha256>,
    /// RPC v1 HMAC-SHA1: keyed with the secret followed by `&`.
    rpc_v1: Hmac<Sha1>,
}

impl KeyedMacs {
    /// Keys both HMACs with `secret`. HMAC takes keys of any length (a long one is hashed
    /// first), so this cannot fail; it returns `None` only if the `hmac` crate ever did.
    pub fn new(secret: &str) -> Option<Self> {
        let acs3 = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
        let mut v1_key = Vec::with_capacity(secret.len() + 1);
        v1_key.extend_from_slice(secret.as_bytes());
        v1_key.push(b'&');
        let rpc_v1 = <Hmac<Sha1> as Mac>::new_from_slice(&v1_key).ok();
        // The copy held the secret: wipe it rather than leave it in freed memory.
        v1_key.fill(0);
        Some(Self {
            acs3,
            rpc_v1: rpc_v1?,
        })
    }

    /// A fresh HMAC-SHA256 under the secret, ready for the string to sign.
    pub fn acs3(&self) -> Hmac<Sha256> {
        self.acs3.clone()
    }

    /// A fresh HMAC-SHA1 under `secret&`, ready for the string to sign.
    pub fn rpc_v1(&self) -> Hmac<Sha1> {
        self.rpc_v1.clone()
    }
}

impl std::fmt::Debug for KeyedMacs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedMacs(<redacted>)")
    }
}

/// The secret of one key, or a message and hint that do not contain it.
pub fn resolve(entry: &AccessKeyEntry, base: &Path) -> Result<Secret, (String, String)> {
    let id = entry.id.get_ref();
    let given = [&entry.secret, &entry.secret_env, &entry.secret_file]
        .iter()
        .filter(|s| s.is_some())
        .count();
    if given != 1 {
        return Err((
            format!("the access key \"{id}\" needs exactly one of secret, secret_env or secret_file ({given} given)"),
            "use secret_env or secret_file in production; secret = \"...\" only for demos".into(),
        ));
    }
    let value = if let Some(s) = &entry.secret {
        s.clone()
    } else if let Some(var) = &entry.secret_env {
        std::env::var(var).map_err(|_| {
            (
                format!(
                    "the environment variable {var} (secret of access key \"{id}\") is not set"
                ),
                format!("export {var} before starting ramgate, or use secret_file"),
            )
        })?
    } else {
        let file = entry.secret_file.as_deref().unwrap_or_default();
        let path = base.join(file);
        std::fs::read_to_string(&path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| {
                (
                    format!(
                        "cannot read {} (secret of access key \"{id}\"): {e}",
                        path.display()
                    ),
                    "secret_file is relative to principals.toml".into(),
                )
            })?
    };
    if value.is_empty() {
        return Err((
            format!("the secret of access key \"{id}\" is empty"),
            "set a non-empty secret".into(),
        ));
    }
    Ok(Secret::new(value))
}
