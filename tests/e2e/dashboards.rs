//! The chart's Grafana dashboard and alert rules only name metrics a running controller
//! exports: every metric in their PromQL has samples on `/metrics` once Releases (one
//! failing) and an Environment were reconciled.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::harness::*;

const DASHBOARD: &str = "charts/tumbler/files/dashboard.json";
const ALERTS: &str = "charts/tumbler/files/alerts.yaml";

/// Words of PromQL that are not metric names when not followed by `(`.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a list of label names in parentheses.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers outside label matchers
/// (`{...}`), ranges (`[...]`), strings and label lists (`by (...)`), that are neither
/// functions (followed by `(`) nor keywords. Helm template actions (`{{ ... }}`) are dropped
/// first.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut text = String::new();
    let mut rest = expr;
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find("}}")
            .map(|end| &rest[start + end + 2..])
            .unwrap_or("");
    }
    text.push_str(rest);

    let chars: Vec<char> = text.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if c == '"' || c == '\'' || c == '`' {
                j += 1;
                while j < chars.len() && chars[j] != c {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
            } else if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            j += 1;
        }
        j
    };
    let next_non_space = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => i = skip_to(i, '{', '}'),
            '[' => i = skip_to(i, '[', ']'),
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ if c.is_ascii_digit() || c == '$' || c == '.' => {
                // Numbers, durations (`5m`), Grafana variables (`$__rate_interval`).
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i]))
                {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = next_non_space(i);
                let followed_by_paren = chars.get(next) == Some(&'(');
                if LABEL_LISTS.contains(&word.as_str()) && followed_by_paren {
                    i = skip_to(next, '(', ')');
                } else if !followed_by_paren && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every PromQL expression of the dashboard: the panels' targets (rows nest panels) and the
/// `label_values(metric, label)` queries of its variables (their metric only).
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        ("definition" | "query", Value::String(q)) => {
                            if let Some(args) = q.trim().strip_prefix("label_values(") {
                                let metric = args.split([',', ')']).next().unwrap_or_default();
                                out.push(metric.trim().to_string());
                            }
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// The `expr` of every rule in the alert file.
fn alert_exprs(alerts: &Value) -> Vec<String> {
    alerts["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|r| r["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// The names of the samples in an exposition (`name{...} v` or `name v`).
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metrics the chart's dashboard and alerts name, with where each is named.
fn referenced() -> Vec<(String, &'static str)> {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    let alerts: Value = serde_saphyr::from_str(&read(ALERTS)).expect("alerts YAML");
    let mut refs = Vec::new();
    for (exprs, source) in [
        (dashboard_exprs(&dashboard), DASHBOARD),
        (alert_exprs(&alerts), ALERTS),
    ] {
        assert!(!exprs.is_empty(), "no expressions found in {source}");
        for e in exprs {
            for name in metric_names(&e) {
                refs.push((name, source));
            }
        }
    }
    refs
}

#[test]
fn promql_metric_names_are_found() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, controller) (rate(controller_runtime_reconcile_time_seconds_bucket{job=~"$job"}[$__rate_interval])))"#
        ),
        ["controller_runtime_reconcile_time_seconds_bucket"]
    );
    assert_eq!(
        names(
            r#"max by (namespace) (tumbler_release_condition{type="Ready",{{ include "x" . }}}) == 1 or vector(0)"#
        ),
        ["tumbler_release_condition"]
    );
    assert_eq!(
        names("sum(rate(a_total[5m] offset 1h)) by (x) / on (x) group_left (y) b > 0.5 * c"),
        ["a_total", "b", "c"]
    );
    assert_eq!(
        names("time() - process_start_time_seconds"),
        ["process_start_time_seconds"]
    );
    assert_eq!(names(r#"label_replace(up, "a", "b", "c", "d")"#), ["up"]);
}

#[test]
fn the_chart_references_metrics() {
    let refs = referenced();
    let names: BTreeSet<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "controller_runtime_reconcile_total",
        "tumbler_release_condition",
        "process_cpu_seconds_total",
        "tumbler_git_queue_depth",
    ] {
        assert!(names.contains(expected), "{expected} not in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_alerts_is_exported() {
    let s = Scenario::new("dashboards").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    // A Release that fails, so that the error series exist.
    s.apply(
        &s.releases(),
        template_release("lost", "missing", "lost", "1.0.0"),
    )
    .await;
    s.wait_release("api", "committed", committed).await;
    s.wait_release("lost", "EnvironmentNotFound", |r| {
        cond(r, "Ready").is_some_and(|c| c.reason == "EnvironmentNotFound")
    })
    .await;
    s.wait_environment("staging", "reconciled", |e| {
        e.status.as_ref().is_some_and(|st| st.head.is_some())
    })
    .await;

    let exposition = scrape(s.metrics.as_deref().expect("the controller runs")).await;
    let exported = sample_names(&exposition);
    let missing: Vec<String> = referenced()
        .into_iter()
        .filter(|(name, _)| !exported.contains(name))
        .map(|(name, source)| format!("{name} (in {source})"))
        .collect();
    assert!(
        missing.is_empty(),
        "named by the chart but not on /metrics: {missing:?}\n{exposition}"
    );
    // The per-Release gauge says which Release is not Ready.
    let ns = &s.ns;
    assert_eq!(
        sample(
            &exposition,
            &format!(
                "tumbler_release_condition{{namespace=\"{ns}\",name=\"lost\",environment=\"missing\",type=\"Ready\",status=\"False\"}}"
            )
        ),
        1.0,
        "{exposition}"
    );
    assert_eq!(
        sample(
            &exposition,
            &format!(
                "tumbler_release_condition{{namespace=\"{ns}\",name=\"api\",environment=\"staging\",type=\"Ready\",status=\"False\"}}"
            )
        ),
        1.0,
        "{exposition}"
    );
    // Without Flux, api is never Ready: the info series carries the reason the alert skips.
    assert!(
        exposition
            .lines()
            .any(|l| l.starts_with("tumbler_release_info{")
                && l.contains(&format!("namespace=\"{ns}\""))
                && l.contains("name=\"api\"")
                && l.contains("reason=\"NotVerified\"")),
        "{exposition}"
    );
    s.finish().await;
}
