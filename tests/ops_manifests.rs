//! The deployment files agree with the program: the Kubernetes manifests parse and use
//! ramgate's real ports and admin paths, the configuration and policies they ship load,
//! the Dockerfile exposes the same ports, and every metric the Grafana dashboard queries is
//! one ramgate exports.

use ramgate::ops::metrics::NAMES;
use serde::Deserialize;
use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PROXY_PORT: u64 = 8080;
const ADMIN_PORT: u64 = 9901;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML document of every `config/k8s/*.yaml` file.
fn k8s_documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("config/k8s"))
        .expect("config/k8s")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in config/k8s");
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
            if !value.is_null() {
                docs.push((file.display().to_string(), value));
            }
        }
    }
    docs
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in config/k8s"))
}

fn list(v: &Value) -> &[Value] {
    v.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

/// A port given by number or by the name of one of the container's ports.
fn port_number(port: &Value, container: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("a port number or name");
    list(&container["ports"])
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn ramgate_container(deployment: &Value) -> &Value {
    list(&deployment["spec"]["template"]["spec"]["containers"])
        .iter()
        .find(|c| c["name"].as_str() == Some("ramgate"))
        .expect("a ramgate container")
}

#[test]
fn k8s_manifests_parse_and_use_the_real_ports_and_paths() {
    let docs = k8s_documents();
    let deployment = find(&docs, "Deployment", "eci-api");
    let container = ramgate_container(deployment);

    let ports: BTreeSet<u64> = list(&container["ports"])
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    assert_eq!(ports, BTreeSet::from([PROXY_PORT, ADMIN_PORT]));

    let probe = |kind: &str| {
        let get = &container[kind]["httpGet"];
        (
            get["path"].as_str().unwrap_or_default().to_owned(),
            port_number(&get["port"], container),
        )
    };
    assert_eq!(probe("livenessProbe"), ("/healthz".to_owned(), ADMIN_PORT));
    assert_eq!(probe("readinessProbe"), ("/readyz".to_owned(), ADMIN_PORT));

    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(ADMIN_PORT.to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));

    let service = find(&docs, "Service", "eci-api");
    let targets: Vec<u64> = list(&service["spec"]["ports"])
        .iter()
        .map(|p| port_number(&p["targetPort"], container))
        .collect();
    assert_eq!(targets, [PROXY_PORT], "the Service exposes the proxy only");
}

/// Where a volume of `deployment` is mounted in the ramgate container.
fn mount_of(deployment: &Value, config_map: &str) -> String {
    let pod = &deployment["spec"]["template"]["spec"];
    let volume = list(&pod["volumes"])
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(config_map))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_else(|| panic!("no volume of ConfigMap {config_map}"));
    list(&ramgate_container(deployment)["volumeMounts"])
        .iter()
        .find(|m| m["name"].as_str() == Some(volume))
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("volume {volume} is not mounted"))
        .to_owned()
}

#[test]
fn the_shipped_configuration_loads_and_matches_the_manifests() {
    let docs = k8s_documents();
    let deployment = find(&docs, "Deployment", "eci-api");
    let policy_dir = mount_of(deployment, "ramgate-policies");

    // ramgate.toml: the file `--config` names, listening on the container's ports.
    let (container, config) = serving_container(&docs, deployment, "ramgate-config");
    assert!(
        config.listen.addr.ip().is_unspecified(),
        "reachable in the pod"
    );
    assert!(
        config.admin.addr.ip().is_unspecified(),
        "reachable by probes"
    );
    assert_eq!(config.policy.dir, Path::new(&policy_dir));
    // The drain fits in the pod's grace period, with the preStop pause.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let pause: u64 = list(&container["lifecycle"]["preStop"]["exec"]["command"])
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.parse().ok())
        .unwrap_or(0);
    assert!(
        config.shutdown.grace_ms / 1000 + pause < grace,
        "grace_ms {} + preStop {pause}s must fit in {grace}s",
        config.shutdown.grace_ms
    );

    // The policies ConfigMap is a valid policy directory (given the secrets it names).
    let secrets = tempfile::tempdir().expect("temp dir");
    for key in ["root", "liumi"] {
        std::fs::write(secrets.path().join(key), format!("secret-of-{key}")).expect("write");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = find(&docs, "ConfigMap", "ramgate-policies")["data"]
        .as_mapping()
        .expect("policy files");
    for (name, text) in data {
        let (name, text) = (name.as_str().expect("a name"), text.as_str().expect("text"));
        let text = text.replace(
            "/etc/ramgate/secrets/",
            &format!("{}/", secrets.path().display()),
        );
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let snapshot = ramgate::snapshot::Snapshot::load(dir.path(), config.account())
        .unwrap_or_else(|e| panic!("the ConfigMap's policies do not load:\n{e}"));
    assert_eq!(snapshot.files.len(), data.len());
}

/// The ramgate container of `deployment` serving with the `ramgate.toml` of ConfigMap
/// `config_map`, mounted where its `--config` argument says; returns the container and the
/// configuration, checked to listen on the manifests' proxy and admin ports.
fn serving_container<'a>(
    docs: &'a [(String, Value)],
    deployment: &'a Value,
    config_map: &str,
) -> (&'a Value, ramgate::config::Config) {
    let container = ramgate_container(deployment);
    let config_path = format!("{}/ramgate.toml", mount_of(deployment, config_map));
    let args: Vec<&str> = list(&container["args"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args, ["serve", "--config", config_path.as_str()]);
    let toml = find(docs, "ConfigMap", config_map)["data"]["ramgate.toml"]
        .as_str()
        .expect("ramgate.toml in the ConfigMap");
    let config = ramgate::config::Config::parse(Path::new(&config_path), toml)
        .unwrap_or_else(|e| panic!("{config_map}'s ramgate.toml: {e}"));
    assert_eq!(u64::from(config.listen.addr.port()), PROXY_PORT);
    assert_eq!(u64::from(config.admin.addr.port()), ADMIN_PORT);
    (container, config)
}

/// config/k8s/rrsa.yaml: ramgate in front of the real ECI endpoint, signing with a RAM
/// role through RRSA. Its configuration loads with `signing = "acs3"` over HTTPS, the
/// credential chain given the manifest's environment picks OIDC, and the token file it
/// names is in a projected service-account token volume for STS.
#[test]
fn the_rrsa_example_signs_with_the_role_of_its_projected_token() {
    let docs = k8s_documents();
    let deployment = find(&docs, "Deployment", "eci-gateway");
    let (container, config) = serving_container(&docs, deployment, "ramgate-cloud-config");
    assert_eq!(config.upstream.signing, ramgate::config::Signing::Acs3);
    assert!(
        config.upstream.url.starts_with("https://eci."),
        "{}",
        config.upstream.url
    );

    let env: std::collections::HashMap<String, String> = list(&container["env"])
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let settings = config
        .upstream
        .credentials
        .as_ref()
        .expect("[upstream.credentials]");
    let provider =
        ramgate::upstream::credentials::resolve(settings, &|name| env.get(name).cloned())
            .unwrap_or_else(|e| panic!("the chain given rrsa.yaml's environment: {e}"));
    let ramgate::upstream::credentials::Provider::Refreshing(
        ramgate::upstream::credentials::Refreshing::Oidc(oidc),
    ) = provider
    else {
        panic!("rrsa.yaml's environment must select OIDC, got {provider:?}");
    };
    assert_eq!(oidc.endpoint, "https://sts-vpc.cn-hangzhou.aliyuncs.com");

    // The token file lies in the mount of a projected token for STS.
    let token_file = oidc.token_file.to_string_lossy().into_owned();
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|p| token_file.starts_with(&format!("{p}/")))
        })
        .unwrap_or_else(|| panic!("{token_file} is in no volume mount"));
    let volume = list(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the token volume");
    let token = list(&volume["projected"]["sources"])
        .iter()
        .map(|s| &s["serviceAccountToken"])
        .find(|t| !t.is_null())
        .expect("a projected serviceAccountToken");
    assert_eq!(token["audience"].as_str(), Some("sts.aliyuncs.com"));
    let file_name = token_file.rsplit('/').next().unwrap_or_default();
    assert_eq!(token["path"].as_str(), Some(file_name));
    assert_eq!(pod["serviceAccountName"].as_str(), Some("ramgate"));
    find(&docs, "ServiceAccount", "ramgate");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
}

/// The gateway of `config/k8s/gateway.yaml`: three replicas sharing the Redis it ships,
/// a disruption budget that keeps a majority serving, and the Service in front.
#[test]
fn the_gateway_runs_three_replicas_sharing_its_redis() {
    let docs = k8s_documents();
    let deployment = find(&docs, "Deployment", "ramgate-gateway");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(3));
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let (container, config) = serving_container(&docs, deployment, "ramgate-gateway-config");
    assert_eq!(
        mount_of(deployment, "ramgate-policies"),
        "/etc/ramgate/policies"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path));
        assert_eq!(port_number(&get["port"], container), ADMIN_PORT);
    }
    let cluster = config.cluster.expect("the gateway has a [cluster]");
    assert_eq!(cluster.on_unavailable, ramgate::config::OnUnavailable::Deny);

    // redis_url names the Redis Service and its port, which select the StatefulSet's pod.
    let redis_service = find(&docs, "Service", "ramgate-redis");
    let statefulset = find(&docs, "StatefulSet", "ramgate-redis");
    assert_eq!(
        statefulset["spec"]["serviceName"].as_str(),
        Some("ramgate-redis")
    );
    assert_eq!(
        &redis_service["spec"]["selector"],
        &statefulset["spec"]["template"]["metadata"]["labels"]
    );
    let redis_container = &list(&statefulset["spec"]["template"]["spec"]["containers"])[0];
    let redis_port = port_number(
        &list(&redis_service["spec"]["ports"])[0]["targetPort"],
        redis_container,
    );
    let service_port = list(&redis_service["spec"]["ports"])[0]["port"]
        .as_u64()
        .expect("a port");
    assert_eq!(redis_port, 6379);
    assert!(
        cluster
            .redis_url
            .starts_with(&format!("redis://ramgate-redis:{service_port}/")),
        "{}",
        cluster.redis_url
    );

    // At most one replica down for voluntary disruptions, and it selects the gateway.
    let budget = find(&docs, "PodDisruptionBudget", "ramgate-gateway");
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels);
    let min_available = budget["spec"]["minAvailable"]
        .as_u64()
        .expect("minAvailable");
    assert!((2..3).contains(&min_available), "{min_available}");

    let service = find(&docs, "Service", "ramgate-gateway");
    assert_eq!(&service["spec"]["selector"], labels);
    let targets: Vec<u64> = list(&service["spec"]["ports"])
        .iter()
        .map(|p| port_number(&p["targetPort"], container))
        .collect();
    assert_eq!(targets, [PROXY_PORT], "the Service exposes the proxy only");
}

#[test]
fn the_dockerfile_exposes_the_real_ports() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let exposed: BTreeSet<u64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().filter_map(|p| p.parse().ok()))
        .collect();
    assert_eq!(exposed, BTreeSet::from([PROXY_PORT, ADMIN_PORT]));
}

/// `ramgate_[a-z_]+` names in a PromQL expression, histogram series under their base name.
fn queried_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ramgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(base.to_owned());
        rest = &tail[end..];
    }
    names
}

fn exprs(panels: &serde_json::Value, out: &mut Vec<String>) {
    for panel in panels.as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(expr.to_owned());
            }
        }
        // Rows keep their panels inside.
        exprs(&panel["panels"], out);
    }
}

#[test]
fn every_dashboard_metric_is_one_ramgate_exports() {
    let text = std::fs::read_to_string(root().join("config/grafana/ramgate.json"))
        .expect("config/grafana/ramgate.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut all = Vec::new();
    exprs(&dashboard["panels"], &mut all);
    assert!(all.len() >= 10, "{all:?}");
    let exported: BTreeSet<&str> = NAMES.iter().copied().collect();
    let mut queried = BTreeSet::new();
    for expr in &all {
        let names = queried_metrics(expr);
        assert!(!names.is_empty(), "a query of no ramgate metric: {expr}");
        for name in names {
            assert!(
                exported.contains(name.as_str()),
                "the dashboard queries {name}, which ramgate does not export ({expr})"
            );
            queried.insert(name);
        }
    }
    // And the dashboard shows every metric.
    let unused: Vec<&&str> = exported.iter().filter(|n| !queried.contains(**n)).collect();
    assert!(unused.is_empty(), "not on the dashboard: {unused:?}");
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        queried_metrics(
            "histogram_quantile(0.99, sum by (le) (rate(ramgate_request_duration_seconds_bucket{instance=~\"$i\"}[5m]))) / ramgate_inflight_requests"
        ),
        ["ramgate_request_duration_seconds", "ramgate_inflight_requests"]
    );
}
