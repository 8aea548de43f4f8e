//! The k9s plugins (`plugins/k9s/plugins.yaml`) are in k9s's format and every command they
//! declare is one the CLI accepts, with k9s's variables filled in as k9s would.

use std::path::PathBuf;

use clap::Parser;
use serde_json::Value;

fn plugins() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/k9s/plugins.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What k9s puts in place of its variables on a Release row.
fn fill(arg: &str) -> String {
    match arg {
        "$CONTEXT" => "prod".into(),
        "$NAMESPACE" => "team-a".into(),
        "$NAME" => "api".into(),
        "$COL-ENVIRONMENT" => "staging".into(),
        "$COL-APP" => "api".into(),
        other => {
            assert!(
                !other.starts_with('$'),
                "a variable this test does not know: {other}"
            );
            other.into()
        }
    }
}

#[test]
fn every_k9s_plugin_runs_a_command_the_cli_accepts() {
    let doc = plugins();
    let plugins = doc["plugins"].as_object().expect("a `plugins` mapping");
    assert!(!plugins.is_empty());
    let mut keys = std::collections::BTreeSet::new();
    let mut commands = std::collections::BTreeSet::new();
    for (name, p) in plugins {
        for field in ["shortCut", "description", "command"] {
            assert!(p[field].is_string(), "{name}: {field} missing");
        }
        assert!(
            keys.insert(p["shortCut"].as_str().unwrap()),
            "{name}: shortcut used twice"
        );
        assert_eq!(
            p["scopes"],
            serde_json::json!(["releases"]),
            "{name}: scopes"
        );
        assert_eq!(p["command"], "kubectl", "{name}: runs the kubectl plugin");
        let args: Vec<String> = p["args"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: args"))
            .iter()
            .map(|a| {
                fill(
                    a.as_str()
                        .unwrap_or_else(|| panic!("{name}: {a} is not a string")),
                )
            })
            .collect();
        assert_eq!(args[0], "tumbler", "{name}: `kubectl tumbler …`");
        let argv = std::iter::once("kubectl-tumbler".to_string()).chain(args[1..].iter().cloned());
        if let Err(e) = tumbler::cli::Cli::try_parse_from(argv) {
            panic!("{name}: the CLI refuses {args:?}: {e}");
        }
        if let Some(confirm) = p.get("confirm") {
            assert!(confirm.is_boolean(), "{name}: confirm is a boolean");
        }
        commands.insert(args[1].clone());
    }
    // Every per-Release command has a key; suspend and resume ask first.
    for command in ["log", "reconcile", "suspend", "resume", "diff"] {
        assert!(
            commands.contains(command),
            "no plugin runs `tumbler {command}`"
        );
    }
    for name in ["tumbler-suspend", "tumbler-resume"] {
        assert_eq!(
            plugins[name]["confirm"], true,
            "{name} asks for confirmation"
        );
    }
}
