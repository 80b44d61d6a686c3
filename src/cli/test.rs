//! `ramgate test --config FILE CASES...`: policy test cases (SPEC §10) decided by the
//! planner the proxy calls, through [`super::hypothetical`]. Every case file is read and
//! checked before any case runs: an invalid one is reported as
//! `<file>:<line>:<column>: error: ...` with a hint, and nothing runs (exit 2). A failing
//! case prints `<file>:<line>: FAIL <name>: expected <x>, got <y>` (the line of its
//! `expect`, or of its `because` when only that failed) and the explanation `explain`
//! would give; the last line is `N passed, M failed` (exit 0 when none failed, else 1).
//! `--junit FILE` also writes the results as JUnit XML.

use super::explain::{self, explanation, offline_caller};
use super::hypothetical::{Hypothetical, Outcome, Prepared};
use crate::config::Config;
use crate::decision::Authorizer;
use crate::diagnostics::{Diagnostic, Position};
use crate::model::{ContainerGroupMeta, Tags};
use crate::principals::PrincipalId;
use crate::snapshot::Snapshot;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The command's arguments (see `ramgate test --help`).
#[derive(Debug, Clone)]
pub struct Args {
    pub config: PathBuf,
    /// Case files, or directories whose `*.toml` files are case files.
    pub cases: Vec<PathBuf>,
    pub junit: Option<PathBuf>,
}

const FORMAT_HINT: &str = "a case file is a list of [[case]] tables with name, principal, action, expect (\"allow\", \"deny\" or \"empty\"), and optionally target = { resource_group, tags }, request = { resource_group, tags, untag_keys } and because (SPEC §10)";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<CaseEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseEntry {
    name: String,
    principal: Spanned<String>,
    action: Spanned<String>,
    #[serde(default)]
    target: Option<Spanned<Target>>,
    #[serde(default)]
    request: Option<Spanned<RequestFacts>>,
    expect: Spanned<String>,
    #[serde(default)]
    because: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    resource_group: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFacts {
    #[serde(default)]
    resource_group: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    untag_keys: Vec<String>,
}

/// One case, checked and ready to run.
struct Case {
    file: PathBuf,
    name: String,
    arn: String,
    principal: PrincipalId,
    prepared: Prepared,
    expect: Outcome,
    expect_line: u32,
    because: Option<(String, u32)>,
}

/// One case's result.
struct Ran {
    case: Case,
    /// None when it passed; else what went wrong and the explanation.
    failure: Option<(u32, String, String)>,
}

/// Exit codes: 0 every case passed, 1 some failed, 2 bad input.
pub fn run(args: &Args, out: &mut dyn Write) -> i32 {
    let Some((config, snapshot)) = explain::load_or_report(&args.config, out) else {
        return 2;
    };
    let cases = match read_cases(&args.cases, &config, &snapshot) {
        Ok(cases) => cases,
        Err(problems) => {
            for p in &problems {
                let _ = writeln!(out, "{p}");
            }
            let _ = writeln!(
                out,
                "{} problem(s) in the case files; no case was run",
                problems.len()
            );
            return 2;
        }
    };
    let ran: Vec<Ran> = cases.into_iter().map(|c| run_case(&snapshot, c)).collect();
    let failed = ran.iter().filter(|r| r.failure.is_some()).count();
    for r in &ran {
        if let Some((line, what, explanation)) = &r.failure {
            let _ = writeln!(
                out,
                "{}:{line}: FAIL {}: {what}",
                r.case.file.display(),
                r.case.name
            );
            for l in explanation.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    let _ = writeln!(out, "{} passed, {failed} failed", ran.len() - failed);
    let _ = out.flush();
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, junit(&ran)) {
            let _ = writeln!(out, "error: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    i32::from(failed > 0)
}

fn run_case(snapshot: &Snapshot, case: Case) -> Ran {
    let auth = Authorizer::tracing(snapshot, offline_caller(case.principal));
    let decided = case.prepared.decide(&auth);
    let text = explanation(snapshot, &case.arn, case.principal, &decided, &auth);
    let failure = if decided.outcome != case.expect {
        Some((
            case.expect_line,
            format!(
                "expected {}, got {}",
                case.expect.as_str(),
                decided.outcome.as_str()
            ),
            text,
        ))
    } else {
        match &case.because {
            Some((want, line)) if !text.contains(want.as_str()) => Some((
                *line,
                format!(
                    "expected {} because {want:?}, got {} for another reason",
                    case.expect.as_str(),
                    decided.outcome.as_str()
                ),
                text,
            )),
            _ => None,
        }
    };
    Ran { case, failure }
}

/// Every case of every file, or every problem found in them.
fn read_cases(
    paths: &[PathBuf],
    config: &Config,
    snapshot: &Snapshot,
) -> Result<Vec<Case>, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    for file in case_files(paths, &mut problems) {
        match std::fs::read_to_string(&file) {
            Ok(source) => cases.extend(parse_file(&file, &source, config, snapshot, &mut problems)),
            Err(e) => problems.push(Diagnostic::error(
                &file,
                Position::default(),
                format!("cannot read the case file: {e}"),
            )),
        }
    }
    if cases.is_empty() && problems.is_empty() {
        problems.push(
            Diagnostic::error(Path::new("."), Position::default(), "no case file given")
                .with_hint("name case files, or directories holding *.toml case files"),
        );
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

/// Files as given; directories replaced by their `*.toml` files, sorted.
fn case_files(paths: &[PathBuf], problems: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let listed = std::fs::read_dir(path).and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<PathBuf>>>()
        });
        match listed {
            Ok(mut found) => {
                found.retain(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file());
                found.sort();
                if found.is_empty() {
                    problems.push(
                        Diagnostic::error(
                            path,
                            Position::default(),
                            "the directory holds no *.toml case file",
                        )
                        .with_hint("case files end in .toml"),
                    );
                }
                files.extend(found);
            }
            Err(e) => problems.push(Diagnostic::error(
                path,
                Position::default(),
                format!("cannot read the directory: {e}"),
            )),
        }
    }
    files
}

fn parse_file(
    file: &Path,
    source: &str,
    config: &Config,
    snapshot: &Snapshot,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Case> {
    let at = |span: Range<usize>| Position::of_offset(source, span.start);
    let parsed: CaseFile = match toml::from_str(source) {
        Ok(parsed) => parsed,
        Err(e) => {
            let position = e.span().map(at).unwrap_or(Position { line: 1, column: 1 });
            problems.push(
                Diagnostic::error(file, position, e.message().trim_end()).with_hint(FORMAT_HINT),
            );
            return Vec::new();
        }
    };
    if parsed.case.is_empty() {
        problems.push(
            Diagnostic::error(
                file,
                Position { line: 1, column: 1 },
                "the file holds no [[case]]",
            )
            .with_hint(FORMAT_HINT),
        );
    }
    let mut cases = Vec::new();
    let first_problem = problems.len();
    for entry in parsed.case {
        let expect = Outcome::parse(entry.expect.get_ref());
        if expect.is_none() {
            problems.push(
                Diagnostic::error(
                    file,
                    at(entry.expect.span()),
                    format!("{:?} is not an expectation", entry.expect.get_ref()),
                )
                .with_hint("expect \"allow\", \"deny\", or \"empty\" (a list answered empty)"),
            );
        }
        let principal = explain::principal(config, snapshot, entry.principal.get_ref());
        if let Err(message) = &principal {
            problems.push(
                Diagnostic::error(file, at(entry.principal.span()), message.clone()).with_hint(format!(
                    "give the ARN of the root (acs:ram::{0}:root), a user (acs:ram::{0}:user/<name>) or a role (acs:ram::{0}:role/<name>) of principals.toml",
                    config.account_id
                )),
            );
        }
        let facts = entry.request.as_ref().map(|r| r.get_ref());
        let hypothetical = Hypothetical {
            action: entry.action.get_ref().clone(),
            resource_group: facts.and_then(|r| r.resource_group.clone()),
            tags: facts.map(|r| pairs(&r.tags)).unwrap_or_default(),
            untag_keys: facts.map(|r| r.untag_keys.clone()).unwrap_or_default(),
            targets: entry
                .target
                .iter()
                .map(|t| ContainerGroupMeta {
                    resource_group: t.get_ref().resource_group.clone(),
                    tags: Tags::from_pairs(pairs(&t.get_ref().tags)),
                })
                .collect(),
        };
        let prepared = hypothetical.prepare(&config.region);
        if let Err(e) = &prepared {
            let span = match e {
                super::hypothetical::HypotheticalError::Refused(_) => entry
                    .request
                    .as_ref()
                    .map(Spanned::span)
                    .unwrap_or(entry.action.span()),
                _ => entry.action.span(),
            };
            problems.push(
                Diagnostic::error(file, at(span), e.to_string())
                    .with_hint("a case describes a request the proxy would decide"),
            );
        }
        if let (Some(expect), Ok(principal), Ok(prepared)) = (expect, principal, prepared) {
            cases.push(Case {
                file: file.to_path_buf(),
                name: entry.name,
                arn: entry.principal.into_inner(),
                principal,
                prepared,
                expect,
                expect_line: at(entry.expect.span()).line,
                because: entry
                    .because
                    .map(|b| (b.get_ref().clone(), at(b.span()).line)),
            });
        }
    }
    problems[first_problem..].sort_by_key(|d| (d.position.line, d.position.column));
    cases
}

fn pairs(tags: &BTreeMap<String, String>) -> Vec<(String, String)> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The results as JUnit XML: one `<testsuite>` per case file.
fn junit(ran: &[Ran]) -> String {
    use std::fmt::Write as _;
    let failures = ran.iter().filter(|r| r.failure.is_some()).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"ramgate test\" tests=\"{}\" failures=\"{failures}\">",
        ran.len()
    );
    let mut files: Vec<&Path> = ran.iter().map(|r| r.case.file.as_path()).collect();
    files.dedup();
    for file in files {
        let in_file: Vec<&Ran> = ran.iter().filter(|r| r.case.file == file).collect();
        let name = escape(&file.display().to_string());
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\">",
            in_file.len(),
            in_file.iter().filter(|r| r.failure.is_some()).count()
        );
        for r in in_file {
            let _ = write!(
                xml,
                "    <testcase classname=\"{name}\" name=\"{}\" file=\"{name}\" line=\"{}\"",
                escape(&r.case.name),
                r.case.expect_line
            );
            match &r.failure {
                None => xml.push_str("/>\n"),
                Some((_, what, explanation)) => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(what),
                        escape(explanation)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Text for an XML attribute or element: the five markup characters escaped, and the
/// control characters XML 1.0 cannot hold at all replaced.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
