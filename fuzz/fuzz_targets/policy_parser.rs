//! Fuzz target: the RAM policy parser (`ramgate::policy::document::parse_policy`), the
//! hand-written spanned JSON reader under it, and the diagnostics it renders. Policy files
//! come from operators, but a ConfigMap can be written by anyone with access to it, and a
//! parser that panics or loops takes every reload (and a restart) down with it.
//!
//! The body is `ramgate_fuzz::policy_parser` (fuzz/src/lib.rs), which
//! `tests/fuzz_regressions.rs` also runs on the seeds and on every saved finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramgate_fuzz::policy_parser(data));
