//! Fuzz target: the request canonicalizer (`ramgate::request::parse`) on a method, request
//! target, headers and body taken from the fuzzer's bytes (the text format of
//! `ramgate_fuzz::parse_http`). Besides not panicking, whatever it accepts must satisfy
//! `ramgate_fuzz::check_accepted`: the backend reads exactly what was authorized.
//!
//! The body is `ramgate_fuzz::request_parse` (fuzz/src/lib.rs), which
//! `tests/fuzz_regressions.rs` also runs on the seeds and on every saved finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramgate_fuzz::request_parse(data));
