//! The `ramgate` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
use ramgate::cli::hypothetical::RequestFlags;
use ramgate::cli::{check, explain, test, who_can};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "ramgate",
    version,
    about = "RAM-style authorization proxy for the ECI OpenAPI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization proxy.
    Serve {
        /// ramgate.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Start an in-memory backend and the proxy with the demo policies, and print calls to try.
    Demo {
        /// The demo configuration.
        #[arg(long, default_value = "config/ramgate.toml")]
        config: PathBuf,
        /// Have the backend play Alibaba Cloud: HTTPS with the demo certificate in
        /// config/demo-cloud/, calls signed ACS3 with ramgate's own (demo) AccessKey.
        #[arg(long)]
        cloud: bool,
    },
    /// Run the in-memory ECI-compatible container-group service (for demos, tests and benchmarks).
    Backend {
        /// Address to listen on; port 0 picks a free port (the real one is logged).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        #[command(flatten)]
        cloud: CloudArgs,
    },
    /// Validate a policy directory; print every problem and warning with file, line and column.
    Check {
        /// The policy directory (principals.toml and <Policy>.json files).
        dir: PathBuf,
        /// Warnings fail the check too (exit 1).
        #[arg(long)]
        strict: bool,
        /// A ramgate.toml whose account and region Resource patterns are checked against
        /// (without it, only patterns that can match no ECI container group are reported).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run policy test cases (TOML case files, or directories of them) against the policy
    /// directory a configuration names.
    Test {
        #[arg(long)]
        config: PathBuf,
        /// Case files, or directories whose *.toml files are case files.
        #[arg(required = true)]
        cases: Vec<PathBuf>,
        /// Also write the results as JUnit XML to this file.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// List every principal a request would be allowed for, and the statement that allows it.
    WhoCan {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        request: RequestFlags,
    },
    /// Explain one decision: allowed or denied, and which statement or condition decided.
    Explain {
        #[arg(long)]
        config: PathBuf,
        /// The caller's ARN, e.g. acs:ram::1234567890123456:user/liumi
        #[arg(long)]
        principal: String,
        #[command(flatten)]
        request: RequestFlags,
    },
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    ramgate::ops::memory::configure_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let stdout = &mut std::io::stdout();
    match cli.command {
        Command::Check {
            dir,
            strict,
            config,
        } => exit(check::run(
            &check::Args {
                dir,
                strict,
                config,
            },
            stdout,
        )),
        Command::Test {
            config,
            cases,
            junit,
        } => exit(test::run(
            &test::Args {
                config,
                cases,
                junit,
            },
            stdout,
        )),
        Command::WhoCan { config, request } => {
            exit(who_can::run(&who_can::Args { config, request }, stdout))
        }
        Command::Explain {
            config,
            principal,
            request,
        } => exit(explain::run(
            &explain::Args {
                config,
                principal,
                request,
            },
            stdout,
        )),
        Command::Backend { listen, cloud } => match cloud.mode() {
            Ok(mode) => run_async(ramgate::backend::run(listen, mode)),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve { config } => match ramgate::config::Config::load(&config) {
            Ok(config) => run_async(ramgate::proxy::run(config)),
            Err(problems) => {
                eprintln!("{problems}");
                ExitCode::FAILURE
            }
        },
        Command::Demo { config, cloud } => {
            if cloud {
                // Before the runtime starts: the process is still one thread.
                ramgate::demo::set_cloud_credentials();
            }
            run_async(ramgate::demo::run(&config, cloud))
        }
    }
}

/// `ramgate backend`'s cloud mode (SPEC §8 tests and `demo --cloud`).
#[derive(clap::Args, Debug)]
struct CloudArgs {
    /// Also listen here as the cloud: only calls signed by --access-key-id are served.
    #[arg(long)]
    cloud_listen: Option<SocketAddr>,
    /// The cloud listener's certificate (PEM); with --tls-key, it serves HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The one AccessKey id the cloud accepts.
    #[arg(long, requires = "cloud_listen")]
    access_key_id: Option<String>,
    /// The environment variable holding that key's secret (never the secret itself on a
    /// command line, where `ps` shows it).
    #[arg(long, requires = "access_key_id")]
    access_key_secret_env: Option<String>,
    /// The environment variable holding the STS token the key must come with, if any.
    #[arg(long, requires = "access_key_id")]
    security_token_env: Option<String>,
}

impl CloudArgs {
    fn mode(self) -> Result<Option<ramgate::backend::CloudMode>, String> {
        let Some(listen) = self.cloud_listen else {
            return Ok(None);
        };
        let id = self
            .access_key_id
            .ok_or("--cloud-listen needs --access-key-id and --access-key-secret-env")?;
        let secret_env = self
            .access_key_secret_env
            .ok_or("--cloud-listen needs --access-key-secret-env")?;
        let secret = std::env::var(&secret_env)
            .map_err(|_| format!("--access-key-secret-env names {secret_env}, which is not set"))?;
        let security_token = match self.security_token_env {
            Some(name) => Some(
                std::env::var(&name)
                    .map_err(|_| format!("--security-token-env names {name}, which is not set"))?,
            ),
            None => None,
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(ramgate::config::Tls {
                cert,
                key,
                client_ca: None,
            }),
            _ => None,
        };
        Ok(Some(ramgate::backend::CloudMode {
            listen,
            tls,
            key: ramgate::backend::cloud::CloudKey {
                access_key_id: id,
                secret,
                security_token,
            },
        }))
    }
}

fn run_async<E: std::fmt::Display>(
    task: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ramgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ramgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Human-readable logs on stderr; `RAMGATE_LOG=debug` for more.
fn init_logging() {
    let level = std::env::var("RAMGATE_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
