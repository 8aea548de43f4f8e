//! Who may write an app folder, decided inside the writer on the very tree a change is
//! committed on (the branch head plus the earlier changes of its batch), so the check and
//! the commit are one: a rejected push rebuilds the batch and checks again on the new head.
//!
//! A folder is Tumbler's when it holds `.tumbler/release.yaml`; the Release recorded there
//! (`metadata.namespace/metadata.name`) owns it. A folder without that record was made by
//! someone else and is never replaced or removed.

use super::{Change, GitError};

/// Where an app folder records the Release that wrote it, relative to the folder.
pub const RECORD: &str = ".tumbler/release.yaml";

/// What a change may do to its app folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Write (or remove) the folder.
    Write,
    /// Leave the folder as it is: a removal asked by a Release that does not own it.
    Leave,
}

/// Whether `change` may write its app folder, which exists and holds `record` (its
/// `.tumbler/release.yaml`, if any): a write needs the folder recorded as `change.release`'s
/// or `change.replaces`'s (`FolderNotManaged` without a record, `FolderOwned` for another
/// owner); a removal needs it recorded as `change.release`'s, and otherwise leaves it
/// (`Claim::Leave`). A folder that does not exist may always be written.
pub fn decide(change: &Change, record: Option<&[u8]>) -> Result<Claim, GitError> {
    let folder = format!("{}/{}", change.env_path, change.app);
    let owner = record.and_then(recorded_owner);
    let removal = change.files.as_ref().is_none_or(|f| f.is_empty());
    match owner {
        Some(o) if o == change.release => Ok(Claim::Write),
        _ if removal => Ok(Claim::Leave),
        Some(o) if change.replaces.as_ref() == Some(&o) => Ok(Claim::Write),
        Some(owner) => Err(GitError::FolderOwned {
            path: folder,
            owner,
        }),
        None => Err(GitError::FolderNotManaged { path: folder }),
    }
}

/// `namespace/name` of the Release an app folder's `.tumbler/release.yaml` records (`None`
/// when it is not YAML or lacks `metadata.namespace` or `metadata.name`).
pub fn recorded_owner(bytes: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_saphyr::from_slice(bytes).ok()?;
    let md = doc.get("metadata")?;
    let (ns, name) = (md.get("namespace")?.as_str()?, md.get("name")?.as_str()?);
    (!ns.is_empty() && !name.is_empty()).then(|| format!("{ns}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_owner_reads_namespace_and_name() {
        let yaml = b"apiVersion: tumbler.dev/v1alpha1\nkind: Release\nmetadata:\n  name: api\n  namespace: team\nspec:\n  version: '1'\n";
        assert_eq!(recorded_owner(yaml).as_deref(), Some("team/api"));
        assert_eq!(recorded_owner(b"metadata:\n  name: api\n"), None);
        assert_eq!(recorded_owner(b"version: 1\n"), None);
        assert_eq!(recorded_owner(b"[unclosed"), None);
        assert_eq!(
            recorded_owner(b"metadata:\n  name: ''\n  namespace: t\n"),
            None
        );
    }
}
