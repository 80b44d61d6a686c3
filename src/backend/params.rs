//! The parameters of one API call, merged from the query string and a form body, with the
//! typed readers the actions need: required values, booleans, `Limit`, JSON lists in a
//! string, and 1-based flattened lists such as `Tag.N.Key` or `ResourceId.N`.
//!
//! Like the real service, a parameter given twice (also once in the query and once in the
//! body) is refused: a proxy that forwards an ambiguous request should fail loudly here.

use super::reply::ApiError;
use crate::model::Tags;
use crate::request::encoding::parse_urlencoded;
use std::collections::{BTreeMap, HashMap};

/// Tags per resource, and tag filters per request, as Alibaba limits them.
pub const MAX_TAGS: usize = 20;
/// Default and largest page size.
pub const MAX_LIMIT: usize = 20;

#[derive(Debug, Default)]
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    /// Merges the query string and an optional form body.
    pub fn parse(query: &str, form_body: Option<&str>) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for source in std::iter::once(query).chain(form_body) {
            let pairs = parse_urlencoded(source).map_err(|e| ApiError::invalid(e.to_string()))?;
            for (name, value) in pairs {
                if map.contains_key(&name) {
                    return Err(ApiError::invalid(format!(
                        "The parameter \"{name}\" is given more than once."
                    )));
                }
                map.insert(name, value);
            }
        }
        Ok(Self { map })
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            map: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// An absent or empty value is missing.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    }

    /// A non-empty value, if any.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// `true`/`false` (any case); absent or empty is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.optional(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(format!(
                "The parameter \"{name}\" must be true or false, not {v:?}."
            ))),
        }
    }

    pub fn number(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.optional(name)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "The parameter \"{name}\" must be a number, not {v:?}."
                        ))
                    })
            })
            .transpose()
    }

    /// `Limit`: 1..=20, default 20.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.optional("Limit") {
            None => Ok(MAX_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::invalid(format!("The parameter \"Limit\" must be an integer from 1 to {MAX_LIMIT}, not {v:?}."))),
        }
    }

    /// A JSON array of strings carried in one parameter (`ContainerGroupIds`, `Command`).
    /// It must not be empty.
    pub fn json_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(raw) = self.optional(name) else {
            return Ok(None);
        };
        match serde_json::from_str::<Vec<String>>(raw) {
            Ok(list) if !list.is_empty() => Ok(Some(list)),
            _ => Err(ApiError::invalid(format!(
                "The parameter \"{name}\" must be a non-empty JSON array of strings."
            ))),
        }
    }

    /// `Prefix.N` values by index, e.g. `ResourceId.1`, `TagKey.2`.
    pub fn list(&self, prefix: &str) -> Result<BTreeMap<usize, &str>, ApiError> {
        let mut out = BTreeMap::new();
        for (name, value) in &self.map {
            if let Some((index, None)) = split_indexed(name, prefix)? {
                out.insert(index, value.as_str());
            }
        }
        Ok(out)
    }

    /// `Prefix.N.Field` values by index then field, e.g. `Container.1.Image`.
    pub fn records(&self, prefix: &str) -> Result<BTreeMap<usize, HashMap<&str, &str>>, ApiError> {
        let mut out: BTreeMap<usize, HashMap<&str, &str>> = BTreeMap::new();
        for (name, value) in &self.map {
            if let Some((index, Some(field))) = split_indexed(name, prefix)? {
                out.entry(index).or_default().insert(field, value.as_str());
            }
        }
        Ok(out)
    }

    /// `Tag.N.Key` / `Tag.N.Value` as a filter: a key without a value matches any value.
    pub fn tag_filter(&self) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for (index, fields) in self.records("Tag")? {
            let key = fields.get("Key").copied().filter(|k| !k.is_empty());
            let Some(key) = key else {
                return Err(ApiError::missing(&format!("Tag.{index}.Key")));
            };
            if out.iter().any(|(k, _)| k == key) {
                return Err(ApiError::invalid(format!(
                    "The tag key {key:?} is given more than once."
                )));
            }
            out.push((key.to_owned(), fields.get("Value").map(|v| (*v).to_owned())));
        }
        if out.len() > MAX_TAGS {
            return Err(ApiError::invalid(format!(
                "At most {MAX_TAGS} tags may be given."
            )));
        }
        for (key, value) in &out {
            validate_tag(key, value.as_deref().unwrap_or(""))?;
        }
        Ok(out)
    }

    /// Refuses the tag parameters `action` does not take: the catalogue's
    /// [`TagParams`](crate::catalogue::TagParams), the model ramgate authorizes on, so that
    /// a parameter is never read here that the decision did not read. (A filter's
    /// `Tag.N.Key` alone keeps ECI's meaning here, "any value"; ramgate refuses it before
    /// it could be forwarded.)
    pub fn tag_params_taken(&self, action: &crate::catalogue::ActionSpec) -> Result<(), ApiError> {
        let taken = action.tag_params();
        let refuse = |param: &str| {
            Err(ApiError::invalid(format!(
                "The parameter \"{param}\" is not taken by {}.",
                action.name
            )))
        };
        for name in self.map.keys() {
            let family = name.split('.').next().unwrap_or_default();
            match family {
                "Tag" if !taken.takes_tags() => return refuse(name),
                "TagKey" | "All" if !taken.takes_removals() => return refuse(name),
                _ => {}
            }
        }
        Ok(())
    }

    /// `Tag.N` as tags to set: a missing value is the empty value.
    pub fn tags(&self) -> Result<Tags, ApiError> {
        Ok(Tags::from_pairs(
            self.tag_filter()?
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default())),
        ))
    }
}

fn validate_tag(key: &str, value: &str) -> Result<(), ApiError> {
    if key.chars().count() > 64 {
        return Err(ApiError::invalid(format!(
            "The tag key {key:?} is longer than 64 characters."
        )));
    }
    if value.chars().count() > 128 {
        return Err(ApiError::invalid(format!(
            "The value of tag {key:?} is longer than 128 characters."
        )));
    }
    Ok(())
}

/// `Prefix.N` → `(N, None)`, `Prefix.N.Field` → `(N, Some(Field))`, other names → `None`.
/// A name with the prefix but no valid 1-based index is an error, not silently ignored.
fn split_indexed<'a>(
    name: &'a str,
    prefix: &str,
) -> Result<Option<(usize, Option<&'a str>)>, ApiError> {
    let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
        return Ok(None);
    };
    let (index, field) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let index = index
        .parse::<usize>()
        .ok()
        .filter(|i| *i >= 1 && !index.starts_with('0'))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "The parameter \"{name}\" has no valid 1-based index."
            ))
        })?;
    Ok(Some((index, field)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_query_and_body_and_refuses_duplicates() {
        let p = Params::parse("A=1&B=2", Some("C=3")).unwrap();
        assert_eq!((p.get("A"), p.get("C")), (Some("1"), Some("3")));
        assert!(Params::parse("A=1", Some("A=1")).is_err());
        assert!(Params::parse("A=1&A=2", None).is_err());
        assert!(Params::parse("A=%zz", None).is_err());
    }

    #[test]
    fn reads_flattened_lists() {
        let p = Params::from_pairs(&[
            ("Tag.2.Key", "b"),
            ("Tag.1.Key", "a"),
            ("Tag.1.Value", "x"),
            ("ResourceId.1", "eci-1"),
            ("TagKey.1", "k"),
        ]);
        assert_eq!(
            p.tag_filter().unwrap(),
            vec![("a".into(), Some("x".into())), ("b".into(), None)]
        );
        assert_eq!(p.tags().unwrap().get("b"), Some(""));
        assert_eq!(
            p.list("ResourceId")
                .unwrap()
                .into_values()
                .collect::<Vec<_>>(),
            vec!["eci-1"]
        );
        assert_eq!(
            p.list("Tag").unwrap().len(),
            0,
            "Tag.N.Key is a record, not a list item"
        );
        assert!(Params::from_pairs(&[("Tag.0.Key", "a")])
            .tag_filter()
            .is_err());
        assert!(Params::from_pairs(&[("Tag.1.Value", "a")])
            .tag_filter()
            .is_err());
        assert!(
            Params::from_pairs(&[("Tag.1.Key", "a"), ("Tag.2.Key", "a")])
                .tag_filter()
                .is_err()
        );
    }

    #[test]
    fn tag_parameters_an_action_does_not_take_are_refused() {
        let spec = |name| crate::catalogue::lookup(name).expect("catalogued");
        let untag_with_tags = Params::from_pairs(&[("TagKey.1", "a"), ("Tag.1.Key", "a")]);
        assert!(untag_with_tags
            .tag_params_taken(spec("UntagResources"))
            .is_err());
        let tag_with_all = Params::from_pairs(&[("Tag.1.Key", "a"), ("All", "true")]);
        assert!(tag_with_all.tag_params_taken(spec("TagResources")).is_err());
        assert!(tag_with_all
            .tag_params_taken(spec("UpdateContainerGroup"))
            .is_err());
        let keys = Params::from_pairs(&[("TagKey.1", "a")]);
        assert!(keys.tag_params_taken(spec("UntagResources")).is_ok());
        assert!(keys.tag_params_taken(spec("TagResources")).is_err());
        let filter = Params::from_pairs(&[("Tag.1.Key", "a")]);
        assert!(filter
            .tag_params_taken(spec("DescribeContainerGroups"))
            .is_ok());
        assert!(filter
            .tag_params_taken(spec("DeleteContainerGroup"))
            .is_err());
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(Params::default().limit().unwrap(), 20);
        assert_eq!(Params::from_pairs(&[("Limit", "5")]).limit().unwrap(), 5);
        for bad in ["0", "21", "x", "-1"] {
            assert!(
                Params::from_pairs(&[("Limit", bad)]).limit().is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_lists_must_be_non_empty_string_arrays() {
        let ok = Params::from_pairs(&[("Ids", r#"["a","b"]"#)]);
        assert_eq!(
            ok.json_list("Ids").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        for bad in ["[]", "a", "[1]", "{}"] {
            assert!(
                Params::from_pairs(&[("Ids", bad)])
                    .json_list("Ids")
                    .is_err(),
                "{bad}"
            );
        }
        assert_eq!(Params::default().json_list("Ids").unwrap(), None);
    }
}
