//! Release → files. Pure: no I/O, no clock, no randomness; the same input gives the same
//! bytes, so `tumbler render` on a laptop shows exactly what the controller commits.
//!
//! The pipeline: check names → build the source's objects (app template, Helm, raw
//! manifests) → put every namespaced object in the target namespace and label it →
//! apply patches → check policy → one YAML file per object, a kustomization.yaml listing
//! them, and `.tumbler/release.yaml` holding the Release that produced the folder.
//!
//! A Release attached to an Environment of another namespace deploys into its own
//! namespace and may be applied by Flux as the tenant's ServiceAccount (see `tenancy` and
//! docs/MULTITENANCY.md).

mod helm;
mod limits;
mod manifests;
mod merge_keys;
mod patch;
mod policy;
mod scope;
mod selector;
mod template;
mod tenancy;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{Environment, NamespacedObjectRef, Release};

pub use scope::Scopes;
pub use tenancy::{per_app_kustomization, per_app_namespace};

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
    #[error(
        "spec.namespace {namespace:?} is not allowed: a Release of namespace {release_namespace:?} attached to the Environment {environment} deploys into its own namespace, and into another only when the Environment lists it in spec.releases.targetNamespaces"
    )]
    TargetNamespaceNotAllowed {
        namespace: String,
        release_namespace: String,
        environment: String,
    },
    #[error(
        "{object}: Flux objects (*.toolkit.fluxcd.io) are refused in a Release's manifests and patches, since Flux would apply what they name with its own rights (the Environment's spec.policy.allowFluxObjects is false)"
    )]
    FluxObjectRefused { object: String },
    #[error(
        "{object}: RBAC objects (rbac.authorization.k8s.io) are refused for a Release of namespace {release_namespace:?} attached to an Environment of another namespace: a Role or RoleBinding in the team's namespace could grant what the platform did not, such as the Secrets there (the Environment's spec.policy.allowRBAC is false)"
    )]
    RbacRefused {
        object: String,
        release_namespace: String,
    },
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
            RenderError::TargetNamespaceNotAllowed { .. } => "TargetNamespaceNotAllowed",
            RenderError::FluxObjectRefused { .. } => "FluxObjectRefused",
            RenderError::RbacRefused { .. } => "RBACRefused",
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
            | RenderError::InvalidEnvironment { .. }
            | RenderError::TargetNamespaceNotAllowed { .. }
            | RenderError::FluxObjectRefused { .. }
            | RenderError::RbacRefused { .. } => true,
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

/// Applies a Release's `spec.patches` to objects as a render applies them (after placing
/// them), within the same limits: what `tests/e2e/patches.rs` compares with kustomize.
pub fn apply_patches(
    objects: &mut [serde_json::Value],
    patches: &[crate::api::Patch],
) -> Result<(), RenderError> {
    let mut weights = limits::Weights::new(0, objects)?;
    patch::apply_all(objects, patches, &mut weights)
}

/// Renders a Release for an Environment, deciding cluster scope by the built-in list of
/// Kubernetes' cluster-scoped kinds (as `tumbler render` does).
pub fn render(release: &Release, env: &Environment) -> Result<Rendered, RenderError> {
    render_with(release, env, None)
}

/// Renders a Release for an Environment; `scopes` (from API discovery) decides which kinds
/// are cluster-scoped, the built-in list the kinds it does not know.
pub fn render_with(
    release: &Release,
    env: &Environment,
    scopes: Option<&Scopes>,
) -> Result<Rendered, RenderError> {
    let spec = &release.spec;
    check_app(&spec.app)?;
    check_version(&spec.version)?;
    let release_name = release.metadata.name.clone().unwrap_or_default();
    check_path(&env.spec.repository.path)?;
    let per_app_git = per_app_git_repository(env)?;
    let namespace = tenancy::target_namespace(release, env)?;
    let ctx = Ctx {
        app: &spec.app,
        namespace: &namespace,
        version: &spec.version,
        release: &release_name,
        release_ns: release.metadata.namespace.as_deref().unwrap_or_default(),
        service_account: tenancy::impersonation(release, env)?,
    };
    let rules = policy::Rules {
        policy: &env.spec.policy,
        scopes,
        attached_from: tenancy::attached_from(release, env),
    };
    let objects = build_objects(release, &rules, &ctx)?;
    let mut folder = app_folder(release, &objects)?;
    let mut env_entry = None;
    if let Some(git) = per_app_git {
        let kustomization = tenancy::app_kustomization(env, release, &ctx, git);
        folder.put(PER_APP_FILE.into(), &kustomization)?;
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

/// The version is free text that reaches commit messages and trailers: no control
/// characters (the CRD refuses them too; this covers `tumbler render` and older objects).
fn check_version(version: &str) -> Result<(), RenderError> {
    if version.chars().any(char::is_control) {
        return Err(invalid_name(
            "version",
            version,
            "it must not hold control characters (line breaks, tabs, NUL...)",
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

/// The objects of the Release, within the limits: built from its source, placed in the
/// target namespace and labelled, patched, then checked against the Environment's policy.
fn build_objects(
    release: &Release,
    rules: &policy::Rules<'_>,
    ctx: &Ctx<'_>,
) -> Result<Vec<Value>, RenderError> {
    let spec = &release.spec;
    // Before anything is built from the Release: its size, object count and nesting.
    let record_bytes = limits::check_release(spec)?;
    let (mut objects, generated) = match (&spec.template, &spec.helm, &spec.manifests) {
        (Some(t), None, None) => (template::render(ctx, t)?, true),
        (None, Some(h), None) => (helm::render(ctx, h)?, true),
        (None, None, Some(m)) => (manifests::parse(m)?, false),
        _ => return Err(RenderError::NoSource),
    };
    // What Tumbler generated, by group and kind: a patch may change such an object, not
    // turn it into another kind.
    let own: Vec<(String, String)> = if generated {
        objects.iter().map(identity).collect()
    } else {
        vec![]
    };
    let is_own = |i: usize, obj: &Value| own.get(i).is_some_and(|id| *id == identity(obj));
    for (i, obj) in objects.iter_mut().enumerate() {
        let own = is_own(i, obj);
        policy::place(obj, ctx, rules, own)?;
    }
    let mut weights = limits::Weights::new(record_bytes, &objects)?;
    patch::apply_all(&mut objects, &spec.patches, &mut weights)?;
    for (i, obj) in objects.iter().enumerate() {
        let own = is_own(i, obj);
        policy::check(obj, ctx, rules, own)?;
        if own {
            helm::check_pins(obj, ctx)?;
        }
    }
    Ok(objects)
}

/// Group and kind of an object.
fn identity(obj: &Value) -> (String, String) {
    (
        policy::group_of(obj).to_string(),
        obj["kind"].as_str().unwrap_or_default().to_string(),
    )
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

/// What a source renderer needs to know.
pub(crate) struct Ctx<'a> {
    pub app: &'a str,
    pub namespace: &'a str,
    pub version: &'a str,
    pub release: &'a str,
    pub release_ns: &'a str,
    /// The ServiceAccount Flux impersonates to apply the Release (an attached Release of an
    /// Environment with `spec.releases.serviceAccountName`).
    pub service_account: Option<&'a str>,
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
    // `suspend` and `expiry` say how Tumbler handles the Release, not what it renders:
    // toggling them changes nothing in git (and a rollback does not bring them back).
    let spec = crate::api::ReleaseSpec {
        suspend: false,
        expiry: None,
        ..release.spec.clone()
    };
    json!({
        "apiVersion": "tumbler.dev/v1alpha1",
        "kind": "Release",
        "metadata": {
            "name": release.metadata.name,
            "namespace": release.metadata.namespace,
        },
        "spec": spec,
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
