//! A small JSON reader that keeps what `serde_json` throws away and policy errors need:
//! the byte offset of every value and every object key, and keys repeated inside one
//! object (RAM treats `{"StringEquals": {"k": 1, "k": 2}}` as a mistake, not as "last wins").
//!
//! It accepts exactly RFC 8259 JSON; depth is bounded so hostile input cannot overflow the
//! stack. Strings without escapes, and numbers, borrow from the source: a reload parses
//! thousands of documents, and most of their strings are copied once more when compiled.

use std::borrow::Cow;

/// A JSON value with the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<'a> {
    pub offset: usize,
    pub value: Value<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// Kept as written: RAM compares numbers in conditions as text or parses them itself.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Spanned<'a>>),
    /// Members in document order, duplicates included.
    Object(Vec<Member<'a>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member<'a> {
    pub key: Cow<'a, str>,
    pub key_offset: usize,
    pub value: Spanned<'a>,
}

impl Value<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }
}

/// A syntax error at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
    pub hint: Option<&'static str>,
}

const MAX_DEPTH: usize = 64;

pub fn parse(source: &str) -> Result<Spanned<'_>, SyntaxError> {
    let mut reader = Reader {
        source,
        bytes: source.as_bytes(),
        pos: 0,
        depth: 0,
    };
    reader.skip_whitespace();
    let value = reader.value()?;
    reader.skip_whitespace();
    if reader.pos < reader.bytes.len() {
        return Err(reader.error(
            "unexpected text after the end of the document",
            Some("a policy is one JSON object; check for an extra closing bracket or a second object"),
        ));
    }
    Ok(value)
}

struct Reader<'a> {
    source: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, message: impl Into<String>, hint: Option<&'static str>) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message: message.into(),
            hint,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the file".to_owned(),
            Some(b) if b.is_ascii_graphic() => format!("'{}'", b as char),
            Some(b) => format!("byte 0x{b:02x}"),
        }
    }

    fn value(&mut self) -> Result<Spanned<'a>, SyntaxError> {
        let offset = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.nested(Self::object)?,
            Some(b'[') => self.nested(Self::array)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            _ => {
                return Err(self.error(
                    format!("expected a value, found {}", self.describe_here()),
                    Some("values are strings in double quotes, numbers, true, false, null, lists [..] or objects {..}"),
                ))
            }
        };
        Ok(Spanned { offset, value })
    }

    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Value<'a>, SyntaxError>,
    ) -> Result<Value<'a>, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels"), None));
        }
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn literal(&mut self, word: &str, value: Value<'a>) -> Result<Value<'a>, SyntaxError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error(
                format!("expected a value, found {}", self.describe_here()),
                Some("text values must be in double quotes"),
            ))
        }
    }

    fn object(&mut self) -> Result<Value<'a>, SyntaxError> {
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error(
                    format!("expected a key in double quotes, found {}", self.describe_here()),
                    Some("object keys are quoted strings; a trailing comma before '}' is not allowed in JSON"),
                ));
            }
            let key_offset = self.pos;
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error(
                    format!(
                        "expected ':' after the key \"{key}\", found {}",
                        self.describe_here()
                    ),
                    None,
                ));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value()?;
            members.push(Member {
                key,
                key_offset,
                value,
            });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => {
                    return Err(self.error(
                        format!("expected ',' or '}}' in an object, found {}", self.describe_here()),
                        Some("check that every '{' has its '}' and every '[' its ']', in the right order"),
                    ))
                }
            }
        }
    }

    fn array(&mut self) -> Result<Value<'a>, SyntaxError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => {
                    return Err(self.error(
                        format!("expected ',' or ']' in a list, found {}", self.describe_here()),
                        Some("check that every '[' has its ']' and every '{' its '}', in the right order"),
                    ))
                }
            }
        }
    }

    /// A string: borrowed from the source unless it has escapes to decode.
    fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        let start = self.pos;
        self.pos += 1; // '"'
        let mut out = Cow::Borrowed("");
        loop {
            let run_start = self.pos;
            self.pos += self.bytes[run_start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(self.bytes.len() - run_start);
            // We only stop at ASCII bytes, so the run lies on character boundaries.
            let run = self.source.get(run_start..self.pos).unwrap_or_default();
            if out.is_empty() {
                out = Cow::Borrowed(run);
            } else {
                out.to_mut().push_str(run);
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(out.to_mut())?;
                }
                Some(_) => {
                    return Err(
                        self.error("a control character inside a string must be escaped", None)
                    )
                }
                None => {
                    self.pos = start;
                    return Err(self.error(
                        "this string is never closed",
                        Some("add the closing double quote"),
                    ));
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return Err(self.error("a lone UTF-16 surrogate in a \\u escape", None));
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error("a lone UTF-16 surrogate in a \\u escape", None));
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                out.push(
                    char::from_u32(code)
                        .ok_or_else(|| self.error("an invalid \\u escape", None))?,
                );
                return Ok(());
            }
            _ => {
                return Err(self.error(
                    format!("an invalid escape '\\{}'", self.describe_here()),
                    None,
                ))
            }
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("a \\u escape needs four hex digits", None))?;
        self.pos += 4;
        Ok(digits)
    }

    fn number(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |r: &mut Self| {
            let s = r.pos;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.pos += 1;
            }
            r.pos - s
        };
        let int_start = self.pos;
        let int_len = digits(self);
        let leading_zero = int_len > 1 && self.bytes[int_start] == b'0';
        if int_len == 0 || leading_zero {
            return Err(self.error("a malformed number", None));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error("a malformed number", None));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("a malformed number", None));
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were consumed: character boundaries.
        Ok(self.source.get(start..self.pos).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_offsets_and_duplicate_keys() {
        let doc = parse(r#"{"a": [1, "x"], "a": true}"#).unwrap();
        let Value::Object(members) = doc.value else {
            panic!("object")
        };
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].key_offset, 1);
        assert_eq!(members[1].key_offset, 16);
        assert_eq!(members[1].value.offset, 21);
        let Value::Array(items) = &members[0].value.value else {
            panic!("array")
        };
        assert_eq!(
            items[1],
            Spanned {
                offset: 10,
                value: Value::String("x".into())
            }
        );
    }

    #[test]
    fn decodes_escapes() {
        let doc = parse(r#""a\"b\\c\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(doc.value, Value::String("a\"b\\cé😀".into()));
    }

    #[test]
    fn reports_misplaced_brackets_where_they_are() {
        let err = parse("{\"Statement\": [\n  {\"Effect\": \"Allow\"]\n}").unwrap_err();
        assert_eq!(err.offset, 36);
        assert!(
            err.message.contains("expected ',' or '}'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rejects_what_json_rejects() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "'x'",
            "{\"a\" 1}",
            "\"\u{1}\"",
            "[1] [2]",
            "tru",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
