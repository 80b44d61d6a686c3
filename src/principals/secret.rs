//! Access key secrets: resolved at load from exactly one of `secret`, `secret_env` or
//! `secret_file`, and never printed — `Debug` is redacted so a stray `{:?}` cannot leak one.

use super::file::AccessKeyEntry;
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
