//! The end-to-end harness: each test gets a fresh labelled namespace, its own repositories
//! on the local git server, and its own controller process watching only that namespace.
//! Needs the local control plane (`make cluster-up`, or `e2e/with-cluster.sh`): without it
//! every test fails, naming what is missing; none is skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use tumbler::api::{Environment, Release};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A variable the harness exports in `.tumbler-dev/env`.
pub fn harness_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the local control plane (`make cluster-up`) and `source .tumbler-dev/env`, or run `make e2e`")
    })
}

pub struct Scenario {
    pub client: Client,
    pub ns: String,
    controller: Option<Child>,
    pub log: PathBuf,
    cache: PathBuf,
    /// Admin address (`/metrics`) of the scenario's controller, while it runs.
    pub metrics: Option<String>,
}

impl Scenario {
    /// A namespace `e2e-<name>-<suffix>` and a controller watching it.
    pub async fn new(name: &str) -> Scenario {
        let mut s = Scenario::bare(name).await;
        s.start_controller();
        s
    }

    /// A namespace, without a controller (the test starts its own).
    pub async fn bare(name: &str) -> Scenario {
        let _ = harness_var("KUBECONFIG");
        let client = Client::try_default()
            .await
            .expect("kube client from KUBECONFIG");
        let suffix = format!(
            "{:x}",
            std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64 ^ rand_u64()
        );
        let ns = format!("e2e-{name}-{}", &suffix[suffix.len().saturating_sub(5)..]);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let body: Namespace = serde_json::from_value(json!({
            "metadata": {"name": ns, "labels": {"tumbler.dev/e2e": "true"}}
        }))
        .unwrap();
        namespaces
            .create(&PostParams::default(), &body)
            .await
            .expect("create namespace");
        let logs = repo_root().join(".tumbler-dev/logs");
        std::fs::create_dir_all(&logs).unwrap();
        let cache = std::env::temp_dir().join(format!("tumbler-e2e-cache-{ns}"));
        let mut s = Scenario {
            client,
            log: logs.join(format!("controller-{ns}.log")),
            ns,
            controller: None,
            cache,
            metrics: None,
        };
        s.controller = None;
        s
    }

    /// Starts (or restarts) the controller process for this namespace.
    pub fn start_controller(&mut self) {
        self.start_controller_with(&[]);
    }

    /// Starts (or restarts) the controller process for this namespace with extra arguments;
    /// its `/metrics` is at `self.metrics`.
    pub fn start_controller_with(&mut self, args: &[&str]) {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut all = vec!["--metrics-addr", addr.as_str()];
        all.extend_from_slice(args);
        let child = self.spawn_controller("", &all, &[]);
        self.controller = Some(child);
        self.metrics = Some(addr);
    }

    /// The sum of the samples of the running controller's `/metrics` that start with
    /// `name_and_labels` (0 when none): one sample, or e.g. every `result` of
    /// [`RELEASE_RECONCILES`].
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let addr = self.metrics.as_deref().expect("the controller runs");
        scrape(addr)
            .await
            .lines()
            .filter(|l| l.starts_with(name_and_labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the controller finished `n` more Release reconciles than `since` (a
    /// reading of [`RELEASE_RECONCILES`]): a poll on what the controller did, not a sleep.
    pub async fn wait_reconciles(&self, since: f64, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.metric(RELEASE_RECONCILES).await < since + f64::from(n) {
            assert!(
                Instant::now() < deadline,
                "the controller did not reconcile {n} more times\n{}",
                self.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A repository on the git server and an Environment `env` writing to it.
    pub async fn repo_and_environment(&self, env: &str, extra: serde_json::Value) -> String {
        let url = new_repo(&self.ns, false);
        self.apply(&self.environments(), environment(env, &url, extra))
            .await;
        url
    }

    /// A private repository, a Secret `creds` holding its credentials, and an Environment
    /// `env` using both.
    pub async fn private_repo_and_environment(&self, env: &str) -> String {
        let url = new_repo(&self.ns, true);
        self.secret(
            "creds",
            &[
                ("username", &harness_var("TUMBLER_GIT_USERNAME")),
                ("password", &harness_var("TUMBLER_GIT_PASSWORD")),
            ],
        )
        .await;
        self.apply(
            &self.environments(),
            environment(
                env,
                &url,
                json!({"repository": {"secretRef": {"name": "creds"}, "insecure": true}}),
            ),
        )
        .await;
        url
    }

    /// Applies a template Release `app` (named like its app) at `version`.
    pub async fn release(&self, app: &str, env: &str, version: &str) -> Release {
        self.apply(&self.releases(), template_release(app, env, app, version))
            .await
    }

    /// The controller's process id, while it runs.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(|c| c.id())
    }

    /// Starts one more controller for this namespace, with extra arguments and environment,
    /// logging to `controller-<ns><tag>.log`; the caller owns the process.
    pub fn spawn_controller(&self, tag: &str, args: &[&str], envs: &[(&str, &str)]) -> Child {
        let mut all = vec!["--watch-namespace", self.ns.as_str()];
        all.extend_from_slice(args);
        self.spawn_controller_watching(tag, &all, envs)
    }

    /// Starts the scenario's controller watching every namespace, but only the Releases and
    /// Environments labelled `tumbler.dev/e2e-scenario=<namespace>` (see [`Self::label`]).
    pub fn start_cluster_wide_controller(&mut self) {
        let addr = format!("127.0.0.1:{}", free_port());
        let selector = format!("tumbler.dev/e2e-scenario={}", self.ns);
        let args = [
            "--watch-label-selector",
            selector.as_str(),
            "--metrics-addr",
            addr.as_str(),
        ];
        let child = self.spawn_controller_watching("", &args, &[]);
        self.controller = Some(child);
        self.metrics = Some(addr);
    }

    /// The label that puts an object in view of [`Self::start_cluster_wide_controller`].
    pub fn label(&self) -> serde_json::Value {
        json!({"tumbler.dev/e2e-scenario": self.ns})
    }

    /// Starts one more controller with exactly these arguments (no `--watch-namespace` of
    /// its own), logging to `controller-<ns><tag>.log`; the caller owns the process.
    pub fn spawn_controller_watching(
        &self,
        tag: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Child {
        let path = self
            .log
            .with_file_name(format!("controller-{}{tag}.log", self.ns));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let cache = self.cache.with_file_name(format!(
            "{}{tag}",
            self.cache.file_name().unwrap().to_string_lossy()
        ));
        Command::new(env!("CARGO_BIN_EXE_tumbler"))
            .args(["controller", "--log-format", "text", "--cache-dir"])
            .arg(&cache)
            .args(args)
            .env("TUMBLER_LOG", "info,tumbler=debug,kube=warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tumbler controller")
    }

    /// The log of a controller started with `spawn_controller(tag, ..)`.
    pub fn log_of(&self, tag: &str) -> String {
        std::fs::read_to_string(
            self.log
                .with_file_name(format!("controller-{}{tag}.log", self.ns)),
        )
        .unwrap_or_default()
    }

    /// Kills the controller without warning (SIGKILL), as a crash would.
    pub fn kill_controller(&mut self) {
        self.metrics = None;
        if let Some(mut child) = self.controller.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn releases(&self) -> Api<Release> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn environments(&self) -> Api<Environment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn apply<K>(&self, api: &Api<K>, doc: serde_json::Value) -> K
    where
        K: kube::Resource
            + std::clone::Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        api.patch(
            &name,
            &kube::api::PatchParams::apply("e2e").force(),
            &kube::api::Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"))
    }

    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let string_data: serde_json::Map<_, _> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let body: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": string_data}))
                .unwrap();
        api.create(&PostParams::default(), &body)
            .await
            .expect("create secret");
    }

    /// Polls a Release until `done` holds, or fails with its status and the controller log.
    pub async fn wait_release(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&Release) -> bool,
    ) -> Release {
        self.wait_release_for(name, what, Duration::from_secs(90), done)
            .await
    }

    pub async fn wait_release_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Release) -> bool,
    ) -> Release {
        let start = Instant::now();
        loop {
            if let Ok(Some(rel)) = self.releases().get_opt(name).await {
                if let Some(status) = &rel.status {
                    check_kstatus(&rel.metadata.generation, status);
                }
                if done(&rel) {
                    return rel;
                }
                if start.elapsed() > timeout {
                    panic!(
                        "release {}/{name}: timed out waiting for {what}\nstatus: {}\n--- controller log tail ---\n{}",
                        self.ns,
                        serde_json::to_string_pretty(&rel.status).unwrap(),
                        self.log_tail(40)
                    );
                }
            } else if start.elapsed() > timeout {
                panic!(
                    "release {}/{name} not found waiting for {what}\n{}",
                    self.ns,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_environment(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&Environment) -> bool,
    ) -> Environment {
        let start = Instant::now();
        loop {
            if let Ok(Some(env)) = self.environments().get_opt(name).await {
                if done(&env) {
                    return env;
                }
                if start.elapsed() > Duration::from_secs(90) {
                    panic!(
                        "environment {}/{name}: timed out waiting for {what}\nstatus: {}\n{}",
                        self.ns,
                        serde_json::to_string_pretty(&env.status).unwrap(),
                        self.log_tail(40)
                    );
                }
            } else if start.elapsed() > Duration::from_secs(90) {
                panic!(
                    "environment {}/{name} not found waiting for {what}\n{}",
                    self.ns,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reasons of the Events recorded about one object.
    pub async fn event_reasons(&self, kind: &str, name: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let list = events
            .list(&ListParams::default().fields(&format!(
                "involvedObject.kind={kind},involvedObject.name={name}"
            )))
            .await
            .expect("list events");
        list.items.into_iter().filter_map(|e| e.reason).collect()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Deletes the Releases (so the controller can remove its finalizers), then stops the
    /// controller and deletes the namespace.
    pub async fn finish(mut self) {
        let _ = self
            .releases()
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.releases().list(&ListParams::default()).await {
                Ok(list) if list.items.is_empty() => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let _ = self
            .environments()
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.environments().list(&ListParams::default()).await {
                Ok(list) if list.items.is_empty() => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        self.kill_controller();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.kill_controller();
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

/// The kstatus invariants, checked on every status a test sees.
pub fn check_kstatus(generation: &Option<i64>, status: &tumbler::api::ReleaseStatus) {
    if status.conditions.is_empty() {
        return; // not reconciled yet
    }
    if let Some(v) = tumbler::api::kstatus_violation(&status.conditions) {
        panic!("kstatus invariant broken: {v}: {:?}", status.conditions);
    }
    if let (Some(g), Some(o)) = (generation, status.observed_generation) {
        assert!(o <= *g, "observedGeneration {o} ahead of generation {g}");
    }
}

/// The condition of a type on a Release.
pub fn cond<'a>(
    rel: &'a Release,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    rel.status
        .as_ref()
        .and_then(|s| tumbler::api::find_condition(&s.conditions, type_))
}

/// Whether the Release's Ready condition has this status and reason, for this generation.
pub fn ready_is(rel: &Release, status: &str, reason: &str) -> bool {
    cond(rel, "Ready").is_some_and(|c| c.status == status && c.reason == reason)
        && rel.status.as_ref().and_then(|s| s.observed_generation) == rel.metadata.generation
}

/// A repository on the local git server; returns its clone URL.
pub fn new_repo(name: &str, private: bool) -> String {
    let mut cmd = Command::new(repo_root().join("e2e/cluster.sh"));
    cmd.args(["repo", name]);
    if private {
        cmd.arg("--private");
    }
    let out = cmd.output().expect("run e2e/cluster.sh repo");
    assert!(
        out.status.success(),
        "e2e/cluster.sh repo {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// Runs git and returns its stdout; fails the test on error.
pub fn git(dir: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Outsider")
        .env("GIT_AUTHOR_EMAIL", "outsider@example.com")
        .env("GIT_COMMITTER_NAME", "Outsider")
        .env("GIT_COMMITTER_EMAIL", "outsider@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh clone of `url` (with credentials embedded if given) in a temp dir.
pub struct Clone {
    pub dir: tempfile::TempDir,
}

impl Clone {
    pub fn of(url: &str) -> Clone {
        let dir = tempfile::tempdir().unwrap();
        git(None, &["clone", "-q", url, dir.path().to_str().unwrap()]);
        Clone { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn commits(&self) -> usize {
        git(Some(self.path()), &["rev-list", "--count", "HEAD"])
            .trim()
            .parse()
            .unwrap()
    }
    pub fn head(&self) -> String {
        git(Some(self.path()), &["rev-parse", "HEAD"])
            .trim()
            .to_string()
    }
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path().join(path)).ok()
    }
    pub fn exists(&self, path: &str) -> bool {
        self.path().join(path).exists()
    }
    pub fn message(&self, rev: &str) -> String {
        git(Some(self.path()), &["log", "-1", "--format=%B", rev])
    }
}

/// A minimal Environment document.
pub fn environment(name: &str, url: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut doc = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name},
        "spec": {
            "repository": {"url": url, "branch": "main", "path": format!("envs/{name}")},
            "commit": {"author": {"name": "Tumbler E2E", "email": "e2e@tumbler.dev"}}
        }
    });
    merge(&mut doc["spec"], extra);
    doc
}

/// A template Release document.
pub fn template_release(name: &str, env: &str, app: &str, version: &str) -> serde_json::Value {
    json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name},
        "spec": {
            "environment": env, "app": app, "version": version,
            "template": {
                "image": {"repository": "registry.example.com/demo", "tag": version},
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": {"GREETING": "hello"}
            }
        }
    })
}

/// Merges `patch` into `doc` (objects recursively, everything else replaced).
pub fn merge(doc: &mut serde_json::Value, patch: serde_json::Value) {
    match (doc, patch) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Runs a command (in the repository root, with optional stdin); returns whether it
/// succeeded and its stdout followed by its stderr.
pub fn run_cmd(cmd: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (source .tumbler-dev/env puts it on PATH)"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    run_cmd("kubectl", args, stdin)
}

/// A kubeconfig that authenticates as a ServiceAccount of `ns`.
pub fn service_account_kubeconfig(ns: &str, sa: &str) -> std::path::PathBuf {
    let token = must_kubectl(&["-n", ns, "create", "token", sa, "--duration", "1h"]);
    let server = must_kubectl(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = must_kubectl(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority}",
    ]);
    let path = std::env::temp_dir().join(format!("kubeconfig-{ns}-{sa}"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\", certificate-authority: \"{ca}\"}}\nusers:\n- name: u\n  user: {{token: \"{}\"}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: {ns}}}\ncurrent-context: x\n",
            token.trim()
        ),
    )
    .unwrap();
    path
}

fn must_kubectl(args: &[&str]) -> String {
    let (ok, out) = kubectl(args, None);
    assert!(ok, "kubectl {args:?} failed:\n{out}");
    out
}

pub fn tumbler(args: &[&str]) -> (bool, String) {
    run_cmd(env!("CARGO_BIN_EXE_tumbler"), args, None)
}

/// Pushes the clone's HEAD to `main` as a person would: when the server refuses because
/// someone else pushed first (Tumbler, here), pull with rebase and push again.
pub fn outside_push(clone: &Path) {
    for attempt in 0..20 {
        let out = Command::new("git")
            .arg("-C")
            .arg(clone)
            .args(["push", "-q", "origin", "HEAD:main"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .expect("run git");
        if out.status.success() {
            return;
        }
        if attempt == 19 {
            panic!(
                "outside push still refused: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
        git(Some(clone), &["pull", "-q", "--rebase", "origin", "main"]);
    }
}

/// Release reconciles a controller finished, in its `/metrics`.
pub const RELEASE_RECONCILES: &str = "controller_runtime_reconcile_total{controller=\"release\",";

/// Whether the Release's `Committed` condition is True for its current generation: what
/// `kubectl wait --for=condition=Committed` waits for.
pub fn committed_is_true(rel: &Release) -> bool {
    cond(rel, "Committed")
        .is_some_and(|c| c.status == "True" && c.observed_generation == rel.metadata.generation)
        && rel.status.as_ref().is_some_and(|s| s.commit.is_some())
}

/// A Release of an Environment without Flux, settled: `Committed=True` for this generation,
/// and `Ready=False` with reason `NotVerified` (nothing says it was applied).
pub fn committed(rel: &Release) -> bool {
    committed_is_true(rel) && ready_is(rel, "False", "NotVerified")
}

/// A free port on loopback (bound and released; good enough for a test's own process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/metrics` of a controller at `addr`, once it answers.
pub async fn scrape(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, text) = run_cmd("curl", &["-sf", &format!("http://{addr}/metrics")], None);
        if ok {
            return text;
        }
        assert!(Instant::now() < deadline, "no /metrics at {addr}: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of one sample in a Prometheus text exposition (0 when absent).
pub fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The URL of a private repository with the harness's credentials in it.
pub fn with_credentials(url: &str) -> String {
    url.replacen(
        "://",
        &format!(
            "://{}:{}@",
            harness_var("TUMBLER_GIT_USERNAME"),
            harness_var("TUMBLER_GIT_PASSWORD")
        ),
        1,
    )
}

/// A chart on the git server's static area (a Helm repository); `templates` are
/// `(file name, content)`. Returns the repository URL.
pub fn serve_chart_with(
    ns: &str,
    chart: &str,
    version: &str,
    templates: &[(&str, &str)],
) -> String {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(chart);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {chart}\nversion: {version}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "greeting: hello\n").unwrap();
    for (name, content) in templates {
        std::fs::write(dir.join("templates").join(name), content).unwrap();
    }
    let repo_dir = PathBuf::from(harness_var("TUMBLER_GIT_ROOT"))
        .join("static")
        .join(format!("charts-{ns}"));
    std::fs::create_dir_all(&repo_dir).unwrap();
    let tgz = repo_dir.join(format!("{chart}-{version}.tgz"));
    let ok = Command::new("tar")
        .arg("-C")
        .arg(work.path())
        .arg("-czf")
        .arg(&tgz)
        .arg(chart)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let base = format!("{}/charts-{ns}", harness_var("TUMBLER_GIT_STATIC_URL"));
    std::fs::write(
        repo_dir.join("index.yaml"),
        format!("apiVersion: v1\nentries:\n  {chart}:\n  - apiVersion: v2\n    name: {chart}\n    version: {version}\n    created: \"2026-01-01T00:00:00Z\"\n    urls: [{base}/{chart}-{version}.tgz]\ngenerated: \"2026-01-01T00:00:00Z\"\n"),
    )
    .unwrap();
    base
}

/// The template of a chart that greets from a ConfigMap.
pub const GREETER: (&str, &str) = (
    "configmap.yaml",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
);
