//! `tumbler promote RELEASE`: promotes, now, the version the followed Release is Ready at
//! into a follower (`spec.follow`), and releases the hold a rollback by hand put on its
//! automatic promotion. Refuses when the followed Release is not Ready.

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::KubeArgs;
use crate::api::Release;
use crate::controller::release::decide::promotion::{self, Promote};
use crate::{Error, Result};

/// Options of `tumbler promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The following Release (in -n, default: the context's namespace).
    pub release: String,
}

/// The field manager of `tumbler promote`'s patch: the `Tumbler-Requested-By` of the
/// promotion commit it leads to.
pub const PROMOTE_MANAGER: &str = "tumbler-promote";

fn err(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

pub fn promote(flags: &KubeArgs, args: PromoteArgs) -> Result<()> {
    if flags.all_namespaces {
        return Err(err(
            "promote: -A does not apply; -n names the Release's namespace",
        ));
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        path: "tokio runtime".into(),
        source,
    })?;
    runtime.block_on(async move {
        let (client, ns) = flags.client_and_namespace().await?;
        let releases = Api::<Release>::namespaced(client.clone(), &ns);
        let rel = releases
            .get_opt(&args.release)
            .await
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| {
                err(format!(
                    "Release {:?} not found in namespace {ns:?}",
                    args.release
                ))
            })?;
        let follow = rel.spec.follow.as_ref().ok_or_else(|| {
            err(format!(
                "Release {:?} follows no other Release (spec.follow): nothing to promote from",
                args.release
            ))
        })?;
        let (up_ns, up_name) = follow.upstream_key(&ns);
        let up = Api::<Release>::namespaced(client.clone(), &up_ns)
            .get_opt(&up_name)
            .await
            .map_err(|e| err(format!("followed Release {up_ns}/{up_name}: {e}")))?
            .ok_or_else(|| err(format!("the followed Release {up_ns}/{up_name} does not exist")))?;
        let Some((version, _)) = promotion::ready_at(&up) else {
            let st = up.status.clone().unwrap_or_default();
            return Err(err(format!(
                "the followed Release {up_ns}/{up_name} is not Ready at version {} (phase {}{}); nothing promoted",
                up.spec.version,
                st.phase,
                st.message.map(|m| format!(": {m}")).unwrap_or_default()
            )));
        };
        let failed = rel
            .status
            .as_ref()
            .and_then(|s| s.promotion.as_ref())
            .is_some_and(|p| p.failed_versions.contains(&version));
        if failed {
            return Err(err(format!(
                "version {version} failed in {up_ns}/{up_name} before; it is not promoted (set spec.version by hand to take it anyway)"
            )));
        }
        let artifact = promotion::artifact_of(&rel, &up).map_err(err)?;
        let p = Promote {
            version: version.clone(),
            artifact,
            from: format!("{up_ns}/{up_name}@{version}"),
        };
        let held = rel.promotion_held();
        let body = promotion::patch(&p, rel.metadata.resource_version.as_deref(), true);
        let params = PatchParams {
            field_manager: Some(PROMOTE_MANAGER.into()),
            ..PatchParams::default()
        };
        releases
            .patch(&rel.name_any(), &params, &Patch::Merge(&body))
            .await
            .map_err(|e| err(e.to_string()))?;
        let hold = if held {
            "; the hold of its rollback is released"
        } else {
            ""
        };
        if rel.spec.version == version {
            println!(
                "release.tumbler.dev/{} already at version {version} of {up_ns}/{up_name}{hold}",
                args.release
            );
        } else {
            println!(
                "release.tumbler.dev/{} promoted from {} to {version} ({up_ns}/{up_name}){hold}",
                args.release, rel.spec.version
            );
        }
        Ok(())
    })
}
