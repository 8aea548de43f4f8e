// TEMPORARY until the gitops and render branches land.
impl crate::gitops::GitError {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.reason(),
            "AuthenticationFailed" | "BranchNotFound" | "InvalidPath"
        )
    }
}
