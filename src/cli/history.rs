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

/// Options of `tumbler rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The Release to roll back (in -n, default: the context's namespace).
    pub release: String,
    /// A version from `tumbler log`, or a commit (prefix).
    #[arg(long)]
    pub to: String,
}

/// The field manager of `tumbler rollback`'s patch: the `Tumbler-Requested-By` of the
/// rollback commit.
pub const ROLLBACK_MANAGER: &str = "tumbler-rollback";

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
        None => runtime()?.block_on(cluster_log(flags, &args))?,
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
            args.environment.is_none() && args.repo.is_none(),
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

/// The log of the Environments in the cluster that the flags select (`-e` in the namespace,
/// every one of the namespace, or with `-A` of every namespace), newest first, each entry
/// marked with whether Flux applied its commit. With several Environments one that cannot
/// be read is reported on stderr and counted, and the others are shown.
async fn cluster_log(flags: &KubeArgs, args: &LogArgs) -> Result<(Vec<Row>, usize)> {
    let (client, ns) = flags.client_and_namespace().await?;
    let envs: Vec<Environment> = match (&args.environment, flags.all_namespaces) {
        (Some(name), false) => vec![
            Api::<Environment>::namespaced(client.clone(), &ns)
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
                Api::<Environment>::namespaced(client.clone(), &ns)
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
        let author = e.author.split(" <").next().unwrap_or_default();
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
            e.action,
            applied,
            requested_by,
            e.release
        ));
    }
    print!("{out}");
}

pub fn rollback(flags: &KubeArgs, args: RollbackArgs) -> Result<()> {
    if flags.all_namespaces {
        return Err(err(
            "rollback: -A does not apply; -n names the Release's namespace",
        ));
    }
    runtime()?.block_on(async move {
        let (client, ns) = flags.client_and_namespace().await?;
        let releases = Api::<Release>::namespaced(client.clone(), &ns);
        let rel = releases.get_opt(&args.release).await.map_err(|e| err(e.to_string()))?.ok_or_else(|| err(format!("Release {:?} not found in namespace {ns:?}", args.release)))?;
        let env = Api::<Environment>::namespaced(client.clone(), &ns)
            .get_opt(&rel.spec.environment)
            .await
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err(format!("Environment {:?} not found", rel.spec.environment)))?;
        let (entries, _, key, creds, writer) = environment_log(&client, &env, Some(&rel.spec.app), 10_000).await?;
        let target = entries
            .iter()
            .filter(|e| e.action != "delete")
            .find(|e| e.version == args.to || (args.to.len() >= 7 && e.commit.starts_with(&args.to)))
            .ok_or_else(|| err(format!("no commit of app {:?} in Environment {:?} has version or commit {:?}; `tumbler log -e {} -a {}` lists them", rel.spec.app, env.name_any(), args.to, env.name_any(), rel.spec.app)))?;
        let path = format!("{}/{}/.tumbler/release.yaml", env.spec.repository.path, rel.spec.app);
        let bytes = writer
            .file_at(key, creds, &target.commit, &path)
            .await
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err(format!("commit {} has no {path}", &target.commit[..8])))?;
        let old: serde_json::Value = serde_saphyr::from_slice(&bytes).map_err(|e| err(format!("{path} at {}: {e}", &target.commit[..8])))?;
        let mut spec = old.get("spec").cloned().ok_or_else(|| err(format!("{path} at {} has no spec", &target.commit[..8])))?;
        // The record leaves out how Tumbler handles the Release (suspend, expiry): keep them.
        if let Some(fields) = spec.as_object_mut() {
            if let Some(expiry) = &rel.spec.expiry {
                fields.insert("expiry".into(), json!(expiry));
            }
            if rel.spec.suspend {
                fields.insert("suspend".into(), json!(true));
            }
        }
        let version = spec.get("version").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let patch = json!([
            {"op": "replace", "path": "/spec", "value": spec},
            {"op": "add", "path": "/metadata/annotations", "value": rel.metadata.annotations.clone().unwrap_or_default()},
            {"op": "add", "path": format!("/metadata/annotations/{}", crate::api::ROLLBACK_ANNOTATION.replace('/', "~1")), "value": format!("{} -> {}", rel.spec.version, version)},
        ]);
        let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| err(e.to_string()))?;
        releases.patch(&args.release, &PatchParams { field_manager: Some(ROLLBACK_MANAGER.into()), ..PatchParams::default() }, &Patch::<()>::Json(patch)).await.map_err(|e| err(e.to_string()))?;
        println!("release.tumbler.dev/{} rolled back from {} to {} (spec of commit {})", args.release, rel.spec.version, version, &target.commit[..8]);
        Ok(())
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
}
