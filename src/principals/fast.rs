//! A fast reader for `principals.toml` as it is written in practice: the four tables of
//! SPEC §5 with bare keys, plain double-quoted strings, booleans, lists and one-line inline
//! tables. It builds [`PrincipalsFile`] directly, with the same spans the `toml` crate
//! gives, where the `toml` crate first builds a whole document tree (for 10,000 users, tens
//! of MiB of short-lived maps: most of a reload's CPU went to faulting them in).
//!
//! Anything outside that shape — escapes, literal or multi-line strings, quoted or dotted
//! keys, an unknown or repeated key, a missing required field, a wrong type, a syntax
//! error — gives `None`, and the caller reads the file with the `toml` crate, which accepts
//! it or reports the exact error. So this reader never decides what is valid; it only
//! takes the common case off the slow path.

use super::file::{
    AccessKeyEntry, AccountEntry, Attachment, GroupEntry, PrincipalEntry, PrincipalsFile,
};
use toml::Spanned;

/// The file, or `None` when it is not in the shape this reader handles.
pub fn read(source: &str) -> Option<PrincipalsFile> {
    let mut r = Reader {
        source,
        bytes: source.as_bytes(),
        pos: 0,
    };
    let mut file = PrincipalsFile {
        account: None,
        resource_groups: Vec::new(),
        users: Vec::new(),
        roles: Vec::new(),
        // `[[quotas]]` is not a header this reader takes: such files go to `toml`.
        quotas: Vec::new(),
    };
    let mut table = Table::Root;
    // Bit `i`: the current table's field `i` (in the order of `Reader::field`) was given.
    let mut given = 0u8;
    loop {
        r.blank()?;
        match r.peek() {
            None => break,
            Some(b'[') => {
                std::mem::replace(&mut table, Table::Root).finish(given, &mut file)?;
                table = r.header(file.account.is_some())?;
                given = 0;
            }
            Some(_) => r.field(&mut table, &mut given)?,
        }
        r.end_of_line()?;
    }
    table.finish(given, &mut file)?;
    Some(file)
}

/// The table the following keys belong to, with the fields read so far.
enum Table {
    Root,
    Account(AccountEntry),
    Group(GroupEntry),
    User(PrincipalEntry),
    Role(PrincipalEntry),
}

/// Fields a table must have (bit 0 in `given`): a group's `id`, a principal's `name`.
const REQUIRED: u8 = 1;

impl Table {
    fn finish(self, given: u8, file: &mut PrincipalsFile) -> Option<()> {
        match self {
            Table::Root => {}
            Table::Account(a) => file.account = Some(a),
            Table::Group(g) if given & REQUIRED != 0 => file.resource_groups.push(g),
            Table::User(p) if given & REQUIRED != 0 => file.users.push(p),
            Table::Role(p) if given & REQUIRED != 0 => file.roles.push(p),
            _ => return None,
        }
        Some(())
    }
}

/// Marks field `bit` given; `None` if it already was (a repeated key).
fn first(given: &mut u8, bit: u8) -> Option<()> {
    let mask = 1 << bit;
    (*given & mask == 0).then(|| *given |= mask)
}

fn unnamed() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

struct Reader<'a> {
    source: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Spaces, newlines and comments: what may come between lines and between list items.
    fn blank(&mut self) -> Option<()> {
        loop {
            self.spaces();
            match self.peek() {
                Some(b'#') => self.comment()?,
                Some(b'\n' | b'\r') => self.newline()?,
                _ => return Some(()),
            }
        }
    }

    fn newline(&mut self) -> Option<()> {
        self.eat(b'\r');
        self.eat(b'\n')
    }

    /// From `#` to the end of the line, which stays unread. TOML forbids control
    /// characters other than tab in comments.
    fn comment(&mut self) -> Option<()> {
        self.pos += 1;
        while let Some(b) = self.peek() {
            match b {
                b'\n' | b'\r' => break,
                b'\t' => {}
                0..0x20 | 0x7f => return None,
                _ => {}
            }
            self.pos += 1;
        }
        Some(())
    }

    /// After a header or a key's value: spaces, an optional comment, then the end of the
    /// line or of the file.
    fn end_of_line(&mut self) -> Option<()> {
        self.spaces();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        match self.peek() {
            None => Some(()),
            _ => self.newline(),
        }
    }

    /// One of the four headers, written exactly so. `[account]` may appear once.
    fn header(&mut self, account_read: bool) -> Option<Table> {
        let rest = &self.bytes[self.pos..];
        let (table, len) = if rest.starts_with(b"[account]") && !account_read {
            (Table::Account(AccountEntry::default()), 9)
        } else if rest.starts_with(b"[[resource_groups]]") {
            let group = GroupEntry {
                id: unnamed(),
                name: None,
                default: false,
            };
            (Table::Group(group), 19)
        } else if rest.starts_with(b"[[users]]") {
            (Table::User(principal()), 9)
        } else if rest.starts_with(b"[[roles]]") {
            (Table::Role(principal()), 9)
        } else {
            return None;
        };
        self.pos += len;
        Some(table)
    }

    /// A bare key (letters, digits, `_`, `-`).
    fn key(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
        ) {
            self.pos += 1;
        }
        // ASCII only: on character boundaries.
        self.source
            .get(start..self.pos)
            .filter(|key| !key.is_empty())
    }

    /// `key = ` and the value after it, up to the end of the value.
    fn key_equals(&mut self) -> Option<&'a str> {
        let key = self.key()?;
        self.spaces();
        self.eat(b'=')?;
        self.spaces();
        Some(key)
    }

    /// One `key = value` line of the current table.
    fn field(&mut self, table: &mut Table, given: &mut u8) -> Option<()> {
        match (table, self.key_equals()?) {
            (Table::Account(a), "guardrails") => {
                first(given, 1)?;
                a.guardrails = self.list(Self::string)?;
            }
            (Table::Account(a), "access_keys") => {
                first(given, 2)?;
                a.access_keys = self.list(Self::access_key)?;
            }
            (Table::Account(a), "mtls") => {
                first(given, 3)?;
                a.mtls = self.list(Self::string)?;
            }
            (Table::Group(g), "id") => {
                first(given, 0)?;
                g.id = self.string()?;
            }
            (Table::Group(g), "name") => {
                first(given, 1)?;
                g.name = Some(self.string()?.into_inner());
            }
            (Table::Group(g), "default") => {
                first(given, 2)?;
                g.default = self.boolean()?;
            }
            (Table::User(p) | Table::Role(p), "name") => {
                first(given, 0)?;
                p.name = self.string()?;
            }
            (Table::User(p) | Table::Role(p), "attach") => {
                first(given, 1)?;
                p.attach = self.list(Self::attachment)?;
            }
            (Table::User(p) | Table::Role(p), "access_keys") => {
                first(given, 2)?;
                p.access_keys = self.list(Self::access_key)?;
            }
            (Table::User(p) | Table::Role(p), "mtls") => {
                first(given, 3)?;
                p.mtls = self.list(Self::string)?;
            }
            _ => return None,
        }
        Some(())
    }

    /// A double-quoted string without escapes or control characters; its span covers the
    /// quotes, as the `toml` crate's does.
    fn string(&mut self) -> Option<Spanned<String>> {
        let start = self.pos;
        self.eat(b'"')?;
        self.pos += self.bytes[self.pos..]
            .iter()
            .position(|&b| matches!(b, b'"' | b'\\' | 0..0x20 | 0x7f))?;
        if self.peek() != Some(b'"') {
            return None;
        }
        // Between two ASCII quotes: on character boundaries.
        let text = self.source.get(start + 1..self.pos)?;
        self.pos += 1;
        Some(Spanned::new(start..self.pos, text.to_owned()))
    }

    fn boolean(&mut self) -> Option<bool> {
        let rest = &self.bytes[self.pos..];
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.pos += len;
        Some(value)
    }

    /// `[ item, item, ... ]`, across lines, with comments and a trailing comma allowed.
    fn list<T>(&mut self, item: fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        loop {
            self.blank()?;
            if self.eat(b']').is_some() {
                return Some(items);
            }
            items.push(item(self)?);
            self.blank()?;
            if self.eat(b',').is_none() {
                self.eat(b']')?;
                return Some(items);
            }
        }
    }

    /// `{ key = value, ... }` on one line, without a trailing comma; `field` reads the value
    /// of each key (bit `i` of the returned mask: field `i` given).
    fn inline_table(
        &mut self,
        mut field: impl FnMut(&mut Self, &str, &mut u8) -> Option<()>,
    ) -> Option<u8> {
        self.eat(b'{')?;
        self.spaces();
        let mut given = 0;
        if self.eat(b'}').is_some() {
            return Some(given);
        }
        loop {
            let key = self.key_equals()?;
            field(self, key, &mut given)?;
            self.spaces();
            if self.eat(b',').is_none() {
                self.eat(b'}')?;
                return Some(given);
            }
            self.spaces();
        }
    }

    /// `{ policy = "...", resource_group = "..." }`; `policy` is required.
    fn attachment(&mut self) -> Option<Attachment> {
        let mut a = Attachment {
            policy: unnamed(),
            resource_group: None,
        };
        let given = self.inline_table(|r, key, given| {
            match key {
                "policy" => {
                    first(given, 0)?;
                    a.policy = r.string()?;
                }
                "resource_group" => {
                    first(given, 1)?;
                    a.resource_group = Some(r.string()?);
                }
                _ => return None,
            }
            Some(())
        })?;
        (given & REQUIRED != 0).then_some(a)
    }

    /// `{ id = "...", secret... = "..." }`; `id` is required.
    fn access_key(&mut self) -> Option<AccessKeyEntry> {
        let mut k = AccessKeyEntry {
            id: unnamed(),
            secret: None,
            secret_env: None,
            secret_file: None,
        };
        let given = self.inline_table(|r, key, given| {
            match key {
                "id" => {
                    first(given, 0)?;
                    k.id = r.string()?;
                }
                "secret" => {
                    first(given, 1)?;
                    k.secret = Some(r.string()?.into_inner());
                }
                "secret_env" => {
                    first(given, 2)?;
                    k.secret_env = Some(r.string()?.into_inner());
                }
                "secret_file" => {
                    first(given, 3)?;
                    k.secret_file = Some(r.string()?.into_inner());
                }
                _ => return None,
            }
            Some(())
        })?;
        (given & REQUIRED != 0).then_some(k)
    }
}

fn principal() -> PrincipalEntry {
    PrincipalEntry {
        name: unnamed(),
        attach: Vec::new(),
        access_keys: Vec::new(),
        mtls: Vec::new(),
    }
}
