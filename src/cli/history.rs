//! `tumbler log` and `tumbler rollback`: the release history, read from git.

use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::api::{Environment, Release};
use crate::gitops::{Author, LogEntry, RepoKey, Writer, WriterOptions};
use crate::{Error, Result};

/// Options of `tumbler log`.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The Environment whose log to show.
    #[arg(long, short = 'e')]
    pub environment: Option<String>,
    /// Only this app.
    #[arg(long, short = 'a')]
    pub app: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Namespace of the Environment (default: the kubeconfig context's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
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
    /// Output: `table` or `json`.
    #[arg(long, short = 'o', default_value = "table")]
    pub output: String,
}

/// Options of `tumbler rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The Release to roll back.
    pub release: String,
    /// A version from `tumbler log`, or a commit (prefix).
    #[arg(long)]
    pub to: String,
    /// Namespace of the Release (default: the kubeconfig context's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

/// The field manager of `tumbler rollback`'s patch: the `Tumbler-Requested-By` of the
/// rollback commit.
pub const ROLLBACK_MANAGER: &str = "tumbler-rollback";

fn err(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        path: "tokio runtime".into(),
        source,
    })
}

fn cache_dir() -> PathBuf {
    std::env::var_os("TUMBLER_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tumbler-cli-{}", whoami())))
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "user".into())
}

async fn client_and_ns(namespace: Option<String>) -> Result<(Client, String)> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| err(format!("kubeconfig: {e}")))?;
    let ns = namespace.unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| err(format!("kube client: {e}")))?;
    Ok((client, ns))
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

/// Per log entry, whether Flux applied its commit (`None`: not known).
type Applied = Vec<Option<bool>>;

pub fn log(args: LogArgs) -> Result<()> {
    // A local clone needs no runtime: the command stays as quick as the read.
    let (entries, marks) = match &args.repo {
        Some(repo) => local_log(repo, &args)?,
        None => runtime()?.block_on(cluster_log(&args))?,
    };
    if args.output == "json" {
        print_json(&entries, &marks);
    } else {
        print_table(&entries, &marks);
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
fn local_log(repo: &Path, args: &LogArgs) -> Result<(Vec<LogEntry>, Applied)> {
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
    let marks = vec![None; entries.len()];
    Ok((entries, marks))
}

/// The log of an Environment in the cluster, each entry marked with whether Flux applied
/// its commit.
async fn cluster_log(args: &LogArgs) -> Result<(Vec<LogEntry>, Applied)> {
    let name = args
        .environment
        .clone()
        .ok_or_else(|| err("--environment is required (or --repo PATH for a local clone)"))?;
    let (client, ns) = client_and_ns(args.namespace.clone()).await?;
    let env = Api::<Environment>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| {
            err(format!(
                "Environment {name:?} not found in namespace {ns:?}"
            ))
        })?;
    let (entries, applied, key, creds, writer) =
        environment_log(&client, &env, args.app.as_deref(), args.limit).await?;
    let mut marks = vec![];
    for e in &entries {
        marks.push(match &applied {
            Some(a) => Some(
                writer
                    .is_ancestor(key.clone(), creds.clone(), &e.commit, a)
                    .await
                    .unwrap_or(false),
            ),
            None => None,
        });
    }
    Ok((entries, marks))
}

fn print_json(entries: &[LogEntry], marks: &[Option<bool>]) {
    let rows: Vec<_> = entries
        .iter()
        .zip(marks)
        .map(|(e, m)| json!({"entry": e, "applied": m}))
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&rows).unwrap_or_default()
    );
}

fn print_table(entries: &[LogEntry], marks: &[Option<bool>]) {
    println!(
        "{:<9} {:<20} {:<10} {:<16} {:<16} {:<9} {:<8} {:<26} RELEASE",
        "COMMIT", "TIME", "APP", "VERSION", "AUTHOR", "ACTION", "APPLIED", "REQUESTED BY"
    );
    for (e, m) in entries.iter().zip(marks) {
        let time = jiff::Timestamp::from_second(e.time)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let author = e.author.split(" <").next().unwrap_or_default();
        let applied = match m {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let requested_by = if e.requested_by.is_empty() {
            "-"
        } else {
            e.requested_by.as_str()
        };
        println!(
            "{:<9} {:<20} {:<10} {:<16} {:<16} {:<9} {:<8} {:<26} {}",
            &e.commit[..8],
            time,
            e.app,
            e.version,
            author,
            e.action,
            applied,
            requested_by,
            e.release
        );
    }
}

pub fn rollback(args: RollbackArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let (client, ns) = client_and_ns(args.namespace.clone()).await?;
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
        let spec = old.get("spec").cloned().ok_or_else(|| err(format!("{path} at {} has no spec", &target.commit[..8])))?;
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
