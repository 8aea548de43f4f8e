//! Raw manifests: each must be an object with `apiVersion`, `kind` and `metadata.name`;
//! server-owned fields are dropped.

use serde_json::Value;

use super::{RenderError, is_dns_subdomain};

pub fn parse(items: &[Value]) -> Result<Vec<Value>, RenderError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("spec.manifests[{i}]");
            let bad = |why: &str| RenderError::InvalidManifest {
                at: at.clone(),
                why: why.to_string(),
            };
            let Value::Object(map) = item else {
                return Err(bad("is not an object"));
            };
            let mut obj = map.clone();
            for field in ["apiVersion", "kind"] {
                match obj.get(field) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    _ => return Err(bad(&format!("needs a string {field}"))),
                }
            }
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(name) = name else {
                return Err(bad(&format!(
                    "{} needs metadata.name",
                    obj["kind"].as_str().unwrap_or_default()
                )));
            };
            if !is_dns_subdomain(&name) {
                return Err(bad(&format!(
                    "metadata.name {name:?} is not a DNS-1123 subdomain"
                )));
            }
            obj.remove("status");
            if let Some(Value::Object(md)) = obj.get_mut("metadata") {
                for f in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                    "generation",
                    "selfLink",
                    "deletionTimestamp",
                ] {
                    md.remove(f);
                }
            }
            Ok(Value::Object(obj))
        })
        .collect()
}
