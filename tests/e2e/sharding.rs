//! Sharding: two controller processes split the Releases by Flux's sharding label, each
//! under its own leader Lease, and write to one repository and branch at once (their pushes
//! race): nothing is lost, nothing is duplicated. A Release may name an Environment of the
//! other shard, and that Environment is not let go while it does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::harness::*;

const SHARD_KEY: &str = "sharding.fluxcd.io/key";
const PER_SHARD: usize = 25;

/// An Environment of one shard, on the shared repository.
fn sharded_environment(name: &str, url: &str, shard: &str) -> serde_json::Value {
    let mut doc = environment(name, url, json!({}));
    doc["metadata"]["labels"] = json!({ SHARD_KEY: shard });
    doc
}

/// A Release of one shard.
fn sharded_release(name: &str, env: &str, app: &str, shard: &str) -> serde_json::Value {
    let mut doc = template_release(name, env, app, "1.0.0");
    doc["metadata"]["labels"] = json!({ SHARD_KEY: shard });
    doc
}

/// The apps an environment's `kustomization.yaml` lists.
fn listed_apps(clone: &Clone, env: &str) -> BTreeSet<String> {
    let path = format!("envs/{env}/kustomization.yaml");
    let text = clone
        .read(&path)
        .unwrap_or_else(|| panic!("{path} missing"));
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    doc["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} has no resources:\n{text}"))
        .iter()
        .map(|r| r.as_str().unwrap().trim_end_matches('/').to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_racing_on_one_repository_lose_nothing_and_duplicate_nothing() {
    let s = Scenario::bare("sharding").await;
    let url = new_repo(&s.ns, false);
    // One repository and branch, one folder per shard's Environment; a third Environment of
    // shard1 is used only by a Release of shard2.
    for (env, shard) in [("east", "shard1"), ("west", "shard2"), ("north", "shard1")] {
        s.apply(&s.environments(), sharded_environment(env, &url, shard))
            .await;
    }

    let mut controllers = vec![];
    let mut metrics = vec![];
    for shard in ["shard1", "shard2"] {
        let selector = format!("{SHARD_KEY}={shard}");
        let addr = format!("127.0.0.1:{}", free_port());
        let args = [
            "--watch-label-selector",
            selector.as_str(),
            "--leader-election",
            "--leader-election-namespace",
            s.ns.as_str(),
            "--metrics-addr",
            addr.as_str(),
        ];
        let identity = format!("{shard}-ctl");
        let child = s.spawn_controller(
            &format!("-{shard}"),
            &args,
            &[("POD_NAME", identity.as_str())],
        );
        controllers.push(child);
        metrics.push(addr);
    }

    // Both shards' Releases at once, so that both writers push to `main` together.
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut docs = vec![];
    for (env, shard) in [("east", "shard1"), ("west", "shard2")] {
        for i in 0..PER_SHARD {
            let app = format!("app{i:02}");
            docs.push(sharded_release(&format!("{env}-{i:02}"), env, &app, shard));
            expected.entry(env).or_default().insert(app);
        }
    }
    // Across shards: a Release of shard2 naming an Environment of shard1.
    docs.push(sharded_release("guest", "north", "guest", "shard2"));
    expected.entry("north").or_default().insert("guest".into());
    let releases = s.releases();
    futures::future::join_all(docs.into_iter().map(|doc| s.apply(&releases, doc))).await;

    let mut names: Vec<String> = (0..PER_SHARD)
        .flat_map(|i| [format!("east-{i:02}"), format!("west-{i:02}")])
        .collect();
    names.push("guest".into());
    for name in &names {
        s.wait_release_for(name, "Committed=True", Duration::from_secs(240), committed)
            .await;
    }

    // The history: exactly one Tumbler commit per Release.
    let clone = Clone::of(&url);
    let log = git(Some(clone.path()), &["log", "--format=%B%x00"]);
    let mut per_release: BTreeMap<String, usize> = BTreeMap::new();
    for message in log.split('\0') {
        if let Some(line) = message
            .lines()
            .find_map(|l| l.strip_prefix("Tumbler-Release: "))
        {
            *per_release.entry(line.trim().to_string()).or_default() += 1;
        }
    }
    let wanted: BTreeMap<String, usize> =
        names.iter().map(|n| (format!("{}/{n}", s.ns), 1)).collect();
    assert_eq!(
        per_release, wanted,
        "not exactly one commit per Release (duplicated or lost)"
    );
    assert_eq!(clone.commits(), 1 + names.len());

    // Every folder where its Environment writes; each kustomization.yaml lists its own apps.
    for (env, apps) in &expected {
        for app in apps {
            assert!(
                clone.exists(&format!("envs/{env}/{app}/deployment-{app}.yaml")),
                "envs/{env}/{app} missing"
            );
        }
        assert_eq!(
            &listed_apps(&clone, env),
            apps,
            "envs/{env}/kustomization.yaml"
        );
    }

    // One Lease per shard, each held by its shard's controller.
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &s.ns);
    let mut holders = vec![];
    for shard in ["shard1", "shard2"] {
        let name = tumbler::controller::lease_name(None, Some(&format!("{SHARD_KEY}={shard}")));
        let lease = leases
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("lease {name}: {e}"));
        let holder = lease.spec.and_then(|s| s.holder_identity);
        assert_eq!(holder.as_deref(), Some(format!("{shard}-ctl").as_str()));
        holders.push(holder);
    }
    assert_ne!(holders[0], holders[1]);
    assert!(
        leases.get_opt("tumbler-leader").await.unwrap().is_none(),
        "a shard took the unsharded Lease"
    );

    for (shard, addr) in ["shard1", "shard2"].iter().zip(&metrics) {
        let text = scrape(addr).await;
        let op = |o: &str| {
            sample(
                &text,
                &format!("tumbler_git_operations_total{{operation=\"{o}\"}}"),
            )
        };
        println!(
            "{shard}: {} pushes, {} push retries (rejected as non-fast-forward), {} commits",
            op("push"),
            op("push_retry"),
            op("commit")
        );
    }

    // shard1's index holds no Release of `north`: the deletion guard still sees shard2's.
    // An Environment deleted before its first reconcile (no finalizer yet) goes at once, so
    // wait for shard1 to have reconciled it; the Releases can be committed before that.
    s.wait_environment("north", "reconciled by shard1", |e| {
        e.status
            .as_ref()
            .is_some_and(|st| st.observed_generation.is_some())
    })
    .await;
    s.environments()
        .delete("north", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_environment("north", "deletion blocked by shard2's Release", |e| {
        e.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.reason == "DeletionBlocked" && c.message.contains("/guest"))
        })
    })
    .await;
    s.releases()
        .delete("guest", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while s.environments().get_opt("north").await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "north stayed after its last Release went\n{}",
            s.log_of("-shard1")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let clone = Clone::of(&url);
    assert!(!clone.exists("envs/north/guest"), "guest's folder stayed");

    // The shards remove their Releases' finalizers while `finish` deletes them.
    s.finish().await;
    for mut c in controllers {
        let _ = c.kill();
        let _ = c.wait();
    }
}
