//! Jobs other than submits: probes and reads, answered from the cache when it is fresh
//! enough, after a fetch otherwise.

use super::{Worker, corrupt, oid};
use crate::gitops::job::Job;
use crate::gitops::{AppFiles, Author, Credentials, GitError, LogEntry, history, tree};

impl Worker {
    /// Answers one job that is not a submit.
    pub(super) fn serve_read(&self, creds: &Credentials, job: Job) {
        match job {
            Job::Probe { reply } => {
                let _ = reply.send(self.probe(creds));
            }
            Job::ReadApp {
                env_path,
                app,
                reply,
            } => {
                let _ = reply.send(self.read_app(creds, &env_path, &app));
            }
            Job::IsAncestor {
                ancestor,
                descendant,
                reply,
            } => {
                let _ = reply.send(self.is_ancestor(creds, &ancestor, &descendant));
            }
            Job::Log {
                env_path,
                app,
                limit,
                committer,
                reply,
            } => {
                let committer = committer.as_ref();
                let _ = reply.send(self.log(creds, &env_path, app.as_deref(), limit, committer));
            }
            Job::FileAt {
                commit,
                path,
                reply,
            } => {
                let _ = reply.send(self.file_at(creds, &commit, &path));
            }
            Job::Submit { .. } => unreachable!("submits are batched"),
        }
    }

    /// Fetches the branch; its head.
    fn probe(&self, creds: &Credentials) -> Result<String, GitError> {
        self.with_repo(|repo| {
            self.fetch(repo, creds)?
                .map(|o| o.to_string())
                .ok_or_else(|| self.branch_not_found())
        })
    }

    /// The files of `env_path/app` at the head of the branch.
    fn read_app(
        &self,
        creds: &Credentials,
        env_path: &str,
        app: &str,
    ) -> Result<Option<AppFiles>, GitError> {
        self.with_repo(|repo| {
            // Reads right after a fetch or a push of ours use the cache as it is.
            let recent = self
                .synced
                .get()
                .is_some_and(|t| t.elapsed() < self.opts.read_freshness);
            let cached = repo
                .find_reference(&self.tracking_ref())
                .ok()
                .and_then(|r| r.target())
                .filter(|_| recent);
            let head = match cached {
                Some(head) => head,
                None => match self.fetch(repo, creds)? {
                    Some(head) => head,
                    None => return Err(self.branch_not_found()),
                },
            };
            let tree = repo
                .find_commit(head)
                .and_then(|c| c.tree())
                .map_err(corrupt)?;
            tree::read_folder(repo, &tree, &format!("{env_path}/{app}"))
        })
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors; fetches first when the
    /// cache does not know both.
    fn is_ancestor(
        &self,
        creds: &Credentials,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitError> {
        self.with_repo(|repo| {
            let (a, d) = (oid(ancestor)?, oid(descendant)?);
            if a == d {
                return Ok(true);
            }
            if repo.find_commit(d).is_err() || repo.find_commit(a).is_err() {
                self.fetch(repo, creds)?;
            }
            if repo.find_commit(d).is_err() || repo.find_commit(a).is_err() {
                return Ok(false);
            }
            repo.graph_descendant_of(d, a).map_err(corrupt)
        })
    }

    /// The release log of `env_path` (and `app`, of commits by `committer`) from the freshly
    /// fetched head.
    fn log(
        &self,
        creds: &Credentials,
        env_path: &str,
        app: Option<&str>,
        limit: usize,
        committer: Option<&Author>,
    ) -> Result<Vec<LogEntry>, GitError> {
        self.with_repo(|repo| {
            let Some(head) = self.fetch(repo, creds)? else {
                return Err(self.branch_not_found());
            };
            history::log_from(repo, head, Some(env_path), app, limit, committer).map_err(corrupt)
        })
    }

    /// A file at a commit; fetches first when the cache does not know the commit.
    fn file_at(
        &self,
        creds: &Credentials,
        commit: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, GitError> {
        self.with_repo(|repo| {
            let c = oid(commit)?;
            if repo.find_commit(c).is_err() {
                self.fetch(repo, creds)?;
            }
            history::file_at_oid(repo, c, path)
        })
    }
}
