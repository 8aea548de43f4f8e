//! The Tumbler API (`tumbler.dev/v1alpha1`): the `Environment` and `Release` kinds, and the
//! condition helpers both share. Plain data and pure functions only; nothing here talks to
//! a cluster.

pub mod bounded;
mod conditions;
mod environment;
mod notification;
mod promotion;
mod release;

pub use conditions::*;
pub use environment::*;
pub use notification::*;
pub use promotion::*;
pub use release::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// API group of both kinds.
pub const GROUP: &str = "tumbler.dev";
/// API version of both kinds.
pub const VERSION: &str = "v1alpha1";

/// A reference to an object in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the object.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// A reference to an object by namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectRef {
    /// Name of the object.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Defaults to the Environment's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
}

/// Schema of a free-form object (chart values): any fields, kept as written.
pub(crate) fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema of a list of Kubernetes objects given as raw data.
pub(crate) fn free_form_objects(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 1000,
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

/// The CRDs of both kinds, in the order they are written to `crds/`, finished for the API
/// server (see [`finish`]).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![finish(Environment::crd()), finish(Release::crd())]
}

/// What the derives cannot say: descriptions as flowing text, and only formats the API
/// server knows.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        tidy(root);
    }
    crd
}

/// Tidies `schema` and everything below it: see [`flowing`] and [`known_format`].
fn tidy(schema: &mut JSONSchemaProps) {
    if let Some(text) = &mut schema.description {
        *text = flowing(text);
    }
    schema.format = known_format(schema.type_.as_deref(), schema.format.take());
    let children = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(
            schema
                .pattern_properties
                .iter_mut()
                .flat_map(|p| p.values_mut()),
        )
        .chain(schema.definitions.iter_mut().flat_map(|p| p.values_mut()))
        .chain(schema.all_of.iter_mut().flatten())
        .chain(schema.any_of.iter_mut().flatten())
        .chain(schema.one_of.iter_mut().flatten())
        .chain(schema.not.as_deref_mut())
        .chain(match &mut schema.items {
            Some(JSONSchemaPropsOrArray::Schema(s)) => std::slice::from_mut(&mut **s),
            Some(JSONSchemaPropsOrArray::Schemas(v)) => v.as_mut_slice(),
            None => &mut [],
        })
        .chain(match &mut schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(s)) => Some(&mut **s),
            _ => None,
        })
        .chain(match &mut schema.additional_items {
            Some(JSONSchemaPropsOrBool::Schema(s)) => Some(&mut **s),
            _ => None,
        });
    for child in children {
        tidy(child);
    }
}

/// A doc comment as flowing text: the line breaks of the source joined with spaces, blank
/// lines kept as paragraph breaks, so `kubectl explain` wraps the text to the terminal
/// instead of breaking it where the source did.
fn flowing(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The string formats the API server validates (`supportedVersionedFormats` of
/// apiextensions-apiserver); `date-time` is its `datetime`.
const STRING_FORMATS: &[&str] = &[
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

/// A format the API server knows in place of `format`. Applying a CRD with a format it does
/// not know prints a warning (`unrecognized format "uint32"`), and the format is ignored
/// anyway. schemars' narrow and unsigned integers (`int8`, `uint16`, `uint32`...) become the
/// `int32` or `int64` that holds them (their bounds are in `minimum` and `maximum`); wider
/// ones and any other unknown format are dropped.
fn known_format(type_: Option<&str>, format: Option<String>) -> Option<String> {
    let format = format?;
    match (type_, format.as_str()) {
        (Some("integer"), "int32" | "int64") => Some(format),
        (Some("integer"), "int8" | "int16" | "uint8" | "uint16") => Some("int32".into()),
        (Some("integer"), "uint32") => Some("int64".into()),
        (Some("number"), "float" | "double") => Some(format),
        (Some("string"), f) if STRING_FORMATS.contains(&f) => Some(format),
        _ => None,
    }
}

/// The CRDs as one YAML stream, exactly as committed under `crds/`.
pub fn crds_yaml() -> Result<Vec<(String, String)>, serde_saphyr::ser::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let file = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            let body = serde_saphyr::to_string(&crd)?;
            Ok((
                file,
                format!("# Generated by `tumbler crds`; do not edit.\n{body}"),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_flow_and_keep_their_paragraphs() {
        assert_eq!(
            flowing("One line\nbroken here.\n\nA second paragraph."),
            "One line broken here.\n\nA second paragraph."
        );
        assert_eq!(flowing("Plain."), "Plain.");
    }

    #[test]
    fn formats_the_api_server_does_not_know_are_replaced_or_dropped() {
        let f = |t: &str, f: &str| known_format(Some(t), Some(f.to_string()));
        assert_eq!(f("integer", "int32").as_deref(), Some("int32"));
        assert_eq!(f("integer", "int64").as_deref(), Some("int64"));
        assert_eq!(f("integer", "uint16").as_deref(), Some("int32"));
        assert_eq!(f("integer", "uint32").as_deref(), Some("int64"));
        assert_eq!(f("integer", "uint64"), None);
        assert_eq!(f("integer", "uint"), None);
        assert_eq!(f("number", "double").as_deref(), Some("double"));
        assert_eq!(f("integer", "double"), None);
        assert_eq!(f("string", "date-time").as_deref(), Some("date-time"));
        assert_eq!(f("string", "int32"), None);
        assert_eq!(known_format(Some("string"), None), None);
    }
}
