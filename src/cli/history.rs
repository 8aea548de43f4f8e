//! `tumbler log` and `tumbler rollback`: the release history, read from git.

use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::KubeArgs;
use crate::api::{Environment, Release};
use crate::gitops::{Author, LogEntry, RepoKey, Writer, WriterOptions};
use crate::{Error, Result};

/// Options of `tumbler log`.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// A Release: its history as its status keeps it (the last applied versions), which
    /// needs only `get` on Releases.
    pub release: Option<String>,
    /// Where the log comes from: `git` (the full log, with the Environment's credentials:
    /// needs `get` on Environments and their Secret), `status` (the history each Release
    /// keeps in its status: needs only `list` on Releases), or `auto`: git, or the status
    /// when reading the Environment or its Secret is forbidden (said on stderr).
    #[arg(long, value_enum, default_value_t = From::Auto)]
    pub from: From,
    /// The Environment whose log to show (default: every Environment of the namespace, or
    /// with -A of every namespace; with -A this name in every namespace).
    #[arg(long, short = 'e')]
    pub environment: Option<String>,
    /// Only this app.
    #[arg(long, short = 'a')]
    pub app: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Read a local clone instead of asking the cluster (no kubeconfig needed).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// With --repo: the revision to start from.
    #[arg(long, default_value = "HEAD")]
    pub rev: String,
    /// With --repo: only the Environment folder at this path.
    #[arg(long)]
    pub path: Option<String>,
    /// With --repo: trust only commits by this committer, `Name <email>` (the Environment's
    /// spec.commit.author; default: every commit with Tumbler's trailers). Without --repo
    /// the Environment's commit author is used.
    #[arg(long)]
    pub committer: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// What `tumbler log` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Columns for people.
    #[default]
    Table,
    /// A JSON array of entries.
    Json,
    /// A YAML sequence of entries (the same fields as JSON).
    Yaml,
}

/// Where `tumbler log` reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum From {
    /// git, or the Releases' status when the Environment or its Secret is forbidden.
    #[default]
    Auto,
    /// The gitops repository: every commit (needs the Environment's Secret).
    Git,
    /// The Releases' `status.history`: the last applied versions of each.
    Status,
}

/// Options of `tumbler rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The Release to roll back (in -n, default: the context's namespace).
    pub release: String,
    /// A version from `tumbler log`, a commit (prefix, at least 7 characters), or
    /// `previous`: the newest applied version other than the current one (status.history).
    #[arg(long)]
    pub to: String,
    /// Do not wait for the controller's answer; `kubectl get release X -o
    /// jsonpath='{.status.conditions[?(@.type=="RolledBack")]}'` shows it later.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the controller's answer.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `90s`, `2m`, `1h` (as `spec.expiry` writes them) or seconds.
fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        let secs = s
            .parse()
            .map_err(|_| format!("{s:?}: expected e.g. 90s, 2m or 1h"))?;
        return Ok(std::time::Duration::from_secs(secs));
    }
    crate::api::parse_duration(s).ok_or_else(|| format!("{s:?}: expected e.g. 90s, 2m or 1h"))
}

/// The field manager of the annotation `tumbler rollback` sets (and of the controller's
/// spec patch that meets it): the `Tumbler-Requested-By` of the rollback commit.
pub const ROLLBACK_MANAGER: &str = crate::api::ROLLBACK_MANAGER;

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        path: "tokio runtime".into(),
        source,
    })
}

pub(super) fn cache_dir() -> PathBuf {
    std::env::var_os("TUMBLER_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tumbler-cli-{}", whoami())))
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "user".into())
}

async fn environment_log(
    client: &Client,
    env: &Environment,
    app: Option<&str>,
    limit: usize,
) -> Result<(
    Vec<LogEntry>,
    Option<String>,
    RepoKey,
    crate::gitops::Credentials,
    Writer,
)> {
    let creds = crate::credentials::read(client, env)
        .await
        .map_err(|e| err(e.to_string()))?;
    let key = RepoKey {
        url: env.spec.repository.url.clone(),
        branch: env.spec.repository.branch.clone(),
    };
    let writer = Writer::new(cache_dir(), WriterOptions::default());
    // Only the Environment's committer writes trailers worth trusting.
    let author = env.author();
    let committer = Author {
        name: author.name,
        email: author.email,
    };
    let entries = writer
        .log(
            key.clone(),
            creds.clone(),
            &env.spec.repository.path,
            app,
            limit,
            Some(&committer),
        )
        .await
        .map_err(|e| err(e.to_string()))?;
    // What Flux applied last, from the Environment's first Kustomization.
    let mut applied = None;
    if let Some(ks) = env
        .spec
        .flux
        .as_ref()
        .and_then(|f| f.kustomizations.first())
    {
        let ns = ks
            .namespace
            .clone()
            .unwrap_or_else(|| env.namespace().unwrap_or_default());
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &crate::flux::kustomization_resource());
        if let Ok(Some(obj)) = api.get_opt(&ks.name).await {
            applied = crate::flux::FluxObject::from_dynamic(&obj)
                .status
                .last_applied_revision
                .and_then(|r| crate::flux::revision_commit(&r).map(str::to_string));
        }
    }
    Ok((entries, applied, key, creds, writer))
}

/// One line of the log: the entry, the Environment it is from (cluster logs) and whether
/// Flux applied its commit (`None`: not known).
#[derive(Debug, serde::Serialize)]
struct Row {
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<EnvRef>,
    entry: LogEntry,
    applied: Option<bool>,
}

#[derive(Clone, Debug, serde::Serialize)]
struct EnvRef {
    namespace: String,
    name: String,
}

pub fn log(flags: &KubeArgs, args: LogArgs) -> Result<()> {
    // A local clone needs no runtime: the command stays as quick as the read.
    let (rows, failed) = match &args.repo {
        Some(repo) => {
            if flags.namespace.is_some() || flags.all_namespaces {
                return Err(err(
                    "--repo reads a local clone: -n/-A do not apply (--path selects the Environment folder)",
                ));
            }
            (local_log(repo, &args)?, 0)
        }
        None => runtime()?.block_on(any_cluster_log(flags, &args))?,
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| err(e.to_string()))?
        ),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&rows)?),
        Output::Table => print_table(
            &rows,
            flags.all_namespaces,
            args.environment.is_none() && args.repo.is_none() && args.release.is_none(),
        ),
    }
    if failed > 0 {
        return Err(err(format!(
            "the log of {failed} Environment(s) could not be read (above)"
        )));
    }
    Ok(())
}

/// `Name <email>` as an identity.
fn parse_identity(s: &str) -> Result<Author> {
    let bad = || err(format!("--committer {s:?}: expected `Name <email>`"));
    let (name, rest) = s.split_once('<').ok_or_else(bad)?;
    let email = rest.strip_suffix('>').ok_or_else(bad)?;
    let name = name.trim();
    if name.is_empty() || email.is_empty() || email.contains(['<', '>']) {
        return Err(bad());
    }
    Ok(Author {
        name: name.to_string(),
        email: email.to_string(),
    })
}

/// The log of a local clone (`--repo`); whether Flux applied a commit is not known there.
fn local_log(repo: &Path, args: &LogArgs) -> Result<Vec<Row>> {
    let committer = args.committer.as_deref().map(parse_identity).transpose()?;
    let entries = crate::gitops::log(
        repo,
        &args.rev,
        args.path.as_deref(),
        args.app.as_deref(),
        args.limit,
        committer.as_ref(),
    )
    .map_err(|e| err(e.to_string()))?;
    Ok(entries
        .into_iter()
        .map(|entry| Row {
            environment: None,
            entry,
            applied: None,
        })
        .collect())
}

/// The log from the cluster: from git, or from the Releases' status (see [`From`]).
async fn any_cluster_log(flags: &KubeArgs, args: &LogArgs) -> Result<(Vec<Row>, usize)> {
    if args.release.is_some() && flags.all_namespaces {
        return Err(err(
            "log RELEASE: -A does not apply; -n names the Release's namespace",
        ));
    }
    if args.release.is_some() && args.environment.is_some() {
        return Err(err(
            "log RELEASE: -e does not apply; the Release names its Environment",
        ));
    }
    let from = match (args.from, &args.release) {
        (From::Git, Some(_)) => {
            return Err(err(
                "log RELEASE reads the Release's status; for the full log from git use `-e ENV -a APP --from git`",
            ));
        }
        (From::Auto, Some(_)) => From::Status,
        (from, _) => from,
    };
    let (client, ns) = flags.client_and_namespace().await?;
    let from = match from {
        From::Auto => match git_forbidden(&client, &ns, flags.all_namespaces).await {
            Some(what) => {
                eprintln!(
                    "tumbler: {what}: showing the history the Releases keep in their status (the last applied versions; `--from git` for the full log)"
                );
                From::Status
            }
            None => From::Git,
        },
        from => from,
    };
    match from {
        From::Status => Ok((
            status_log(&client, &ns, flags.all_namespaces, args).await?,
            0,
        )),
        _ => cluster_log(&client, &ns, flags.all_namespaces, args).await,
    }
}

/// What forbids reading the log from git in the namespace (or every namespace): listing
/// Environments or getting Secrets, as the API server answers a SelfSubjectAccessReview.
/// `None` when both are allowed, or when the review itself fails (git is tried then).
async fn git_forbidden(client: &Client, ns: &str, all: bool) -> Option<String> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let namespace = (!all).then(|| ns.to_string());
    for (verb, group, resource) in [
        ("list", crate::api::GROUP, "environments"),
        ("get", "", "secrets"),
    ] {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: namespace.clone(),
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let allowed = api
            .create(&Default::default(), &review)
            .await
            .ok()
            .and_then(|r| r.status)
            .is_none_or(|s| s.allowed);
        if !allowed {
            let scope = match &namespace {
                Some(ns) => format!("in namespace {ns:?}"),
                None => "in every namespace".into(),
            };
            return Some(format!("you may not {verb} {resource} {scope}"));
        }
    }
    None
}

/// The history the Releases keep in their status (`status.history`, the last applied
/// versions of each): of one Release (`log RELEASE`), or of the namespace's (or every
/// namespace's) Releases, filtered by `-e` and `-a`; newest first.
async fn status_log(client: &Client, ns: &str, all: bool, args: &LogArgs) -> Result<Vec<Row>> {
    let api = if all {
        Api::<Release>::all(client.clone())
    } else {
        Api::<Release>::namespaced(client.clone(), ns)
    };
    let releases = match &args.release {
        Some(name) => vec![
            api.get_opt(name)
                .await
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| err(format!("Release {name:?} not found in namespace {ns:?}")))?,
        ],
        None => api
            .list(&ListParams::default())
            .await
            .map_err(|e| err(e.to_string()))?
            .items
            .into_iter()
            .filter(|r| {
                args.environment
                    .as_ref()
                    .is_none_or(|e| &r.spec.environment == e)
            })
            .filter(|r| args.app.as_ref().is_none_or(|a| &r.spec.app == a))
            .collect(),
    };
    let mut rows = status_rows(&releases);
    rows.truncate(args.limit);
    Ok(rows)
}

/// The rows of the Releases' `status.history`, newest first.
fn status_rows(releases: &[Release]) -> Vec<Row> {
    let mut rows = vec![];
    for rel in releases {
        let (env_ns, env_name) = rel.environment_key();
        let release = format!("{}/{}", rel.namespace().unwrap_or_default(), rel.name_any());
        let history = rel
            .status
            .as_ref()
            .map(|s| s.history.as_slice())
            .unwrap_or_default();
        for h in history {
            let time = h
                .applied_at
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_second())
                .unwrap_or_default();
            rows.push(Row {
                environment: Some(EnvRef {
                    namespace: env_ns.clone(),
                    name: env_name.clone(),
                }),
                entry: LogEntry {
                    commit: h.commit.clone(),
                    time,
                    author: String::new(),
                    app: rel.spec.app.clone(),
                    environment: env_name.clone(),
                    path: String::new(),
                    version: h.version.clone(),
                    release: release.clone(),
                    generation: 0,
                    action: String::new(),
                    requested_by: h.requested_by.clone().unwrap_or_default(),
                    summary: String::new(),
                    promoted_from: String::new(),
                },
                applied: None,
            });
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.entry.time));
    rows
}

/// The log of the Environments in the cluster that the flags select (`-e` in the namespace,
/// every one of the namespace, or with `-A` of every namespace), newest first, each entry
/// marked with whether Flux applied its commit. With several Environments one that cannot
/// be read is reported on stderr and counted, and the others are shown.
async fn cluster_log(
    client: &Client,
    ns: &str,
    all_namespaces: bool,
    args: &LogArgs,
) -> Result<(Vec<Row>, usize)> {
    let client = client.clone();
    let envs: Vec<Environment> = match (&args.environment, all_namespaces) {
        (Some(name), false) => vec![
            Api::<Environment>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| {
                    err(format!(
                        "Environment {name:?} not found in namespace {ns:?}"
                    ))
                })?,
        ],
        (name, all) => {
            let api = if all {
                Api::<Environment>::all(client.clone())
            } else {
                Api::<Environment>::namespaced(client.clone(), ns)
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| err(e.to_string()))?;
            let envs: Vec<Environment> = list
                .items
                .into_iter()
                .filter(|e| name.as_ref().is_none_or(|n| &e.name_any() == n))
                .collect();
            if envs.is_empty() {
                let what = match name {
                    Some(n) => format!("no Environment {n:?}"),
                    None => "no Environment".into(),
                };
                let scope = if all {
                    "in any namespace".to_string()
                } else {
                    format!("in namespace {ns:?}")
                };
                return Err(err(format!("{what} {scope}")));
            }
            envs
        }
    };
    let several = envs.len() > 1;
    let mut rows = vec![];
    let mut failed = 0;
    for env in &envs {
        let at = EnvRef {
            namespace: env.namespace().unwrap_or_default(),
            name: env.name_any(),
        };
        match environment_rows(&client, env, args).await {
            Ok(mut r) => {
                for row in &mut r {
                    row.environment = Some(at.clone());
                }
                rows.extend(r);
            }
            Err(e) if several => {
                eprintln!("tumbler: Environment {}/{}: {e}", at.namespace, at.name);
                failed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    // Newest first across Environments; each contributed at most `limit`.
    rows.sort_by_key(|r| std::cmp::Reverse(r.entry.time));
    rows.truncate(args.limit);
    Ok((rows, failed))
}

/// The log of one Environment, each entry marked with whether Flux applied its commit.
async fn environment_rows(client: &Client, env: &Environment, args: &LogArgs) -> Result<Vec<Row>> {
    let (entries, applied, key, creds, writer) =
        environment_log(client, env, args.app.as_deref(), args.limit).await?;
    let mut rows = vec![];
    for entry in entries {
        let applied = match &applied {
            Some(a) => Some(
                writer
                    .is_ancestor(key.clone(), creds.clone(), &entry.commit, a)
                    .await
                    .unwrap_or(false),
            ),
            None => None,
        };
        rows.push(Row {
            environment: None,
            entry,
            applied,
        });
    }
    Ok(rows)
}

/// The table: NAMESPACE with `-A`, ENVIRONMENT when more than one may be shown.
fn print_table(rows: &[Row], namespaces: bool, environments: bool) {
    let mut out = String::new();
    let env_cols = |ns: &str, env: &str| {
        let mut s = String::new();
        if namespaces {
            s.push_str(&format!("{ns:<16} "));
        }
        if environments {
            s.push_str(&format!("{env:<16} "));
        }
        s
    };
    out.push_str(&format!(
        "{}{:<9} {:<20} {:<10} {:<16} {:<16} {:<9} {:<8} {:<26} RELEASE\n",
        env_cols("NAMESPACE", "ENVIRONMENT"),
        "COMMIT",
        "TIME",
        "APP",
        "VERSION",
        "AUTHOR",
        "ACTION",
        "APPLIED",
        "REQUESTED BY"
    ));
    for row in rows {
        let e = &row.entry;
        let time = jiff::Timestamp::from_second(e.time)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let author = e
            .author
            .split(" <")
            .next()
            .filter(|a| !a.is_empty())
            .unwrap_or("-");
        let action = if e.action.is_empty() {
            "-"
        } else {
            e.action.as_str()
        };
        let applied = match row.applied {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let requested_by = if e.requested_by.is_empty() {
            "-"
        } else {
            e.requested_by.as_str()
        };
        let (ns, env) = row
            .environment
            .as_ref()
            .map(|r| (r.namespace.as_str(), r.name.as_str()))
            .unwrap_or(("-", "-"));
        out.push_str(&format!(
            "{}{:<9} {:<20} {:<10} {:<16} {:<16} {:<9} {:<8} {:<26} {}\n",
            env_cols(ns, env),
            &e.commit[..8.min(e.commit.len())],
            time,
            e.app,
            e.version,
            author,
            action,
            applied,
            requested_by,
            e.release
        ));
    }
    print!("{out}");
}

/// `tumbler rollback`: asks the controller, through the `tumbler.dev/rollback-to`
/// annotation, to roll the Release back, and waits for its answer (the `RolledBack`
/// condition). Needs only `get` and `patch` on the Release: the controller reads the old
/// spec from git with the Environment's credentials.
/// `--to previous`: the newest applied version (`status.history`, newest first) other than
/// the one the Release asks for now.
pub fn previous_version(rel: &Release) -> Option<String> {
    rel.status
        .as_ref()?
        .history
        .iter()
        .find(|h| h.version != rel.spec.version)
        .map(|h| h.version.clone())
}

pub fn rollback(flags: &KubeArgs, args: RollbackArgs) -> Result<()> {
    use crate::api::{ROLLBACK_CONDITION, ROLLBACK_TO_ANNOTATION, find_condition};
    if flags.all_namespaces {
        return Err(err(
            "rollback: -A does not apply; -n names the Release's namespace",
        ));
    }
    let to = args.to.trim().to_string();
    if to.is_empty() {
        return Err(err("rollback: --to names a version or a commit"));
    }
    runtime()?.block_on(async move {
        let (client, ns) = flags.client_and_namespace().await?;
        let releases = Api::<Release>::namespaced(client.clone(), &ns);
        let name = &args.release;
        let not_found = || err(format!("Release {name:?} not found in namespace {ns:?}"));
        let rel = releases
            .get_opt(name)
            .await
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(not_found)?;
        let to = if to == "previous" {
            previous_version(&rel).ok_or_else(|| {
                err(format!(
                    "Release {name:?} has no applied version other than {:?} in status.history; `tumbler log {name}` lists what it has",
                    rel.spec.version
                ))
            })?
        } else {
            to
        };
        let patch = json!({"metadata": {"annotations": {ROLLBACK_TO_ANNOTATION: to}}});
        let params = PatchParams {
            field_manager: Some(ROLLBACK_MANAGER.into()),
            ..PatchParams::default()
        };
        releases
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| err(e.to_string()))?;
        if args.no_wait {
            println!("release.tumbler.dev/{name}: rollback to {to} requested ({ROLLBACK_TO_ANNOTATION})");
            return Ok(());
        }
        let deadline = std::time::Instant::now() + args.timeout;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let rel = releases
                .get_opt(name)
                .await
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(not_found)?;
            match rel.annotations().get(ROLLBACK_TO_ANNOTATION) {
                Some(pending) if pending.trim() == to => {
                    if std::time::Instant::now() > deadline {
                        // A transient failure (git unreachable) keeps the request and says
                        // why on the condition.
                        let why = rel
                            .status
                            .as_ref()
                            .and_then(|s| find_condition(&s.conditions, ROLLBACK_CONDITION))
                            .filter(|c| c.status == "False")
                            .map(|c| format!(" (last attempt: {}: {})", c.reason, c.message))
                            .unwrap_or_default();
                        return Err(err(format!(
                            "the controller did not answer within {:?}{why}; the request stays ({ROLLBACK_TO_ANNOTATION}: {to}) and is retried",
                            args.timeout
                        )));
                    }
                    continue;
                }
                Some(other) => {
                    return Err(err(format!(
                        "another rollback request ({ROLLBACK_TO_ANNOTATION}: {other}) replaced this one"
                    )));
                }
                None => {}
            }
            let status = rel.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
            return match find_condition(status, ROLLBACK_CONDITION) {
                Some(c) if c.status == "True" => {
                    println!("release.tumbler.dev/{name} {}", c.message);
                    Ok(())
                }
                Some(c) => Err(err(format!("{} ({})", c.message, c.reason))),
                None => Err(err("the request was removed without an answer".to_string())),
            };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committer_identities_parse() {
        let a = parse_identity("Tumbler Bot <bot@example.com>").unwrap();
        assert_eq!(
            (a.name.as_str(), a.email.as_str()),
            ("Tumbler Bot", "bot@example.com")
        );
        for bad in ["Tumbler", "<a@b>", "T <a@b", "T <>", "T <a<b>"] {
            assert!(parse_identity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn previous_is_the_newest_applied_version_other_than_the_asked_one() {
        use crate::api::{HistoryEntry, ReleaseStatus};
        let entry = |v: &str| HistoryEntry {
            version: v.into(),
            ..Default::default()
        };
        let mut rel = Release::new("api", Default::default());
        rel.spec.version = "3.0.0".into();
        assert_eq!(previous_version(&rel), None);
        rel.status = Some(ReleaseStatus {
            history: vec![entry("3.0.0"), entry("2.0.0"), entry("1.0.0")],
            ..Default::default()
        });
        assert_eq!(previous_version(&rel).as_deref(), Some("2.0.0"));
        // Asked for 4.0.0, not applied yet: the last applied one is the previous.
        rel.spec.version = "4.0.0".into();
        assert_eq!(previous_version(&rel).as_deref(), Some("3.0.0"));
        rel.status.as_mut().unwrap().history = vec![entry("4.0.0")];
        assert_eq!(previous_version(&rel), None);
    }
}
