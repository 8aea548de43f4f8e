//! The command line as kubectl users hold it: run as the `kubectl-tumbler` plugin (through
//! kubectl, too) it says `kubectl tumbler`; `--kubeconfig`/`--context` pick the cluster and
//! the default namespace the way kubectl does; `-A` reads every namespace; `-o yaml` is
//! YAML and `-o xml` is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::*;

/// Runs `program args` with `PATH` starting at `path_dir` (when given); returns the exit
/// code, stdout and stderr apart (stdout is parsed).
fn run(program: &Path, args: &[&str], path_dir: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(repo_root());
    if let Some(dir) = path_dir {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tumbler_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tumbler"))
}

/// A folder holding `kubectl-tumbler`, a symlink to the built binary.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(tumbler_bin(), dir.path().join("kubectl-tumbler")).unwrap();
    dir
}

/// The local cluster's kubeconfig, copied, with a second context `other` on the same
/// cluster and user whose default namespace is `ns` (the current context keeps none, so
/// `default`).
fn kubeconfig_with_second_context(dir: &Path, ns: &str) -> PathBuf {
    let copy = dir.join("kubeconfig");
    std::fs::copy(harness_var("KUBECONFIG"), &copy).unwrap();
    let copy_s = copy.to_str().unwrap();
    let (ok, out) = kubectl(
        &[
            "--kubeconfig",
            copy_s,
            "config",
            "view",
            "-o",
            "jsonpath={.contexts[0].context.cluster} {.contexts[0].context.user}",
        ],
        None,
    );
    assert!(ok, "{out}");
    let (cluster, user) = out.trim().split_once(' ').expect("cluster and user");
    let (ok, out) = kubectl(
        &[
            "--kubeconfig",
            copy_s,
            "config",
            "set-context",
            "other",
            "--cluster",
            cluster,
            "--user",
            user,
            "--namespace",
            ns,
        ],
        None,
    );
    assert!(ok, "{out}");
    copy
}

#[test]
fn usage_says_kubectl_tumbler_when_run_as_the_plugin() {
    let dir = plugin_dir();
    let plugin = dir.path().join("kubectl-tumbler");
    let (code, out, err) = run(&plugin, &["--help"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Usage: kubectl tumbler [OPTIONS] <COMMAND>"),
        "{out}"
    );
    assert!(!out.contains("kubectl-tumbler"), "{out}");
    for flag in [
        "--kubeconfig",
        "--context",
        "--namespace",
        "--all-namespaces",
    ] {
        assert!(out.contains(flag), "{flag} not in the help:\n{out}");
    }
    let (code, _, err) = run(&plugin, &["log", "--bogus"], None);
    assert_eq!(code, 2);
    assert!(err.contains("Usage: kubectl tumbler log"), "{err}");
    // The same through kubectl's plugin lookup on PATH.
    let (code, out, err) = run(
        Path::new("kubectl"),
        &["tumbler", "log", "--help"],
        Some(dir.path()),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Usage: kubectl tumbler log"), "{out}");
    // The binary under its own name says `tumbler`.
    let (code, out, _) = run(&tumbler_bin(), &["--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: tumbler [OPTIONS] <COMMAND>"), "{out}");
    // Completion scripts for the shells named in the README.
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&tumbler_bin(), &["completion", shell], None);
        assert!(
            code == 0 && out.contains("rollback") && out.contains("context"),
            "{shell}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_output_and_all_namespaces_work_like_kubectl() {
    let s = Scenario::new("cli").await;
    // A name no other scenario uses, so that `-A -e` finds only this one.
    let env = "cli-staging";
    s.repo_and_environment(env, json!({})).await;
    s.release("api", env, "1.0.0").await;
    s.wait_release("api", "1.0.0 committed", committed).await;
    s.release("api", env, "2.0.0").await;
    s.wait_release("api", "2.0.0 committed", |r| {
        committed(r) && r.metadata.generation == Some(2)
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_with_second_context(dir.path(), &s.ns);
    let kc = kc.to_str().unwrap();
    let bin = tumbler_bin();

    // The current context's namespace is `default`: no such Environment there.
    let (code, _, err) = run(&bin, &["--kubeconfig", kc, "log", "-e", env], None);
    assert_ne!(code, 0);
    assert!(err.contains("namespace \"default\""), "{err}");

    // `--context other` (before the subcommand, as in the issue) resolves in its namespace;
    // `-o yaml` is YAML with the entries, newest first.
    let (code, out, err) = run(
        &bin,
        &[
            "--kubeconfig",
            kc,
            "--context",
            "other",
            "log",
            "-e",
            env,
            "-o",
            "yaml",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let rows: Value =
        serde_saphyr::from_str(&out).unwrap_or_else(|e| panic!("not YAML ({e}):\n{out}"));
    let rows = rows
        .as_array()
        .unwrap_or_else(|| panic!("not a sequence:\n{out}"));
    let versions: Vec<&str> = rows
        .iter()
        .map(|r| r["entry"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2.0.0", "1.0.0"], "{out}");
    for r in rows {
        assert_eq!(r["entry"]["app"], "api", "{out}");
        assert_eq!(r["entry"]["release"], format!("{}/api", s.ns), "{out}");
        assert_eq!(
            r["environment"],
            json!({"namespace": s.ns, "name": env}),
            "{out}"
        );
        assert!(r["entry"]["commit"].as_str().unwrap().len() == 40, "{out}");
    }
    // JSON: the same rows.
    let (code, out, err) = run(
        &bin,
        &[
            "log",
            "-e",
            env,
            "--context",
            "other",
            "--kubeconfig",
            kc,
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let json_rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json_rows.as_array().map(Vec::len), Some(2), "{out}");

    // Through kubectl, exactly as the issue typed it.
    let plugins = plugin_dir();
    let (code, out, err) = run(
        Path::new("kubectl"),
        &[
            "tumbler",
            "--kubeconfig",
            kc,
            "--context",
            "other",
            "log",
            "-e",
            env,
        ],
        Some(plugins.path()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "header + 2 entries:\n{out}");

    // An output format that does not exist is refused by the parser, naming the others.
    let (code, out, err) = run(
        &bin,
        &[
            "--kubeconfig",
            kc,
            "--context",
            "other",
            "log",
            "-e",
            env,
            "-o",
            "xml",
        ],
        None,
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("'xml'") && err.contains("yaml"), "{err}");

    // A context that is not in the kubeconfig: a clear refusal naming those that are.
    for args in [
        &[
            "--kubeconfig",
            kc,
            "--context",
            "nonexistent",
            "log",
            "-e",
            env,
        ][..],
        &["--kubeconfig", kc, "--context", "nonexistent", "controller"],
    ] {
        let (code, _, err) = run(&bin, args, None);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("context \"nonexistent\" not found") && err.contains("other"),
            "{args:?}: {err}"
        );
    }

    // -A: the Environment found in its namespace, which the table shows.
    let (code, out, err) = run(&bin, &["--kubeconfig", kc, "log", "-A", "-e", env], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1..].iter().all(|l| l.starts_with(&s.ns)), "{out}");
    // Without -e, every Environment of the context's namespace, with its name.
    let (code, out, err) = run(
        &bin,
        &["--kubeconfig", kc, "--context", "other", "log"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().next().unwrap().starts_with("ENVIRONMENT"),
        "{out}"
    );
    assert!(out.lines().skip(1).all(|l| l.starts_with(env)), "{out}");

    // rollback resolves the Release in the context's namespace too.
    let (code, out, err) = run(
        &bin,
        &[
            "--kubeconfig",
            kc,
            "--context",
            "other",
            "rollback",
            "api",
            "--to",
            "1.0.0",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rolled back from 2.0.0 to 1.0.0"), "{out}");
    s.wait_release("api", "rolled back", |r| {
        committed(r) && r.spec.version == "1.0.0"
    })
    .await;
    s.finish().await;
}
