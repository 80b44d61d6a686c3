//! Flattened lists (`Tag.N.Key`/`Tag.N.Value`, `ResourceId.N`, `TagKey.N`): indexes must
//! run 1..n without gaps, entries must be unique, and nothing else may hide under the
//! prefix, so that every reader of the list sees the same items.

use super::RequestError;
use crate::model::Tags;

pub(super) const MAX_TAGS: usize = 20;
pub(super) const MAX_RESOURCE_IDS: usize = 50;
pub(super) const MAX_TAG_KEYS: usize = 20;
const MAX_TAG_KEY_CHARS: usize = 64;
const MAX_TAG_VALUE_CHARS: usize = 128;

/// A 1-based index written as a plain decimal without leading zeros, at most `max`.
fn index(text: &str, max: usize) -> Option<usize> {
    if text.is_empty() || text.len() > 2 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (1..=max).contains(n))
}

fn bad_index(name: &str, family: &str, max: usize) -> RequestError {
    RequestError::invalid(
        name,
        format!("{family}.N takes N from 1 to {max}, written without leading zeros"),
    )
}

/// Sorts `(index, _)` entries and checks they are exactly 1..=n.
fn check_contiguous<T>(entries: &mut [(usize, T)], family: &str) -> Result<(), RequestError> {
    entries.sort_unstable_by_key(|(n, _)| *n);
    for (expected, (n, _)) in (1..).zip(entries.iter()) {
        if *n != expected {
            return Err(RequestError::invalid(
                format!("{family}.{n}"),
                format!("{family}.N indexes must run 1..n without gaps, but {family}.{expected} is missing"),
            ));
        }
    }
    Ok(())
}

/// One `Tag.N`'s key and value, as far as given.
type TagSlot<'a> = (Option<&'a str>, Option<&'a str>);

/// Collects `Tag.N.Key` / `Tag.N.Value` entries one name at a time, then validates them.
#[derive(Default)]
pub(super) struct TagsBuilder<'a> {
    entries: Vec<(usize, TagSlot<'a>)>,
}

impl<'a> TagsBuilder<'a> {
    /// `rest` is the name after `Tag.`.
    pub(super) fn add(
        &mut self,
        name: &str,
        rest: &str,
        value: &'a str,
    ) -> Result<(), RequestError> {
        let malformed = || {
            RequestError::invalid(
                name,
                "tags are given as Tag.N.Key and Tag.N.Value (N from 1)",
            )
        };
        let (n, field) = rest.split_once('.').ok_or_else(malformed)?;
        let n = index(n, MAX_TAGS).ok_or_else(|| bad_index(name, "Tag", MAX_TAGS))?;
        let slot = match self.entries.iter_mut().find(|(i, _)| *i == n) {
            Some((_, slot)) => slot,
            None => {
                self.entries.push((n, (None, None)));
                let last = self.entries.len() - 1;
                &mut self.entries[last].1
            }
        };
        match field {
            "Key" => slot.0 = Some(value),
            "Value" => slot.1 = Some(value),
            _ => return Err(malformed()),
        }
        Ok(())
    }

    /// `filter`: the action reads `Tag.N` as a filter, where a key without its value would
    /// mean "any value" to ECI but the empty value to ramgate: refused.
    pub(super) fn finish(mut self, filter: bool) -> Result<Tags, RequestError> {
        check_contiguous(&mut self.entries, "Tag")?;
        let mut tags = Tags::new();
        for (n, (key, value)) in self.entries {
            let Some(key) = key else {
                return Err(RequestError::missing(
                    format!("Tag.{n}.Key"),
                    format!("Tag.{n}.Value is given without its key; give Tag.{n}.Key too"),
                ));
            };
            if filter && value.is_none() {
                return Err(RequestError::invalid(
                    format!("Tag.{n}.Key"),
                    format!("this action reads Tag.N as a filter, and a key without its value would match any value, which is not what is authorized: give Tag.{n}.Value too"),
                ));
            }
            let value = value.unwrap_or_default();
            let chars = key.chars().count();
            if chars == 0 || chars > MAX_TAG_KEY_CHARS {
                return Err(RequestError::invalid(
                    format!("Tag.{n}.Key"),
                    format!("a tag key is 1 to {MAX_TAG_KEY_CHARS} characters long"),
                ));
            }
            if value.chars().count() > MAX_TAG_VALUE_CHARS {
                return Err(RequestError::invalid(
                    format!("Tag.{n}.Value"),
                    format!("a tag value is at most {MAX_TAG_VALUE_CHARS} characters long"),
                ));
            }
            if tags.get(key).is_some() {
                return Err(RequestError::invalid(
                    format!("Tag.{n}.Key"),
                    format!("the tag key {key:?} is given twice; give each key once"),
                ));
            }
            tags.set(key.to_owned(), value.to_owned());
        }
        Ok(tags)
    }
}

/// Collects a list of plain values such as `ResourceId.N` or `TagKey.N`.
pub(super) struct ListBuilder<'a> {
    family: &'static str,
    max: usize,
    entries: Vec<(usize, &'a str)>,
}

impl<'a> ListBuilder<'a> {
    pub(super) fn new(family: &'static str, max: usize) -> Self {
        Self {
            family,
            max,
            entries: Vec::new(),
        }
    }

    /// `rest` is the name after `<family>.`, or `None` for the bare family name.
    pub(super) fn add(
        &mut self,
        name: &str,
        rest: Option<&str>,
        value: &'a str,
    ) -> Result<(), RequestError> {
        let n = rest
            .and_then(|r| index(r, self.max))
            .ok_or_else(|| bad_index(name, self.family, self.max))?;
        self.entries.push((n, value));
        Ok(())
    }

    /// The values in index order.
    pub(super) fn finish(mut self) -> Result<Vec<String>, RequestError> {
        let family = self.family;
        check_contiguous(&mut self.entries, family)?;
        let mut values: Vec<String> = Vec::with_capacity(self.entries.len());
        for (n, value) in self.entries {
            if value.is_empty() {
                return Err(RequestError::invalid(
                    format!("{family}.{n}"),
                    "it is empty; remove it or give a value",
                ));
            }
            if values.iter().any(|v| v == value) {
                return Err(RequestError::invalid(
                    format!("{family}.{n}"),
                    format!("{value:?} is given twice; give each once"),
                ));
            }
            values.push(value.to_owned());
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_plain_decimals_in_range() {
        assert_eq!(index("1", 20), Some(1));
        assert_eq!(index("20", 20), Some(20));
        for bad in ["0", "01", "21", "", "+1", "-1", "1a", "100", " 1"] {
            assert_eq!(index(bad, 20), None, "{bad:?}");
        }
        assert_eq!(index("50", 50), Some(50));
    }
}
