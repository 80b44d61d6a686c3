//! Fuzz target: the RAM policy parser (`ramgate::policy::document::parse_policy`), the
//! hand-written spanned JSON reader under it, and the diagnostics it renders. Policy files
//! come from operators, but a ConfigMap can be written by anyone with access to it, and a
//! parser that panics or loops takes every reload (and a restart) down with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramgate::model::Tags;
use ramgate::policy::document::parse_policy;
use ramgate::policy::Context;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match parse_policy("fuzz", Some(Path::new("fuzz.json")), source) {
        Ok(policy) => {
            // A compiled policy can be evaluated without panicking, whatever its values:
            // numbers, dates, CIDRs and patterns meet request values of every type.
            let tags = Tags::from_pairs([
                ("name", "liumi"),
                ("env", "test"),
                ("n", "12"),
                ("t", "2024-01-01T00:00:00Z"),
            ]);
            let ctx = Context {
                eci_tags: Some(&tags),
                resource_tags: Some(&tags),
                request_tags: Some(&tags),
                source_ip: Some("10.1.2.3".parse().unwrap()),
                secure_transport: Some(true),
                now_unix_nanos: Some(1_700_000_000_000_000_000),
            };
            let empty = Context {
                eci_tags: None,
                resource_tags: None,
                request_tags: None,
                source_ip: None,
                secure_transport: None,
                now_unix_nanos: None,
            };
            for statement in &policy.statements {
                let _ = statement.reads_tags();
                for (action, resource) in [
                    (
                        "eci:describecontainergroups",
                        "acs:eci:cn-hangzhou:1234567890123456:containergroup/eci-1",
                    ),
                    (
                        "eci:createcontainergroup",
                        "acs:eci:cn-hangzhou:1234567890123456:containergroup/*",
                    ),
                    ("ecs:describesecuritygroups", "*"),
                ] {
                    let _ = statement.evaluate(action, resource, &ctx);
                    let _ = statement.evaluate(action, resource, &empty);
                    let _ = ctx.describe_facts(&statement.conditions);
                }
            }
        }
        Err(problems) => {
            // Every problem renders with a position inside the file.
            let text = problems.to_string();
            assert!(!text.is_empty());
            for d in &problems.0 {
                assert!(d.position.line >= 1 && d.position.column >= 1, "{d:?}");
                assert!(
                    d.position.line as usize <= source.matches('\n').count() + 1,
                    "{d:?}"
                );
            }
        }
    }
});
