//! Wildcard patterns (`*` any run, `?` one character) for actions, resources and
//! `StringLike`, compiled once so the common shapes (`*`, an exact name, `prefix*`) need no
//! backtracking at request time.

use super::shared;
use std::sync::Arc;

/// A compiled wildcard pattern. Case folding, where wanted, is done by the caller on both
/// sides before compiling and before matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Any,
    Exact(Arc<str>),
    Prefix(Arc<str>),
    Glob(Arc<str>),
}

impl Pattern {
    pub fn new(source: &str) -> Self {
        if source == "*" {
            return Pattern::Any;
        }
        let wild = |c: char| c == '*' || c == '?';
        match source.find(wild) {
            None => Pattern::Exact(shared::text(source)),
            Some(i) if i == source.len() - 1 && source.ends_with('*') => {
                Pattern::Prefix(shared::text(&source[..i]))
            }
            Some(_) => Pattern::Glob(shared::text(source)),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) => **p == *text,
            Pattern::Prefix(p) => text.starts_with(&**p),
            Pattern::Glob(p) => glob_match(p, text),
        }
    }
}

/// What a pattern can match among the texts that start with a given prefix (the ARNs of
/// every container group in one account and region, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixMatch {
    /// No text that starts with the prefix.
    None,
    /// Some texts that start with the prefix.
    Some,
    /// Every text that starts with the prefix.
    Every,
}

impl Pattern {
    /// Whether the pattern matches none, some or every text starting with `prefix`: the
    /// pattern positions reachable after reading the prefix decide it (none left: none; one
    /// whose rest is all `*`: every; otherwise some, since any rest can be matched).
    pub fn on_prefix(&self, prefix: &str) -> PrefixMatch {
        let source = self.to_string();
        let p: Vec<char> = source.chars().collect();
        let closure = |states: &mut Vec<usize>| {
            let mut i = 0;
            while i < states.len() {
                let s = states[i];
                if p.get(s) == Some(&'*') && !states.contains(&(s + 1)) {
                    states.push(s + 1);
                }
                i += 1;
            }
        };
        let mut states = vec![0];
        closure(&mut states);
        for c in prefix.chars() {
            let mut next = Vec::new();
            for &s in &states {
                let reached = match p.get(s) {
                    Some('*') => Some(s),
                    Some('?') => Some(s + 1),
                    Some(&l) if l == c => Some(s + 1),
                    _ => None,
                };
                if let Some(n) = reached.filter(|n| !next.contains(n)) {
                    next.push(n);
                }
            }
            closure(&mut next);
            states = next;
            if states.is_empty() {
                return PrefixMatch::None;
            }
        }
        if states
            .iter()
            .any(|&s| s < p.len() && p[s..].iter().all(|&c| c == '*'))
        {
            PrefixMatch::Every
        } else {
            PrefixMatch::Some
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Any => f.write_str("*"),
            Pattern::Exact(p) | Pattern::Glob(p) => f.write_str(p),
            Pattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice, never
/// exponential.
///
/// Resource patterns such as `acs:eci:*:*:containergroup/*` are globs, matched on every
/// decision, so the usual case runs on bytes without allocating. Byte matching is exact
/// when the pattern has no `?` (UTF-8 literals can only match at character boundaries) or
/// the text is ASCII (a byte is a character); otherwise `?` must consume one whole
/// character, and the match runs on characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('?') || text.is_ascii() {
        return glob_match_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_match_units(&p, &t, '*', '?')
}

fn glob_match_units<T: Copy + PartialEq>(p: &[T], t: &[T], star_unit: T, one: T) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == one || (p[pi] != star_unit && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star_unit {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == star_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(Pattern::new("*"), Pattern::Any);
        assert_eq!(
            Pattern::new("eci:describe*"),
            Pattern::Prefix("eci:describe".into())
        );
        assert_eq!(Pattern::new("eci:x"), Pattern::Exact("eci:x".into()));
        assert!(matches!(Pattern::new("a*b"), Pattern::Glob(_)));
    }

    #[test]
    fn on_prefix() {
        let prefix = "acs:eci:cn-hangzhou:123:containergroup/";
        let cases = [
            ("*", PrefixMatch::Every),
            ("acs:eci:*:*:containergroup/*", PrefixMatch::Every),
            (
                "acs:eci:cn-hangzhou:123:containergroup/eci-*",
                PrefixMatch::Some,
            ),
            ("acs:eci:*:*:containergroup/?", PrefixMatch::Some),
            ("acs:eci:*:*:containergroup/*x", PrefixMatch::Some),
            // `*` may run past the prefix: such an ARN could exist, so "some".
            ("acs:eci:*:*:imagecache/*", PrefixMatch::Some),
            ("acs:ecs:*", PrefixMatch::None),
            ("acs:eci:*:456:containergroup/*", PrefixMatch::Some),
            ("acs:eci:cn-shanghai:*", PrefixMatch::None),
            ("acs:eci:cn-hangzhou:456:*", PrefixMatch::None),
            ("acs:eci:*", PrefixMatch::Every),
        ];
        for (p, want) in cases {
            assert_eq!(Pattern::new(p).on_prefix(prefix), want, "{p}");
        }
    }

    #[test]
    fn matching() {
        let cases = [
            ("*", "", true),
            ("eci:*", "eci:createcontainergroup", true),
            ("eci:*", "ecs:x", false),
            ("eci:describe*", "eci:describecontainergroups", true),
            (
                "acs:eci:*:*:containergroup/*",
                "acs:eci:cn-hangzhou:123:containergroup/eci-1",
                true,
            ),
            (
                "acs:eci:*:*:containergroup/*",
                "acs:eci:cn-hangzhou:123:imagecache/x",
                false,
            ),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*a*", "bab", true),
            ("é?", "éx", true),
            ("a?c", "aéc", true),
            ("a?c", "aééc", false),
            ("*é*", "xéy", true),
            ("a*é", "aXé", true),
            ("a*é", "aXe", false),
            ("x", "X", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(Pattern::new(p).matches(t), want, "{p} ~ {t}");
        }
    }
}
