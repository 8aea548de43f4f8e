// TEMPORARY until the gitops and render branches land.
impl crate::gitops::GitError {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.reason(),
            "AuthenticationFailed" | "BranchNotFound" | "InvalidPath"
        )
    }
}
impl crate::render::RenderError {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, crate::render::RenderError::Yaml(_))
    }
}
