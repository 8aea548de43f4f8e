//! Kustomize-style patches applied to the rendered objects, so a patch that does not apply
//! is a render error (and nothing is committed) rather than a Flux failure later.
//!
//! A patch that is a YAML list is JSON6902 (add, remove, replace, move, copy, test) and
//! needs a `target`. A patch that is a YAML mapping is a strategic merge patch; without a
//! `target` it applies to the object its own kind and `metadata.name` name. The strategic
//! merge subset: mappings merge recursively, `null` deletes a key, `$patch: replace` and
//! `$patch: delete` on mappings and list items, and lists of objects merge by the
//! Kubernetes merge keys of the common fields (containers, initContainers,
//! ephemeralContainers, volumes, env, imagePullSecrets by `name`; ports by `containerPort`
//! or, in Services, `port`; volumeMounts by `mountPath`); other lists are replaced.

use serde_json::Value;

use super::RenderError;
use super::policy::{describe, group_of};
use crate::api::{Patch, PatchTarget};

pub fn apply_all(objects: &mut [Value], patches: &[Patch]) -> Result<(), RenderError> {
    for (index, p) in patches.iter().enumerate() {
        let fail = |why: String| RenderError::PatchFailed { index, why };
        let doc: Value =
            serde_saphyr::from_str(&p.patch).map_err(|e| fail(format!("not valid YAML: {e}")))?;
        match &doc {
            Value::Array(_) => {
                let Some(target) = &p.target else {
                    return Err(fail(
                        "a JSON6902 patch (a list of operations) needs a target".into(),
                    ));
                };
                let ops: json_patch::Patch = serde_json::from_value(doc.clone())
                    .map_err(|e| fail(format!("not a JSON6902 patch: {e}")))?;
                let mut hits = 0;
                for obj in objects.iter_mut().filter(|o| matches(o, target)) {
                    hits += 1;
                    let mut copy = obj.clone();
                    json_patch::patch(&mut copy, &ops)
                        .map_err(|e| fail(format!("{}: {e}", describe(obj))))?;
                    *obj = copy;
                }
                if hits == 0 {
                    return Err(fail(format!(
                        "the target {} matches no rendered object",
                        show(target)
                    )));
                }
            }
            Value::Object(_) => {
                let mut hits = 0;
                for obj in objects.iter_mut() {
                    let hit = match &p.target {
                        Some(t) => matches(obj, t),
                        None => same_object(obj, &doc),
                    };
                    if hit {
                        hits += 1;
                        let mut patch = doc.clone();
                        if p.target.is_some() {
                            // A targeted patch's own identity fields do not rename the object.
                            if let Some(m) = patch.as_object_mut() {
                                m.remove("apiVersion");
                                m.remove("kind");
                                if let Some(md) =
                                    m.get_mut("metadata").and_then(Value::as_object_mut)
                                {
                                    md.remove("name");
                                    md.remove("namespace");
                                }
                            }
                        }
                        merge(obj, &patch, "");
                    }
                }
                if hits == 0 {
                    let what = match &p.target {
                        Some(t) => format!("the target {}", show(t)),
                        None => format!(
                            "{}/{}",
                            doc["kind"].as_str().unwrap_or("?"),
                            doc["metadata"]["name"].as_str().unwrap_or("?")
                        ),
                    };
                    return Err(fail(format!("{what} matches no rendered object")));
                }
            }
            _ => {
                return Err(fail(
                    "a patch is a YAML list (JSON6902) or a YAML mapping (strategic merge)".into(),
                ));
            }
        }
    }
    Ok(())
}

fn show(t: &PatchTarget) -> String {
    serde_json::to_string(t).unwrap_or_default()
}

fn same_object(obj: &Value, patch: &Value) -> bool {
    let kind = patch["kind"].as_str();
    let name = patch["metadata"]["name"].as_str();
    kind.is_some()
        && name.is_some()
        && obj["kind"].as_str() == kind
        && obj["metadata"]["name"].as_str() == name
        && patch["apiVersion"]
            .as_str()
            .is_none_or(|v| obj["apiVersion"].as_str() == Some(v))
}

fn selector_matches(map: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => {
                map[k.trim().trim_end_matches('=')].as_str()
                    == Some(v.trim().trim_start_matches('='))
            }
            None => map.get(term.trim()).is_some(),
        })
}

fn matches(obj: &Value, t: &PatchTarget) -> bool {
    let version = obj["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    t.kind
        .as_deref()
        .is_none_or(|k| obj["kind"].as_str() == Some(k))
        && t.name
            .as_deref()
            .is_none_or(|n| obj["metadata"]["name"].as_str() == Some(n))
        && t.namespace
            .as_deref()
            .is_none_or(|n| obj["metadata"]["namespace"].as_str() == Some(n))
        && t.group.as_deref().is_none_or(|g| group_of(obj) == g)
        && t.version.as_deref().is_none_or(|v| version == v)
        && t.label_selector
            .as_deref()
            .is_none_or(|s| selector_matches(&obj["metadata"]["labels"], s))
        && t.annotation_selector
            .as_deref()
            .is_none_or(|s| selector_matches(&obj["metadata"]["annotations"], s))
}

/// The merge key of a list field, for strategic merge.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some(if items.iter().any(|i| i.get("containerPort").is_some()) {
            "containerPort"
        } else {
            "port"
        }),
        _ => None,
    }
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| directive(i) != Some("delete"))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Strategic merge of `patch` into `target`; `field` is the key `target` sits under.
pub fn merge(target: &mut Value, patch: &Value, field: &str) {
    match (target, patch) {
        (t @ Value::Object(_), Value::Object(p)) => {
            if directive(patch) == Some("replace") {
                *t = clean(patch);
                return;
            }
            let t = t.as_object_mut().expect("object");
            for (k, pv) in p {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() || directive(pv) == Some("delete") {
                    t.remove(k);
                    continue;
                }
                match t.get_mut(k) {
                    Some(tv @ Value::Object(_)) if pv.is_object() => merge(tv, pv, k),
                    Some(Value::Array(ta)) if pv.is_array() => {
                        merge_list(ta, pv.as_array().expect("array"), k)
                    }
                    _ => {
                        t.insert(k.clone(), clean(pv));
                    }
                }
            }
        }
        (t, p) => {
            let _ = field;
            *t = clean(p);
        }
    }
}

fn merge_list(target: &mut Vec<Value>, patch: &[Value], field: &str) {
    let key = merge_key(field, target)
        .filter(|_| patch.iter().all(Value::is_object) && target.iter().all(Value::is_object));
    let Some(key) = key else {
        *target = patch
            .iter()
            .filter(|i| directive(i) != Some("delete"))
            .map(clean)
            .collect();
        return;
    };
    for item in patch {
        let id = &item[key];
        let pos = target.iter().position(|t| &t[key] == id && !id.is_null());
        match (directive(item), pos) {
            (Some("delete"), Some(i)) => {
                target.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => merge(&mut target[i], item, field),
            (_, None) => target.push(clean(item)),
        }
    }
}
