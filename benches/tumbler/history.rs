//! `tumbler log --app X` on a long history (issue #11): a repository of `apps × versions`
//! Tumbler commits (default 100 × 100 = 10,000), built locally with git2 (no git server),
//! messages as the writer makes them, packed as a clone is. Timed: the library call and the
//! CLI process, for the default limit (20) and for a limit that needs the whole history,
//! each against `git log --format=%H -- <env>/<app>` on the same repository.
//! Sizes: BENCH_HISTORY_APPS, BENCH_HISTORY_VERSIONS; runs per timing: BENCH_HISTORY_RUNS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git2::{FileMode, Oid, Repository, Signature, Time};
use tumbler::gitops::{Author, Change, ChangeKind};

const ENV_PATH: &str = "envs/bench";

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn p50(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

fn author() -> Author {
    Author {
        name: "Tumbler".into(),
        email: "bench@tumbler.dev".into(),
    }
}

/// Timings of one limit.
#[derive(Clone, Debug)]
pub struct LogTimes {
    pub limit: usize,
    /// Entries `tumbler log` returned.
    pub entries: usize,
    /// The library call (`tumbler::gitops::log`), p50.
    pub library: Duration,
    /// `tumbler log --repo ...` as a process, wall time, p50.
    pub cli: Duration,
    /// `git log --format=%H -n <limit> -- <env>/<app>`, wall time, p50.
    pub git: Duration,
}

impl LogTimes {
    /// git's time over the CLI's: how many times faster `tumbler log` is.
    pub fn ratio(&self) -> f64 {
        self.git.as_secs_f64() / self.cli.as_secs_f64().max(1e-9)
    }
}

/// What `bench_history` measured.
#[derive(Clone, Debug)]
pub struct HistoryBench {
    pub commits: usize,
    pub apps: usize,
    pub runs: usize,
    /// The first library call on the fresh clone (nothing cached next to it yet).
    pub cold: Duration,
    /// Default limit (20).
    pub recent: LogTimes,
    /// A limit above the app's commit count: the whole history is read.
    pub full: LogTimes,
    /// `tumbler version` as a process: what any CLI call costs before it reads git.
    pub process: Duration,
}

impl HistoryBench {
    pub fn print(&self) {
        println!(
            "\n## history: `tumbler log --app X` on {} commits ({} apps), p50 of {} runs",
            self.commits, self.apps, self.runs
        );
        println!(
            "first call on a fresh clone (library): {}; `tumbler version` process: {}",
            ms(self.cold),
            ms(self.process)
        );
        for t in [&self.recent, &self.full] {
            println!(
                "limit {:>5} ({:>3} entries): library {}, CLI {}; git log {}; ratio {:.1}x",
                t.limit,
                t.entries,
                ms(t.library),
                ms(t.cli),
                ms(t.git),
                t.ratio()
            );
        }
    }
}

/// Builds the repository in `dir`: `versions` rounds, each releasing every app once.
fn build_repo(dir: &Path, apps: usize, versions: usize) -> Repository {
    let repo = Repository::init_bare(dir).unwrap();
    let who = author();
    let mut env_tree: Option<Oid> = None;
    let mut parent: Option<Oid> = None;
    let mut n = 0i64;
    for v in 0..versions {
        for a in 0..apps {
            let app = format!("app{a:04}");
            let version = format!("1.{v}.0");
            let change = Change {
                release: format!("bench/{app}"),
                generation: v as i64 + 1,
                version: version.clone(),
                environment: "bench".into(),
                env_path: ENV_PATH.into(),
                app: app.clone(),
                files: None,
                author: who.clone(),
                kind: ChangeKind::Release,
                entry: None,
                replaces: None,
                requested_by: None,
            };
            let deploy = repo
                .blob(format!("kind: Deployment\nmetadata:\n  name: {app}\nspec:\n  image: registry.example.com/{app}:{version}\n").as_bytes())
                .unwrap();
            let record = repo
                .blob(format!("release: bench/{app}\nversion: {version}\n").as_bytes())
                .unwrap();
            let mut dot = repo.treebuilder(None).unwrap();
            dot.insert("release.yaml", record, FileMode::Blob.into())
                .unwrap();
            let dot = dot.write().unwrap();
            let mut app_tree = repo.treebuilder(None).unwrap();
            app_tree
                .insert("deployment.yaml", deploy, FileMode::Blob.into())
                .unwrap();
            app_tree
                .insert(".tumbler", dot, FileMode::Tree.into())
                .unwrap();
            let app_tree = app_tree.write().unwrap();
            let prev = env_tree.map(|t| repo.find_tree(t).unwrap());
            let mut env = repo.treebuilder(prev.as_ref()).unwrap();
            env.insert(&app, app_tree, FileMode::Tree.into()).unwrap();
            let env = env.write().unwrap();
            env_tree = Some(env);
            let mut envs = repo.treebuilder(None).unwrap();
            envs.insert("bench", env, FileMode::Tree.into()).unwrap();
            let envs = envs.write().unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("envs", envs, FileMode::Tree.into()).unwrap();
            let root = repo.find_tree(root.write().unwrap()).unwrap();
            let sig =
                Signature::new(&who.name, &who.email, &Time::new(1_700_000_000 + n, 0)).unwrap();
            let parents: Vec<_> = parent
                .map(|p| repo.find_commit(p).unwrap())
                .into_iter()
                .collect();
            let parents: Vec<_> = parents.iter().collect();
            let id = repo
                .commit(None, &sig, &sig, &change.message(), &root, &parents)
                .unwrap();
            parent = Some(id);
            n += 1;
        }
    }
    repo.reference("refs/heads/main", parent.unwrap(), true, "bench")
        .unwrap();
    repo.set_head("refs/heads/main").unwrap();
    // What a clone holds: one pack, no loose objects, no commit-graph.
    let ok = Command::new("git")
        .args(["-C", dir.to_str().unwrap(), "repack", "-adq"])
        .status()
        .unwrap()
        .success()
        && Command::new("git")
            .args(["-C", dir.to_str().unwrap(), "prune-packed"])
            .status()
            .unwrap()
            .success();
    assert!(ok, "git repack");
    repo
}

fn time_process(runs: usize, mut cmd: impl FnMut() -> Command) -> (Duration, Vec<u8>) {
    let mut times = vec![];
    let mut out = vec![];
    for _ in 0..runs {
        let start = Instant::now();
        let o = cmd().stderr(Stdio::inherit()).output().unwrap();
        times.push(start.elapsed());
        assert!(o.status.success(), "{:?}", cmd());
        out = o.stdout;
    }
    (p50(times), out)
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tumbler"))
}

fn measure(dir: &Path, app: &str, limit: usize, runs: usize) -> LogTimes {
    let who = author();
    let mut lib = vec![];
    let mut entries = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let log = tumbler::gitops::log(dir, "HEAD", Some(ENV_PATH), Some(app), limit, Some(&who))
            .unwrap();
        lib.push(start.elapsed());
        entries = log.len();
    }
    let committer = format!("{} <{}>", who.name, who.email);
    let (cli, out) = time_process(runs, || {
        let mut c = Command::new(bin());
        c.args(["log", "--repo"])
            .arg(dir)
            .args(["--path", ENV_PATH, "--app", app, "--limit"])
            .arg(limit.to_string())
            .args(["--committer", &committer]);
        c
    });
    // The table has a header line, then one line per entry.
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), entries + 1);
    let (git, out) = time_process(runs, || {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(dir)
            .args(["log", "--format=%H", "-n"])
            .arg(limit.to_string())
            .args(["--", &format!("{ENV_PATH}/{app}")]);
        c
    });
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), entries);
    LogTimes {
        limit,
        entries,
        library: p50(lib),
        cli,
        git,
    }
}

pub fn bench_history(tmp: &Path) -> HistoryBench {
    let apps = var("BENCH_HISTORY_APPS", 100).max(1);
    let versions = var("BENCH_HISTORY_VERSIONS", 100).max(1);
    let runs = var("BENCH_HISTORY_RUNS", 20).max(1);
    let dir = tmp.join(format!("history-{apps}x{versions}"));
    let _ = std::fs::remove_dir_all(&dir);
    build_repo(&dir, apps, versions);
    // The app released first in every round: its newest commits are the deepest.
    let app = "app0000";
    let start = Instant::now();
    let cold =
        tumbler::gitops::log(&dir, "HEAD", Some(ENV_PATH), Some(app), 20, Some(&author())).unwrap();
    let cold_time = start.elapsed();
    assert_eq!(cold.len(), 20.min(versions));
    let recent = measure(&dir, app, 20, runs);
    let full = measure(&dir, app, apps * versions, runs);
    assert_eq!(full.entries, versions);
    let (process, _) = time_process(runs, || {
        let mut c = Command::new(bin());
        c.arg("version");
        c
    });
    HistoryBench {
        commits: apps * versions,
        apps,
        runs,
        cold: cold_time,
        recent,
        full,
        process,
    }
}
