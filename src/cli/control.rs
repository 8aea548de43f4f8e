//! `tumbler reconcile | suspend | resume | diff`: per-Release control, as Flux's CLI does
//! it for its objects. reconcile, suspend and resume patch the Release and (with `--wait`)
//! wait for the controller's answer in its status; diff renders the Release locally and
//! compares it with the branch head, read with the CLI's own credentials (as `log` does).

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::KubeArgs;
use super::history::{cache_dir, err, runtime};
use crate::Result;
use crate::api::{self, Environment, Release, find_condition};
use crate::gitops::{RepoKey, Writer, WriterOptions};

/// Options of `tumbler reconcile`, `suspend` and `resume`.
#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// The Release (in -n, default: the context's namespace).
    pub release: String,
    /// Wait until the controller handled it: reconcile until `status.lastHandledReconcileAt`
    /// is this request, suspend until the Release says `Suspended`, resume until the
    /// current generation is Ready (or Committed, without Flux).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits: `30s`, `5m`, `1h`.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// Options of `tumbler diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The Release (in -n, default: the context's namespace).
    pub release: String,
}

/// Field managers of the patches, so that they are told apart in `managedFields`.
pub const RECONCILE_MANAGER: &str = "tumbler-reconcile";
pub const SUSPEND_MANAGER: &str = "tumbler-suspend";
pub const RESUME_MANAGER: &str = "tumbler-resume";

fn parse_timeout(text: &str) -> std::result::Result<Duration, String> {
    api::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?}: expected a duration such as 30s, 5m or 1h"))
}

/// What is asked of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Reconcile,
    Suspend,
    Resume,
}

/// `tumbler reconcile|suspend|resume RELEASE [--wait] [--timeout D]`.
pub fn control(flags: &KubeArgs, request: Request, args: ControlArgs) -> Result<()> {
    if flags.all_namespaces {
        return Err(err("-A does not apply; -n names the Release's namespace"));
    }
    runtime()?.block_on(async move {
        let (client, ns) = flags.client_and_namespace().await?;
        let api = Api::<Release>::namespaced(client, &ns);
        let name = &args.release;
        let rel = get(&api, name, &ns).await?;
        let (manager, patch, done): (_, _, Box<Check>) = match request {
            Request::Reconcile => {
                if rel.spec.suspend {
                    return Err(err(format!(
                        "Release {name:?} is suspended: resume it first (tumbler resume {name})"
                    )));
                }
                let stamp = jiff::Timestamp::now().to_string();
                let patch =
                    json!({"metadata": {"annotations": {api::RECONCILE_ANNOTATION: stamp}}});
                (
                    RECONCILE_MANAGER,
                    patch,
                    Box::new(move |r: &Release| reconciled(r, &stamp)),
                )
            }
            Request::Suspend => (
                SUSPEND_MANAGER,
                json!({"spec": {"suspend": true}}),
                Box::new(suspended),
            ),
            Request::Resume => (
                RESUME_MANAGER,
                json!({"spec": {"suspend": false}}),
                Box::new(resumed),
            ),
        };
        let params = PatchParams {
            field_manager: Some(manager.into()),
            ..PatchParams::default()
        };
        let patched = api
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| err(e.to_string()))?;
        let did = match request {
            Request::Reconcile => "reconcile requested",
            Request::Suspend => "suspended",
            Request::Resume => "resumed",
        };
        println!("release.tumbler.dev/{name} {did}");
        if !args.wait {
            return Ok(());
        }
        let generation = patched.metadata.generation;
        let deadline = Instant::now() + args.timeout;
        loop {
            let now = get(&api, name, &ns).await?;
            let current = now.status.as_ref().map(|s| s.observed_generation) == Some(generation);
            let outcome = if current || request == Request::Reconcile {
                done(&now)
            } else {
                Outcome::Waiting
            };
            match outcome {
                Outcome::Done(message) => {
                    println!("release.tumbler.dev/{name}: {message}");
                    return Ok(());
                }
                Outcome::Failed(message) => {
                    return Err(err(format!("Release {name:?}: {message}")));
                }
                Outcome::Waiting if Instant::now() >= deadline => {
                    return Err(err(format!(
                        "timed out after {}s waiting for Release {name:?}: {}",
                        args.timeout.as_secs(),
                        ready(&now)
                            .map(|c| c.message.as_str())
                            .unwrap_or("no status yet")
                    )));
                }
                Outcome::Waiting => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
}

async fn get(api: &Api<Release>, name: &str, ns: &str) -> Result<Release> {
    api.get_opt(name)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err(format!("Release {name:?} not found in namespace {ns:?}")))
}

/// Whether a waited-for request is done, from the Release as it is now.
type Check = dyn Fn(&Release) -> Outcome;

/// Where a waited-for request is.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    Done(String),
    Failed(String),
}

fn conditions(rel: &Release) -> &[Condition] {
    rel.status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[])
}

fn ready(rel: &Release) -> Option<&Condition> {
    find_condition(conditions(rel), api::READY)
}

/// Stalled (a person must act) for the Release's current generation: the request failed.
fn stalled(rel: &Release) -> Option<String> {
    find_condition(conditions(rel), api::STALLED)
        .filter(|c| c.status == "True" && c.observed_generation == rel.metadata.generation)
        .map(|c| format!("{} ({})", c.message, c.reason))
}

/// The reconcile request `stamp` was handled.
pub fn reconciled(rel: &Release, stamp: &str) -> Outcome {
    let handled = rel
        .status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref());
    if handled != Some(stamp) {
        return Outcome::Waiting;
    }
    if let Some(why) = stalled(rel) {
        return Outcome::Failed(why);
    }
    Outcome::Done(format!(
        "reconciled: {}",
        ready(rel).map(|c| c.message.as_str()).unwrap_or_default()
    ))
}

/// The controller says the Release is suspended.
pub fn suspended(rel: &Release) -> Outcome {
    match ready(rel) {
        Some(c) if c.reason == "Suspended" => Outcome::Done(c.message.clone()),
        _ => Outcome::Waiting,
    }
}

/// The current generation is Ready, or Committed where nothing can verify more (an
/// Environment without Flux: `NotVerified`).
pub fn resumed(rel: &Release) -> Outcome {
    if let Some(why) = stalled(rel) {
        return Outcome::Failed(why);
    }
    let generation = rel.metadata.generation;
    match ready(rel) {
        Some(c) if c.status == "True" && c.observed_generation == generation => {
            Outcome::Done(c.message.clone())
        }
        Some(c) if c.reason == "NotVerified" && c.observed_generation == generation => {
            let committed = find_condition(conditions(rel), api::COMMITTED)
                .is_some_and(|k| k.status == "True" && k.observed_generation == generation);
            if committed {
                Outcome::Done(c.message.clone())
            } else {
                Outcome::Waiting
            }
        }
        _ => Outcome::Waiting,
    }
}

/// `tumbler diff RELEASE`: what a commit of the Release's current spec would change in its
/// app folder at the branch head, as unified diffs. `Ok(true)` when something would change.
pub fn diff(flags: &KubeArgs, args: DiffArgs) -> Result<bool> {
    if flags.all_namespaces {
        return Err(err(
            "diff: -A does not apply; -n names the Release's namespace",
        ));
    }
    runtime()?.block_on(async move {
        let (client, ns) = flags.client_and_namespace().await?;
        let rel = get(
            &Api::<Release>::namespaced(client.clone(), &ns),
            &args.release,
            &ns,
        )
        .await?;
        let env = environment(&client, &rel).await?;
        let scopes = crate::controller::discovery::ScopeCache::default()
            .get(&client)
            .await;
        let rendered = crate::render::render_with(&rel, &env, scopes.as_deref())
            .map_err(|e| err(format!("Release {:?} does not render: {e}", args.release)))?;
        let creds = crate::credentials::read(&client, &env)
            .await
            .map_err(|e| err(e.to_string()))?;
        let key = RepoKey {
            url: env.spec.repository.url.clone(),
            branch: env.spec.repository.branch.clone(),
        };
        let writer = Writer::new(cache_dir(), WriterOptions::default());
        let current = writer
            .read_app(key, creds, &env.spec.repository.path, &rel.spec.app)
            .await
            .map_err(|e| err(e.to_string()))?
            .unwrap_or_default();
        let text = folder_diff(&rendered.app_dir, &current, &rendered.files)?;
        print!("{text}");
        Ok(!text.is_empty())
    })
}

/// The unified diffs of every file of an app folder that differs, sorted by path.
pub fn folder_diff(
    app_dir: &str,
    current: &crate::gitops::AppFiles,
    rendered: &crate::gitops::AppFiles,
) -> Result<String> {
    let mut paths: Vec<&String> = current.keys().chain(rendered.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = String::new();
    for path in paths {
        let full = format!("{app_dir}/{path}");
        let old = current.get(path).map(Vec::as_slice);
        let new = rendered.get(path).map(Vec::as_slice);
        out.push_str(
            &crate::gitops::diff::unified(&full, old, new).map_err(|e| err(e.to_string()))?,
        );
    }
    Ok(out)
}

async fn environment(client: &Client, rel: &Release) -> Result<Environment> {
    let (ns, name) = rel.environment_key();
    Api::<Environment>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| {
            err(format!(
                "Environment {name:?} of Release {:?} not found in namespace {ns:?}",
                rel.name_any()
            ))
        })
}
