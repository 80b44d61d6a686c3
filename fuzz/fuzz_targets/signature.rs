//! Fuzz target: identity resolution (`ramgate::identity::resolve`) of a parsed request,
//! which runs the AccessKey signature parsers and verifiers (`identity::signature`: the V3
//! `Authorization` header, the RPC v1 parameters, timestamps, nonces) and the trusted
//! header, against the demo directory (liumi's key `LTAIliumiExampleKey`).
//!
//! The first byte chooses the peer (trusted loopback or not, TLS or not, a client
//! certificate identity or none); the rest is a request in `ramgate_fuzz::parse_http`'s
//! format. `now` is the time the SDK vectors in `tests/fixtures/signatures` were signed
//! at, so seeds made from them verify and the fuzzer explores past the HMAC check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramgate::config;
use ramgate::identity::signature::NonceCache;
use ramgate::identity::{self, Peer};
use ramgate_fuzz::{demo_snapshot, parse_http};
use std::time::Duration;

const NOW: i64 = 1_795_838_691;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(input) = parse_http(rest) else {
        return;
    };
    let Ok(parsed) =
        ramgate::request::parse(&input.method, &input.uri, &input.headers, &input.body)
    else {
        return;
    };
    let peer = Peer {
        addr: if selector & 1 == 0 {
            "127.0.0.1:40000".parse().unwrap()
        } else {
            "198.51.100.7:40000".parse().unwrap()
        },
        secure: selector & 2 != 0,
        client_id: match (selector >> 2) & 3 {
            1 => Some("spiffe://example.org/ns/dev/sa/liumi".to_owned()),
            2 => Some("spiffe://example.org/ns/unknown".to_owned()),
            _ => None,
        },
    };
    let settings = config::Identity::default();
    let nonces = NonceCache::with_capacity(Duration::from_secs(settings.max_clock_skew_secs), 4);
    let snapshot = demo_snapshot();
    let first = identity::resolve(
        snapshot,
        &settings,
        &nonces,
        &peer,
        &input.headers,
        &parsed,
        NOW,
    );
    match &first {
        Ok(who) => {
            assert!((who.principal as usize) < snapshot.directory.principals.len());
            let signed = parsed.credentials.has_v3_signature()
                || parsed.credentials.has_v1_signature()
                || parsed.credentials.access_key_id.is_some();
            if signed {
                // An accepted signature names a nonce that is now spent: the same request
                // again is a replay, never a second allow.
                let again = identity::resolve(
                    snapshot,
                    &settings,
                    &nonces,
                    &peer,
                    &input.headers,
                    &parsed,
                    NOW,
                );
                assert!(again.is_err(), "a signed request was accepted twice");
            }
        }
        Err(e) => {
            let status = e.status().as_u16();
            assert!(
                matches!(status, 400 | 401 | 403 | 404 | 503),
                "{status}: {e}"
            );
            let _ = e.to_string();
        }
    }
});
