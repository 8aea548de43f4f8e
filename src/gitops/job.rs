//! The requests the Writer queues for a worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::{AppFiles, Author, Change, Credentials, GitError, LogEntry, Outcome, Stats};

/// A request to a worker.
pub(super) enum Job {
    Submit {
        change: Box<Change>,
        reply: oneshot::Sender<Result<Outcome, GitError>>,
        ticket: QueueTicket,
    },
    Probe {
        reply: oneshot::Sender<Result<String, GitError>>,
    },
    ReadApp {
        env_path: String,
        app: String,
        reply: oneshot::Sender<Result<Option<AppFiles>, GitError>>,
    },
    IsAncestor {
        ancestor: String,
        descendant: String,
        reply: oneshot::Sender<Result<bool, GitError>>,
    },
    Log {
        env_path: String,
        app: Option<String>,
        limit: usize,
        committer: Option<Author>,
        reply: oneshot::Sender<Result<Vec<LogEntry>, GitError>>,
    },
    FileAt {
        commit: String,
        path: String,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, GitError>>,
    },
}

impl Job {
    /// Whether the caller stopped waiting for the answer (its `ask` timed out).
    pub(super) fn abandoned(&self) -> bool {
        match self {
            Job::Submit { reply, .. } => reply.is_closed(),
            Job::Probe { reply } => reply.is_closed(),
            Job::ReadApp { reply, .. } => reply.is_closed(),
            Job::IsAncestor { reply, .. } => reply.is_closed(),
            Job::Log { reply, .. } => reply.is_closed(),
            Job::FileAt { reply, .. } => reply.is_closed(),
        }
    }
}

/// Counts a submit in `Stats::queued` from its creation until the worker takes it out of
/// its queue, or until it is dropped for any other reason (a full queue, a dead worker).
pub(super) struct QueueTicket(Arc<Stats>);

impl QueueTicket {
    pub(super) fn new(stats: &Arc<Stats>) -> Self {
        stats.queued.fetch_add(1, Ordering::Relaxed);
        QueueTicket(stats.clone())
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) type Queued = (Credentials, Job);
