//! What the writer is asked to do: one Release's change to one app folder, who makes it,
//! with which credentials, and what it came to.

use std::collections::BTreeMap;

/// Credentials from an Environment's Secret. `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        username: String,
        password: String,
    },
    Ssh {
        identity: String,
        known_hosts: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => write!(
                f,
                "Basic {{ username: {username:?}, password: <redacted> }}"
            ),
            Credentials::Ssh { known_hosts, .. } => {
                write!(
                    f,
                    "Ssh {{ identity: <redacted>, known_hosts: {} }}",
                    if known_hosts.is_some() {
                        "<set>"
                    } else {
                        "<none>"
                    }
                )
            }
        }
    }
}

impl Credentials {
    /// A SHA-256 over every field (a tag, then each field length-prefixed), telling
    /// credentials apart without keeping them: workers and cache folders are keyed by it.
    /// Never logged or stored; only a short hash of it names a cache folder.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"tumbler-credentials-v1\0");
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        match self {
            Credentials::None => field(b"none"),
            Credentials::Basic { username, password } => {
                field(b"basic");
                field(username.as_bytes());
                field(password.as_bytes());
            }
            Credentials::Ssh {
                identity,
                known_hosts,
            } => {
                field(b"ssh");
                field(identity.as_bytes());
                match known_hosts {
                    Some(k) => {
                        field(b"known_hosts");
                        field(k.as_bytes());
                    }
                    None => field(b"no known_hosts"),
                }
            }
        }
        h.finalize().into()
    }

    /// The secret strings, to scrub from any message that might echo them.
    pub(super) fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::None => vec![],
            Credentials::Basic { password, .. } => vec![password.as_str()],
            Credentials::Ssh { identity, .. } => vec![identity.as_str()],
        }
    }
}

/// Author and committer of Tumbler's commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Why a change is made; shows in the commit message and the `Tumbler-Action` trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Release,
    Delete,
    Rollback {
        from: String,
    },
    /// The version was promoted from another Release: `from` is
    /// `<namespace>/<name>@<version>` (the `Tumbler-Promoted-From` trailer).
    Promote {
        from: String,
    },
}

impl ChangeKind {
    pub fn action(&self) -> &'static str {
        match self {
            ChangeKind::Release => "release",
            ChangeKind::Delete => "delete",
            ChangeKind::Rollback { .. } => "rollback",
            ChangeKind::Promote { .. } => "promote",
        }
    }
}

/// One Release's change to one app folder.
#[derive(Clone, Debug)]
pub struct Change {
    /// `<namespace>/<name>` of the Release.
    pub release: String,
    pub generation: i64,
    pub version: String,
    pub environment: String,
    /// Folder of the Environment in the repository.
    pub env_path: String,
    /// App folder under `env_path`.
    pub app: String,
    /// The app folder's files (paths relative to it); `None` removes the app.
    pub files: Option<BTreeMap<String, Vec<u8>>>,
    /// How the environment's kustomization.yaml lists the app, relative to the environment
    /// folder; `None`: the app folder itself.
    pub entry: Option<String>,
    pub author: Author,
    pub kind: ChangeKind,
    /// `<namespace>/<name>` of a Release recorded in the app folder that the controller
    /// decided this Release may replace (its owner is gone); `None` normally. The writer
    /// refuses a folder recorded as anyone else's (`FolderOwned`).
    pub replaces: Option<String>,
    /// The field manager that last changed the Release's spec (see
    /// `Release::requested_by`), written as the `Tumbler-Requested-By` trailer.
    pub requested_by: Option<String>,
}

impl Change {
    /// The commit message of this change: a title and the `Tumbler-*` trailers the release
    /// log reads back.
    pub fn message(&self) -> String {
        let title = match &self.kind {
            ChangeKind::Release => format!(
                "release {} {} to {}",
                self.app, self.version, self.environment
            ),
            ChangeKind::Delete => format!("remove {} from {}", self.app, self.environment),
            ChangeKind::Rollback { from } => {
                format!(
                    "rollback {} to {} in {} (from {from})",
                    self.app, self.version, self.environment
                )
            }
            ChangeKind::Promote { from } => format!(
                "promote {} {} to {} (from {})",
                self.app,
                self.version,
                self.environment,
                one_line(from)
            ),
        };
        let mut message = format!(
            "{title}\n\nTumbler-Release: {}\nTumbler-Generation: {}\nTumbler-Version: {}\nTumbler-App: {}\nTumbler-Environment: {}\nTumbler-Path: {}\nTumbler-Action: {}\n",
            self.release,
            self.generation,
            one_line(&self.version),
            self.app,
            self.environment,
            self.env_path,
            self.kind.action()
        );
        if let ChangeKind::Promote { from } = &self.kind {
            message.push_str(&format!("Tumbler-Promoted-From: {}\n", one_line(from)));
        }
        if let Some(who) = self.requested_by.as_deref().map(one_line) {
            let who = who.trim();
            if !who.is_empty() {
                message.push_str(&format!("Tumbler-Requested-By: {who}\n"));
            }
        }
        // libgit2 takes the message as a C string.
        message.replace('\0', "")
    }
}

fn one_line(s: &str) -> String {
    s.replace(|c: char| c.is_control(), " ")
}

/// What a submitted change came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new commit, pushed.
    Committed { commit: String },
    /// The repository already had these files: no commit. `commit` is the last commit that
    /// changed the app folder (or the head, if that is too far back).
    Unchanged { commit: String },
}

impl Outcome {
    pub fn commit(&self) -> &str {
        match self {
            Outcome::Committed { commit } | Outcome::Unchanged { commit } => commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(requested_by: Option<&str>) -> Change {
        Change {
            release: "team/api".into(),
            generation: 2,
            version: "1.0".into(),
            environment: "staging".into(),
            env_path: "envs/staging".into(),
            app: "api".into(),
            files: None,
            entry: None,
            author: Author {
                name: "T".into(),
                email: "t@example.com".into(),
            },
            kind: ChangeKind::Release,
            replaces: None,
            requested_by: requested_by.map(str::to_string),
        }
    }

    #[test]
    fn the_requester_is_a_trailer_on_one_line() {
        let msg = change(Some("ci-bot")).message();
        assert!(
            msg.ends_with("Tumbler-Action: release\nTumbler-Requested-By: ci-bot\n"),
            "{msg}"
        );
        let (trailers, _) = crate::gitops::history::parse_message(&msg).unwrap();
        assert!(trailers.contains(&("Requested-By".into(), "ci-bot".into())));
        // A manager name cannot add trailers of its own.
        let msg = change(Some("x\nTumbler-Version: 6.6.6")).message();
        assert!(
            msg.contains("Tumbler-Requested-By: x Tumbler-Version: 6.6.6\n"),
            "{msg}"
        );
        assert_eq!(msg.matches("\nTumbler-Version:").count(), 1, "{msg}");
        for none in [None, Some(""), Some(" ")] {
            assert!(!change(none).message().contains("Requested-By"));
        }
    }

    #[test]
    fn a_promotion_names_where_it_came_from() {
        let mut c = change(Some("tumbler-promotion"));
        c.kind = ChangeKind::Promote {
            from: "team/api-staging@1.0".into(),
        };
        let msg = c.message();
        assert!(
            msg.starts_with("promote api 1.0 to staging (from team/api-staging@1.0)\n"),
            "{msg}"
        );
        let (trailers, _) = crate::gitops::history::parse_message(&msg).unwrap();
        assert!(trailers.contains(&("Action".into(), "promote".into())));
        assert!(trailers.contains(&("Promoted-From".into(), "team/api-staging@1.0".into())));
        // The annotation's value cannot add trailers of its own.
        c.kind = ChangeKind::Promote {
            from: "a/b@1\nTumbler-Version: 6".into(),
        };
        assert_eq!(c.message().matches("\nTumbler-Version:").count(), 1);
    }
}
