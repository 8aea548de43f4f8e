//! Unified diffs of files, as `git diff` prints them (libgit2's diff of two buffers), for
//! `tumbler diff`.

use std::path::Path;

use super::GitError;

/// The unified diff of one file: `old` is what git holds (`None`: absent), `new` what would
/// be written (`None`: removed). Empty when both are the same.
pub fn unified(path: &str, old: Option<&[u8]>, new: Option<&[u8]>) -> Result<String, GitError> {
    if old == new {
        return Ok(String::new());
    }
    let failed = |e: git2::Error| GitError::GitFailed {
        message: format!("diff of {path}: {}", e.message()),
    };
    let mut opts = git2::DiffOptions::new();
    opts.context_lines(3);
    let p = Path::new(path);
    let patch = git2::Patch::from_buffers(
        old.unwrap_or_default(),
        Some(p),
        new.unwrap_or_default(),
        Some(p),
        Some(&mut opts),
    )
    .map_err(failed)?;
    let mut out = format!("diff --git a/{path} b/{path}\n");
    match (old, new) {
        (None, _) => out.push_str("new file\n--- /dev/null\n"),
        (_, None) => out.push_str(&format!("deleted file\n--- a/{path}\n")),
        _ => out.push_str(&format!("--- a/{path}\n")),
    }
    match new {
        None => out.push_str("+++ /dev/null\n"),
        Some(_) => out.push_str(&format!("+++ b/{path}\n")),
    }
    for h in 0..patch.num_hunks() {
        let (hunk, lines) = patch.hunk(h).map_err(failed)?;
        out.push_str(&String::from_utf8_lossy(hunk.header()));
        for l in 0..lines {
            let line = patch.line_in_hunk(h, l).map_err(failed)?;
            // Other origins ("\ No newline at end of file") carry their own text.
            if let c @ (' ' | '+' | '-') = line.origin() {
                out.push(c);
            }
            out.push_str(&String::from_utf8_lossy(line.content()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_a_unified_diff_and_an_equal_one_nothing() {
        let old = b"a: 1\nb: 2\nc: 3\n";
        let new = b"a: 1\nb: 20\nc: 3\n";
        let d = unified("envs/x/app/cm.yaml", Some(old), Some(new)).unwrap();
        assert_eq!(
            d,
            "diff --git a/envs/x/app/cm.yaml b/envs/x/app/cm.yaml\n--- a/envs/x/app/cm.yaml\n+++ b/envs/x/app/cm.yaml\n@@ -1,3 +1,3 @@\n a: 1\n-b: 2\n+b: 20\n c: 3\n"
        );
        assert_eq!(unified("p", Some(old), Some(old)).unwrap(), "");
        let added = unified("p", None, Some(b"x\n")).unwrap();
        assert!(
            added.contains("--- /dev/null\n+++ b/p\n@@ -0,0 +1 @@\n+x\n"),
            "{added}"
        );
        let removed = unified("p", Some(b"x\n"), None).unwrap();
        assert!(
            removed.contains("--- a/p\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"),
            "{removed}"
        );
    }
}
