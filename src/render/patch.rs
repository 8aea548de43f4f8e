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

use json_patch::PatchOperation;

use super::limits::{Weights, YamlRefusal, deeper_than, json_len, parse_yaml, too_large};
use super::policy::{describe, group_of};
use super::{MAX_DEPTH, MAX_RENDERED_BYTES, RenderError};
use crate::api::{Patch, PatchTarget};

/// Applies the patches in order. Before each patch is applied its growth is estimated (the
/// values it adds, once per target object) and refused when the app folder would pass
/// [`MAX_RENDERED_BYTES`]; a JSON6902 `copy` is measured before it runs, since each can
/// double an object; every patched object is measured again afterwards.
pub fn apply_all(
    objects: &mut [Value],
    patches: &[Patch],
    weights: &mut Weights,
) -> Result<(), RenderError> {
    for (index, p) in patches.iter().enumerate() {
        match read(index, p)? {
            doc @ Value::Array(_) => apply_json6902(index, p, doc, objects, weights)?,
            doc @ Value::Object(_) => apply_strategic(index, p, doc, objects, weights)?,
            _ => {
                return Err(failed(
                    index,
                    "a patch is a YAML list (JSON6902) or a YAML mapping (strategic merge)".into(),
                ));
            }
        }
    }
    Ok(())
}

fn failed(index: usize, why: String) -> RenderError {
    RenderError::PatchFailed { index, why }
}

/// The YAML of patch `index`, read within the limits.
fn read(index: usize, p: &Patch) -> Result<Value, RenderError> {
    match parse_yaml(&p.patch) {
        Ok(doc) => Ok(doc),
        Err(YamlRefusal::TooLarge) => Err(too_large(format!(
            "spec.patches[{index}] (its YAML, anchors and aliases expanded)"
        ))),
        Err(YamlRefusal::Invalid(why)) => Err(failed(index, why)),
    }
}

/// Applies a JSON6902 patch (`doc`, a list of operations) to every object its target
/// matches, once its growth on all of them is known to fit.
fn apply_json6902(
    index: usize,
    p: &Patch,
    doc: Value,
    objects: &mut [Value],
    weights: &mut Weights,
) -> Result<(), RenderError> {
    let Some(target) = &p.target else {
        return Err(failed(
            index,
            "a JSON6902 patch (a list of operations) needs a target".into(),
        ));
    };
    let ops: json_patch::Patch = serde_json::from_value(doc)
        .map_err(|e| failed(index, format!("not a JSON6902 patch: {e}")))?;
    let hits: Vec<usize> = (0..objects.len())
        .filter(|&i| matches(&objects[i], target))
        .collect();
    if hits.is_empty() {
        return Err(failed(
            index,
            format!("the target {} matches no rendered object", show(target)),
        ));
    }
    let added = added_bytes(&ops);
    let what = format!(
        "adding about {added} bytes to each of the {} objects it targets",
        hits.len()
    );
    apply_to_hits(
        index,
        objects,
        &hits,
        added,
        &what,
        weights,
        |obj, weights| apply_ops(index, &ops, added, obj, weights),
    )
}

/// What the `add` and `replace` operations add to each object; copies are measured as they
/// run.
fn added_bytes(ops: &[PatchOperation]) -> usize {
    ops.iter()
        .map(|op| match op {
            PatchOperation::Add(a) => json_len(&a.value, usize::MAX),
            PatchOperation::Replace(r) => json_len(&r.value, usize::MAX),
            _ => Some(0),
        })
        .map(|n| n.unwrap_or(usize::MAX))
        .fold(0, usize::saturating_add)
}

/// Runs the operations of patch `index` on one object in order; `added` is what they add
/// besides copies, each of which is measured before it runs.
fn apply_ops(
    index: usize,
    ops: &[PatchOperation],
    added: usize,
    obj: &mut Value,
    weights: &Weights,
) -> Result<(), RenderError> {
    let name = describe(obj);
    let mut grown = added;
    for (n, op) in ops.iter().enumerate() {
        if let PatchOperation::Copy(c) = op
            && let Some(from) = obj.pointer(c.from.as_str())
        {
            let what = || {
                format!(
                    "spec.patches[{index}] (operation {n}, a copy from {}) on {name}",
                    c.from
                )
            };
            let Some(size) = json_len(from, weights.left().saturating_sub(grown)) else {
                return Err(too_large(format!(
                    "{} (more than {MAX_RENDERED_BYTES} bytes with the rest of the app folder)",
                    what()
                )));
            };
            grown = grown.saturating_add(size);
            weights.check(grown, what)?;
        }
        // On failure the render stops, so nothing needs undoing.
        json_patch::patch_unsafe(obj, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = n;
            failed(index, format!("{name}: {e}"))
        })?;
    }
    Ok(())
}

/// Merges a strategic merge patch (`doc`, a mapping) into the objects its target matches,
/// or without a target into the object it names, once its growth is known to fit.
fn apply_strategic(
    index: usize,
    p: &Patch,
    doc: Value,
    objects: &mut [Value],
    weights: &mut Weights,
) -> Result<(), RenderError> {
    let hits: Vec<usize> = (0..objects.len())
        .filter(|&i| match &p.target {
            Some(t) => matches(&objects[i], t),
            None => same_object(&objects[i], &doc),
        })
        .collect();
    if hits.is_empty() {
        let what = match &p.target {
            Some(t) => format!("the target {}", show(t)),
            None => format!(
                "{}/{}",
                doc["kind"].as_str().unwrap_or("?"),
                doc["metadata"]["name"].as_str().unwrap_or("?")
            ),
        };
        return Err(failed(index, format!("{what} matches no rendered object")));
    }
    let mut patch = doc;
    if p.target.is_some() {
        drop_identity(&mut patch);
    }
    // A strategic merge adds at most the patch to each object.
    let size = json_len(&patch, usize::MAX).unwrap_or(usize::MAX);
    let what = format!(
        "{size} bytes merged into each of the {} objects it targets",
        hits.len()
    );
    apply_to_hits(index, objects, &hits, size, &what, weights, |obj, _| {
        merge(obj, &patch, "");
        Ok(())
    })
}

/// Applies patch `index` to the objects it targets, once the estimate of what it adds to
/// all of them (`each` bytes per object) is within the limit; checks every patched object.
fn apply_to_hits(
    index: usize,
    objects: &mut [Value],
    hits: &[usize],
    each: usize,
    what: &str,
    weights: &mut Weights,
    mut apply: impl FnMut(&mut Value, &mut Weights) -> Result<(), RenderError>,
) -> Result<(), RenderError> {
    weights.check(each.saturating_mul(hits.len()), || {
        format!("spec.patches[{index}], {what}")
    })?;
    for &i in hits {
        apply(&mut objects[i], weights)?;
        patched(index, i, &objects[i], weights)?;
    }
    Ok(())
}

/// Removes a targeted patch's own identity fields, which do not rename the object.
fn drop_identity(patch: &mut Value) {
    if let Some(m) = patch.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("name");
            md.remove("namespace");
        }
    }
}

/// After patch `index` changed object `i`: still within the size and nesting limits.
fn patched(index: usize, i: usize, obj: &Value, weights: &mut Weights) -> Result<(), RenderError> {
    if deeper_than(obj, MAX_DEPTH) {
        return Err(RenderError::PatchFailed {
            index,
            why: format!(
                "makes {} nest arrays and objects more than {MAX_DEPTH} levels deep",
                describe(obj)
            ),
        });
    }
    weights.remeasure(i, obj, || {
        format!("spec.patches[{index}] on {}", describe(obj))
    })
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
    let _ = field;
    let replace = directive(patch) == Some("replace");
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) if !replace => {
            for (k, pv) in p {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() || directive(pv) == Some("delete") {
                    t.remove(k);
                    continue;
                }
                match (t.get_mut(k), pv) {
                    (Some(tv @ Value::Object(_)), Value::Object(_)) => merge(tv, pv, k),
                    (Some(Value::Array(ta)), Value::Array(pa)) => merge_list(ta, pa, k),
                    _ => {
                        t.insert(k.clone(), clean(pv));
                    }
                }
            }
        }
        (t, p) => *t = clean(p),
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
