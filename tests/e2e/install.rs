//! Shipping: the Helm chart and the kustomize config install on the real API server with
//! the same RBAC; the controller works with the chart's ServiceAccount and nothing more;
//! leader election hands over without duplicate or lost commits; metrics and health answer.

use std::process::Child;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::{Value, json};

use crate::harness::*;

fn must(cmd: &str, args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out) = run_cmd(cmd, args, stdin);
    assert!(ok, "{cmd} {args:?} failed:\n{out}");
    out
}

fn docs(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter_map(|d| serde_saphyr::from_str::<Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// The rules of the controller's ClusterRole (not the roles aggregated for people).
fn cluster_role_rules(yaml: &str) -> Value {
    docs(yaml)
        .into_iter()
        .find(|d| {
            d["kind"] == "ClusterRole"
                && !d["metadata"]["labels"]
                    .as_object()
                    .is_some_and(|l| l.keys().any(|k| k.contains("/aggregate-to-")))
        })
        .expect("a ClusterRole")["rules"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_and_kustomize_install_on_the_api_server_with_the_same_rbac() {
    let s = Scenario::bare("install").await;
    must("helm", &["lint", "charts/tumbler"], None);
    // values.schema.json: a typo or a wrong type fails instead of being ignored.
    for bad in [
        "typo=1",
        "image.tg=x",
        "replicas=two",
        "gitCache.type=nfs",
        "watchNamespaces={Team_A}",
        "podDisruptionBudget.minAvailable=1",
    ] {
        let (ok, out) = run_cmd(
            "helm",
            &[
                "template",
                "t",
                "charts/tumbler",
                "--kube-version",
                "v1.36.3",
                "--set",
                bad,
            ],
            None,
        );
        assert!(
            !ok && out.contains("schema"),
            "--set {bad} was accepted:\n{out}"
        );
    }
    let variants: [&[&str]; 3] = [
        &[],
        &["--set", &format!("watchNamespaces={{{}}}", s.ns)],
        &[
            "--set",
            "replicas=2",
            "--set",
            "gitCache.type=pvc",
            "--set",
            "logFormat=text",
            "--set",
            "fluxNudge=false",
            "--set",
            "shards={shard1,shard2}",
        ],
    ];
    let mut default_render = String::new();
    for extra in variants {
        let mut args = vec![
            "template",
            "t",
            "charts/tumbler",
            "-n",
            &s.ns,
            "--kube-version",
            "v1.36.3",
        ];
        args.extend_from_slice(extra);
        let rendered = must("helm", &args, None);
        if default_render.is_empty() {
            default_render = rendered.clone();
        }
        must(
            "kubectl",
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&rendered),
        );
        let kinds: Vec<String> = docs(&rendered)
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
            .collect();
        let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
        // `helm test`'s pod is rendered and valid (it cannot run here: kwok fakes pods).
        assert_eq!(count("Pod"), 1, "the helm test pod: {kinds:?}");
        if extra.contains(&"gitCache.type=pvc") {
            // A claim per replica (one StatefulSet per shard and the main one), none shared;
            // a PodDisruptionBudget for each workload of two replicas.
            assert_eq!((count("StatefulSet"), count("Deployment")), (3, 0));
            assert_eq!(count("PersistentVolumeClaim"), 0);
            assert_eq!(count("PodDisruptionBudget"), 3);
            for sts in docs(&rendered)
                .iter()
                .filter(|d| d["kind"] == "StatefulSet")
            {
                assert_eq!(
                    sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
                    "git-cache"
                );
            }
        } else {
            assert_eq!((count("Deployment"), count("PodDisruptionBudget")), (1, 0));
        }
    }
    // NOTES.txt: what was installed, and a first Environment and Release the API server
    // accepts as printed (REPO_URL filled in).
    let name = format!("notes-{}", s.ns);
    let notes = must(
        "helm",
        &[
            "install",
            &name,
            "charts/tumbler",
            "-n",
            &s.ns,
            "--dry-run=server",
            "--set",
            "rbac.aggregateToDefaultRoles=false",
            "--set",
            &format!("watchNamespaces={{{}}}", s.ns),
            "--set",
            "replicas=2",
        ],
        None,
    );
    let notes = &notes[notes.find("NOTES:").expect("NOTES")..];
    for needle in [
        format!("Releases and Environments of 1 namespace(s): {}.", s.ns),
        format!("Deployment {name}: 2 replica(s), leader election on"),
        format!("export NS={} REPO_URL=", s.ns),
    ] {
        assert!(notes.contains(&needle), "{needle:?} not in\n{notes}");
    }
    assert!(!notes.contains("team-a") && !notes.contains("example.com"));
    let sample: Vec<&str> = notes
        .lines()
        .skip_while(|l| !l.contains("<<EOF"))
        .skip(1)
        .take_while(|l| l.trim() != "EOF")
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect();
    let sample = sample.join("\n").replace(
        "$REPO_URL",
        &format!("{}/notes.git", harness_var("TUMBLER_GIT_URL")),
    );
    must(
        "kubectl",
        &["-n", &s.ns, "apply", "--dry-run=server", "-f", "-"],
        Some(&sample),
    );
    let kustomized = must("kubectl", &["kustomize", "config/default"], None);
    assert_eq!(
        cluster_role_rules(&default_render),
        cluster_role_rules(&kustomized),
        "chart and config/rbac differ"
    );
    must(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            "config/default",
        ],
        None,
    );
    must(
        "kubectl",
        &["-n", "tumbler-system", "get", "deployment", "tumbler"],
        None,
    );
    // Namespace `edit` may manage Releases, `view` read them; neither reaches Environments.
    for role in ["edit", "view"] {
        let sa = format!("people-{role}");
        must(
            "kubectl",
            &["-n", &s.ns, "create", "serviceaccount", &sa],
            None,
        );
        let subject = format!("{}:{sa}", s.ns);
        must(
            "kubectl",
            &[
                "-n",
                &s.ns,
                "create",
                "rolebinding",
                &sa,
                "--clusterrole",
                role,
                "--serviceaccount",
                &subject,
            ],
            None,
        );
    }
    for (role, verb, resource, allowed) in [
        ("edit", "create", "releases.tumbler.dev", "yes"),
        ("edit", "create", "environments.tumbler.dev", "no"),
        ("view", "list", "releases.tumbler.dev", "yes"),
        ("view", "create", "releases.tumbler.dev", "no"),
    ] {
        let who = format!("system:serviceaccount:{}:people-{role}", s.ns);
        // Aggregation is asynchronous: poll.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, out) = run_cmd(
                "kubectl",
                &["auth", "can-i", verb, resource, "-n", &s.ns, "--as", &who],
                None,
            );
            if out.trim() == allowed {
                break;
            }
            assert!(Instant::now() < deadline, "{role} {verb} {resource}: {out}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_works_with_the_chart_service_account_and_reads_no_other_secrets() {
    let s = Scenario::bare("rbac").await;
    let release = format!("t-{}", s.ns);
    let rendered = must(
        "helm",
        &[
            "template",
            &release,
            "charts/tumbler",
            "-n",
            &s.ns,
            "--kube-version",
            "v1.36.3",
            "--set",
            &format!("watchNamespaces={{{}}}", s.ns),
        ],
        None,
    );
    // Everything but the Deployment: the controller runs here, out of cluster.
    let objects: Vec<String> = rendered
        .split("\n---")
        .filter(|d| !d.contains("kind: Deployment"))
        .map(str::to_string)
        .collect();
    must(
        "kubectl",
        &["apply", "-f", "-"],
        Some(&objects.join("\n---\n")),
    );
    let sa = release.clone();
    let who = format!("system:serviceaccount:{}:{sa}", s.ns);
    for (verb, ns, want) in [
        ("get", s.ns.as_str(), "yes"),
        ("list", s.ns.as_str(), "no"),
        ("get", "kube-system", "no"),
        ("watch", s.ns.as_str(), "no"),
    ] {
        let (_, out) = run_cmd(
            "kubectl",
            &["auth", "can-i", verb, "secrets", "-n", ns, "--as", &who],
            None,
        );
        assert_eq!(out.trim(), want, "can {who} {verb} secrets in {ns}?");
    }

    let kubeconfig = service_account_kubeconfig(&s.ns, &sa);
    let mut controller = s.spawn_controller(
        "-sa",
        &["--metrics-addr", "127.0.0.1:0"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let url = new_repo(&s.ns, true);
    s.secret(
        "creds",
        &[
            ("username", &harness_var("TUMBLER_GIT_USERNAME")),
            ("password", &harness_var("TUMBLER_GIT_PASSWORD")),
        ],
    )
    .await;
    s.apply(
        &s.environments(),
        environment(
            "staging",
            &url,
            json!({"repository": {"secretRef": {"name": "creds"}, "insecure": true}}),
        ),
    )
    .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    s.wait_release("api", "committed as the ServiceAccount", committed)
        .await;
    s.wait_environment("staging", "Ready", |e| {
        tumbler::api::Conditioned::is_true(e, "Ready")
    })
    .await;
    let log = s.log_of("-sa");
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the controller hit RBAC denials:\n{log}"
    );
    let _ = controller.kill();
    let _ = controller.wait();
    s.finish().await;
}

/// The namespaces a rendered controller workload watches, from its `--watch-namespace` flag
/// (`None`: every namespace).
fn watched_by_flag(rendered: &str) -> Option<Vec<String>> {
    let workload = docs(rendered)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .clone();
    let flags: Vec<&str> = args
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--watch-namespace="))
        .collect();
    assert!(flags.len() <= 1, "one --watch-namespace flag: {flags:?}");
    flags
        .first()
        .map(|f| f.split(',').map(str::to_string).collect())
}

/// `kubectl auth can-i` as `who`; `resource` may name a subresource (`releases.tumbler.dev/status`).
fn can_i(who: &str, verb: &str, resource: &str, ns: Option<&str>) -> bool {
    let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let mut args = vec!["auth", "can-i", verb, resource, "--as", who];
    if !sub.is_empty() {
        args.extend_from_slice(&["--subresource", sub]);
    }
    match ns {
        Some(ns) => args.extend_from_slice(&["-n", ns]),
        None => args.push("--all-namespaces"),
    }
    let (_, out) = run_cmd("kubectl", &args, None);
    match out.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl {args:?}: {other}"),
    }
}

/// The chart with 0, 1 and 2 watched namespaces, applied to the API server: the controller's
/// `--watch-namespace` flag and the ServiceAccount's permissions agree. In every namespace the
/// flag covers, it may do what a reconcile does; in any other it may not read Secrets, write
/// Releases or Environments, or record Events; Releases and Environments are readable
/// cluster-wide (the watch with several namespaces is cluster-wide). Then the controller runs
/// with that ServiceAccount's token and the 2-namespace flag: a Release in each watched
/// namespace is committed (reading a private repository's Secret there), one in a third
/// namespace is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_and_flags_agree_for_0_1_and_2_watched_namespaces() {
    let s = Scenario::bare("watchns").await;
    let extra: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|x| format!("{}-{x}", s.ns))
        .collect();
    for ns in &extra {
        must("kubectl", &["create", "namespace", ns], None);
    }
    let variants: [&[String]; 3] = [&[], &extra[..1], &extra[..2]];
    let mut cluster_scoped = Vec::new();
    let mut two = None;
    for (n, watch) in variants.into_iter().enumerate() {
        let release = format!("t{n}-{}", s.ns);
        let list = format!("watchNamespaces={{{}}}", watch.join(","));
        let mut args = vec![
            "template",
            release.as_str(),
            "charts/tumbler",
            "-n",
            &s.ns,
            "--kube-version",
            "v1.36.3",
            "--set",
            "rbac.aggregateToDefaultRoles=false",
        ];
        if n > 0 {
            args.extend_from_slice(&["--set", &list]);
        }
        let rendered = must("helm", &args, None);
        let flag = watched_by_flag(&rendered);
        assert_eq!(
            flag.as_deref(),
            (n > 0).then_some(watch),
            "watchNamespaces and the flag differ"
        );
        // Everything but the workload and the test pod, for real (server-side).
        let objects: Vec<&str> = rendered
            .split("\n---")
            .filter(|d| !d.contains("kind: Deployment") && !d.contains("kind: Pod\n"))
            .collect();
        must(
            "kubectl",
            &["apply", "--server-side", "-f", "-"],
            Some(&objects.join("\n---\n")),
        );
        cluster_scoped.push(format!("clusterrole/{release}-{}", s.ns));
        cluster_scoped.push(format!("clusterrolebinding/{release}-{}", s.ns));
        let who = format!("system:serviceaccount:{}:{release}", s.ns);
        // Reading Releases and Environments: everywhere, in every variant.
        for verb in ["get", "list", "watch"] {
            for resource in ["releases.tumbler.dev", "environments.tumbler.dev"] {
                assert!(can_i(&who, verb, resource, None), "{n}: {verb} {resource}");
            }
        }
        for ns in &extra {
            let watched = flag.as_ref().is_none_or(|f| f.contains(ns));
            for (verb, resource) in [
                ("get", "secrets"),
                ("patch", "releases.tumbler.dev/status"),
                ("patch", "environments.tumbler.dev/status"),
                ("update", "releases.tumbler.dev/finalizers"),
                ("update", "environments.tumbler.dev/finalizers"),
                ("patch", "releases.tumbler.dev"),
                ("create", "events.events.k8s.io"),
                ("create", "events"),
            ] {
                assert_eq!(
                    can_i(&who, verb, resource, Some(ns)),
                    watched,
                    "{n} namespace(s) watched: {verb} {resource} in {ns}"
                );
            }
            for verb in ["list", "watch"] {
                assert!(!can_i(&who, verb, "secrets", Some(ns)), "{verb} secrets");
            }
        }
        if n == 2 {
            two = Some((release, flag.unwrap()));
        }
    }

    // The controller with the 2-namespace chart's ServiceAccount and flag.
    let (sa, watched) = two.unwrap();
    let kubeconfig = service_account_kubeconfig(&s.ns, &sa);
    let flag = format!("--watch-namespace={}", watched.join(","));
    let mut controller = s.spawn_controller_watching(
        "-two",
        &[&flag, "--metrics-addr", "127.0.0.1:0"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let url = new_repo(&s.ns, true);
    for ns in &extra {
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(s.client.clone(), ns);
        let secret = serde_json::from_value(json!({
            "metadata": {"name": "creds"},
            "stringData": {
                "username": harness_var("TUMBLER_GIT_USERNAME"),
                "password": harness_var("TUMBLER_GIT_PASSWORD"),
            }
        }))
        .unwrap();
        secrets
            .create(&Default::default(), &secret)
            .await
            .expect("create secret");
        let env = environment(
            &format!("env-{}", &ns[ns.len() - 1..]),
            &url,
            json!({"repository": {"secretRef": {"name": "creds"}, "insecure": true}}),
        );
        s.apply(
            &Api::<tumbler::api::Environment>::namespaced(s.client.clone(), ns),
            env,
        )
        .await;
        let rel = template_release(
            "api",
            &format!("env-{}", &ns[ns.len() - 1..]),
            &format!("api-{}", &ns[ns.len() - 1..]),
            "1.0.0",
        );
        s.apply(
            &Api::<tumbler::api::Release>::namespaced(s.client.clone(), ns),
            rel,
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for ns in &watched {
        let api: Api<tumbler::api::Release> = Api::namespaced(s.client.clone(), ns);
        loop {
            let rel = api.get("api").await.unwrap();
            if committed(&rel) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Release in watched {ns} was not committed: {:?}\n{}",
                rel.status,
                s.log_of("-two")
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    // The third namespace: untouched (no status, no finalizer) while the others committed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let unwatched = extra.iter().find(|ns| !watched.contains(ns)).unwrap();
    let ignored = Api::<tumbler::api::Release>::namespaced(s.client.clone(), unwatched)
        .get("api")
        .await
        .unwrap();
    assert!(
        ignored.status.is_none() && ignored.metadata.finalizers.is_none(),
        "the Release in unwatched {unwatched} was touched: {:?}",
        ignored.metadata
    );
    let clone = Clone::of(&url.replacen(
        "://",
        &format!(
            "://{}:{}@",
            harness_var("TUMBLER_GIT_USERNAME"),
            harness_var("TUMBLER_GIT_PASSWORD")
        ),
        1,
    ));
    for ns in &watched {
        let app = format!("api-{}", &ns[ns.len() - 1..]);
        assert!(clone.exists(&format!(
            "envs/env-{}/{app}/deployment-{app}.yaml",
            &ns[ns.len() - 1..]
        )));
    }
    let log = s.log_of("-two");
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the controller hit RBAC denials:\n{log}"
    );

    // Clean up: the Releases first, while the controller can still remove its finalizers.
    for ns in &extra {
        let api: Api<tumbler::api::Release> = Api::namespaced(s.client.clone(), ns);
        let _ = api.delete("api", &Default::default()).await;
    }
    for ns in &watched {
        let api: Api<tumbler::api::Release> = Api::namespaced(s.client.clone(), ns);
        let deadline = Instant::now() + Duration::from_secs(30);
        while api.get_opt("api").await.unwrap().is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    for ns in &extra {
        let api: Api<tumbler::api::Environment> = Api::namespaced(s.client.clone(), ns);
        let _ = api
            .delete_collection(&Default::default(), &Default::default())
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    kill(&mut controller);
    let mut args: Vec<&str> = vec!["delete", "--ignore-not-found", "--wait=false"];
    args.extend(cluster_scoped.iter().map(String::as_str));
    must("kubectl", &args, None);
    for ns in &extra {
        must(
            "kubectl",
            &["delete", "namespace", ns, "--wait=false"],
            None,
        );
    }
    s.finish().await;
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_hands_over_without_duplicate_or_lost_commits() {
    let s = Scenario::bare("leader").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    let args = [
        "--leader-election",
        "--leader-election-namespace",
        &s.ns,
        "--lease-seconds",
        "4",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let mut a = s.spawn_controller("-a", &args, &[("POD_NAME", "ctl-a")]);
    let mut b = s.spawn_controller("-b", &args, &[("POD_NAME", "ctl-b")]);
    for i in 0..5 {
        s.apply(
            &s.releases(),
            template_release(&format!("r{i}"), "staging", &format!("app{i}"), "1.0.0"),
        )
        .await;
    }
    for i in 0..5 {
        s.wait_release(&format!("r{i}"), "committed", committed)
            .await;
    }
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &s.ns);
    let holder = leases
        .get("tumbler-leader")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap();
    let follower_tag = if holder == "ctl-a" { "-b" } else { "-a" };
    assert!(
        !s.log_of(follower_tag).contains("pushed"),
        "the follower wrote to git"
    );

    // The leader dies; the follower takes over within the lease time.
    let killed = Instant::now();
    if holder == "ctl-a" {
        kill(&mut a)
    } else {
        kill(&mut b)
    }
    for i in 5..10 {
        s.apply(
            &s.releases(),
            template_release(&format!("r{i}"), "staging", &format!("app{i}"), "1.0.0"),
        )
        .await;
    }
    s.apply(
        &s.releases(),
        template_release("r0", "staging", "app0", "1.0.1"),
    )
    .await;
    for i in 5..10 {
        s.wait_release(&format!("r{i}"), "committed by the new leader", |r| {
            committed(r)
        })
        .await;
    }
    s.wait_release("r0", "update committed", |r| {
        committed(r)
            && r.metadata.generation == Some(2)
            && r.status.as_ref().unwrap().observed_generation == Some(2)
    })
    .await;
    println!(
        "hand-over: all new changes committed {:.1} s after the leader was killed",
        killed.elapsed().as_secs_f64()
    );
    assert!(s.log_of(follower_tag).contains("acquired the leader lease"));
    let clone = Clone::of(&url);
    assert_eq!(
        clone.commits(),
        1 + 10 + 1,
        "a commit was duplicated or lost"
    );
    for i in 0..10 {
        assert!(clone.exists(&format!("envs/staging/app{i}/deployment-app{i}.yaml")));
    }
    kill(&mut a);
    kill(&mut b);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_answer() {
    let s = Scenario::bare("metrics").await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut controller = s.spawn_controller("-m", &["--metrics-addr", &addr], &[]);
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    s.wait_release("api", "committed", committed).await;
    let get = |path: &str| run_cmd("curl", &["-sf", &format!("http://{addr}{path}")], None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get("/readyz").0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get("/healthz"), (true, "ok".into()));
    assert_eq!(get("/readyz"), (true, "ok".into()));
    let (ok, metrics) = get("/metrics");
    assert!(ok);
    for needle in [
        "controller_runtime_reconcile_total{controller=\"release\",result=\"requeue_after\"}",
        "controller_runtime_reconcile_time_seconds_bucket{",
        "controller_runtime_max_concurrent_reconciles{controller=\"release\"}",
        "process_resident_memory_bytes ",
        "tumbler_reconciles_total{kind=\"Release\"}",
        "tumbler_reconcile_duration_seconds_bucket{",
        "tumbler_releases{phase=\"Committed\"} 1",
        "tumbler_git_operations_total{operation=\"push\"}",
        "tumbler_git_queue_depth",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from /metrics:\n{metrics}"
        );
    }
    let _ = controller.kill();
    let _ = controller.wait();
    s.finish().await;
}

/// Cluster-scoped objects of `helm template` (CRDs aside: the chart's `crds/` are shared by
/// every install, and Helm never templates them), as `Kind/name`, with where each
/// ClusterRoleBinding points.
fn cluster_scoped_names(release: &str, ns: &str) -> Vec<String> {
    const CLUSTER_KINDS: [&str; 6] = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "PriorityClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    let rendered = must(
        "helm",
        &[
            "template",
            release,
            "charts/tumbler",
            "-n",
            ns,
            "--kube-version",
            "v1.36.3",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "dashboards.enabled=true",
        ],
        None,
    );
    let mut names = vec![];
    for d in docs(&rendered) {
        let kind = d["kind"].as_str().unwrap_or_default();
        if d["metadata"]["namespace"].is_string() || !CLUSTER_KINDS.contains(&kind) {
            continue;
        }
        let name = d["metadata"]["name"].as_str().unwrap().to_string();
        if kind == "ClusterRoleBinding" {
            assert_eq!(
                d["roleRef"]["name"],
                name.as_str(),
                "{release}: {kind} {name}"
            );
        }
        names.push(format!("{kind}/{name}"));
    }
    names
}

/// Two installs of the chart — another release name, or the same name in another
/// namespace — share no cluster-scoped object, so the second neither fails on nor takes
/// over the first's.
#[test]
fn two_installs_of_the_chart_share_no_cluster_scoped_name() {
    let a = cluster_scoped_names("tumbler", "tumbler-system");
    assert!(
        a.iter().filter(|n| n.starts_with("ClusterRole/")).count() >= 3,
        "the controller's role and the two aggregated ones: {a:?}"
    );
    for (release, ns) in [("tumbler-b", "tumbler-system"), ("tumbler", "team-a")] {
        let b = cluster_scoped_names(release, ns);
        assert_eq!(a.len(), b.len(), "{b:?}");
        let shared: Vec<&String> = b.iter().filter(|n| a.contains(n)).collect();
        assert!(
            shared.is_empty(),
            "{release} in {ns} shares {shared:?} with tumbler in tumbler-system"
        );
    }
}
