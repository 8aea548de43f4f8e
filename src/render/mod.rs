//! Release → files. Pure: no I/O, no clock, no randomness; the same input gives the same
//! bytes, so `tumbler render` on a laptop shows exactly what the controller commits.
//!
//! The pipeline: check names → build the source's objects (app template, Helm, raw
//! manifests) → put every namespaced object in the target namespace and label it →
//! apply patches → check policy → one YAML file per object, a kustomization.yaml listing
//! them, and `.tumbler/release.yaml` holding the Release that produced the folder.

mod helm;
mod limits;
mod manifests;
mod patch;
mod policy;
mod template;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{Environment, NamespacedObjectRef, Release};

/// What a Release renders to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Folder of the app relative to the repository root: `<environment path>/<app>`.
    pub app_dir: String,
    /// Files of the app folder, relative to `app_dir`, sorted.
    pub files: BTreeMap<String, Vec<u8>>,
    /// `sha256:<hex>` over the sorted files.
    pub digest: String,
    /// Namespace the objects were put in.
    pub namespace: String,
    /// How the environment's kustomization.yaml lists the app (`None`: its folder). In per-app
    /// Flux mode, the app's own Flux Kustomization file.
    pub env_entry: Option<String>,
}

/// The file holding an app's own Flux Kustomization in per-app mode; listed by the
/// environment's kustomization.yaml, not by the app's.
pub const PER_APP_FILE: &str = "flux-kustomization.yaml";

/// Name and namespace of the Flux Kustomization that applies one app in per-app mode.
pub fn per_app_kustomization(env: &Environment, app: &str) -> (String, String) {
    let env_name = env.metadata.name.clone().unwrap_or_default();
    let ns = env
        .spec
        .flux
        .as_ref()
        .and_then(|f| f.kustomizations.first().and_then(|k| k.namespace.clone()))
        .or_else(|| env.metadata.namespace.clone())
        .unwrap_or_default();
    (format!("{env_name}-{app}"), ns)
}

/// Most bytes the files of one app folder may hold in all (the objects, kustomization.yaml
/// and `.tumbler/release.yaml`, which records the Release's spec). A bigger Release is
/// refused with [`RenderError::TooLarge`] before anything reaches git.
pub const MAX_RENDERED_BYTES: usize = 4 * 1024 * 1024;

/// Most objects one Release may render to.
pub const MAX_OBJECTS: usize = 1000;

/// Most arrays and objects nested inside each other in one rendered object (Helm values count
/// with the two levels of the HelmRelease around them; YAML patches are read at most 64
/// levels deep). 60 keeps everything Tumbler writes readable by its own YAML reader (64
/// levels, and the release record adds 3), and far below serde_json's 128.
pub const MAX_DEPTH: usize = 60;

/// Why a Release does not render. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("spec.{field}: {value:?} is not a valid name: {why}")]
    InvalidName {
        field: String,
        value: String,
        why: String,
    },
    #[error("spec.repository.path of the Environment: {path:?} {why}")]
    InvalidPath { path: String, why: String },
    #[error("the Release needs exactly one of spec.template, spec.helm or spec.manifests")]
    NoSource,
    #[error("{at}: {why}")]
    InvalidManifest { at: String, why: String },
    #[error(
        "{object}: kind {kind} is not allowed in this Environment (spec.policy.allowedKinds: {allowed})"
    )]
    ForbiddenKind {
        object: String,
        kind: String,
        allowed: String,
    },
    #[error(
        "{object}: cluster-scoped objects are refused (the Environment's spec.policy.allowClusterScoped is false)"
    )]
    ClusterScopedRefused { object: String },
    #[error(
        "{object}: every namespaced object lands in the Release's target namespace {target:?}, but it names {namespace:?}"
    )]
    WrongNamespace {
        object: String,
        namespace: String,
        target: String,
    },
    #[error("spec.patches[{index}]: {why}")]
    PatchFailed { index: usize, why: String },
    #[error("spec.helm.values: {why}")]
    InvalidValues { why: String },
    #[error("{what}: over the limit of {limit}; split the app into several Releases")]
    TooLarge { what: String, limit: String },
    #[error("the Environment's spec.{field}: {why}")]
    InvalidEnvironment { field: String, why: String },
    #[error("writing YAML: {0}")]
    Yaml(String),
}

impl RenderError {
    /// CamelCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::InvalidName { .. } => "InvalidName",
            RenderError::InvalidPath { .. } => "InvalidPath",
            RenderError::NoSource => "NoSource",
            RenderError::InvalidManifest { .. } => "InvalidManifest",
            RenderError::ForbiddenKind { .. } => "ForbiddenKind",
            RenderError::ClusterScopedRefused { .. } => "ClusterScopedRefused",
            RenderError::WrongNamespace { .. } => "WrongNamespace",
            RenderError::PatchFailed { .. } => "PatchFailed",
            RenderError::InvalidValues { .. } => "InvalidValues",
            RenderError::TooLarge { .. } => "RenderTooLarge",
            RenderError::InvalidEnvironment { .. } => "InvalidEnvironment",
            RenderError::Yaml(_) => "RenderFailed",
        }
    }

    /// Whether rendering the same Release and Environment again gives the same error, so
    /// retrying cannot help until someone changes one of them. Only an internal failure to
    /// write YAML is not.
    pub fn is_terminal(&self) -> bool {
        match self {
            RenderError::InvalidName { .. }
            | RenderError::InvalidPath { .. }
            | RenderError::NoSource
            | RenderError::InvalidManifest { .. }
            | RenderError::ForbiddenKind { .. }
            | RenderError::ClusterScopedRefused { .. }
            | RenderError::WrongNamespace { .. }
            | RenderError::PatchFailed { .. }
            | RenderError::InvalidValues { .. }
            | RenderError::TooLarge { .. }
            | RenderError::InvalidEnvironment { .. } => true,
            RenderError::Yaml(_) => false,
        }
    }
}

/// Whether `s` is a DNS-1123 label.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS-1123 subdomain.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A label value made from free text (e.g. a version), or `None` if nothing valid is left.
pub fn label_value(s: &str) -> Option<String> {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

fn check_path(path: &str) -> Result<(), RenderError> {
    let bad = |why: &str| {
        Err(RenderError::InvalidPath {
            path: path.to_string(),
            why: why.to_string(),
        })
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.starts_with('/') {
        return bad("is absolute; give a folder relative to the repository root");
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || s == ".git")
    {
        return bad("has an empty, `.`, `..` or `.git` segment");
    }
    Ok(())
}

/// Renders a Release for an Environment.
pub fn render(release: &Release, env: &Environment) -> Result<Rendered, RenderError> {
    let spec = &release.spec;
    check_app(&spec.app)?;
    let release_name = release.metadata.name.clone().unwrap_or_default();
    check_path(&env.spec.repository.path)?;
    let per_app_git = per_app_git_repository(env)?;
    let namespace = target_namespace(release, env)?;
    let ctx = Ctx {
        app: &spec.app,
        namespace: &namespace,
        version: &spec.version,
        release: &release_name,
        release_ns: release.metadata.namespace.as_deref().unwrap_or_default(),
    };
    let objects = build_objects(release, env, &ctx)?;
    let mut folder = app_folder(release, &objects)?;
    let mut env_entry = None;
    if let Some(git) = per_app_git {
        folder.put(PER_APP_FILE.into(), &app_kustomization(env, &ctx, git))?;
        env_entry = Some(format!("{}/{PER_APP_FILE}", spec.app));
    }

    let files = folder.files;
    let digest = digest(&files);
    Ok(Rendered {
        app_dir: format!("{}/{}", env.spec.repository.path, spec.app),
        files,
        digest,
        namespace,
        env_entry,
    })
}

fn invalid_name(field: &str, value: &str, why: &str) -> RenderError {
    RenderError::InvalidName {
        field: field.into(),
        value: value.into(),
        why: why.into(),
    }
}

/// The app names the folder and the objects: a DNS-1123 label.
fn check_app(app: &str) -> Result<(), RenderError> {
    if !is_dns_label(app) {
        return Err(invalid_name(
            "app",
            app,
            "it must be a DNS-1123 label (lower case letters, digits and '-', at most 63)",
        ));
    }
    Ok(())
}

/// In per-app mode, the GitRepository the app's own Flux Kustomization reads (the
/// Environment must name it); `None` otherwise.
fn per_app_git_repository(env: &Environment) -> Result<Option<&NamespacedObjectRef>, RenderError> {
    let Some(flux) = env.spec.flux.as_ref().filter(|f| f.per_app) else {
        return Ok(None);
    };
    let git = flux.git_repository.as_ref().ok_or_else(|| {
        RenderError::InvalidEnvironment {
            field: "flux.gitRepository".into(),
            why: "per-app mode (spec.flux.perApp) needs the GitRepository the app Kustomizations read; set it or turn perApp off".into(),
        }
    })?;
    Ok(Some(git))
}

/// The namespace the objects go to: the Release's, else the Environment's default; a
/// DNS-1123 label.
fn target_namespace(release: &Release, env: &Environment) -> Result<String, RenderError> {
    let namespace = release
        .spec
        .namespace
        .clone()
        .or_else(|| env.default_app_namespace().map(str::to_string))
        .ok_or_else(|| {
            invalid_name(
                "namespace",
                "",
                "no target namespace: set spec.namespace or the Environment's targetNamespace",
            )
        })?;
    if !is_dns_label(&namespace) {
        return Err(invalid_name(
            "namespace",
            &namespace,
            "it must be a DNS-1123 label",
        ));
    }
    Ok(namespace)
}

/// The objects of the Release, within the limits: built from its source, placed in the
/// target namespace and labelled, patched, then checked against the Environment's policy.
fn build_objects(
    release: &Release,
    env: &Environment,
    ctx: &Ctx<'_>,
) -> Result<Vec<Value>, RenderError> {
    let spec = &release.spec;
    // Before anything is built from the Release: its size, object count and nesting.
    let record_bytes = limits::check_release(spec)?;
    let mut objects = match (&spec.template, &spec.helm, &spec.manifests) {
        (Some(t), None, None) => template::render(ctx, t)?,
        (None, Some(h), None) => helm::render(ctx, h)?,
        (None, None, Some(m)) => manifests::parse(m)?,
        _ => return Err(RenderError::NoSource),
    };
    for obj in objects.iter_mut() {
        policy::place(obj, ctx, &env.spec.policy)?;
    }
    let mut weights = limits::Weights::new(record_bytes, &objects)?;
    patch::apply_all(&mut objects, &spec.patches, &mut weights)?;
    for obj in objects.iter_mut() {
        policy::check(obj, ctx, &env.spec.policy)?;
    }
    Ok(objects)
}

/// The app folder: one file per object, the kustomization.yaml listing them, and the
/// Release record in `.tumbler/release.yaml`.
fn app_folder(release: &Release, objects: &[Value]) -> Result<Folder, RenderError> {
    let mut folder = Folder {
        files: BTreeMap::new(),
        left: MAX_RENDERED_BYTES,
    };
    let mut resources = vec![];
    for obj in objects {
        let file = folder.free_name(obj)?;
        folder.put(file.clone(), obj)?;
        resources.push(file);
    }
    resources.sort();
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    });
    folder.put("kustomization.yaml".into(), &kustomization)?;
    folder.put(".tumbler/release.yaml".into(), &release_record(release))?;
    Ok(folder)
}

/// The app's own Flux Kustomization in per-app mode: it applies the app folder from `git`.
fn app_kustomization(env: &Environment, ctx: &Ctx<'_>, git: &NamespacedObjectRef) -> Value {
    let (name, ns) = per_app_kustomization(env, ctx.app);
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": ns, "labels": ctx.labels()},
        "spec": {
            "interval": "10m",
            "retryInterval": "30s",
            "path": format!("./{}/{}", env.spec.repository.path, ctx.app),
            "prune": true,
            "wait": true,
            "timeout": "5m",
            "sourceRef": {"kind": "GitRepository", "name": git.name, "namespace": git.namespace.clone().unwrap_or_else(|| ns.clone())},
        },
    })
}

/// What a source renderer needs to know.
pub(crate) struct Ctx<'a> {
    pub app: &'a str,
    pub namespace: &'a str,
    pub version: &'a str,
    pub release: &'a str,
    pub release_ns: &'a str,
}

impl Ctx<'_> {
    /// The labels on every object, and the selector subset.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = self.selector();
        l.insert("app.kubernetes.io/managed-by".into(), "tumbler".into());
        if let Some(v) = label_value(self.version) {
            l.insert("app.kubernetes.io/version".into(), v);
        }
        if let Some(r) = label_value(self.release) {
            l.insert("tumbler.dev/release".into(), r);
        }
        l
    }

    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), self.app.to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.app.to_string(),
            ),
        ])
    }
}

/// `<kind>-<name>.yaml`, lower case.
fn file_name(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("object").to_lowercase();
    let name = obj["metadata"]["name"].as_str().unwrap_or("unnamed");
    format!("{kind}-{name}.yaml")
}

/// The Release as it is recorded in git: identity and spec only.
fn release_record(release: &Release) -> Value {
    json!({
        "apiVersion": "tumbler.dev/v1alpha1",
        "kind": "Release",
        "metadata": {
            "name": release.metadata.name,
            "namespace": release.metadata.namespace,
        },
        "spec": release.spec,
    })
}

/// The files of an app folder, written within [`MAX_RENDERED_BYTES`] in all.
struct Folder {
    files: BTreeMap<String, Vec<u8>>,
    left: usize,
}

impl Folder {
    /// The file for `obj`: `<kind>-<name>.yaml`, or, when another object has it already,
    /// `<kind>-<name>-<group>.yaml` (`core` for the core group). Refuses a third.
    fn free_name(&self, obj: &Value) -> Result<String, RenderError> {
        let mut file = file_name(obj);
        if self.files.contains_key(&file) {
            let group = policy::group_of(obj);
            file = format!(
                "{}-{}.yaml",
                file.trim_end_matches(".yaml"),
                if group.is_empty() { "core" } else { group }
            );
        }
        if self.files.contains_key(&file) {
            return Err(RenderError::InvalidManifest {
                at: policy::describe(obj),
                why: "two objects of the same kind and name".into(),
            });
        }
        Ok(file)
    }

    fn put(&mut self, name: String, v: &Value) -> Result<(), RenderError> {
        let Some(bytes) = to_yaml_within(v, self.left)? else {
            return Err(limits::too_large(format!(
                "the rendered app folder (more than {MAX_RENDERED_BYTES} bytes of YAML by {name})"
            )));
        };
        self.left -= bytes.len();
        self.files.insert(name, bytes);
        Ok(())
    }
}

/// YAML of a value, with `apiVersion`, `kind`, `metadata` first when present (the rest
/// sorted), as people expect to read manifests; `None` as soon as it passes `cap` bytes.
fn to_yaml_within(v: &Value, cap: usize) -> Result<Option<Vec<u8>>, RenderError> {
    struct Capped {
        out: String,
        cap: usize,
        over: bool,
    }
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.out.len() + s.len() > self.cap {
                self.over = true;
                return Err(std::fmt::Error);
            }
            self.out.push_str(s);
            Ok(())
        }
    }
    let mut w = Capped {
        out: String::new(),
        cap,
        over: false,
    };
    match serde_saphyr::to_fmt_writer(&mut w, &TopFirst(v)) {
        Ok(()) => Ok(Some(w.out.into_bytes())),
        Err(_) if w.over => Ok(None),
        Err(e) => Err(RenderError::Yaml(e.to_string())),
    }
}

struct TopFirst<'a>(&'a Value);

impl serde::Serialize for TopFirst<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(map) = self.0 else {
            return self.0.serialize(s);
        };
        const FIRST: [&str; 3] = ["apiVersion", "kind", "metadata"];
        let mut m = s.serialize_map(Some(map.len()))?;
        for k in FIRST {
            if let Some(v) = map.get(k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in map.iter().filter(|(k, _)| !FIRST.contains(&k.as_str())) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `sha256:<hex>` over the files: each path, a zero byte, the length, the bytes.
pub fn digest(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests;
