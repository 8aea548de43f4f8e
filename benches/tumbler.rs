//! `make bench`: Tumbler's speed and memory targets, measured (never asserted), ending with
//! one table (target, measured, reference, ratio) also written as JSON under target/bench/.
//! Needs the local control plane (`e2e/with-cluster.sh` runs it): the git server for the
//! writer, the API server for the controller. Sizes can be lowered with BENCH_* variables.

#[path = "tumbler/controller.rs"]
mod controller;
#[path = "tumbler/history.rs"]
mod history;
#[path = "tumbler/report.rs"]
mod report;

use report::{Report, Row, ratio};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tumbler::api::{Environment, Phase, Release};
use tumbler::gitops::{Author, Change, ChangeKind, Credentials, RepoKey, Writer, WriterOptions};

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn need(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} not set: run `make bench` (it starts the local control plane)")
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn new_repo(name: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "{name}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let name = name.as_str();
    let out = Command::new("e2e/cluster.sh")
        .args(["repo", name])
        .output()
        .expect("e2e/cluster.sh repo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn release_doc(name: &str, env: &str, app: &str, version: &str) -> serde_json::Value {
    json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name},
        "spec": {"environment": env, "app": app, "version": version,
                 "template": {"image": {"repository": "registry.example.com/app", "tag": version},
                              "ports": [{"name": "http", "containerPort": 8080}], "env": {"A": "b"}}}
    })
}

fn sample_release(doc: serde_json::Value) -> Release {
    let mut doc = doc;
    doc["metadata"]["namespace"] = json!("bench");
    serde_json::from_value(doc).unwrap()
}

fn sample_env() -> Environment {
    serde_json::from_value(json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "bench", "namespace": "bench"},
        "spec": {"repository": {"url": "file:///dev/null", "path": "envs/bench"}, "targetNamespace": "bench"}
    }))
    .unwrap()
}

fn bench_render() {
    println!("## render (per Release, release build)");
    let env = sample_env();
    let sources = [
        ("template", release_doc("r", "bench", "api", "1.0.0")),
        (
            "helm",
            json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "r"},
            "spec": {"environment": "bench", "app": "api", "version": "1", "helm": {"chart": {"repository": "https://charts.example.com", "name": "c", "version": "1.0.0"}, "values": {"a": {"b": [1, 2, 3]}}}}}),
        ),
        (
            "manifests",
            json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "r"},
            "spec": {"environment": "bench", "app": "api", "version": "1", "manifests": (0..5).map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}, "data": {"k": "v"}})).collect::<Vec<_>>()}}),
        ),
    ];
    let n = var("BENCH_RENDER_ITERATIONS", 2000);
    for (kind, doc) in sources {
        let rel = sample_release(doc);
        for _ in 0..50 {
            tumbler::render::render(&rel, &env).unwrap();
        }
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                tumbler::render::render(std::hint::black_box(&rel), &env).unwrap(),
            );
        }
        let per = start.elapsed() / n as u32;
        println!(
            "render {kind:<10} {:>8.1} µs per Release ({n} iterations)",
            per.as_secs_f64() * 1e6
        );
    }
}

fn change(app: &str, version: &str) -> Change {
    let rel = sample_release(release_doc(app, "bench", app, version));
    let rendered = tumbler::render::render(&rel, &sample_env()).unwrap();
    Change {
        release: format!("bench/{app}"),
        generation: 1,
        version: version.into(),
        environment: "bench".into(),
        env_path: "envs/bench".into(),
        app: app.into(),
        files: Some(rendered.files),
        author: Author {
            name: "Tumbler".into(),
            email: "bench@tumbler.dev".into(),
        },
        kind: ChangeKind::Release,
        entry: None,
        replaces: None,
        requested_by: None,
    }
}

async fn writer_burst(n: usize, cache: &Path) -> (Duration, Vec<Duration>) {
    let url = new_repo(&format!("bench-burst-{n}-{}", std::process::id()));
    let writer = Writer::new(cache.join(format!("burst-{n}")), WriterOptions::default());
    let key = RepoKey {
        url,
        branch: "main".into(),
    };
    // Warm the cache (the clone), as a running controller has.
    writer.probe(key.clone(), Credentials::None).await.unwrap();
    let changes: Vec<Change> = (0..n)
        .map(|i| change(&format!("app{i}"), "1.0.0"))
        .collect();
    let start = Instant::now();
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|c| {
            let (w, k) = (writer.clone(), key.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                w.submit(k, Credentials::None, c).await.unwrap();
                t.elapsed()
            })
        })
        .collect();
    let mut lat = vec![];
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    let total = start.elapsed();
    lat.sort();
    (total, lat)
}

/// Returns the time of the largest burst (BENCH_BURST changes, default 1,000).
async fn bench_writer(cache: &Path) -> Duration {
    println!("\n## git writer over HTTP on loopback (changes submitted at once, warm cache)");
    let mut largest = Duration::ZERO;
    for n in [1, 100, var("BENCH_BURST", 1000)] {
        let (total, lat) = writer_burst(n, cache).await;
        largest = total;
        println!(
            "writer {n:>5} changes: all pushed in {:>9}; queue-to-push p50 {:>9} p99 {:>9}",
            ms(total),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        );
    }
    // Single changes one after another: the p50 of one change.
    let url = new_repo(&format!("bench-single-{}", std::process::id()));
    let writer = Writer::new(cache.join("single"), WriterOptions::default());
    let key = RepoKey {
        url,
        branch: "main".into(),
    };
    writer.probe(key.clone(), Credentials::None).await.unwrap();
    let mut lat = vec![];
    for i in 0..30 {
        let t = Instant::now();
        writer
            .submit(
                key.clone(),
                Credentials::None,
                change("solo", &format!("1.0.{i}")),
            )
            .await
            .unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "writer single change (30 in a row): p50 {} p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    largest
}

/// The same 100 changes the way a CI job would make them: clone, edit, commit, push each.
fn bench_baseline(tmp: &Path) -> Duration {
    let url = new_repo(&format!("bench-baseline-{}", std::process::id()));
    let n = var("BENCH_BASELINE", 100);
    let start = Instant::now();
    for i in 0..n {
        let dir = tmp.join(format!("baseline-{i}"));
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(if dir.exists() { dir.as_path() } else { tmp })
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .env("GIT_AUTHOR_NAME", "ci")
                .env("GIT_AUTHOR_EMAIL", "ci@x")
                .env("GIT_COMMITTER_NAME", "ci")
                .env("GIT_COMMITTER_EMAIL", "ci@x")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["clone", "-q", &url, dir.to_str().unwrap()]);
        let c = change(&format!("app{i}"), "1.0.0");
        for (path, bytes) in c.files.unwrap() {
            let p = dir.join("envs/bench").join(format!("app{i}")).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        git(&["add", "-A"]);
        git(&["commit", "-qm", "release"]);
        git(&["push", "-q", "origin", "HEAD:main"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
    start.elapsed()
}

/// A repository with `folders` app folders, written straight into the git server's root.
fn big_repo(folders: usize) -> String {
    let url = new_repo(&format!("bench-big-{folders}-{}", std::process::id()));
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".git")
        .to_string();
    let path = PathBuf::from(need("TUMBLER_GIT_ROOT"))
        .join("public")
        .join(format!("{name}.git"));
    let repo = git2::Repository::open_bare(&path).unwrap();
    let head = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let blob = repo
        .blob(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
        .unwrap();
    let mut env = repo.treebuilder(None).unwrap();
    for i in 0..folders {
        let mut app = repo.treebuilder(None).unwrap();
        app.insert("configmap-x.yaml", blob, 0o100644).unwrap();
        app.insert("kustomization.yaml", blob, 0o100644).unwrap();
        env.insert(format!("app{i}"), app.write().unwrap(), 0o040000)
            .unwrap();
    }
    let mut envs = repo.treebuilder(None).unwrap();
    envs.insert("bench", env.write().unwrap(), 0o040000)
        .unwrap();
    let mut root = repo.treebuilder(Some(&head.tree().unwrap())).unwrap();
    root.insert("envs", envs.write().unwrap(), 0o040000)
        .unwrap();
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    let sig = git2::Signature::now("bench", "bench@x").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "many apps",
        &tree,
        &[&head],
    )
    .unwrap();
    url
}

async fn bench_repo_size(cache: &Path, report: &Report) {
    println!("\n## commit cost against repository size (one change, fetch + commit + push)");
    let mut medians = vec![];
    for folders in [100, var("BENCH_BIG_FOLDERS", 10_000)] {
        let url = big_repo(folders);
        let writer = Writer::new(
            cache.join(format!("big-{folders}")),
            WriterOptions::default(),
        );
        let key = RepoKey {
            url,
            branch: "main".into(),
        };
        writer.probe(key.clone(), Credentials::None).await.unwrap();
        let mut lat = vec![];
        for i in 0..20 {
            let t = Instant::now();
            writer
                .submit(
                    key.clone(),
                    Credentials::None,
                    change("probe", &format!("1.{i}")),
                )
                .await
                .unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        let p50 = percentile(&lat, 0.5);
        println!("{folders:>6} app folders: commit+push p50 {}", ms(p50));
        medians.push(p50);
    }
    let r = medians[1].as_secs_f64() / medians[0].as_secs_f64();
    println!("ratio large/small: {r:.2}x (target: within 2x)");
    let big = var("BENCH_BIG_FOLDERS", 10_000);
    report.add(Row {
        target: format!("repo size: one commit+push with {big} app folders"),
        goal: "≤ 2× the cost with 100".into(),
        measured: ms(medians[1]),
        reference: format!("100 folders {}", ms(medians[0])),
        ratio: Some(r),
        met: Some(r <= 2.0),
        values: json!({"folders": big, "p50_ms": medians[1].as_secs_f64() * 1e3, "p50_ms_100": medians[0].as_secs_f64() * 1e3}),
    });
}

async fn bench_soak(cache: &Path) {
    let n = var("BENCH_SOAK_CHANGES", 3000);
    let apps = 50;
    println!("\n## churn soak: {n} changes over {apps} apps, writer in this process");
    let url = new_repo(&format!("bench-soak-{}", std::process::id()));
    let writer = Writer::new(cache.join("soak"), WriterOptions::default());
    let key = RepoKey {
        url,
        branch: "main".into(),
    };
    writer.probe(key.clone(), Credentials::None).await.unwrap();
    let pid = std::process::id();
    let start_rss = rss_kib(pid);
    let start = Instant::now();
    let mut max_rss = start_rss;
    for round in 0..n / apps {
        let tasks: Vec<_> = (0..apps)
            .map(|a| {
                let (w, k) = (writer.clone(), key.clone());
                let c = change(&format!("app{a}"), &format!("1.{round}"));
                tokio::spawn(async move { w.submit(k, Credentials::None, c).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        max_rss = max_rss.max(rss_kib(pid));
    }
    println!(
        "soak: {n} changes in {:.1} s; RSS start {} MiB, end {} MiB, max {} MiB",
        start.elapsed().as_secs_f64(),
        start_rss / 1024,
        rss_kib(pid) / 1024,
        max_rss / 1024
    );
}

/// kwok's stage delays to zero for the pods of a Deployment (JSON6902 on the pod template).
const INSTANT_PODS: &str = "- op: add\n  path: /spec/template/metadata/annotations\n  value:\n    pod-create.stage.kwok.x-k8s.io/delay: 0s\n    pod-create.stage.kwok.x-k8s.io/jitter-delay: 0s\n    pod-ready.stage.kwok.x-k8s.io/delay: 0s\n    pod-ready.stage.kwok.x-k8s.io/jitter-delay: 0s\n    pod-delete.stage.kwok.x-k8s.io/delay: 0s\n";

/// Time from applying a Release to Ready with real Flux: the wiring Tumbler recommends (a
/// Kustomization without `wait`: Tumbler checks the workloads itself) against the old path
/// (`wait: true`, Flux polls health every 5 s), both with the nudge; and the lag between
/// Flux's Ready and the Release's.
async fn bench_ready(cache: &Path, report: &Report) {
    println!(
        "\n## apply → Ready on the local cluster with real Flux (small app, Kustomization interval 1m, nudge on)"
    );
    let client = kube::Client::try_default().await.expect("kube client");
    let mut results = vec![];
    // kwok simulates a container start of 1 s plus up to 5 s of jitter per stage (created,
    // ready); "instant pods" set those to zero through a patch of the pod template, so that
    // what is measured is Tumbler and Flux, not the simulation.
    for (label, wait, runs, instant) in [
        (
            "recommended (wait: false), instant pods",
            false,
            var("BENCH_READY_RUNS", 11),
            true,
        ),
        (
            "old path (wait: true), instant pods",
            true,
            var("BENCH_READY_RUNS_WAIT", 5),
            true,
        ),
        (
            "recommended (wait: false), kwok's simulated pod start",
            false,
            var("BENCH_READY_RUNS_KWOK", 5),
            false,
        ),
    ] {
        let ns = format!(
            "bench-ready-{}{}-{}",
            if wait { "w" } else { "n" },
            if instant { "i" } else { "k" },
            std::process::id()
        );
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
        let url = new_repo(&ns);
        let flux = format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: gitops, namespace: {ns}}}\nspec: {{interval: 1m, url: {url}, ref: {{branch: main}}}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: {ns}}}\nspec: {{interval: 1m, retryInterval: 5s, path: ./envs/live, prune: true, wait: {wait}, timeout: 2m, sourceRef: {{kind: GitRepository, name: gitops}}}}\n"
        );
        let mut kubectl = Command::new("kubectl")
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut kubectl.stdin.take().unwrap(), flux.as_bytes()).unwrap();
        assert!(kubectl.wait().unwrap().success());
        let envs: Api<Environment> = Api::namespaced(client.clone(), &ns);
        let rels: Api<Release> = Api::namespaced(client.clone(), &ns);
        let pp = PatchParams::apply("bench").force();
        envs.patch("live", &pp, &Patch::Apply(json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "live"},
            "spec": {"repository": {"url": url, "path": "envs/live"}, "targetNamespace": ns, "flux": {"kustomizations": [{"name": "apps"}]}}}))).await.unwrap();
        let cache_dir = cache.join(format!("ready-{ns}"));
        let mut controller = Command::new(env!("CARGO_BIN_EXE_tumbler"))
            .args([
                "controller",
                "--watch-namespace",
                &ns,
                "--metrics-addr",
                "off",
                "--log",
                "warn",
                "--cache-dir",
                cache_dir.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ks_api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &tumbler::flux::kustomization_resource(),
        );
        let (mut times, mut lags) = (vec![], vec![]);
        for i in 0..runs {
            let start = Instant::now();
            let mut doc = release_doc("app", "live", "app", &format!("1.0.{i}"));
            if instant {
                doc["spec"]["patches"] =
                    json!([{"target": {"kind": "Deployment"}, "patch": INSTANT_PODS}]);
            }
            rels.patch("app", &pp, &Patch::Apply(doc)).await.unwrap();
            let mut flux_seen: Option<Instant> = None;
            loop {
                let r = rels.get("app").await.unwrap();
                let commit = r
                    .status
                    .as_ref()
                    .and_then(|s| s.commit.clone())
                    .unwrap_or_default();
                if flux_seen.is_none()
                    && !commit.is_empty()
                    && r.metadata.generation
                        == r.status.as_ref().and_then(|s| s.observed_generation)
                {
                    let ks =
                        tumbler::flux::FluxObject::from_dynamic(&ks_api.get("apps").await.unwrap());
                    let applied = ks
                        .status
                        .last_applied_revision
                        .as_deref()
                        .and_then(tumbler::flux::revision_commit)
                        .is_some_and(|c| c == commit);
                    if applied && ks.ready().is_some_and(|c| c.status == "True") {
                        flux_seen = Some(Instant::now());
                    }
                }
                let done = r.status.as_ref().is_some_and(|s| {
                    s.phase == Phase::Ready
                        && r.metadata.generation == s.observed_generation
                        && s.last_applied_version.as_deref() == Some(&format!("1.0.{i}"))
                });
                if done {
                    times.push(start.elapsed());
                    lags.push(
                        flux_seen
                            .map(|f| format!("{:.0} ms", f.elapsed().as_secs_f64() * 1000.0))
                            .unwrap_or_else(|| "<100 ms".into()),
                    );
                    break;
                }
                if start.elapsed() > Duration::from_secs(180) {
                    println!("{label}: run {i} not Ready after 180 s");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        times.sort();
        let secs: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64()))
            .collect();
        println!(
            "{label}: apply → Ready p50 {:.2} s, p90 {:.2} s over {} runs (all: {} s); lag from Flux applied+Ready to the Release Ready (polled every 100 ms): {:?}",
            percentile(&times, 0.5).as_secs_f64(),
            percentile(&times, 0.9).as_secs_f64(),
            times.len(),
            secs.join(", "),
            lags
        );
        results.push((
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times.len(),
        ));
        let _ = controller.kill();
        let _ = controller.wait();
        controller::drop_namespace(&client, &ns).await;
    }
    let ((p50, p90, runs), (old50, old90, old_runs)) = (results[0], results[1]);
    let (k50, k90, k_runs) = results[2];
    report.add(Row {
        target: "latency: apply → Ready with kwok's simulated pod start (1–6 s per stage)".into(),
        goal: "–".into(),
        measured: format!(
            "p50 {:.2} s, p90 {:.2} s",
            k50.as_secs_f64(),
            k90.as_secs_f64()
        ),
        reference: format!("instant pods p50 {:.2} s", p50.as_secs_f64()),
        ratio: ratio(k50.as_secs_f64(), p50.as_secs_f64()),
        met: None,
        values: json!({"p50_s": k50.as_secs_f64(), "p90_s": k90.as_secs_f64(), "runs": k_runs}),
    });
    for (what, goal, mine, old, limit) in [
        ("p50", "< 5 s", p50, old50, 5.0),
        ("p90", "< 8 s", p90, old90, 8.0),
    ] {
        report.add(Row {
            target: format!("latency: kubectl apply → Ready, {what} (Kustomization without wait)"),
            goal: goal.into(),
            measured: format!("{:.2} s", mine.as_secs_f64()),
            reference: format!("wait: true {:.2} s", old.as_secs_f64()),
            ratio: ratio(mine.as_secs_f64(), old.as_secs_f64()),
            met: Some(mine.as_secs_f64() < limit),
            values: json!({"seconds": mine.as_secs_f64(), "wait_true_seconds": old.as_secs_f64(), "runs": runs, "wait_true_runs": old_runs}),
        });
    }
}

#[tokio::main]
async fn main() {
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    let tmp = tempfile::tempdir().unwrap();
    let report = Report::default();
    if let Ok(client) = kube::Client::try_default().await {
        controller::drop_leftovers(&client).await;
    }
    if run("render") {
        bench_render();
    }
    if run("writer") {
        let n = var("BENCH_BURST", 1000);
        let burst = bench_writer(tmp.path()).await;
        let per = var("BENCH_BASELINE", 100);
        let cli = bench_baseline(tmp.path());
        let (total, _) = writer_burst(per, tmp.path()).await;
        println!(
            "\n## baseline: the same {per} changes as a CI job makes them (git CLI: clone, edit, commit, push each)"
        );
        println!(
            "git CLI {}; Tumbler's writer {}; ratio {:.0}x",
            ms(cli),
            ms(total),
            cli.as_secs_f64() / total.as_secs_f64()
        );
        let cli_n = cli.as_secs_f64() * n as f64 / per as f64;
        report.add(Row {
            target: format!("writer burst: {n} changes queued at once, all pushed"),
            goal: "< 2 s".into(),
            measured: ms(burst),
            reference: format!("git CLI one by one {cli_n:.1} s (from {per})"),
            ratio: ratio(burst.as_secs_f64(), cli_n),
            met: Some(burst < Duration::from_secs(2)),
            values: json!({"n": n, "seconds": burst.as_secs_f64(), "git_cli_seconds_extrapolated": cli_n}),
        });
    }
    if run("history") {
        let h = history::bench_history(tmp.path());
        h.print();
        for t in [&h.recent, &h.full] {
            report.add(Row {
                target: format!(
                    "history: tumbler log --app, {} commits, limit {} ({} entries), CLI process",
                    h.commits, t.limit, t.entries
                ),
                goal: "< 20 ms".into(),
                measured: ms(t.cli),
                reference: format!("git log -- <path> {}", ms(t.git)),
                ratio: ratio(t.cli.as_secs_f64(), t.git.as_secs_f64()),
                met: Some(t.cli < Duration::from_millis(20)),
                values: json!({"commits": h.commits, "limit": t.limit, "cli_ms": t.cli.as_secs_f64() * 1e3,
                    "library_ms": t.library.as_secs_f64() * 1e3, "git_ms": t.git.as_secs_f64() * 1e3,
                    "first_call_ms": h.cold.as_secs_f64() * 1e3}),
            });
        }
    }
    if run("size") {
        bench_repo_size(tmp.path(), &report).await;
    }
    if run("soak") {
        bench_soak(tmp.path()).await;
    }
    if run("ready") {
        bench_ready(tmp.path(), &report).await;
    }
    if run("burst") {
        controller::bench_burst(tmp.path(), &report).await;
    }
    if run("memory") {
        controller::bench_memory(tmp.path(), &report).await;
    }
    report.finish();
}
