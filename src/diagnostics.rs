//! Problems found in configuration and policy files, each with the file, line and column
//! it concerns, a plain-words message and, where one helps, a hint on how to fix it.
//!
//! Loaders collect every problem they can find before giving up, so a user fixes a file in
//! one pass instead of one error per run.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// The line and column of byte `offset` in `source` (columns count characters).
    pub fn of_offset(source: &str, offset: usize) -> Self {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Self {
            line: line as u32,
            column: column as u32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub position: Position,
    pub message: String,
    pub hint: Option<String>,
}

/// Problems listed per file; more are counted, not listed. A hundred is more than anyone
/// reads, and finding each one's line is a scan of the file: listing a hundred thousand
/// (a generated file that repeats one key, or names one missing policy per user) would take
/// minutes.
pub const MAX_LISTED: usize = 100;

impl Diagnostic {
    /// The last problem of a file whose problems were not all listed: how many were not.
    pub fn unlisted(file: &Path, count: usize) -> Self {
        Diagnostic::error(
            file,
            Position { line: 1, column: 1 },
            format!("{count} more problems in this file are not listed"),
        )
        .with_hint("fix the problems above and check the file again")
    }

    pub fn error(file: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_path_buf(),
            position,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(file: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, position, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `<file>:<line>:<column>: error: <what>` and, on the next line, `hint: <how>`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {level}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem of a failed load, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let src = "ab\ncdé\nf";
        assert_eq!(Position::of_offset(src, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of_offset(src, 3), Position { line: 2, column: 1 });
        assert_eq!(Position::of_offset(src, 7), Position { line: 2, column: 4 });
        assert_eq!(Position::of_offset(src, 8), Position { line: 3, column: 1 });
    }

    #[test]
    fn renders_file_line_column_and_hint() {
        let d = Diagnostic::error(Path::new("p.json"), Position { line: 3, column: 7 }, "bad")
            .with_hint("fix it");
        assert_eq!(d.to_string(), "p.json:3:7: error: bad\nhint: fix it");
    }
}
