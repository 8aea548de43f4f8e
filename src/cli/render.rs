//! `tumbler render`: the files the controller would commit, from a file or stdin (`-f -`),
//! for every Release document in it. Documents are checked against the CRD schema first:
//! an unknown field or a document of another kind is an error that names it.

use std::path::{Component, Path};

use serde_json::Value;

use crate::api::{Environment, Release};
use crate::{Error, Result};

/// Renders every Release of `file` for `environment` (or a plain Environment of the
/// Release's namespace); prints a YAML stream, or writes the files under `out`.
pub fn run(file: &Path, environment: Option<&Path>, out: Option<&Path>) -> Result<()> {
    let releases: Vec<Release> = documents(file)?
        .iter()
        .enumerate()
        .map(|(i, doc)| typed(doc, "Release", &format!("{}#{}", file.display(), i + 1)))
        .collect::<Result<_>>()?;
    if releases.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no Release in it",
            file.display()
        )));
    }
    let env: Option<Environment> = match environment {
        Some(p) => {
            let docs = documents(p)?;
            let [doc] = docs.as_slice() else {
                return Err(Error::Usage(format!(
                    "{}: one Environment expected, found {} documents",
                    p.display(),
                    docs.len()
                )));
            };
            Some(typed(doc, "Environment", &p.display().to_string())?)
        }
        None => None,
    };
    for release in &releases {
        let env = env
            .clone()
            .unwrap_or_else(|| super::local_environment(release));
        let rendered = crate::render::render(release, &env)
            .map_err(|e| Error::Usage(format!("{}: {e}", e.reason())))?;
        match out {
            None => print_stream(&rendered),
            Some(dir) => write_files(dir, &rendered)?,
        }
    }
    Ok(())
}

/// The YAML documents of a file (`-`: stdin), empty ones left out.
fn documents(path: &Path) -> Result<Vec<Value>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|source| Error::Io {
            path: "stdin".into(),
            source,
        })?
    } else {
        std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?
    };
    parse_documents(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

pub(super) fn parse_documents(text: &str) -> std::result::Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// A document as `kind`, after checking its kind and its fields against the CRD schema.
pub(super) fn typed<T: serde::de::DeserializeOwned>(
    doc: &Value,
    kind: &str,
    at: &str,
) -> Result<T> {
    let bad = |why: String| Error::Usage(format!("{at}: {why}"));
    let found = (doc["apiVersion"].as_str(), doc["kind"].as_str());
    let want = format!("{}/{}", crate::api::GROUP, crate::api::VERSION);
    if found != (Some(want.as_str()), Some(kind)) {
        return Err(bad(format!(
            "a {kind} ({want}) was expected, found kind {} ({})",
            found.1.unwrap_or("none"),
            found.0.unwrap_or("no apiVersion")
        )));
    }
    let schema = schema_of(kind).ok_or_else(|| bad(format!("no schema for {kind}")))?;
    for field in ["spec", "status"] {
        if let Some(v) = doc.get(field) {
            unknown_fields(v, &schema["properties"][field], field).map_err(bad)?;
        }
    }
    serde_json::from_value(doc.clone()).map_err(|e| bad(e.to_string()))
}

/// The OpenAPI schema of one of Tumbler's kinds, from the generated CRD.
fn schema_of(kind: &str) -> Option<Value> {
    crate::api::crds().into_iter().find_map(|crd| {
        let v = serde_json::to_value(&crd).ok()?;
        (v["spec"]["names"]["kind"] == kind)
            .then(|| v["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone())
    })
}

/// The first field of `value` its schema does not declare, as an error naming its path.
fn unknown_fields(value: &Value, schema: &Value, at: &str) -> std::result::Result<(), String> {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return Ok(());
    }
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            let extra = &schema["additionalProperties"];
            for (k, v) in map {
                let path = format!("{at}.{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(s) => unknown_fields(v, s, &path)?,
                    None if extra.is_object() => unknown_fields(v, extra, &path)?,
                    None if props.is_some() || extra == false => {
                        return Err(format!("unknown field {path:?}"));
                    }
                    None => {}
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| unknown_fields(v, &schema["items"], &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

/// The app folder as one YAML stream: a document per file, its path as a comment inside it.
fn print_stream(rendered: &crate::render::Rendered) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for (path, bytes) in &rendered.files {
        let _ = writeln!(stdout, "---\n# {}/{path}", rendered.app_dir);
        let _ = stdout.write_all(bytes);
    }
    let _ = writeln!(stdout, "# digest {}", rendered.digest);
}

/// Writes the app folder under `dir`; a path that would leave `dir` is refused.
fn write_files(dir: &Path, rendered: &crate::render::Rendered) -> Result<()> {
    for (path, bytes) in &rendered.files {
        let relative = Path::new(&rendered.app_dir).join(path);
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(Error::Usage(format!(
                "{}: refusing to write outside {}",
                relative.display(),
                dir.display()
            )));
        }
        let target = dir.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        std::fs::write(&target, bytes).map_err(|source| Error::Io {
            path: target.display().to_string(),
            source,
        })?;
    }
    eprintln!(
        "wrote {} files under {}",
        rendered.files.len(),
        dir.join(&rendered.app_dir).display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "apiVersion: tumbler.dev/v1alpha1\nkind: Release\nmetadata: {name: api, namespace: team}\nspec:\n  environment: staging\n  app: api\n  version: '1'\n  template:\n    image: {repository: ghcr.io/acme/api, tag: '1'}\n";

    fn first(text: &str) -> Value {
        parse_documents(text).unwrap().remove(0)
    }

    #[test]
    fn unknown_fields_and_other_kinds_are_named() {
        let ok: Release = typed(&first(RELEASE), "Release", "r.yaml").unwrap();
        assert_eq!(ok.spec.app, "api");
        let typo = RELEASE.replace("  app: api\n", "  app: api\n  enviroment: typo\n");
        let err = typed::<Release>(&first(&typo), "Release", "r.yaml").unwrap_err();
        assert!(err.to_string().contains("spec.enviroment"), "{err}");
        let nested = RELEASE.replace("tag: '1'}", "tag: '1'}\n    replica: 3");
        let err = typed::<Release>(&first(&nested), "Release", "r.yaml").unwrap_err();
        assert!(err.to_string().contains("spec.template.replica"), "{err}");
        let env = "apiVersion: tumbler.dev/v1alpha1\nkind: Environment\nmetadata: {name: e}\nspec: {repository: {url: 'https://x', path: p}}\n";
        let err = typed::<Release>(&first(env), "Release", "e.yaml").unwrap_err();
        assert!(
            err.to_string()
                .contains("a Release (tumbler.dev/v1alpha1) was expected, found kind Environment"),
            "{err}"
        );
        // Free-form parts (raw manifests, Helm values) are not checked field by field.
        let manifests = RELEASE.replace(
            "  template:\n    image: {repository: ghcr.io/acme/api, tag: '1'}\n",
            "  manifests:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, anything: goes}\n",
        );
        typed::<Release>(&first(&manifests), "Release", "r.yaml").unwrap();
    }

    #[test]
    fn every_document_of_a_stream_is_read() {
        let two = format!(
            "{RELEASE}---\n{}",
            RELEASE.replace("name: api,", "name: web,")
        );
        let docs = parse_documents(&format!("---\n{two}---\n")).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["name"], "web");
    }

    #[test]
    fn files_are_never_written_outside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let rendered = crate::render::Rendered {
            app_dir: "envs/local/api".into(),
            files: [("../../../escape.yaml".to_string(), b"x".to_vec())].into(),
            digest: "sha256:0".into(),
            namespace: "default".into(),
            env_entry: None,
        };
        let err = write_files(dir.path(), &rendered).unwrap_err();
        assert!(
            err.to_string().contains("refusing to write outside"),
            "{err}"
        );
        assert!(!dir.path().join("escape.yaml").exists());
    }
}
