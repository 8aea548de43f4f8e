//! Controller-level measurements against the local API server: the burst (Releases created at
//! once → Committed), the API writes Tumbler makes per Release (read from the API server's own
//! `apiserver_request_total`), the floor (the same creates and status patches from this client
//! alone), memory with many Releases held, and RSS across a churn.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tumbler::api::{Environment, Phase, Release};

use super::report::{Report, Row, ratio};
use super::{new_repo, percentile, release_doc, rss_kib, var};

/// Writes counted by the API server, by `resource[/subresource] VERB`, read verbs left out.
fn api_writes() -> BTreeMap<String, f64> {
    let out = Command::new("kubectl")
        .args(["get", "--raw", "/metrics"])
        .output()
        .expect("kubectl get --raw /metrics");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut sums = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let verb = label("verb");
        if matches!(
            verb.as_str(),
            "GET" | "LIST" | "WATCH" | "CONNECT" | "DELETE"
        ) {
            continue;
        }
        let (resource, sub) = (label("resource"), label("subresource"));
        if resource.is_empty() {
            continue;
        }
        let key = if sub.is_empty() {
            format!("{resource} {verb}")
        } else {
            format!("{resource}/{sub} {verb}")
        };
        *sums.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    sums
}

fn diff(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

async fn namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
}

/// Deletes a namespace and waits until it is gone, so that its deletion does not load the
/// API server during the next measurement. The controllers are stopped by then, so the
/// finalizers of Releases and Environments are taken off first (or the namespace would hang
/// in Terminating for ever).
pub async fn drop_namespace(client: &kube::Client, name: &str) {
    strip_finalizers::<Release>(client, name).await;
    strip_finalizers::<Environment>(client, name).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(name, &Default::default()).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline && matches!(namespaces.get_opt(name).await, Ok(Some(_))) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn strip_finalizers<K>(client: &kube::Client, ns: &str)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let Ok(list) = api.list_metadata(&ListParams::default()).await else {
        return;
    };
    let names: Vec<String> = list
        .items
        .into_iter()
        .filter(|o| {
            o.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty())
        })
        .filter_map(|o| o.metadata.name)
        .collect();
    let patch = json!({"metadata": {"finalizers": null}});
    for chunk in names.chunks(100) {
        let futs = chunk.iter().map(|n| {
            let (api, patch) = (api.clone(), patch.clone());
            async move {
                let _ = api
                    .patch(n, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        });
        futures::future::join_all(futs).await;
    }
}

/// Namespaces earlier runs left behind (a run stopped half-way).
pub async fn drop_leftovers(client: &kube::Client) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let Ok(list) = namespaces.list_metadata(&ListParams::default()).await else {
        return;
    };
    for ns in list.items.into_iter().filter_map(|n| n.metadata.name) {
        if ns.starts_with("bench-") {
            drop_namespace(client, &ns).await;
        }
    }
}

fn spawn_controller(cache: &Path, ns: &str, tag: &str, selector: Option<&str>) -> Child {
    let log = std::fs::File::create(cache.join(format!("controller-{tag}.log"))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tumbler"));
    cmd.args([
        "controller",
        "--watch-namespace",
        ns,
        "--metrics-addr",
        "off",
        "--log",
        "warn",
        "--cache-dir",
    ])
    .arg(cache.join(format!("controller-cache-{tag}")));
    if let Some(s) = selector {
        cmd.args(["--watch-label-selector", s]);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

/// CPU seconds (user + system) a process used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The pid of this checkout's API server (recorded by e2e/cluster.sh), for its CPU time.
fn apiserver_pid() -> Option<u32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tumbler-dev/pids/kube-apiserver");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn created(doc: serde_json::Value) -> Release {
    serde_json::from_value(doc).unwrap()
}

/// Creates `n` Releases (`prefix{i}`) 50 at a time; returns when each create was sent.
async fn create_releases(
    rels: &Api<Release>,
    n: usize,
    prefix: &str,
    env: &str,
    labels: impl Fn(usize) -> Option<(String, String)>,
) -> HashMap<String, Instant> {
    let mut sent = HashMap::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let futs = chunk.iter().map(|i| {
            let name = format!("{prefix}{i}");
            let mut doc = release_doc(&name, env, &name, "1.0.0");
            if let Some((k, v)) = labels(*i) {
                doc["metadata"]["labels"] = json!({ k: v });
            }
            let rels = rels.clone();
            async move {
                let t = Instant::now();
                rels.create(&PostParams::default(), &created(doc))
                    .await
                    .unwrap();
                (name, t)
            }
        });
        sent.extend(futures::future::join_all(futs).await);
    }
    sent
}

pub struct Burst {
    pub all_committed: Duration,
    pub max_lag: Duration,
    pub p50_lag: Duration,
    pub committed: usize,
    /// Tumbler's writes per Release on releases (and their status).
    pub release_writes: f64,
    /// Tumbler's writes per Release on every resource (Events, Flux objects…).
    pub all_writes: f64,
    pub writes: BTreeMap<String, f64>,
}

/// `n` Releases created at once against one Environment, with `shards` controllers splitting
/// them by `sharding.fluxcd.io/key`; time from each create to its Committed status.
pub async fn burst(cache: &Path, n: usize, shards: usize) -> Burst {
    let client = kube::Client::try_default().await.expect("kube client");
    let ns = format!("bench-burst{shards}-{}", std::process::id());
    namespace(&client, &ns).await;
    let url = new_repo(&ns);
    let envs: Api<Environment> = Api::namespaced(client.clone(), &ns);
    let rels: Api<Release> = Api::namespaced(client.clone(), &ns);
    let pp = PatchParams::apply("bench").force();
    envs.patch(
        "live",
        &pp,
        &Patch::Apply(
            json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "live", "labels": {"sharding.fluxcd.io/key": "shard0"}},
        "spec": {"repository": {"url": url, "path": "envs/live"}}}),
        ),
    )
    .await
    .unwrap();
    let mut controllers: Vec<Child> = (0..shards)
        .map(|s| {
            let selector = (shards > 1).then(|| format!("sharding.fluxcd.io/key=shard{s}"));
            spawn_controller(
                cache,
                &ns,
                &format!("burst{shards}-{s}"),
                selector.as_deref(),
            )
        })
        .collect();
    // Let the controllers start, probe the repository and clone it.
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Watch the namespace: the moment each Release first shows its commit.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let seen = seen.clone();
        let rels = rels.clone();
        tokio::spawn(async move {
            let mut stream = watcher::watcher(rels, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(Ok(ev)) = stream.next().await {
                let objs: Vec<Release> = match ev {
                    watcher::Event::Apply(r) | watcher::Event::InitApply(r) => vec![r],
                    _ => vec![],
                };
                for r in objs {
                    let done = r
                        .status
                        .as_ref()
                        .is_some_and(|s| s.commit.is_some() && s.phase != Phase::Pending);
                    if done {
                        let name = r.metadata.name.clone().unwrap_or_default();
                        seen.lock()
                            .unwrap()
                            .entry(name)
                            .or_insert_with(Instant::now);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = api_writes();
    let api_pid = apiserver_pid();
    let cpu_before: Vec<f64> = controllers.iter().map(|c| cpu_seconds(c.id())).collect();
    let api_cpu_before = api_pid.map(cpu_seconds).unwrap_or(0.0);
    let start = Instant::now();
    let sent = create_releases(&rels, n, "app", "live", |i| {
        Some((
            "sharding.fluxcd.io/key".into(),
            format!("shard{}", i % shards.max(1)),
        ))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_committed = start.elapsed();
    let cpu: f64 = controllers
        .iter()
        .zip(&cpu_before)
        .map(|(c, b)| cpu_seconds(c.id()) - b)
        .sum();
    println!(
        "  CPU during the burst: Tumbler {cpu:.1} s, kube-apiserver {:.1} s (2 cores: {:.1} s of CPU in the wall time)",
        api_pid.map(cpu_seconds).unwrap_or(0.0) - api_cpu_before,
        2.0 * all_committed.as_secs_f64()
    );
    // Writes settle (the last status writes, Events) before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = diff(&api_writes(), &before);
    watch.abort();
    let seen = seen.lock().unwrap().clone();
    let mut lags: Vec<Duration> = sent
        .iter()
        .filter_map(|(name, t)| seen.get(name).map(|s| s.duration_since(*t)))
        .collect();
    lags.sort();
    // What Tumbler writes (the control plane's own leases and endpoints are left out); the
    // benchmark's own creates are POSTs on releases: take them out.
    let tumblers = [
        "releases",
        "environments",
        "events",
        "kustomizations",
        "gitrepositories",
    ];
    let total: f64 = writes
        .iter()
        .filter(|(k, _)| {
            tumblers
                .iter()
                .any(|t| k.split([' ', '/']).next() == Some(*t))
        })
        .map(|(_, v)| v)
        .sum::<f64>()
        - n as f64;
    let on_releases: f64 = writes
        .iter()
        .filter(|(k, _)| k.starts_with("releases"))
        .map(|(_, v)| v)
        .sum::<f64>()
        - n as f64;
    for c in &mut controllers {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop_namespace(&client, &ns).await;
    Burst {
        all_committed,
        max_lag: lags.last().copied().unwrap_or(Duration::MAX),
        p50_lag: percentile(&lags, 0.5),
        committed: seen.len(),
        release_writes: on_releases / n as f64,
        all_writes: total / n as f64,
        writes,
    }
}

/// The floor: the same number of Release creates and status patches from this client alone
/// (no controller), at the same concurrency.
pub async fn floor(n: usize) -> Duration {
    let client = kube::Client::try_default().await.expect("kube client");
    let ns = format!("bench-floor-{}", std::process::id());
    namespace(&client, &ns).await;
    let rels: Api<Release> = Api::namespaced(client.clone(), &ns);
    let start = Instant::now();
    create_releases(&rels, n, "app", "live", |_| None).await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let futs = chunk.iter().map(|i| {
            let rels = rels.clone();
            async move {
                let body = json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
                    "status": {"phase": "Committed", "commit": "0123456789abcdef0123456789abcdef01234567"}});
                rels.patch_status(
                    &format!("app{i}"),
                    &PatchParams::apply("bench-floor").force(),
                    &Patch::Apply(&body),
                )
                .await
                .unwrap();
            }
        });
        futures::future::join_all(futs).await;
    }
    let took = start.elapsed();
    drop_namespace(&client, &ns).await;
    took
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub async fn bench_burst(cache: &Path, report: &Report) {
    let n = var("BENCH_CONTROLLER_RELEASES", 1000);
    println!("\n## burst: {n} Releases created at once against one Environment (no Flux)");
    let mut bursts = vec![];
    for shards in [1, 2] {
        bursts.push((shards, burst(cache, n, shards).await));
    }
    let floor_time = floor(n).await;
    println!(
        "floor: {n} creates + {n} status patches from the benchmark client alone: {}",
        secs(floor_time)
    );
    for (shards, b) in bursts {
        println!(
            "{shards} shard(s): {}/{n} Committed after {}; creation→Committed p50 {}, max {}; Tumbler's API writes per Release: {:.2} on releases, {:.2} in all",
            b.committed,
            secs(b.all_committed),
            secs(b.p50_lag),
            secs(b.max_lag),
            b.release_writes,
            b.all_writes
        );
        println!(
            "  writes by resource (benchmark's {n} creates included): {:?}",
            b.writes
        );
        report.add(Row {
            target: format!("burst, {shards} shard(s): {n} Releases, creation → Committed, max"),
            goal: "≤ 10 s".into(),
            measured: secs(b.max_lag),
            reference: format!("p50 {}", secs(b.p50_lag)),
            ratio: None,
            met: Some(b.committed == n && b.max_lag <= Duration::from_secs(10)),
            values: json!({"n": n, "shards": shards, "max_lag_s": b.max_lag.as_secs_f64(),
                "p50_lag_s": b.p50_lag.as_secs_f64(), "all_committed_s": b.all_committed.as_secs_f64(),
                "committed": b.committed}),
        });
        report.add(Row {
            target: format!("burst, {shards} shard(s): all {n} Committed vs the floor"),
            goal: "ratio ≤ 1.5".into(),
            measured: secs(b.all_committed),
            reference: format!("floor {}", secs(floor_time)),
            ratio: ratio(b.all_committed.as_secs_f64(), floor_time.as_secs_f64()),
            met: Some(b.all_committed.as_secs_f64() <= 1.5 * floor_time.as_secs_f64()),
            values: json!({"all_committed_s": b.all_committed.as_secs_f64(), "floor_s": floor_time.as_secs_f64()}),
        });
        report.add(Row {
            target: format!("burst, {shards} shard(s): Tumbler's API writes per Release"),
            goal: "≤ 2".into(),
            measured: format!("{:.2} on releases", b.release_writes),
            reference: format!("{:.2} on all resources", b.all_writes),
            ratio: None,
            met: Some(b.all_writes <= 2.05),
            values: json!({"release_writes": b.release_writes, "all_writes": b.all_writes, "by_resource": b.writes}),
        });
    }
}

/// Memory: the controller's RSS idle, with `held` Releases, the marginal bytes per Release,
/// and RSS across a churn of version changes (BENCH_CHURN_SECONDS, default 120; 3600 for the
/// hour).
pub async fn bench_memory(cache: &Path, report: &Report) {
    let client = kube::Client::try_default().await.expect("kube client");
    let ns = format!("bench-mem-{}", std::process::id());
    namespace(&client, &ns).await;
    let url = new_repo(&ns);
    let envs: Api<Environment> = Api::namespaced(client.clone(), &ns);
    let rels: Api<Release> = Api::namespaced(client.clone(), &ns);
    let pp = PatchParams::apply("bench").force();
    envs.patch("parked", &pp, &Patch::Apply(json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "parked"},
        "spec": {"repository": {"url": url, "path": "envs/parked"}, "suspend": true}}))).await.unwrap();
    envs.patch("live", &pp, &Patch::Apply(json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "live"},
        "spec": {"repository": {"url": url, "path": "envs/live"}}}))).await.unwrap();
    let mut controller = spawn_controller(cache, &ns, "mem", None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = controller.id();
    let idle = rss_kib(pid);
    let held = var("BENCH_CONTROLLER_HELD", 10_000);
    println!("\n## memory: one controller holding {held} Releases (kubectl-style creates)");
    let start = Instant::now();
    for chunk in (0..held).collect::<Vec<_>>().chunks(100) {
        let futs = chunk.iter().map(|i| {
            let rels = rels.clone();
            async move {
                let name = format!("held{i}");
                let mut doc = release_doc(&name, "parked", &name, "1.0.0");
                // What `kubectl apply` leaves on every object.
                doc["metadata"]["annotations"] = json!({
                    "kubectl.kubernetes.io/last-applied-configuration": doc.to_string()
                });
                rels.create(&PostParams::default(), &created(doc))
                    .await
                    .unwrap();
            }
        });
        futures::future::join_all(futs).await;
    }
    loop {
        let list = rels.list(&ListParams::default()).await.unwrap();
        let seen = list.items.iter().filter(|r| r.status.is_some()).count();
        if seen >= held || start.elapsed() > Duration::from_secs(900) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let full = rss_kib(pid);
    let marginal = (full.saturating_sub(idle) * 1024) as f64 / held as f64;
    println!(
        "idle {} MiB; holding {held}: {} MiB ({:.0} bytes per Release); all seen in {:.1} s",
        idle / 1024,
        full / 1024,
        marginal,
        start.elapsed().as_secs_f64()
    );
    let mb = full as f64 * 1024.0 / 1e6;
    report.add(Row {
        target: format!("memory: controller RSS holding {held} Releases"),
        goal: "< 100 MB".into(),
        measured: format!("{mb:.1} MB"),
        reference: format!(
            "idle {:.1} MB; {:.0} B/Release",
            idle as f64 * 1024.0 / 1e6,
            marginal
        ),
        ratio: None,
        met: Some(mb < 100.0),
        values: json!({"held": held, "rss_kib": full, "idle_kib": idle, "bytes_per_release": marginal}),
    });

    // Churn: version changes of 50 live Releases, round after round.
    let seconds = var("BENCH_CHURN_SECONDS", 120);
    let apps = 50;
    create_releases(&rels, apps, "churn", "live", |_| None).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let churn_start = rss_kib(pid);
    let start = Instant::now();
    let mut round = 0;
    let mut max_rss = churn_start;
    while start.elapsed() < Duration::from_secs(seconds as u64) {
        round += 1;
        let futs = (0..apps).map(|i| {
            let rels = rels.clone();
            let patch = json!({"spec": {"version": format!("1.0.{round}"),
                "template": {"image": {"tag": format!("1.0.{round}")}}}});
            async move {
                let _ = rels
                    .patch(
                        &format!("churn{i}"),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await;
            }
        });
        futures::future::join_all(futs).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        max_rss = max_rss.max(rss_kib(pid));
    }
    let churn_end = rss_kib(pid);
    println!(
        "churn: {round} rounds of {apps} version changes in {seconds} s; RSS start {} MiB, end {} MiB, max {} MiB",
        churn_start / 1024,
        churn_end / 1024,
        max_rss / 1024
    );
    report.add(Row {
        target: format!("memory: RSS across a churn ({seconds} s, {} changes)", round * apps),
        goal: "flat (end ≈ start)".into(),
        measured: format!("end {:.1} MB", churn_end as f64 * 1024.0 / 1e6),
        reference: format!("start {:.1} MB", churn_start as f64 * 1024.0 / 1e6),
        ratio: ratio(churn_end as f64, churn_start as f64),
        met: Some((churn_end as f64) <= churn_start as f64 * 1.1),
        values: json!({"seconds": seconds, "changes": round * apps, "start_kib": churn_start, "end_kib": churn_end, "max_kib": max_rss}),
    });
    let _ = controller.kill();
    let _ = controller.wait();
    drop_namespace(&client, &ns).await;
}
