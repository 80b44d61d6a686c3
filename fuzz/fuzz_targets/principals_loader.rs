//! Fuzz target: the `principals.toml` loader, through `ramgate::snapshot::Snapshot::build`
//! with the fuzzer's bytes as `principals.toml` beside the demo policies: TOML parsing,
//! reference resolution (policies, resource groups, access keys, mTLS ids) and the
//! diagnostics with their positions; and the fast reader for the usual shape of the file
//! against the `toml` crate (the same structs and spans, or none).
//!
//! The body is `ramgate_fuzz::principals_loader` (fuzz/src/lib.rs), which
//! `tests/fuzz_regressions.rs` also runs on the seeds and on every saved finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramgate_fuzz::principals_loader(data));
