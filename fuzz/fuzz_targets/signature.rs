//! Fuzz target: identity resolution (`ramgate::identity::resolve`) of a parsed request,
//! which runs the AccessKey signature parsers and verifiers (`identity::signature`: the V3
//! `Authorization` header, the RPC v1 parameters, timestamps, nonces) and the trusted
//! header, against the demo directory (liumi's key `LTAIliumiExampleKey`).
//!
//! The first byte chooses the peer (trusted loopback or not, TLS or not, a client
//! certificate identity or none); the rest is a request in `ramgate_fuzz::parse_http`'s
//! format. `now` is the time the SDK vectors in `tests/fixtures/signatures` were signed
//! at, so seeds made from them verify and the fuzzer explores past the HMAC check.
//!
//! The body is `ramgate_fuzz::signature` (fuzz/src/lib.rs), which
//! `tests/fuzz_regressions.rs` also runs on the seeds and on every saved finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramgate_fuzz::signature(data));
