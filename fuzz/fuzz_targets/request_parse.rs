//! Fuzz target: the request canonicalizer (`ramgate::request::parse`) on a method, request
//! target, headers and body taken from the fuzzer's bytes (the text format of
//! `ramgate_fuzz::parse_http`). Besides not panicking, whatever it accepts must satisfy
//! `ramgate_fuzz::check_accepted`: the backend reads exactly what was authorized.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramgate_fuzz::{check_accepted, parse_http};

fuzz_target!(|data: &[u8]| {
    let Some(input) = parse_http(data) else {
        return;
    };
    match ramgate::request::parse(&input.method, &input.uri, &input.headers, &input.body) {
        Ok(parsed) => {
            check_accepted(&parsed);
            // The strings a signature verifier rebuilds are total too.
            let _ = parsed.raw.v1_canonicalized();
            let _ = parsed.raw.v3_canonical_query();
        }
        Err(e) => {
            // Every refusal is a 4xx with an Alibaba code.
            assert!(matches!(e.status(), 400 | 404), "{e:?}");
            assert!(!e.code().is_empty());
            let _ = e.to_string();
        }
    }
});
