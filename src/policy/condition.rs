//! Condition operators and keys: parsed and type-checked once at load, evaluated against a
//! request [`Context`] at decision time.
//!
//! Semantics follow AWS/Alibaba RAM: the values listed for one key are ORed, keys and
//! operators are ANDed (by the caller); a key absent from the request makes a positive
//! operator false and a negated one true. A value that cannot be read as the operator's
//! type (a tag `"abc"` under `NumericLessThan`) is an evaluation *error*, which the policy
//! evaluator turns into "does not allow" / "denies", never into an allow.

use super::pattern::Pattern;
use super::shared;
use crate::model::Tags;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// The request facts conditions can read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// `eci:tag/<k>`: the tags in play for this decision (see SPEC §3).
    pub eci_tags: Option<&'a Tags>,
    /// `acs:ResourceTag/<k>`: the target container group's own tags.
    pub resource_tags: Option<&'a Tags>,
    /// `acs:RequestTag/<k>`: the request's `Tag.N`.
    pub request_tags: Option<&'a Tags>,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: Option<bool>,
    /// `acs:CurrentTime`, as Unix nanoseconds.
    pub now_unix_nanos: Option<i128>,
}

impl Context<'_> {
    /// What the request holds for each condition's key, in words (for `ramgate explain`).
    pub fn describe_facts(&self, conditions: &[Condition]) -> Vec<String> {
        conditions
            .iter()
            .map(|c| match c.key.read(self) {
                None => "absent".to_owned(),
                Some(Fact::Text(t)) => format!("{t:?}"),
                Some(Fact::Ip(ip)) => ip.to_string(),
                Some(Fact::Bool(b)) => b.to_string(),
                Some(Fact::Time(t)) => format!("{t} ns since 1970"),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    EciTag(Arc<str>),
    ResourceTag(Arc<str>),
    RequestTag(Arc<str>),
    SourceIp,
    SecureTransport,
    CurrentTime,
}

impl Key {
    /// Condition key names are case-insensitive; the tag key after the `/` is not.
    pub fn parse(name: &str) -> Option<Key> {
        // Compared without a lowercased copy: a policy directory has tens of thousands.
        let tag = |prefix: &str| {
            name.get(..prefix.len())
                .filter(|start| start.eq_ignore_ascii_case(prefix))
                .map(|_| &name[prefix.len()..])
                .filter(|k| !k.is_empty() && k.len() <= 64)
                .map(shared::text)
        };
        if let Some(k) = tag("eci:tag/") {
            return Some(Key::EciTag(k));
        }
        if let Some(k) = tag("acs:resourcetag/") {
            return Some(Key::ResourceTag(k));
        }
        if let Some(k) = tag("acs:requesttag/") {
            return Some(Key::RequestTag(k));
        }
        [
            ("acs:sourceip", Key::SourceIp),
            ("acs:securetransport", Key::SecureTransport),
            ("acs:currenttime", Key::CurrentTime),
        ]
        .into_iter()
        .find_map(|(known, key)| name.eq_ignore_ascii_case(known).then_some(key))
    }

    fn read<'a>(&self, ctx: &Context<'a>) -> Option<Fact<'a>> {
        match self {
            Key::EciTag(k) => ctx.eci_tags?.get(k).map(Fact::Text),
            Key::ResourceTag(k) => ctx.resource_tags?.get(k).map(Fact::Text),
            Key::RequestTag(k) => ctx.request_tags?.get(k).map(Fact::Text),
            Key::SourceIp => ctx.source_ip.map(Fact::Ip),
            Key::SecureTransport => ctx.secure_transport.map(Fact::Bool),
            Key::CurrentTime => ctx.now_unix_nanos.map(Fact::Time),
        }
    }

    /// The value type of a key, for load-time checks: tags are text and may be read as
    /// any type; the others have one type.
    fn kind(&self) -> Family {
        match self {
            Key::EciTag(_) | Key::ResourceTag(_) | Key::RequestTag(_) => Family::String,
            Key::SourceIp => Family::Ip,
            Key::SecureTransport => Family::Bool,
            Key::CurrentTime => Family::Date,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Fact<'a> {
    Text(&'a str),
    Ip(IpAddr),
    Bool(bool),
    Time(i128),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Ip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// An operator: a family, how it compares, and whether the result is negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub family: Family,
    pub compare: Compare,
    pub negated: bool,
    /// `StringLike`: values are wildcard patterns.
    pub like: bool,
    pub ignore_case: bool,
}

impl Operator {
    /// Operator names are matched exactly, as RAM does.
    pub fn parse(name: &str) -> Option<Operator> {
        let op = |family, compare, negated| Operator {
            family,
            compare,
            negated,
            like: false,
            ignore_case: false,
        };
        use Compare::*;
        use Family::*;
        Some(match name {
            "StringEquals" => op(String, Equals, false),
            "StringNotEquals" => op(String, Equals, true),
            "StringEqualsIgnoreCase" => Operator {
                ignore_case: true,
                ..op(String, Equals, false)
            },
            "StringNotEqualsIgnoreCase" => Operator {
                ignore_case: true,
                ..op(String, Equals, true)
            },
            "StringLike" => Operator {
                like: true,
                ..op(String, Equals, false)
            },
            "StringNotLike" => Operator {
                like: true,
                ..op(String, Equals, true)
            },
            "Bool" => op(Bool, Equals, false),
            "IpAddress" => op(Ip, Equals, false),
            "NotIpAddress" => op(Ip, Equals, true),
            _ => {
                let (family, rest) = if let Some(rest) = name.strip_prefix("Numeric") {
                    (Numeric, rest)
                } else {
                    (Date, name.strip_prefix("Date")?)
                };
                match rest {
                    "Equals" => op(family, Equals, false),
                    "NotEquals" => op(family, Equals, true),
                    "LessThan" => op(family, LessThan, false),
                    "LessThanEquals" => op(family, LessThanEquals, false),
                    "GreaterThan" => op(family, GreaterThan, false),
                    "GreaterThanEquals" => op(family, GreaterThanEquals, false),
                    _ => return None,
                }
            }
        })
    }

    pub const NAMES: &'static [&'static str] = &[
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "IpAddress",
        "NotIpAddress",
    ];
}

/// The policy's values, already converted to the operator's type.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Text(Vec<Arc<str>>),
    Patterns(Vec<Pattern>),
    Numbers(Vec<f64>),
    Times(Vec<i128>),
    Bools(Vec<bool>),
    Networks(Vec<IpNet>),
}

/// One `Operator: { Key: values }` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator_name: Arc<str>,
    pub key_name: Arc<str>,
    pub key: Key,
    operator: Operator,
    values: Values,
}

/// Why a condition could not be built, with the index of the offending value if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub value_index: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

/// Why a condition could not be evaluated for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub key: Arc<str>,
    pub found: String,
    pub expected: &'static str,
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {:?}, which is not {}",
            self.key, self.found, self.expected
        )
    }
}

impl Condition {
    pub fn build(
        operator_name: &str,
        key_name: &str,
        raw_values: &[&str],
    ) -> Result<Condition, BuildError> {
        let plain = |message: String, hint: Option<String>| BuildError {
            value_index: None,
            message,
            hint,
        };
        let operator = Operator::parse(operator_name).ok_or_else(|| {
            plain(
                format!("unknown condition operator \"{operator_name}\""),
                Some(format!("use one of {}", Operator::NAMES.join(", "))),
            )
        })?;
        let key = Key::parse(key_name).ok_or_else(|| {
            plain(
                format!("unknown condition key \"{key_name}\""),
                Some(
                    "use eci:tag/<key>, acs:ResourceTag/<key>, acs:RequestTag/<key>, acs:SourceIp, \
                     acs:SecureTransport or acs:CurrentTime"
                        .into(),
                ),
            )
        })?;
        let key_family = key.kind();
        if key_family != Family::String && key_family != operator.family {
            return Err(plain(
                format!("{operator_name} cannot be used with {key_name}"),
                Some(match key_family {
                    Family::Ip => "use IpAddress or NotIpAddress with acs:SourceIp".into(),
                    Family::Bool => "use Bool with acs:SecureTransport".into(),
                    _ => "use a Date operator (DateLessThan, ...) with acs:CurrentTime".into(),
                }),
            ));
        }
        if raw_values.is_empty() {
            return Err(plain(
                format!("{operator_name} on {key_name} lists no values"),
                Some("give at least one value".into()),
            ));
        }
        let convert = |i: usize, parsed: Option<()>, what: &str| {
            parsed.ok_or_else(|| BuildError {
                value_index: Some(i),
                message: format!(
                    "{:?} is not {what}, as {operator_name} needs",
                    raw_values[i]
                ),
                hint: None,
            })
        };
        // Sized exactly: a snapshot holds tens of thousands of these for as long as it lives.
        let n = raw_values.len();
        let mut values = match (operator.family, operator.like) {
            (Family::String, true) => Values::Patterns(Vec::with_capacity(n)),
            (Family::String, false) => Values::Text(Vec::with_capacity(n)),
            (Family::Numeric, _) => Values::Numbers(Vec::with_capacity(n)),
            (Family::Date, _) => Values::Times(Vec::with_capacity(n)),
            (Family::Bool, _) => Values::Bools(Vec::with_capacity(n)),
            (Family::Ip, _) => Values::Networks(Vec::with_capacity(n)),
        };
        for (i, raw) in raw_values.iter().enumerate() {
            match &mut values {
                Values::Text(v) if operator.ignore_case => {
                    v.push(shared::text(&raw.to_lowercase()))
                }
                Values::Text(v) => v.push(shared::text(raw)),
                Values::Patterns(v) => v.push(Pattern::new(raw)),
                Values::Numbers(v) => {
                    let n = raw.trim().parse::<f64>().ok().filter(|n| n.is_finite());
                    convert(i, n.map(|_| ()), "a number")?;
                    v.extend(n);
                }
                Values::Times(v) => {
                    let t = parse_date(raw);
                    convert(
                        i,
                        t.map(|_| ()),
                        "an ISO 8601 date (e.g. 2026-01-31T12:00:00Z)",
                    )?;
                    v.extend(t);
                }
                Values::Bools(v) => {
                    let b = parse_bool(raw);
                    convert(i, b.map(|_| ()), "true or false")?;
                    v.extend(b);
                }
                Values::Networks(v) => {
                    let n = parse_network(raw);
                    convert(
                        i,
                        n.map(|_| ()),
                        "an IP address or CIDR block (e.g. 10.0.0.0/8)",
                    )?;
                    v.extend(n);
                }
            }
        }
        Ok(Condition {
            operator_name: shared::text(operator_name),
            key_name: shared::text(key_name),
            key,
            operator,
            values,
        })
    }

    /// `StringEquals eci:tag/env in ["test"]`, for messages.
    pub fn describe(&self) -> String {
        let values: Vec<String> = match &self.values {
            Values::Text(v) => v.iter().map(|s| format!("{s:?}")).collect(),
            Values::Patterns(v) => v.iter().map(|p| format!("\"{p}\"")).collect(),
            Values::Numbers(v) => v.iter().map(f64::to_string).collect(),
            Values::Times(v) => v.iter().map(|t| format!("{t} ns since 1970")).collect(),
            Values::Bools(v) => v.iter().map(bool::to_string).collect(),
            Values::Networks(v) => v.iter().map(IpNet::to_string).collect(),
        };
        format!(
            "{} {} [{}]",
            self.operator_name,
            self.key_name,
            values.join(", ")
        )
    }

    /// True when the condition holds for `ctx`.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<bool, EvalError> {
        let Some(fact) = self.key.read(ctx) else {
            return Ok(self.operator.negated);
        };
        let positive = self.positive(fact)?;
        Ok(positive != self.operator.negated)
    }

    fn positive(&self, fact: Fact<'_>) -> Result<bool, EvalError> {
        let error = |found: String, expected| EvalError {
            key: self.key_name.clone(),
            found,
            expected,
        };
        let cmp = self.operator.compare;
        Ok(match (&self.values, fact) {
            (Values::Text(vs), Fact::Text(t)) if self.operator.ignore_case => {
                let t = t.to_lowercase();
                vs.iter().any(|v| **v == *t)
            }
            (Values::Text(vs), Fact::Text(t)) => vs.iter().any(|v| **v == *t),
            (Values::Patterns(ps), Fact::Text(t)) => ps.iter().any(|p| p.matches(t)),
            (Values::Numbers(vs), Fact::Text(t)) => {
                let n = t
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| error(t.to_owned(), "a number"))?;
                vs.iter().any(|v| compare(cmp, n, *v))
            }
            (Values::Times(vs), fact) => {
                let at = match fact {
                    Fact::Time(t) => t,
                    Fact::Text(t) => {
                        parse_date(t).ok_or_else(|| error(t.to_owned(), "an ISO 8601 date"))?
                    }
                    other => return Err(error(format!("{other:?}"), "a date")),
                };
                vs.iter().any(|v| compare(cmp, at, *v))
            }
            (Values::Bools(vs), fact) => {
                let b = match fact {
                    Fact::Bool(b) => b,
                    Fact::Text(t) => {
                        parse_bool(t).ok_or_else(|| error(t.to_owned(), "true or false"))?
                    }
                    other => return Err(error(format!("{other:?}"), "true or false")),
                };
                vs.contains(&b)
            }
            (Values::Networks(ns), fact) => {
                let ip = match fact {
                    Fact::Ip(ip) => ip,
                    Fact::Text(t) => t
                        .trim()
                        .parse()
                        .map_err(|_| error(t.to_owned(), "an IP address"))?,
                    other => return Err(error(format!("{other:?}"), "an IP address")),
                };
                let ip = canonical_ip(ip);
                ns.iter().any(|n| n.contains(&ip))
            }
            (_, other) => return Err(error(format!("{other:?}"), "text")),
        })
    }
}

fn compare<T: PartialOrd>(how: Compare, found: T, wanted: T) -> bool {
    match how {
        Compare::Equals => found == wanted,
        Compare::LessThan => found < wanted,
        Compare::LessThanEquals => found <= wanted,
        Compare::GreaterThan => found > wanted,
        Compare::GreaterThanEquals => found >= wanted,
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`) is the IPv4 address it carries.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_network(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .ok()
        .or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

/// ISO 8601 / RFC 3339 date-times (with `Z` or an offset), or a plain date (midnight UTC).
pub fn parse_date(raw: &str) -> Option<i128> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let raw = raw.trim();
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    let date = time::Date::parse(raw, &Iso8601::DEFAULT).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp_nanos())
}

#[cfg(test)]
mod tests;
