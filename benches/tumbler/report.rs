//! The closing table of `make bench`: one row per target, with what was measured, the
//! reference measured beside it in the same run, and the ratio; written again as JSON under
//! `target/bench/` so that two runs can be compared (`jq` or a diff of two files).

use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

/// One line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What is measured, e.g. "burst: 1,000 Releases, creation → Committed (max)".
    pub target: String,
    /// The goal, e.g. "≤ 10 s".
    pub goal: String,
    /// The measured value, with its unit.
    pub measured: String,
    /// The reference measured in the same run (the floor, the old path, git's own time).
    pub reference: String,
    /// measured / reference, when both are numbers of the same unit.
    pub ratio: Option<f64>,
    /// Whether the goal was met (`None`: a figure reported without a goal).
    pub met: Option<bool>,
    /// The raw numbers, for comparing runs.
    pub values: Value,
}

#[derive(Default)]
pub struct Report {
    rows: Mutex<Vec<Row>>,
}

impl Report {
    pub fn add(&self, row: Row) {
        self.rows.lock().unwrap().push(row);
    }

    /// Prints the table and writes `target/bench/<unix time>.json` and `latest.json`.
    pub fn finish(&self) {
        let rows = self.rows.lock().unwrap().clone();
        println!("\n## summary (target, measured, reference measured in the same run, ratio)\n");
        println!("| target | goal | measured | reference | ratio | met |");
        println!("|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.target,
                r.goal,
                r.measured,
                r.reference,
                r.ratio
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "–".into()),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "–",
                }
            );
        }
        let dir = target_dir().join("bench");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let doc = serde_json::json!({
            "unix_time": now,
            "commit": git_head(),
            "env": bench_env(),
            "rows": rows,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap();
        for name in [format!("{now}.json"), "latest.json".to_string()] {
            let path = dir.join(name);
            if let Err(e) = std::fs::write(&path, &text) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
        println!("\nwritten: {}", dir.join(format!("{now}.json")).display());
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn git_head() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The BENCH_* sizes of this run.
fn bench_env() -> Value {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("BENCH_"))
        .collect();
    vars.sort();
    Value::Object(
        vars.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// `a / b`, when `b` is not zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}
