//! TEMPORARY compile stub (not committed).
use crate::api::{Environment, Release};
use std::collections::BTreeMap;
pub struct Rendered {
    pub app_dir: String,
    pub files: BTreeMap<String, Vec<u8>>,
    pub digest: String,
    pub namespace: String,
}
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("x")]
    X,
}
impl RenderError {
    pub fn reason(&self) -> &'static str {
        "X"
    }
}
pub fn render(_r: &Release, _e: &Environment) -> Result<Rendered, RenderError> {
    Err(RenderError::X)
}
