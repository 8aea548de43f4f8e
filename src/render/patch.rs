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
use regex::Regex;

use super::limits::{Weights, YamlRefusal, deeper_than, json_len, parse_yaml, too_large};
use super::merge_keys::{ListMerge, list_merge};
use super::policy::{describe, group_of};
use super::selector::Selector;
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
    let select = Select::new(index, target)?;
    let hits: Vec<usize> = (0..objects.len())
        .filter(|&i| select.matches(&objects[i]))
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
    let select = p
        .target
        .as_ref()
        .map(|t| Select::new(index, t))
        .transpose()?;
    let hits: Vec<usize> = (0..objects.len())
        .filter(|&i| match &select {
            Some(t) => t.matches(&objects[i]),
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
        merge_object(obj, &patch);
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

/// A patch target with its patterns and selectors compiled. As in kustomize, `group`,
/// `version`, `kind`, `name` and `namespace` are regular expressions matching the whole
/// value (`api-.*`; a plain name matches itself), and the selectors are Kubernetes
/// selectors.
struct Select {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Option<Selector>,
    annotations: Option<Selector>,
}

/// Compiled patterns are bounded: a target is a short name, not a program.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl Select {
    fn new(index: usize, t: &PatchTarget) -> Result<Self, RenderError> {
        let pattern = |what: &str, p: &Option<String>| {
            p.as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| {
                    regex::RegexBuilder::new(&format!("^(?:{p})$"))
                        .size_limit(PATTERN_SIZE_LIMIT)
                        .build()
                        .map_err(|e| failed(index, format!("target.{what} {p:?}: {e}")))
                })
                .transpose()
        };
        let selector = |what: &str, s: &Option<String>| {
            s.as_deref()
                .map(Selector::parse)
                .transpose()
                .map_err(|why| failed(index, format!("target.{what}: {why}")))
        };
        Ok(Select {
            group: pattern("group", &t.group)?,
            version: pattern("version", &t.version)?,
            kind: pattern("kind", &t.kind)?,
            name: pattern("name", &t.name)?,
            namespace: pattern("namespace", &t.namespace)?,
            labels: selector("labelSelector", &t.label_selector)?,
            annotations: selector("annotationSelector", &t.annotation_selector)?,
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        let version = obj["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let is = |re: &Option<Regex>, value: &str| re.as_ref().is_none_or(|re| re.is_match(value));
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        is(&self.kind, &text(&obj["kind"]))
            && is(&self.name, &text(&obj["metadata"]["name"]))
            && is(&self.namespace, &text(&obj["metadata"]["namespace"]))
            && is(&self.group, group_of(obj))
            && is(&self.version, version)
            && self
                .labels
                .as_ref()
                .is_none_or(|s| s.matches(&obj["metadata"]["labels"]))
            && self
                .annotations
                .as_ref()
                .is_none_or(|s| s.matches(&obj["metadata"]["annotations"]))
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

/// Strategic merge of `patch` into the object `obj`, with the list merge keys of its kind.
pub fn merge_object(obj: &mut Value, patch: &Value) {
    let group = group_of(obj).to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let mut path = vec![];
    merge(obj, patch, &mut path, &|path: &[String]| {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        list_merge(&group, &kind, &path)
    });
}

/// Strategic merge of `patch` into `target`, which sits at `path` in its object; `lists`
/// says how the list at a path merges.
fn merge(
    target: &mut Value,
    patch: &Value,
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListMerge,
) {
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
                path.push(k.clone());
                match (t.get_mut(k), pv) {
                    (Some(tv @ Value::Object(_)), Value::Object(_)) => merge(tv, pv, path, lists),
                    (Some(Value::Array(ta)), Value::Array(pa)) => merge_list(ta, pa, path, lists),
                    _ => {
                        t.insert(k.clone(), clean(pv));
                    }
                }
                path.pop();
            }
        }
        (t, p) => *t = clean(p),
    }
}

/// The values of `keys` in a list item (`None` where missing).
fn key_values(item: &Value, keys: &[&str]) -> Vec<Option<String>> {
    keys.iter()
        .map(|k| match &item[*k] {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect()
}

/// Whether two items are the same by several keys, as kustomize matches them: every key
/// equal or missing on one side, and at least one equal.
fn same_item(a: &[Option<String>], b: &[Option<String>]) -> bool {
    let mut common = false;
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (x, y) if x == y => common = true,
            (Some(_), Some(_)) => return false,
            _ => {}
        }
    }
    common
}

fn merge_list(
    target: &mut Vec<Value>,
    patch: &[Value],
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListMerge,
) {
    let objects = patch.iter().all(Value::is_object) && target.iter().all(Value::is_object);
    match lists(path) {
        ListMerge::Keys(keys) if objects => {
            if keys.len() == 1 {
                merge_by_key(target, patch, keys[0], path, lists)
            } else {
                merge_by_keys(target, patch, keys, path, lists)
            }
        }
        ListMerge::Primitive if !objects || patch.iter().all(|v| !v.is_object()) => {
            let mut merged: Vec<Value> = vec![];
            for v in patch.iter().chain(target.iter()) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            *target = merged;
        }
        _ => {
            *target = clean(&Value::Array(patch.to_vec()))
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    }
}

/// Lists keyed by one field: the patch's items in its order (merged into the object's item
/// of the same key, or new), then the object's other items in their order; items marked
/// `$patch: delete` go.
fn merge_by_key(
    target: &mut Vec<Value>,
    patch: &[Value],
    key: &str,
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListMerge,
) {
    let id = |v: &Value| v[key].clone();
    let mut out: Vec<Value> = vec![];
    let mut done: Vec<Value> = vec![];
    for p in patch {
        let k = id(p);
        if done.contains(&k) {
            continue;
        }
        done.push(k.clone());
        if directive(p) == Some("delete") {
            continue;
        }
        match target.iter().find(|t| id(t) == k) {
            Some(t) => {
                let mut t = t.clone();
                merge(&mut t, p, path, lists);
                out.push(t);
            }
            None => out.push(clean(p)),
        }
    }
    for t in target.iter() {
        if !done.contains(&id(t)) {
            out.push(t.clone());
        }
    }
    *target = out;
}

/// Lists keyed by several fields (ports by `containerPort` and `protocol`): the patch's new
/// items in its order, then the object's items in their order, merged with the patch's
/// item for each; items marked `$patch: delete` go.
fn merge_by_keys(
    target: &mut Vec<Value>,
    patch: &[Value],
    keys: &[&str],
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListMerge,
) {
    let mut new: Vec<Value> = vec![];
    let mut deleted = vec![false; target.len()];
    for p in patch {
        let pk = key_values(p, keys);
        match target
            .iter()
            .position(|t| same_item(&key_values(t, keys), &pk))
        {
            Some(i) if directive(p) == Some("delete") => deleted[i] = true,
            Some(i) => merge(&mut target[i], p, path, lists),
            None if directive(p) == Some("delete") => {}
            None => new.push(clean(p)),
        }
    }
    let kept = target
        .drain(..)
        .zip(deleted)
        .filter(|(_, d)| !d)
        .map(|(t, _)| t);
    new.extend(kept);
    *target = new;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(t: Value) -> Select {
        Select::new(0, &serde_json::from_value(t).unwrap()).unwrap()
    }

    #[test]
    fn target_fields_are_anchored_patterns() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api-v1", "namespace": "team"}});
        for yes in [
            json!({"name": "api-v1"}),
            json!({"name": "api-.*", "kind": "Deployment|StatefulSet"}),
            json!({"group": "app.", "version": "v1", "namespace": "te.*"}),
            json!({"group": ""}),
        ] {
            assert!(target(yes.clone()).matches(&obj), "{yes}");
        }
        for no in [
            json!({"name": "api"}),
            json!({"name": "v1"}),
            json!({"kind": "Deploy"}),
        ] {
            assert!(!target(no.clone()).matches(&obj), "{no}");
        }
        let bad: PatchTarget = serde_json::from_value(json!({"name": "api-("})).unwrap();
        let err = Select::new(3, &bad).err().unwrap().to_string();
        assert!(
            err.contains("spec.patches[3]") && err.contains("target.name"),
            "{err}"
        );
    }
}
