//! The Alibaba Cloud credentials file (`ALIBABA_CLOUD_CREDENTIALS_FILE`, else
//! `~/.alibabacloud/credentials`): INI, the profile `ALIBABA_CLOUD_PROFILE` (else
//! `default`) with `type = access_key`, `access_key_id`, `access_key_secret`. The reader is
//! the small subset of INI the file uses (`[section]`, `key = value`, `#` and `;`
//! comments), written here rather than taken from a crate.

use super::{Credential, Env, Source};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The profile's credential; `None` when no file is named and the default one is absent.
pub fn from_env(env: Env<'_>, now: i64) -> Result<Option<Credential>, String> {
    let (path, named) = match env("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        Some(path) => (PathBuf::from(path), true),
        None => match env("HOME") {
            Some(home) => (Path::new(&home).join(".alibabacloud/credentials"), false),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the credentials file {}: {e}",
                path.display()
            ))
        }
    };
    let profile = env("ALIBABA_CLOUD_PROFILE").unwrap_or_else(|| "default".to_owned());
    let sections =
        parse_ini(&text).map_err(|(line, what)| format!("{}:{line}: {what}", path.display()))?;
    let section = sections.get(&profile).ok_or_else(|| {
        format!(
            "{}: no [{profile}] profile; add one or set ALIBABA_CLOUD_PROFILE to one the file has",
            path.display()
        )
    })?;
    let field = |name: &str| {
        section
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("{}: profile [{profile}] has no {name}", path.display()))
    };
    let kind = section
        .get("type")
        .map(String::as_str)
        .unwrap_or("access_key");
    if kind != "access_key" {
        return Err(format!(
            "{}: profile [{profile}] has type = {kind:?}; ramgate reads type = \"access_key\" profiles (use the OIDC or ECS RAM role source for the others)",
            path.display()
        ));
    }
    Ok(Some(Credential::new(
        field("access_key_id")?,
        field("access_key_secret")?,
        None,
        None,
        Source::File,
        now,
    )))
}

type Sections = HashMap<String, HashMap<String, String>>;

/// `[section]` → `key = value`; an error names the 1-based line.
pub fn parse_ini(text: &str) -> Result<Sections, (usize, String)> {
    let mut sections = Sections::new();
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                i + 1,
                format!("{line:?} is neither [profile] nor key = value"),
            ));
        };
        let Some(section) = current.as_ref().and_then(|c| sections.get_mut(c)) else {
            return Err((i + 1, "a key before any [profile]".to_owned()));
        };
        let value = value.trim().trim_matches('"');
        section.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_profiles_and_comments() {
        let s = parse_ini(
            "# comment\n[default]\ntype = access_key\naccess_key_id = LTAI1\naccess_key_secret = \"s=1\"\n\n; more\n[other]\naccess_key_id=LTAI2\n",
        )
        .unwrap();
        assert_eq!(s["default"]["access_key_id"], "LTAI1");
        assert_eq!(s["default"]["access_key_secret"], "s=1");
        assert_eq!(s["other"]["access_key_id"], "LTAI2");
        assert_eq!(parse_ini("key = 1\n").unwrap_err().0, 1);
        assert_eq!(parse_ini("[a]\nnonsense\n").unwrap_err().0, 2);
    }
}
