//! Raw manifests: each must be an object with `apiVersion`, `kind` and `metadata.name`;
//! server-owned fields are dropped. A `v1` `List` is unwrapped, each item checked like any
//! other manifest; other lists (a List in a List, `ConfigMapList`...) are refused, so that
//! nothing reaches git that the policy has not seen.

use serde_json::{Map, Value};

use super::limits::too_many_objects;
use super::{MAX_OBJECTS, RenderError, is_dns_subdomain};

fn invalid(at: &str, why: impl Into<String>) -> RenderError {
    RenderError::InvalidManifest {
        at: at.to_string(),
        why: why.into(),
    }
}

pub fn parse(items: &[Value]) -> Result<Vec<Value>, RenderError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("spec.manifests[{i}]");
        let Some(list) = list_items(item, &at)? else {
            out.push(object(item, &at)?);
            continue;
        };
        for (j, inner) in list.iter().enumerate() {
            let at = format!("{at}.items[{j}]");
            if is_list(inner) {
                return Err(invalid(
                    &at,
                    "a list inside a List is not unwrapped; put its items in the outer List",
                ));
            }
            out.push(object(inner, &at)?);
            if out.len() > MAX_OBJECTS {
                return Err(too_many_objects(out.len()));
            }
        }
    }
    Ok(out)
}

/// Whether `v` is a list of objects as kubectl and kustomize read them: a kind ending in
/// `List`, with `items`.
fn is_list(v: &Value) -> bool {
    v["kind"].as_str().is_some_and(|k| k.ends_with("List")) && v.get("items").is_some()
}

/// The items of a `v1` `List`; `None` for an object that is no list. Refuses other lists.
fn list_items<'v>(item: &'v Value, at: &str) -> Result<Option<&'v Vec<Value>>, RenderError> {
    let kind = item["kind"].as_str().unwrap_or_default();
    if kind == "List" && item["apiVersion"].as_str() == Some("v1") {
        return match item.get("items") {
            Some(Value::Array(items)) => Ok(Some(items)),
            _ => Err(invalid(at, "a List needs an items array")),
        };
    }
    if is_list(item) {
        return Err(invalid(
            at,
            format!(
                "kind {kind} with items: only a v1 List is unwrapped; give its items as manifests of their own"
            ),
        ));
    }
    Ok(None)
}

/// One manifest, checked, without the fields the API server owns.
fn object(item: &Value, at: &str) -> Result<Value, RenderError> {
    let Value::Object(map) = item else {
        return Err(invalid(at, "is not an object"));
    };
    let mut obj = map.clone();
    for field in ["apiVersion", "kind"] {
        match obj.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(invalid(at, format!("needs a string {field}"))),
        }
    }
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(name) = name else {
        return Err(invalid(
            at,
            format!(
                "{} needs metadata.name",
                obj.get("kind").and_then(Value::as_str).unwrap_or_default()
            ),
        ));
    };
    if !is_dns_subdomain(&name) {
        return Err(invalid(
            at,
            format!("metadata.name {name:?} is not a DNS-1123 subdomain"),
        ));
    }
    strip_server_fields(&mut obj);
    Ok(Value::Object(obj))
}

fn strip_server_fields(obj: &mut Map<String, Value>) {
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
}
