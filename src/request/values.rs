//! Validation of the single-valued parameters whose form matters to authorization or to
//! the proxy: `ContainerGroupIds`, `Limit`, `All`, `Command`, `ResourceType`.

use super::RequestError;

pub(super) const MAX_GROUP_IDS: usize = 20;
pub(super) const MAX_LIMIT: u32 = 20;

/// `ContainerGroupIds`: a non-empty JSON array of unique, non-empty strings, at most 20.
pub(super) fn container_group_ids(raw: &str) -> Result<Vec<String>, RequestError> {
    let param = "ContainerGroupIds";
    let ids: Vec<String> = serde_json::from_str(raw).map_err(|_| {
        RequestError::invalid(
            param,
            r#"it must be a JSON array of ids in a string, e.g. ["eci-a","eci-b"]"#,
        )
    })?;
    if ids.is_empty() || ids.len() > MAX_GROUP_IDS {
        return Err(RequestError::invalid(
            param,
            format!(
                "it names {} container groups; name 1 to {MAX_GROUP_IDS}",
                ids.len()
            ),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(RequestError::invalid(param, "it contains an empty id"));
        }
        if ids[..i].contains(id) {
            return Err(RequestError::invalid(
                param,
                format!("{id:?} is given twice; give each id once"),
            ));
        }
    }
    Ok(ids)
}

/// `ids` as the JSON array string ramgate forwards.
pub(super) fn ids_json(ids: &[String]) -> String {
    // Serialising a slice of strings cannot fail; the fallback keeps it total anyway, and
    // an empty array never widens a query.
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

/// `Limit`: a plain decimal from 1 to 20 (ramgate filters answers page by page).
pub(super) fn limit(raw: &str) -> Result<(), RequestError> {
    let plain = !raw.is_empty() && !raw.starts_with('0') && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u32>() {
        Ok(n) if plain && (1..=MAX_LIMIT).contains(&n) => Ok(()),
        _ => Err(RequestError::invalid(
            "Limit",
            format!("it must be an integer from 1 to {MAX_LIMIT}, got {raw:?}"),
        )),
    }
}

/// `All` (UntagResources): `true` or `false`, exactly.
pub(super) fn all(raw: &str) -> Result<bool, RequestError> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(RequestError::invalid(
            "All",
            format!("it must be true or false, got {raw:?}"),
        )),
    }
}

/// `Command` (ExecContainerCommand): a JSON array of strings.
pub(super) fn command(raw: &str) -> Result<(), RequestError> {
    serde_json::from_str::<Vec<String>>(raw)
        .map(|_| ())
        .map_err(|_| {
            RequestError::invalid(
                "Command",
                r#"it must be a JSON array of strings, e.g. ["/bin/sh","-c","ls"]"#,
            )
        })
}

/// `ResourceType` on the tag APIs: only container groups are authorized by ramgate.
pub(super) fn resource_type(raw: Option<&str>) -> Result<(), RequestError> {
    match raw {
        Some("ContainerGroup") => Ok(()),
        Some(other) => Err(RequestError::invalid(
            "ResourceType",
            format!("ramgate authorizes tags on container groups only: use ContainerGroup, not {other:?}"),
        )),
        None => Err(RequestError::missing("ResourceType", "the tag APIs need ResourceType=ContainerGroup")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_a_non_empty_unique_string_array() {
        assert_eq!(
            container_group_ids(r#"["a", "b"]"#).unwrap(),
            vec!["a", "b"]
        );
        for bad in [
            "",
            "a",
            "[]",
            "[1]",
            r#"["a","a"]"#,
            r#"[""]"#,
            r#"{"a":1}"#,
            r#"["a"] x"#,
            "null",
        ] {
            assert!(container_group_ids(bad).is_err(), "{bad:?}");
        }
        let many = ids_json(&(0..21).map(|i| format!("eci-{i}")).collect::<Vec<_>>());
        assert!(container_group_ids(&many).is_err());
        assert_eq!(ids_json(&["a\"b".to_owned()]), r#"["a\"b"]"#);
    }

    #[test]
    fn limit_all_command() {
        assert!(limit("1").is_ok() && limit("20").is_ok());
        for bad in ["0", "21", "020", "-1", "+5", "1.0", "", " 5", "99999999999"] {
            assert!(limit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(all("true"), Ok(true));
        assert_eq!(all("false"), Ok(false));
        assert!(all("True").is_err() && all("1").is_err());
        assert!(command(r#"["ls","-l"]"#).is_ok());
        assert!(command("ls -l").is_err() && command("[1]").is_err());
        assert!(resource_type(Some("ContainerGroup")).is_ok());
        assert!(resource_type(Some("containergroup")).is_err());
        assert_eq!(resource_type(None).unwrap_err().code(), "MissingParameter");
    }
}
