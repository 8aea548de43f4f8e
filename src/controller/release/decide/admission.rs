//! Whether an Environment admits a Release: the namespace handshake (Gateway API's
//! `allowedRoutes.namespaces`) and the overlap of write targets.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::api::{Environment, FromNamespaces, Release};

use super::super::super::Error;

/// Whether observe must read the labels of the Release's namespace.
pub fn needs_namespace_labels(rel: &Release, env: &Environment) -> bool {
    rel.attached_across_namespaces()
        && env.spec.releases.namespaces.from == FromNamespaces::Selector
}

/// The refusal of a Release that the Environment does not admit; `None` when admitted.
/// `labels` are those of the Release's namespace (read when [`needs_namespace_labels`]).
pub fn refusal(
    rel: &Release,
    env: &Environment,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<Error> {
    if !rel.attached_across_namespaces() {
        return None;
    }
    namespace_refusal(env, &rel.namespace().unwrap_or_default(), labels)
}

/// Whether the Environment admits Releases of namespace `namespace` (another one than its
/// own), `labels` being that namespace's (read when it admits by selector): the refusal, or
/// `None`. Also what a Release following an upstream of `namespace` needs (promotion).
pub fn namespace_refusal(
    env: &Environment,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<Error> {
    let allowed = &env.spec.releases.namespaces;
    let (admitted, rule) = match allowed.from {
        FromNamespaces::All => (true, String::new()),
        FromNamespaces::Same => (
            false,
            "spec.releases.namespaces.from is Same: only Releases of its own namespace".into(),
        ),
        FromNamespaces::Selector => {
            let selector = allowed.selector.clone().unwrap_or_default();
            (
                labels.is_some_and(|l| matches(&selector, l)),
                format!(
                    "spec.releases.namespaces.selector {} does not match the namespace's labels",
                    describe(&selector)
                ),
            )
        }
    };
    (!admitted).then(|| Error::NotAllowed {
        environment: format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any()),
        namespace: namespace.to_string(),
        rule,
    })
}

/// Whether labels match a label selector (an empty selector matches everything).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

fn describe(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.extend(selector.match_expressions.iter().flatten().map(|e| {
        format!(
            "{} {} ({})",
            e.key,
            e.operator,
            e.values.clone().unwrap_or_default().join(",")
        )
    }));
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("tenant", "true")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["sandbox".into()]),
            }]),
        };
        assert!(matches(&sel, &labels(&[("tenant", "true")])));
        assert!(matches(
            &sel,
            &labels(&[("tenant", "true"), ("tier", "prod")])
        ));
        assert!(!matches(
            &sel,
            &labels(&[("tenant", "true"), ("tier", "sandbox")])
        ));
        assert!(!matches(&sel, &labels(&[("tenant", "false")])));
        assert!(!matches(&sel, &labels(&[])));
        assert!(matches(&LabelSelector::default(), &labels(&[])));
    }
}
