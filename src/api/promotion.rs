//! Promotion between Environments: a Release follows another one (`spec.follow`) and takes
//! over its version and artifact once that one has been Ready for a soak time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ROLLBACK_ANNOTATION, Release};

/// The Release to follow, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// The followed (upstream) Release.
    pub release: FollowedRelease,
    /// How long the upstream must have been Ready at a version before it is promoted, e.g.
    /// `30m`, `1h30m`, `45s`. Default `0s`: as soon as it is Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]{1,6}(s|m|h))+$"))]
    pub soak: Option<String>,
    /// Promote by itself (default true). When false, `tumbler promote <release>` promotes on
    /// demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<bool>,
}

/// A Release by name, in this namespace or another one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowedRelease {
    /// Name of the followed Release.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Its namespace; default: this Release's. Another namespace must be admitted by this
    /// Release's Environment (`spec.releases.namespaces`), as if it released there itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
}

/// What a follower knows of its upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionStatus {
    /// The followed Release, `<namespace>/<name>`.
    pub upstream: String,
    /// The version the upstream is Ready at, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the upstream became Ready at `version` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_since: Option<String>,
    /// When the soak of `version` ends (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotable_at: Option<String>,
    /// Versions seen failed upstream (newest first, at most 20): never promoted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_versions: Vec<String>,
}

/// Annotation the promotion puts on a follower: `<namespace>/<name>@<version>` of the
/// upstream it took the version from.
pub const PROMOTED_FROM_ANNOTATION: &str = "tumbler.dev/promoted-from";

/// The condition type on followers: `True` when the follower runs the version its upstream
/// is Ready at; `False` with the reason why not (soaking, held, upstream not Ready...).
pub const PROMOTED: &str = "Promoted";

/// The field manager of the controller's promotion patch (the `Tumbler-Requested-By` of
/// automatic promotions).
pub const PROMOTION_MANAGER: &str = "tumbler-promotion";

/// How many failed upstream versions a follower remembers.
pub const FAILED_VERSIONS_KEPT: usize = 20;

/// A soak duration (`30m`, `1h30m`, `45s`) in seconds; `None` when malformed.
pub fn parse_soak(s: &str) -> Option<u64> {
    // `spec.expiry`'s parser, without days (Go's durations have none).
    if s.contains('d') {
        return None;
    }
    super::parse_duration(s).map(|d| d.as_secs())
}

impl Follow {
    /// `(namespace, name)` of the upstream, the follower's namespace by default.
    pub fn upstream_key(&self, follower_ns: &str) -> (String, String) {
        (
            self.release
                .namespace
                .clone()
                .unwrap_or_else(|| follower_ns.to_string()),
            self.release.name.clone(),
        )
    }

    /// Whether promotion happens by itself.
    pub fn auto(&self) -> bool {
        self.auto.unwrap_or(true)
    }

    /// The soak in seconds (0 when unset or malformed: the schema refuses malformed ones).
    pub fn soak_seconds(&self) -> u64 {
        self.soak.as_deref().and_then(parse_soak).unwrap_or(0)
    }
}

impl Release {
    /// `<namespace>/<name>@<version>` of the upstream this Release's current version was
    /// promoted from, while its spec is still that version (the annotation
    /// [`PROMOTED_FROM_ANNOTATION`] is left behind by later hand edits, and then ignored).
    pub fn promoted_from(&self) -> Option<String> {
        let value = self
            .metadata
            .annotations
            .as_ref()?
            .get(PROMOTED_FROM_ANNOTATION)?;
        let (_, version) = value.rsplit_once('@')?;
        (version == self.spec.version).then(|| value.clone())
    }

    /// Whether automatic promotion is held: a person rolled this Release back (`tumbler
    /// rollback` sets [`ROLLBACK_ANNOTATION`]) and has not released the hold yet (`tumbler
    /// promote`, or removing the annotation).
    pub fn promotion_held(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(ROLLBACK_ANNOTATION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soaks_parse_as_go_durations_do() {
        assert_eq!(parse_soak("30m"), Some(1800));
        assert_eq!(parse_soak("1h30m"), Some(5400));
        assert_eq!(parse_soak("45s"), Some(45));
        assert_eq!(parse_soak("0s"), Some(0));
        for bad in ["", "30", "m", "1d", "1.5h", "-1s", "1h 30m"] {
            assert_eq!(parse_soak(bad), None, "{bad}");
        }
    }
}
