//! The command line: `tumbler controller | render | crds | log | rollback | version`.
//! Installed as `kubectl-tumbler` it is also a kubectl plugin (`kubectl tumbler ...`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Error, Result};

mod history;
mod render;

#[derive(Debug, Parser)]
#[command(
    name = "tumbler",
    version,
    about = "Gitops releases from Kubernetes custom resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Environment and Release controllers against the current kubeconfig.
    Controller(ControllerArgs),
    /// Render a Release locally and print (or write) exactly what the controller would commit.
    Render {
        /// The Release manifest(s): a YAML file, every Release document in it, or `-` for
        /// stdin.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The Environment manifest (YAML); without it a local default is assumed.
        #[arg(long)]
        environment: Option<PathBuf>,
        /// Write the files under this folder instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the CustomResourceDefinitions, or write one file per CRD into a folder.
    Crds {
        /// Folder to write `<crd name>.yaml` files into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the release log of an Environment from git.
    Log(history::LogArgs),
    /// Roll a Release back to an earlier version or commit.
    Rollback(history::RollbackArgs),
    /// Print the version.
    Version,
}

/// Runs one subcommand and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Crds { out } => crds(out).map(|_| ExitCode::SUCCESS),
        Command::Version => {
            println!("tumbler {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Controller(args) => controller(args).map(|_| ExitCode::SUCCESS),
        Command::Render {
            file,
            environment,
            out,
        } => render::run(&file, environment.as_deref(), out.as_deref()).map(|_| ExitCode::SUCCESS),
        Command::Log(args) => history::log(args).map(|_| ExitCode::SUCCESS),
        Command::Rollback(args) => history::rollback(args).map(|_| ExitCode::SUCCESS),
    }
}

/// Options of `tumbler controller`; each has an environment-variable fallback.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Folder of the cached clones.
    #[arg(long, env = "TUMBLER_CACHE_DIR", default_value = "/tmp/tumbler-cache")]
    pub cache_dir: PathBuf,
    /// Watch only these namespaces (default: all): comma-separated, or the flag repeated.
    /// One is watched with namespaced watches; several with cluster-wide watches whose
    /// objects of other namespaces are dropped (reading Releases and Environments needs a
    /// ClusterRole then; writing them, Events and Secrets only Roles in those namespaces).
    #[arg(long, env = "TUMBLER_WATCH_NAMESPACE", value_delimiter = ',')]
    pub watch_namespace: Vec<String>,
    /// Watch only Releases and Environments whose labels match this selector (Flux's
    /// sharding convention: `sharding.fluxcd.io/key=shard1` on a shard,
    /// `!sharding.fluxcd.io/key` on the main controller): several controllers split the work
    /// by label. See docs/SHARDING.md.
    #[arg(long, env = "TUMBLER_WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// Reconciles at once per kind. A reconcile mostly waits (for the API server, for its
    /// change to be pushed in a batch with others), so a burst is written in as few batches
    /// as this allows.
    #[arg(long, env = "TUMBLER_CONCURRENCY", default_value_t = 256)]
    pub concurrency: u16,
    /// Log format: `json` (in clusters) or `text` (local runs).
    #[arg(long, env = "TUMBLER_LOG_FORMAT", default_value = "json")]
    pub log_format: LogFormat,
    /// Log filter, as RUST_LOG.
    #[arg(long, env = "TUMBLER_LOG", default_value = "info,kube=warn")]
    pub log: String,
    /// Do not ask Flux to reconcile right after a push.
    #[arg(long, env = "TUMBLER_NO_FLUX_NUDGE")]
    pub no_flux_nudge: bool,
    /// Address of the admin server (`/metrics`, `/healthz`, `/readyz`); `off` disables it.
    #[arg(long, env = "TUMBLER_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: String,
    /// Run only while holding a coordination.k8s.io Lease (for more than one replica).
    #[arg(long, env = "TUMBLER_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease; defaults to POD_NAMESPACE, then `default`.
    #[arg(long, env = "TUMBLER_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease. Default: `tumbler-leader`, or with `--watch-label-selector` one
    /// Lease per selector (`tumbler-leader-<selector>-<hash>`), so that each shard elects
    /// its own leader.
    #[arg(long, env = "TUMBLER_LEASE_NAME")]
    pub lease_name: Option<String>,
    /// Seconds the Lease is valid without renewal: the hand-over time when a leader dies.
    #[arg(long, env = "TUMBLER_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
    /// Seconds a git server may stay silent during a fetch or push before the operation
    /// fails with `GitTimeout` (connecting gets a third of it, at least 5 s).
    #[arg(long, env = "TUMBLER_GIT_TIMEOUT", default_value_t = 30)]
    pub git_timeout: u64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Sets up tracing: JSON with the current span's fields (the object's namespace and name)
/// on every line, or text for people.
pub fn init_logging(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn controller(args: ControllerArgs) -> Result<()> {
    init_logging(args.log_format, &args.log);
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        path: "tokio runtime".into(),
        source,
    })?;
    runtime.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| Error::Controller(e.into()))?;
        let config = crate::controller::Config {
            cache_dir: args.cache_dir,
            namespaces: crate::controller::parse_namespaces(&args.watch_namespace),
            label_selector: args.watch_label_selector.clone(),
            concurrency: args.concurrency,
            git_timeout: std::time::Duration::from_secs(args.git_timeout.max(1)),
            reporter: "tumbler".into(),
            nudge_flux: !args.no_flux_nudge,
            admin_addr: if args.metrics_addr == "off" {
                None
            } else {
                Some(args.metrics_addr.parse().map_err(|e| {
                    Error::Usage(format!("--metrics-addr {}: {e}", args.metrics_addr))
                })?)
            },
            leader_election: args
                .leader_election
                .then(|| crate::controller::LeaderElection {
                    namespace: args
                        .leader_election_namespace
                        .clone()
                        .or_else(|| std::env::var("POD_NAMESPACE").ok())
                        .unwrap_or_else(|| "default".into()),
                    lease_name: crate::controller::lease_name(
                        args.lease_name.as_deref(),
                        args.watch_label_selector.as_deref(),
                    ),
                    identity: std::env::var("POD_NAME").unwrap_or_else(|_| {
                        format!(
                            "{}-{}",
                            std::env::var("HOSTNAME").unwrap_or_else(|_| "tumbler".into()),
                            std::process::id()
                        )
                    }),
                    lease_seconds: args.lease_seconds,
                }),
        };
        crate::controller::run(client, config)
            .await
            .map_err(Error::Controller)
    })
}

/// The Environment `tumbler render` assumes without `--environment`: in the namespace the
/// Release names (so it renders as a Release of that namespace would), `default` otherwise.
pub(crate) fn local_environment(release: &crate::api::Release) -> crate::api::Environment {
    let ns = release
        .spec
        .environment_namespace
        .clone()
        .or_else(|| release.metadata.namespace.clone())
        .unwrap_or_else(|| "default".into());
    let mut env = crate::api::Environment::new(
        "local",
        crate::api::EnvironmentSpec {
            repository: crate::api::RepositorySpec {
                url: "file:///dev/null".into(),
                branch: "main".into(),
                path: "envs/local".into(),
                secret_ref: None,
                insecure: false,
            },
            target_namespace: Some(ns.clone()),
            ..Default::default()
        },
    );
    env.metadata.namespace = Some(ns);
    env
}

fn crds(out: Option<PathBuf>) -> Result<()> {
    let files = crate::api::crds_yaml()?;
    match out {
        None => {
            let docs: Vec<String> = files.into_iter().map(|(_, body)| body).collect();
            print!("{}", docs.join("---\n"));
        }
        Some(dir) => {
            let io = |path: &std::path::Path| {
                let path = path.display().to_string();
                move |source| Error::Io { path, source }
            };
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            for (name, body) in files {
                let path = dir.join(name);
                std::fs::write(&path, body).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}
