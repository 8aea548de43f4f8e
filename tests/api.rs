//! API checks that need no cluster: the samples round-trip through the Rust types, the CRD
//! schemas accept the samples and reject the invalid fixtures naming the field, and `crds/`
//! is what `tumbler crds` generates. The CEL rules are checked against a real API server by
//! the end-to-end suite (`e2e/api/validation.sh`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tumbler::api::{Environment, Release};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("config/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn schema_of(kind: &str) -> Value {
    let crd = tumbler::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    serde_json::to_value(schema).unwrap()
}

/// Errors of the structural schema (patterns, enums, ranges, required fields) as
/// `field.path: message`, the way the API server names them.
fn schema_errors(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().expect("kind");
    let validator = jsonschema::validator_for(&schema_of(kind)).expect("schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| {
            let path = e.instance_path().to_string();
            let field = path
                .trim_start_matches('/')
                .split('/')
                .map(|seg| match seg.parse::<usize>() {
                    Ok(i) => format!("[{i}]"),
                    Err(_) => format!(".{seg}"),
                })
                .collect::<String>()
                .replace(".[", "[")
                .trim_start_matches('.')
                .to_string();
            format!("{field}: {e}")
        })
        .collect()
}

/// The first place where `written` has something that `read_back` lacks or changed.
fn first_difference(written: &Value, read_back: &Value, at: String) -> Option<String> {
    match (written, read_back) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| match b.get(k) {
            Some(w) => first_difference(v, w, format!("{at}.{k}")),
            None => Some(format!("{at}.{k} was dropped")),
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]"))),
        _ if written == read_back => None,
        _ => Some(format!("{at}: wrote {written}, read back {read_back}")),
    }
}

#[test]
fn samples_round_trip_through_the_rust_types() {
    let files = samples();
    assert!(
        files.len() >= 4,
        "expected an Environment and three Releases, found {files:?}"
    );
    let mut kinds = vec![];
    for path in files {
        let doc = yaml_file(&path);
        let back = match doc["kind"].as_str() {
            Some("Environment") => {
                let env: Environment = serde_json::from_value(doc.clone()).unwrap();
                serde_json::to_value(&env).unwrap()
            }
            Some("Release") => {
                let rel: Release = serde_json::from_value(doc.clone()).unwrap();
                kinds.push(rel.source_kind());
                serde_json::to_value(&rel).unwrap()
            }
            other => panic!("{}: unexpected kind {other:?}", path.display()),
        };
        // Nothing written is lost or changed; defaults may be added.
        if let Some(lost) = first_difference(&doc, &back, String::new()) {
            panic!("{} does not round-trip: {lost}", path.display());
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["helm", "manifests", "template"],
        "one sample per source kind"
    );
}

#[test]
fn schemas_accept_every_sample() {
    for path in samples() {
        let errors = schema_errors(&yaml_file(&path));
        assert!(errors.is_empty(), "{} rejected: {errors:?}", path.display());
    }
}

#[test]
fn schemas_reject_invalid_fixtures_naming_the_field() {
    let dir = root().join("tests/fixtures/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", path.display()));
        // Fixtures whose expectation is a CEL message are checked by the API server itself
        // in the end-to-end suite; the structural ones must name their field here.
        if !expect.starts_with("spec.") {
            continue;
        }
        let errors = schema_errors(&serde_saphyr::from_str(&text).unwrap());
        assert!(
            errors.iter().any(|e| names_field(e, expect)),
            "{}: expected an error on {expect}, got {errors:?}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} structural fixtures checked");
}

/// Whether an error names `field`: directly, or as a required property of its parent.
fn names_field(error: &str, field: &str) -> bool {
    if error.starts_with(&format!("{field}:")) {
        return true;
    }
    let (parent, last) = field.rsplit_once('.').unwrap_or(("", field));
    error.starts_with(&format!("{parent}:")) && error.contains(&format!("\"{last}\" is a required"))
}

#[test]
fn committed_crds_match_the_generated_ones() {
    for dir in ["crds", "charts/tumbler/crds", "config/crd/bases"] {
        for (file, body) in tumbler::api::crds_yaml().unwrap() {
            let path = root().join(dir).join(&file);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == body,
                "{dir}/{file} is stale: run `make crds` and commit the result"
            );
        }
    }
}

/// The RBAC of config/rbac is the chart's (files/rbac) without watchNamespaces (controller
/// and namespace rules in one ClusterRole), rule for rule.
#[test]
fn kustomize_rbac_equals_the_chart_rbac() {
    let rules = |path: &str| -> Value {
        let v = yaml_file(&root().join(path));
        if v.is_array() { v } else { v["rules"].clone() }
    };
    let mut chart = rules("charts/tumbler/files/rbac/controller-rules.yaml")
        .as_array()
        .unwrap()
        .clone();
    chart.extend(
        rules("charts/tumbler/files/rbac/namespace-rules.yaml")
            .as_array()
            .unwrap()
            .clone(),
    );
    assert_eq!(rules("config/rbac/role.yaml"), Value::Array(chart));
    assert_eq!(
        rules("config/rbac/leader_election_role.yaml"),
        rules("charts/tumbler/files/rbac/leader-election-rules.yaml")
    );
    // The roles aggregated for people: the same rules under the same aggregation labels.
    let tenant = std::fs::read_to_string(root().join("config/rbac/tenant_roles.yaml")).unwrap();
    let tenant: Vec<Value> = tenant
        .split("\n---")
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect();
    for (name, file) in [
        ("tumbler-release-edit", "tenant-edit-rules.yaml"),
        ("tumbler-release-view", "tenant-view-rules.yaml"),
    ] {
        let role = tenant
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} in config/rbac/tenant_roles.yaml"));
        assert_eq!(
            role["rules"],
            rules(&format!("charts/tumbler/files/rbac/{file}")),
            "{name}"
        );
    }
}

#[test]
fn crds_are_namespaced_with_status_and_short_names_that_do_not_clash() {
    let builtin = [
        "cm", "cs", "ds", "deploy", "ep", "ev", "hpa", "ing", "ns", "no", "pvc", "pv", "po", "pdb",
        "rs", "rc", "quota", "sa", "svc", "crd", "netpol", "pc", "sc", "sts", "limits", "csr",
    ];
    for crd in tumbler::api::crds() {
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["tumbler".to_string()][..])
        );
        for short in crd.spec.names.short_names.clone().unwrap_or_default() {
            assert!(
                !builtin.contains(&short.as_str()),
                "short name {short} clashes"
            );
        }
        let v = &crd.spec.versions[0];
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        assert!(
            v.additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 5)
        );
    }
}

/// Calls `visit` on `schema` and every schema below it (properties, list items, map values,
/// the parts of `allOf`/`anyOf`/`oneOf`) with its path; `true` for a named property.
fn walk(schema: &Value, path: &str, visit: &mut impl FnMut(&str, &Value, bool)) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let at = format!("{path}.{name}");
            visit(&at, prop, true);
            walk(prop, &at, visit);
        }
    }
    if let Some(items) = schema.get("items") {
        let at = format!("{path}[]");
        visit(&at, items, false);
        walk(items, &at, visit);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        let at = format!("{path}{{}}");
        visit(&at, values, false);
        walk(values, &at, visit);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, part) in schema[key].as_array().into_iter().flatten().enumerate() {
            let at = format!("{path}({key}[{i}])");
            visit(&at, part, false);
            walk(part, &at, visit);
        }
    }
}

/// The formats the API server knows, by type: apiextensions-apiserver's
/// `supportedVersionedFormats` for strings, OpenAPI's for numbers. It warns about any
/// other (`unrecognized format "uint32"`) when the CRD is applied, and ignores it.
fn known_format(type_: &str, format: &str) -> bool {
    const STRING: &[&str] = &[
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
        "date-time",
    ];
    match type_ {
        "integer" => ["int32", "int64"].contains(&format),
        "number" => ["float", "double"].contains(&format),
        "string" => STRING.contains(&format),
        _ => false,
    }
}

#[test]
fn schemas_use_only_formats_the_api_server_knows() {
    for kind in ["Environment", "Release"] {
        let schema = schema_of(kind);
        let mut unknown = vec![];
        let mut formats = 0;
        walk(&schema, kind, &mut |path, s, _| {
            if let Some(format) = s.get("format").and_then(Value::as_str) {
                formats += 1;
                let type_ = s["type"].as_str().unwrap_or("(no type)");
                if !known_format(type_, format) {
                    unknown.push(format!("{path}: {type_} with format {format}"));
                }
            }
        });
        assert!(
            unknown.is_empty(),
            "{kind}: formats the API server does not know:\n  {}",
            unknown.join("\n  ")
        );
        assert!(formats > 0, "{kind}: the walk found no format at all");
    }
}

/// What k8s-openapi and kube-derive write when a type has no description of its own.
const BOILERPLATE: &[&str] = &[
    "IntOrString is a type that can hold an int32 or a string",
    "Auto-generated derived type",
];

fn described(text: Option<&str>) -> bool {
    let text = text.unwrap_or_default().trim();
    !text.is_empty() && !BOILERPLATE.iter().any(|b| text.contains(b))
}

#[test]
fn every_field_has_a_description_of_its_own() {
    let mut total = 0;
    for kind in ["Environment", "Release"] {
        let schema = schema_of(kind);
        assert!(
            described(schema["description"].as_str()),
            "{kind} has no description of its own: {}",
            schema["description"]
        );
        let mut fields = 0;
        let mut undescribed = vec![];
        walk(&schema, kind, &mut |path, s, property| {
            if !property {
                return;
            }
            if described(s["description"].as_str()) {
                fields += 1;
            } else {
                undescribed.push(path.to_string());
            }
        });
        assert!(
            undescribed.is_empty(),
            "{kind}: fields without a description of their own (add a doc comment):\n  {}",
            undescribed.join("\n  ")
        );
        // The walk reached the spec and the status, not just the top level.
        assert!(fields > 40, "{kind}: only {fields} fields");
        println!("{kind}: {fields} fields described");
        total += fields;
    }
    println!("both kinds: {total} fields described");
}

#[test]
fn release_columns_show_the_ready_condition_beside_the_phase() {
    let crd = tumbler::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "Release")
        .unwrap();
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default();
    let shown: Vec<(&str, &str, Option<i32>)> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.json_path.as_str(), c.priority))
        .collect();
    let ready = r#".status.conditions[?(@.type=="Ready")]"#;
    assert_eq!(
        shown,
        [
            ("Environment", ".spec.environment", None),
            ("App", ".spec.app", None),
            ("Version", ".spec.version", None),
            ("Commit", ".status.commitShort", None),
            ("Age", ".metadata.creationTimestamp", None),
            ("Phase", ".status.phase", None),
            ("Ready", &*format!("{ready}.status"), None),
            ("Status", &*format!("{ready}.message"), None),
        ]
    );
}

/// Conditions are a map keyed by `type` (one per type), so that server-side apply merges
/// them per type and the API server refuses a second condition of one type.
#[test]
fn conditions_are_list_maps_keyed_by_type() {
    for kind in ["Environment", "Release"] {
        let conditions = &schema_of(kind)["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{kind}"
        );
        let required = conditions["items"]["required"].as_array().unwrap();
        assert!(
            required.iter().any(|r| r == "type"),
            "{kind}: a map key must be required"
        );
    }
}
