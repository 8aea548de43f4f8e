//! The command line: `tumbler controller | render | crds | log | rollback | promote |
//! reconcile | suspend | resume | diff | completion | version`. Installed as `kubectl-tumbler` it is also a kubectl plugin (`kubectl tumbler
//! ...`), and says so in its usage. The cluster flags are kubectl's: `--kubeconfig`,
//! `--context`, `--cluster`, `--user`, `-n`, `-A`, before or after the subcommand.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::{Error, Result};

mod control;
mod history;
mod promote;
mod render;

pub use history::Output;

/// The name kubectl runs the plugin by, and the name its usage shows then.
pub const PLUGIN_BINARY: &str = "kubectl-tumbler";
pub const PLUGIN_NAME: &str = "kubectl tumbler";

#[derive(Debug, Parser)]
#[command(
    name = "tumbler",
    version,
    about = "Gitops releases from Kubernetes custom resources"
)]
pub struct Cli {
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's cluster flags, accepted before or after the subcommand.
#[derive(Clone, Debug, Default, clap::Args)]
#[command(next_help_heading = "Cluster options")]
pub struct KubeArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod without
    /// any of these, the pod's service account).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Namespace of the Environment (log) or Release (rollback); default: the context's.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// log: the Environments of every namespace.
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

impl KubeArgs {
    /// Whether any kubeconfig flag was given (otherwise kube's usual inference applies).
    fn any_kubeconfig_flag(&self) -> bool {
        self.kubeconfig.is_some()
            || self.context.is_some()
            || self.cluster.is_some()
            || self.user.is_some()
    }

    /// The client configuration these flags select: without any, kube's inference
    /// ($KUBECONFIG, ~/.kube/config, then the pod's service account); with one, the
    /// kubeconfig (that file, or the default one) with that context, cluster and user.
    pub async fn config(&self) -> Result<kube::Config> {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let usage = |e: &dyn std::fmt::Display| Error::Usage(format!("kubeconfig: {e}"));
        if !self.any_kubeconfig_flag() {
            return kube::Config::infer().await.map_err(|e| usage(&e));
        }
        let file = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| usage(&e))?;
        let source = match &self.kubeconfig {
            Some(path) => path.display().to_string(),
            None => "the kubeconfig".into(),
        };
        let missing = |what: &str, name: &str, names: Vec<&str>| {
            Error::Usage(format!(
                "{what} {name:?} not found in {source} (it has: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        };
        if let Some(name) = &self.context
            && !file.contexts.iter().any(|c| &c.name == name)
        {
            let names = file.contexts.iter().map(|c| c.name.as_str()).collect();
            return Err(missing("context", name, names));
        }
        if let Some(name) = &self.cluster
            && !file.clusters.iter().any(|c| &c.name == name)
        {
            let names = file.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(missing("cluster", name, names));
        }
        if let Some(name) = &self.user
            && !file.auth_infos.iter().any(|c| &c.name == name)
        {
            let names = file.auth_infos.iter().map(|c| c.name.as_str()).collect();
            return Err(missing("user", name, names));
        }
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| Error::Usage(format!("{source}: {e}")))
    }

    /// A client, and the namespace to use: `-n`, else the context's.
    pub async fn client_and_namespace(&self) -> Result<(kube::Client, String)> {
        let config = self.config().await?;
        let ns = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::Usage(format!("kube client: {e}")))?;
        Ok((client, ns))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Environment and Release controllers against the kubeconfig (or in-cluster).
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
    /// Show the release log of an Environment (or of every Environment) from git.
    Log(history::LogArgs),
    /// Roll a Release back to an earlier version or commit.
    Rollback(history::RollbackArgs),
    /// Ask the controller to reconcile a Release now; on a Drifted Release this writes its
    /// rendered files to git again.
    Reconcile(control::ControlArgs),
    /// Suspend a Release: no commit is made for it until it is resumed.
    Suspend(control::ControlArgs),
    /// Resume a suspended Release: what changed meanwhile is committed.
    Resume(control::ControlArgs),
    /// Show what a commit of a Release's current spec would change at the branch head (exit
    /// code 0: nothing, 1: something, 2: an error).
    Diff(control::DiffArgs),
    /// Promote the version the followed Release (spec.follow) is Ready at, now; releases
    /// the hold of a rollback.
    Promote(promote::PromoteArgs),
    /// Print a shell completion script (`source <(tumbler completion bash)`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the version.
    Version,
}

/// Whether the program runs as the kubectl plugin: its file name is `kubectl-tumbler`.
pub fn is_plugin(argv0: &Path) -> bool {
    argv0
        .file_name()
        .and_then(|f| f.to_str())
        .is_some_and(|f| f.strip_suffix(".exe").unwrap_or(f) == PLUGIN_BINARY)
}

/// The clap command for a program started as `argv0`: as the plugin, usage and help say
/// `kubectl tumbler`.
pub fn command(argv0: Option<&Path>) -> clap::Command {
    let cmd = Cli::command();
    if argv0.is_some_and(is_plugin) {
        cmd.bin_name(PLUGIN_NAME).display_name(PLUGIN_NAME)
    } else {
        cmd
    }
}

/// Parses a command line, `args[0]` being the program (as in `std::env::args_os`).
pub fn try_parse_from<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = command(args.first().map(Path::new));
    let matches = cmd.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// Runs one subcommand and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let flags = cli.kube;
    match cli.command {
        Command::Crds { out } => crds(out).map(|_| ExitCode::SUCCESS),
        Command::Version => {
            println!("tumbler {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion { shell } => {
            completion(shell);
            Ok(ExitCode::SUCCESS)
        }
        Command::Controller(args) => {
            if flags.namespace.is_some() || flags.all_namespaces {
                return Err(Error::Usage(
                    "controller: -n/-A do not apply; --watch-namespace says which namespaces \
                     it watches (default: all)"
                        .into(),
                ));
            }
            controller(&flags, args).map(|_| ExitCode::SUCCESS)
        }
        Command::Render {
            file,
            environment,
            out,
        } => render::run(&file, environment.as_deref(), out.as_deref()).map(|_| ExitCode::SUCCESS),
        Command::Log(args) => history::log(&flags, args).map(|_| ExitCode::SUCCESS),
        Command::Rollback(args) => history::rollback(&flags, args).map(|_| ExitCode::SUCCESS),
        Command::Reconcile(args) => {
            control::control(&flags, control::Request::Reconcile, args).map(|_| ExitCode::SUCCESS)
        }
        Command::Suspend(args) => {
            control::control(&flags, control::Request::Suspend, args).map(|_| ExitCode::SUCCESS)
        }
        Command::Resume(args) => {
            control::control(&flags, control::Request::Resume, args).map(|_| ExitCode::SUCCESS)
        }
        // As diff(1): 0 the same, 1 different, 2 trouble.
        Command::Diff(args) => match control::diff(&flags, args) {
            Ok(changed) => Ok(ExitCode::from(u8::from(changed))),
            Err(e) => {
                eprintln!("tumbler: {e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Promote(args) => promote::promote(&flags, args).map(|_| ExitCode::SUCCESS),
    }
}

/// Prints the completion script of `shell` for the name the program was installed as
/// (`tumbler`, or `kubectl-tumbler` when run by that name).
fn completion(shell: clap_complete::Shell) {
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    let name = if argv0.as_deref().is_some_and(is_plugin) {
        PLUGIN_BINARY
    } else {
        "tumbler"
    };
    clap_complete::generate(shell, &mut Cli::command(), name, &mut std::io::stdout());
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

fn controller(flags: &KubeArgs, args: ControllerArgs) -> Result<()> {
    init_logging(args.log_format, &args.log);
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        path: "tokio runtime".into(),
        source,
    })?;
    runtime.block_on(async move {
        let client = kube::Client::try_from(flags.config().await?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        try_parse_from(args)
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cluster_flags_go_before_or_after_the_subcommand() {
        for args in [
            &[
                "kubectl-tumbler",
                "--context",
                "prod",
                "log",
                "-e",
                "staging",
            ][..],
            &["tumbler", "log", "-e", "staging", "--context", "prod"],
        ] {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.kube.context.as_deref(), Some("prod"), "{args:?}");
            let Command::Log(log) = cli.command else {
                panic!("{args:?}: not log")
            };
            assert_eq!(log.environment.as_deref(), Some("staging"));
        }
        let cli = parse(&[
            "tumbler",
            "--kubeconfig",
            "/tmp/kc",
            "rollback",
            "api",
            "--to",
            "1.0.0",
            "-n",
            "team-a",
            "--user",
            "u",
            "--cluster",
            "c",
        ])
        .unwrap();
        assert_eq!(cli.kube.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(cli.kube.namespace.as_deref(), Some("team-a"));
        assert_eq!(cli.kube.user.as_deref(), Some("u"));
        assert_eq!(cli.kube.cluster.as_deref(), Some("c"));
        let cli = parse(&["tumbler", "-A", "log"]).unwrap();
        assert!(cli.kube.all_namespaces);
        let cli = parse(&["tumbler", "controller", "--context", "prod"]).unwrap();
        assert_eq!(cli.kube.context.as_deref(), Some("prod"));
    }

    #[test]
    fn namespace_and_all_namespaces_conflict() {
        let e = parse(&["tumbler", "log", "-A", "-n", "x"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn output_is_one_of_table_json_yaml() {
        for (value, want) in [
            ("table", Output::Table),
            ("json", Output::Json),
            ("yaml", Output::Yaml),
        ] {
            let Command::Log(log) = parse(&["tumbler", "log", "-o", value]).unwrap().command else {
                panic!()
            };
            assert_eq!(log.output, want);
        }
        let Command::Log(log) = parse(&["tumbler", "log"]).unwrap().command else {
            panic!()
        };
        assert_eq!(log.output, Output::Table);
        let e = parse(&["tumbler", "log", "-o", "xml"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        let msg = e.to_string();
        assert!(msg.contains("xml") && msg.contains("yaml"), "{msg}");
    }

    #[test]
    fn usage_names_the_plugin_when_run_as_one() {
        for (argv0, usage) in [
            (
                "/usr/local/bin/kubectl-tumbler",
                "Usage: kubectl tumbler log",
            ),
            ("kubectl-tumbler.exe", "Usage: kubectl tumbler log"),
            ("/usr/local/bin/tumbler", "Usage: tumbler log"),
        ] {
            let e = parse(&[argv0, "log", "--help"]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp);
            assert!(e.to_string().contains(usage), "{argv0}: {e}");
        }
        let e = parse(&["kubectl-tumbler", "--help"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("Usage: kubectl tumbler [OPTIONS] <COMMAND>"),
            "{e}"
        );
        let e = parse(&["kubectl-tumbler", "nonsense"]).unwrap_err();
        assert!(e.to_string().contains("kubectl tumbler"), "{e}");
        assert!(!e.to_string().contains("kubectl-tumbler"), "{e}");
    }

    #[test]
    fn completion_takes_a_shell() {
        for shell in ["bash", "zsh", "fish"] {
            let cli = parse(&["tumbler", "completion", shell]).unwrap();
            assert!(matches!(cli.command, Command::Completion { .. }), "{shell}");
        }
        let e = parse(&["tumbler", "completion", "cmd.exe"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn completion_scripts_know_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = vec![];
            clap_complete::generate(shell, &mut Cli::command(), "tumbler", &mut out);
            let script = String::from_utf8(out).unwrap();
            for word in ["rollback", "context", "kubeconfig", "yaml"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}
- name: c2
  cluster: {server: 'https://127.0.0.2:2', insecure-skip-tls-verify: true}
users:
- name: u1
  user: {token: t1}
contexts:
- name: first
  context: {cluster: c1, user: u1, namespace: one}
- name: second
  context: {cluster: c2, user: u1, namespace: two}
current-context: first
";

    fn flags(file: &Path, context: Option<&str>) -> KubeArgs {
        KubeArgs {
            kubeconfig: Some(file.to_path_buf()),
            context: context.map(str::to_string),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_kubeconfig_flags_select_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, KUBECONFIG).unwrap();

        let config = flags(&file, None).config().await.unwrap();
        assert_eq!(config.default_namespace, "one");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:1/");

        let config = flags(&file, Some("second")).config().await.unwrap();
        assert_eq!(config.default_namespace, "two");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.2:2/");

        let mut f = flags(&file, Some("second"));
        f.namespace = Some("three".into());
        let (_, ns) = f.client_and_namespace().await.unwrap();
        assert_eq!(ns, "three");

        let mut f = flags(&file, None);
        f.cluster = Some("c2".into());
        let config = f.config().await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.2:2/");
    }

    #[tokio::test]
    async fn an_unknown_context_is_refused_naming_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, KUBECONFIG).unwrap();
        let e = flags(&file, Some("prod")).config().await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("\"prod\"") && msg.contains("first, second"),
            "{msg}"
        );
        let mut f = flags(&file, None);
        f.user = Some("nobody".into());
        let msg = f.config().await.unwrap_err().to_string();
        assert!(msg.contains("user \"nobody\""), "{msg}");
        let e = flags(&dir.path().join("missing"), None)
            .config()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn promote_takes_one_release_and_the_cluster_flags() {
        let cli = parse(&["tumbler", "promote", "api-prod", "-n", "team-a"]).unwrap();
        assert_eq!(cli.kube.namespace.as_deref(), Some("team-a"));
        let Command::Promote(p) = cli.command else {
            panic!("not promote")
        };
        assert_eq!(p.release, "api-prod");
        assert!(
            parse(&["tumbler", "promote"]).is_err(),
            "a Release is required"
        );
    }
}
