//! `ramgate demo` as the README describes it: it starts, prints ready-to-paste calls, and
//! each printed call gives the answer its label says.

mod corpus;
mod support;

use std::time::Duration;
use support::{command, Ramgate};

/// The header value and URL of a printed `curl -s -X POST -H '<h>: <v>' '<url>'` line.
fn parse_curl(line: &str) -> Option<(String, String, String)> {
    let mut quoted = line.split('\'').skip(1).step_by(2);
    let header = quoted.next()?;
    let url = quoted.next()?;
    let (name, value) = header.split_once(": ")?;
    Some((name.to_owned(), value.to_owned(), url.to_owned()))
}

#[tokio::test]
async fn the_printed_calls_answer_as_labelled() {
    printed_calls_answer_as_labelled(false).await;
}

/// `ramgate demo --cloud`: the same calls, the same answers, with the backend playing
/// Alibaba Cloud over HTTPS and checking that every call ramgate made was signed by its key.
#[tokio::test]
async fn with_cloud_the_printed_calls_answer_as_labelled_and_every_upstream_call_is_signed() {
    printed_calls_answer_as_labelled(true).await;
}

async fn printed_calls_answer_as_labelled(cloud: bool) {
    // The shipped configuration, on free ports so the test can run beside anything.
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(corpus::root().join("config/ramgate.toml")).unwrap();
    let policies = corpus::root().join("config/policies");
    let config = shipped
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0")
        .replace(
            "dir = \"policies\"",
            &format!("dir = \"{}\"", policies.display()),
        );
    std::fs::write(dir.path().join("ramgate.toml"), config).unwrap();
    let config = dir
        .path()
        .join("ramgate.toml")
        .to_string_lossy()
        .into_owned();
    let mut args = vec!["demo", "--config", &config];
    let mut names = vec!["proxy", "admin", "backend"];
    if cloud {
        // The demo certificates beside the configuration, as in config/.
        let certs = dir.path().join("demo-cloud");
        std::fs::create_dir(&certs).unwrap();
        for file in ["ca.pem", "server.pem", "server-key.pem"] {
            std::fs::copy(
                corpus::root().join("config/demo-cloud").join(file),
                certs.join(file),
            )
            .unwrap();
        }
        args.push("--cloud");
        names.push("cloud");
    }
    let demo = Ramgate::start(command(&args), &names);
    demo.wait_for_stdout(Duration::from_secs(20), |l| l.starts_with("Press Ctrl-C"))
        .expect("the demo prints its tour");
    let lines = demo.stdout_lines();
    let mut checked = 0;
    for pair in lines.windows(2) {
        let (label, call) = (&pair[0], &pair[1]);
        let Some(label) = label.strip_prefix("# ") else {
            continue;
        };
        if !call.starts_with("curl -s -X POST") {
            continue;
        }
        let (name, value, url) = parse_curl(call).unwrap_or_else(|| panic!("cannot read {call}"));
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let (status, _, body) = support::request_json(
            demo.addr("proxy"),
            "POST",
            &path,
            &[(name.as_str(), value.as_str())],
            "",
        )
        .await;
        if label.starts_with("ALLOWED") || label.starts_with("FILTERED") {
            assert_eq!(status, 200, "{label}: {body}");
            assert!(body.get("Code").is_none(), "{label}: {body}");
        } else if label.starts_with("DENIED") {
            assert_eq!(status, 403, "{label}: {body}");
            assert_eq!(body["Code"], "Forbidden.RAM", "{label}");
        } else if label.starts_with("SILENTLY EMPTIED") {
            assert_eq!(status, 200, "{label}: {body}");
            assert_eq!(body["TotalCount"], 0, "{label}: {body}");
        } else {
            panic!("unexpected label {label}");
        }
        if label.starts_with("FILTERED") {
            assert_eq!(body["TotalCount"], 1, "{label}: {body}");
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} calls printed:\n{}",
        lines.join("\n")
    );
    if cloud {
        let (_, state) = support::get_json(demo.addr("backend"), "/_backend/state").await;
        let seen = &state["cloud"];
        assert!(seen["verified"].as_u64().unwrap_or_default() >= 5, "{seen}");
        assert_eq!(seen["rejected"], serde_json::json!({}), "{seen}");
        assert_eq!(seen["with_ramgate_header"], 0, "{seen}");
    }
}
