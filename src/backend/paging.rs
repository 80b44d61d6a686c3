//! Opaque `NextToken` cursors. A cursor names the first item of the next page by its
//! creation sequence number (and, for tag listings, the tag key), so pages stay stable
//! while groups are created or deleted between calls.

use super::reply::ApiError;

const GROUP_PREFIX: &str = "cg";
const TAG_PREFIX: &str = "tr";

pub fn group_token(seq: u64) -> String {
    format!("{GROUP_PREFIX}{seq:x}")
}

/// The sequence number to start from; an absent or empty token starts at the beginning.
pub fn parse_group_token(token: Option<&str>) -> Result<u64, ApiError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t
            .strip_prefix(GROUP_PREFIX)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(invalid_token),
    }
}

pub fn tag_token(seq: u64, key: &str) -> String {
    let mut token = format!("{TAG_PREFIX}{seq:x}.");
    for b in key.as_bytes() {
        token.push_str(&format!("{b:02x}"));
    }
    token
}

/// `(seq, key)` to start from, if any.
pub fn parse_tag_token(token: Option<&str>) -> Result<Option<(u64, String)>, ApiError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (seq, key) = t
        .strip_prefix(TAG_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .ok_or_else(invalid_token)?;
    let seq = u64::from_str_radix(seq, 16).map_err(|_| invalid_token())?;
    if key.len() % 2 != 0 {
        return Err(invalid_token());
    }
    let bytes = (0..key.len())
        .step_by(2)
        .map(|i| {
            key.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid_token)?;
    let key = String::from_utf8(bytes).map_err(|_| invalid_token())?;
    Ok(Some((seq, key)))
}

fn invalid_token() -> ApiError {
    ApiError::invalid("The specified NextToken is invalid.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(parse_group_token(Some(&group_token(42))).unwrap(), 42);
        assert_eq!(parse_group_token(None).unwrap(), 0);
        assert_eq!(parse_group_token(Some("")).unwrap(), 0);
        let t = tag_token(7, "env/é.x");
        assert_eq!(
            parse_tag_token(Some(&t)).unwrap(),
            Some((7, "env/é.x".to_owned()))
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["x", "cg", "cgzz", "tr1", "tr1.a", "tr1.zz", "trq.00"] {
            let group = parse_group_token(Some(bad)).is_err();
            let tag = parse_tag_token(Some(bad)).is_err();
            assert!(group && tag, "{bad}");
        }
    }
}
