//! `ramgate.toml` as data (SPEC §5): every field, its default, and validation that names
//! the file, line and column of what is wrong (from the TOML parser's spans, so a message
//! points at the value it is about). Paths are resolved relative to the file. A setting
//! that means one of a few things is an enum, decided here once.

use crate::diagnostics::{Diagnostic, Diagnostics, Position};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Enforce,
    DryRun,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub account_id: String,
    #[serde(default = "defaults::region")]
    pub region: String,
    #[serde(default = "defaults::mode")]
    pub mode: Mode,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub upstream: Upstream,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub policy: PolicySettings,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub shutdown: Shutdown,
    /// `[cluster]`: replicas sharing nonces, cache invalidations and quotas through Redis
    /// (SPEC §9). Absent: everything stays in this process.
    pub cluster: Option<Cluster>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
    pub header_read_timeout_ms: u64,
    pub max_connections: usize,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upstream {
    pub url: String,
    pub timeout_ms: u64,
    /// `none`: the backend trusts ramgate's `x-ramgate-principal`; `acs3`: every call is
    /// signed with ramgate's own Alibaba Cloud credentials (SPEC §8).
    pub signing: Signing,
    /// Extra trust anchors (PEM) for an `https://` upstream, besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Where ramgate's own credentials come from; only with `signing = "acs3"`.
    pub credentials: Option<UpstreamCredentials>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signing {
    None,
    Acs3,
}

/// `[upstream.credentials]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamCredentials {
    pub source: CredentialSource,
    pub sts_endpoint: String,
    pub imds_endpoint: String,
}

/// The credential sources of Alibaba Cloud's default chain, or the chain itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    Default,
    Env,
    Oidc,
    File,
    EcsRamRole,
}

impl Default for UpstreamCredentials {
    fn default() -> Self {
        Self {
            source: CredentialSource::Default,
            sts_endpoint: "https://sts.aliyuncs.com".into(),
            imds_endpoint: "http://100.100.100.200".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    pub header: String,
    pub trusted_proxies: Vec<IpNet>,
    pub signatures: bool,
    pub max_clock_skew_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metadata {
    pub ttl_ms: u64,
    pub negative_ttl_ms: u64,
    pub max_entries: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub decisions: DecisionSink,
    pub allow_sample_rate: f64,
}

/// Where decision-log lines go: `"off"`, `"stdout"`, or any other string as a file path
/// (relative to `ramgate.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum DecisionSink {
    Off,
    Stdout,
    File(PathBuf),
}

impl From<String> for DecisionSink {
    fn from(value: String) -> Self {
        match value.as_str() {
            "off" => DecisionSink::Off,
            "stdout" => DecisionSink::Stdout,
            _ => DecisionSink::File(value.into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    pub grace_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `redis://[user:password@]host:port/db`; the password never appears in logs or
    /// `/v1/status`.
    pub redis_url: String,
    #[serde(default = "defaults::key_prefix")]
    pub key_prefix: String,
    #[serde(default = "defaults::channel")]
    pub channel: String,
    #[serde(default = "defaults::on_unavailable")]
    pub on_unavailable: OnUnavailable,
}

/// What signed requests get while Redis cannot be reached (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnavailable {
    /// 503 `ServiceUnavailable`: a nonce that could not be claimed is never accepted.
    Deny,
    /// Nonces are remembered by this process alone until Redis is back.
    Local,
}

impl OnUnavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Deny => "deny",
            OnUnavailable::Local => "local",
        }
    }
}

mod defaults {
    use super::*;
    pub fn region() -> String {
        "cn-hangzhou".into()
    }
    pub fn mode() -> Mode {
        Mode::Enforce
    }
    pub fn key_prefix() -> String {
        "ramgate:".into()
    }
    pub fn channel() -> String {
        "ramgate:invalidate".into()
    }
    pub fn on_unavailable() -> OnUnavailable {
        OnUnavailable::Deny
    }
    pub fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            addr: defaults::addr("127.0.0.1:8080"),
            max_body_bytes: 1 << 20,
            header_read_timeout_ms: 10_000,
            max_connections: 10_000,
            tls: None,
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            addr: defaults::addr("127.0.0.1:9901"),
        }
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9000".into(),
            timeout_ms: 10_000,
            signing: Signing::None,
            ca_file: None,
            credentials: None,
        }
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            header: "x-ramgate-principal".into(),
            trusted_proxies: ["127.0.0.1/32", "::1/128"]
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            signatures: true,
            max_clock_skew_secs: 900,
        }
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Self {
            ttl_ms: 30_000,
            negative_ttl_ms: 5_000,
            max_entries: 100_000,
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            dir: "policies".into(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            decisions: DecisionSink::Stdout,
            allow_sample_rate: 1.0,
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { grace_ms: 30_000 }
    }
}

impl Config {
    /// Reads, parses and validates `path`; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![Diagnostic::error(
                path,
                Position::default(),
                format!("cannot read the configuration: {e}"),
            )
            .with_hint("pass the path of ramgate.toml with --config")])
        })?;
        Self::parse(path, &source)
    }

    pub fn parse(path: &Path, source: &str) -> Result<Config, Diagnostics> {
        let mut config: Config = toml::from_str(source).map_err(|e| {
            let at = Position::of_offset(source, e.span().map_or(0, |s| s.start));
            let message = e.message().trim().to_owned();
            Diagnostics(vec![Diagnostic::error(
                path,
                at,
                format!("invalid configuration: {message}"),
            )
            .with_hint("see the configuration reference in README.md")])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.policy.dir = base.join(&config.policy.dir);
        if let Some(tls) = &mut config.listen.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.client_ca = tls.client_ca.as_ref().map(|c| base.join(c));
        }
        config.upstream.ca_file = config.upstream.ca_file.as_ref().map(|c| base.join(c));
        if let DecisionSink::File(file) = &mut config.log.decisions {
            *file = base.join(&*file);
        }
        let spans = toml::de::DeTable::parse(source).ok();
        let mut problems = Vec::new();
        let mut problem = |field: &[&str], message: String, hint: &str| {
            let offset = spans
                .as_ref()
                .and_then(|root| value_offset(root.get_ref(), field))
                .unwrap_or(0);
            problems.push(
                Diagnostic::error(path, Position::of_offset(source, offset), message)
                    .with_hint(hint),
            );
        };
        if config.account_id.len() != 16 || !config.account_id.bytes().all(|b| b.is_ascii_digit()) {
            problem(
                &["account_id"],
                format!(
                    "account_id {:?} is not a 16-digit Alibaba Cloud account id",
                    config.account_id
                ),
                "copy the account id (UID) from the console",
            );
        }
        match config.upstream.url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some()
                    && uri.path() == "/" => {}
            _ => problem(
                &["upstream", "url"],
                format!(
                    "upstream url {:?} is not an http:// or https:// URL with a host and no path",
                    config.upstream.url
                ),
                "e.g. url = \"http://127.0.0.1:9000\" or url = \"https://eci.cn-hangzhou.aliyuncs.com\"",
            ),
        }
        match (config.upstream.signing, &config.upstream.credentials) {
            (Signing::None, Some(_)) => problem(
                &["upstream", "credentials"],
                "[upstream.credentials] is given but signing is \"none\", so nothing would use them".into(),
                "add signing = \"acs3\" to [upstream], or remove [upstream.credentials]",
            ),
            (Signing::Acs3, None) => {
                config.upstream.credentials = Some(UpstreamCredentials::default());
            }
            _ => {}
        }
        if let Some(credentials) = &config.upstream.credentials {
            for (field, url) in [
                ("sts_endpoint", &credentials.sts_endpoint),
                ("imds_endpoint", &credentials.imds_endpoint),
            ] {
                let ok = url.parse::<http::Uri>().is_ok_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
                });
                if !ok {
                    problem(
                        &["upstream", "credentials", field],
                        format!("{field} {url:?} is not an http:// or https:// URL"),
                        "e.g. sts_endpoint = \"https://sts.aliyuncs.com\", imds_endpoint = \"http://100.100.100.200\"",
                    );
                }
            }
        }
        if !(0.0..=1.0).contains(&config.log.allow_sample_rate) {
            problem(
                &["log", "allow_sample_rate"],
                "allow_sample_rate must be between 0.0 and 1.0".into(),
                "1.0 logs every allow; denials are always logged",
            );
        }
        if http::HeaderName::from_bytes(config.identity.header.as_bytes()).is_err() {
            problem(
                &["identity", "header"],
                format!("{:?} is not a valid header name", config.identity.header),
                "e.g. header = \"x-ramgate-principal\"",
            );
        }
        if let Some(cluster) = &config.cluster {
            if let Err(why) = crate::cluster::check_redis_url(&cluster.redis_url) {
                problem(
                    &["cluster", "redis_url"],
                    format!("[cluster] redis_url is not usable: {why}"),
                    "e.g. redis_url = \"redis://127.0.0.1:6379/0\" (rediss:// is not supported)",
                );
            }
            if cluster.channel.is_empty() {
                problem(
                    &["cluster", "channel"],
                    "[cluster] channel must not be empty".into(),
                    "remove the line to use the default \"ramgate:invalidate\"",
                );
            }
        }
        for (table, field, value) in [
            (
                "listen",
                "max_body_bytes",
                config.listen.max_body_bytes as u64,
            ),
            (
                "listen",
                "max_connections",
                config.listen.max_connections as u64,
            ),
            ("upstream", "timeout_ms", config.upstream.timeout_ms),
            ("metadata", "max_entries", config.metadata.max_entries),
        ] {
            if value == 0 {
                problem(
                    &[table, field],
                    format!("{field} must be greater than 0"),
                    "remove the line to use the default",
                );
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Diagnostics(problems))
        }
    }

    pub fn account(&self) -> crate::snapshot::Account {
        crate::snapshot::Account {
            id: self.account_id.as_str().into(),
            region: self.region.as_str().into(),
        }
    }
}

/// Where the value at `path` (tables, then the key) starts in the source the table was
/// parsed from; None when it is not written there (a default).
fn value_offset(root: &toml::de::DeTable<'_>, path: &[&str]) -> Option<usize> {
    let (key, tables) = path.split_last()?;
    let mut table = root;
    for name in tables {
        match table.get(*name)?.get_ref() {
            toml::de::DeValue::Table(inner) => table = inner,
            _ => return None,
        }
    }
    Some(table.get(*key)?.span().start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_everything_but_the_account() {
        let c = Config::parse(
            Path::new("/etc/ramgate/ramgate.toml"),
            "account_id = \"1234567890123456\"\n",
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.listen.max_body_bytes, 1048576);
        assert_eq!(c.identity.header, "x-ramgate-principal");
        assert_eq!(c.identity.trusted_proxies.len(), 2);
        assert_eq!(c.policy.dir, Path::new("/etc/ramgate/policies"));
        assert_eq!(c.metadata.negative_ttl_ms, 5000);
        assert_eq!(c.shutdown.grace_ms, 30000);
    }

    #[test]
    fn the_shipped_demo_configuration_loads() {
        let c = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ramgate.toml"))
            .unwrap();
        assert_eq!(c.account_id, "1234567890123456");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_located() {
        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[listen]\nadress = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].position.line, 3);
        assert!(e.0[0].message.contains("adress"));
        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"12\"\nmode = \"dry-run\"\n[upstream]\nurl = \"ftp://x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 2);
        assert_eq!(e.0[1].position.line, 4);
        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\nmode = \"audit\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].position.line, 2);
    }

    /// Each problem points at the value it is about, not at the first place its key's name
    /// appears: here a comment and `header_read_timeout_ms` mention `header`, `url` and
    /// `timeout_ms` first.
    #[test]
    fn problems_point_at_their_own_value() {
        let source = "account_id = \"1234567890123456\"\n\
                      \n\
                      [listen]\n\
                      header_read_timeout_ms = 5000\n\
                      \n\
                      [identity]\n\
                      # header: set by the trusted proxy; url and timeout_ms are in [upstream]\n\
                      header = \"not a header\"\n\
                      \n\
                      [upstream]\n\
                      # url of the backend; timeout_ms bounds each call (not header_read_timeout_ms)\n\
                      url = \"ftp://x\"\n\
                      timeout_ms = 0\n";
        let e = Config::parse(Path::new("r.toml"), source).unwrap_err();
        let at = |needle: &str| {
            let d =
                e.0.iter()
                    .find(|d| d.message.contains(needle))
                    .unwrap_or_else(|| panic!("no problem about {needle}: {e}"));
            (d.position.line, d.position.column)
        };
        assert_eq!(e.0.len(), 3, "{e}");
        assert_eq!(at("not a valid header name"), (8, 10), "{e}");
        assert_eq!(at("is not an http:// or https:// URL"), (12, 7), "{e}");
        assert_eq!(at("timeout_ms must be greater than 0"), (13, 14), "{e}");
    }

    #[test]
    fn decisions_is_read_once_into_a_sink() {
        let parse = |value: &str| {
            let toml =
                format!("account_id = \"1234567890123456\"\n[log]\ndecisions = \"{value}\"\n");
            Config::parse(Path::new("/etc/ramgate/ramgate.toml"), &toml)
                .unwrap()
                .log
                .decisions
        };
        assert_eq!(parse("off"), DecisionSink::Off);
        assert_eq!(parse("stdout"), DecisionSink::Stdout);
        assert_eq!(
            parse("decisions.log"),
            DecisionSink::File("/etc/ramgate/decisions.log".into())
        );
    }

    #[test]
    fn upstream_signing_settings_are_checked_and_located() {
        let c = Config::parse(
            Path::new("/etc/ramgate/ramgate.toml"),
            "account_id = \"1234567890123456\"\n[upstream]\nurl = \"https://eci.cn-hangzhou.aliyuncs.com\"\nsigning = \"acs3\"\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.upstream.signing, Signing::Acs3);
        assert_eq!(
            c.upstream.ca_file.as_deref(),
            Some(Path::new("/etc/ramgate/ca.pem"))
        );
        // Signing without a table: the default chain with the default endpoints.
        assert_eq!(c.upstream.credentials, Some(UpstreamCredentials::default()));

        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[upstream]\nurl = \"http://127.0.0.1:9000\"\n\n[upstream.credentials]\nsource = \"env\"\n",
        )
        .unwrap_err();
        assert_eq!((e.0[0].position.line, e.0[0].position.column), (5, 1));
        assert!(
            e.0[0].message.contains("signing is \"none\""),
            "{}",
            e.0[0].message
        );

        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[upstream]\nsigning = \"acs3\"\n[upstream.credentials]\nsts_endpoint = \"sts.aliyuncs.com\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].position.line, 5);
        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[upstream]\nsigning = \"acs3\"\n[upstream.credentials]\nsource = \"vault\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].position.line, 5);
        assert!(e.0[0].message.contains("vault"), "{}", e.0[0].message);
    }

    #[test]
    fn cluster_settings_have_defaults_and_are_checked() {
        let c = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[cluster]\nredis_url = \"redis://127.0.0.1:6379/0\"\n",
        )
        .unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.key_prefix, "ramgate:");
        assert_eq!(cluster.channel, "ramgate:invalidate");
        assert_eq!(cluster.on_unavailable, OnUnavailable::Deny);
        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[cluster]\nredis_url = \"rediss://r:6379\"\n",
        )
        .unwrap_err();
        assert_eq!((e.0[0].position.line, e.0[0].position.column), (3, 13));
        assert!(e.0[0].message.contains("redis_url"), "{}", e.0[0].message);
        let e = Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[cluster]\nredis_url = \"redis://r\"\non_unavailable = \"open\"\n",
        )
        .unwrap_err();
        assert_eq!(e.0[0].position.line, 4);
        assert!(e.0[0].message.contains("deny"), "{}", e.0[0].message);
        assert!(Config::parse(
            Path::new("r.toml"),
            "account_id = \"1234567890123456\"\n[cluster]\non_unavailable = \"local\"\n",
        )
        .is_err());
    }
}
