//! Git credentials of an Environment, read from its Secret. Shared by the controller and the
//! CLI; the values leave this module only inside [`Credentials`], whose `Debug` is redacted.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use crate::api::{Environment, RepositorySpec};
use crate::gitops::{Credentials, redact_url};

/// Why an Environment's credentials cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "Secret {name:?} not found in namespace {namespace:?}: create it with keys username/password or identity/known_hosts, or fix spec.repository.secretRef"
    )]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {name:?} has neither username/password nor identity keys")]
    InvalidSecret { name: String },
    #[error(
        "refusing to send credentials over plain http:// to {url}: use an https:// or ssh:// URL, or set spec.repository.insecure: true (tests and trusted networks only)"
    )]
    InsecureTransport { url: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The credentials of an Environment, from its Secret (`Credentials::None` without one).
pub async fn read(
    client: &kube::Client,
    env: &Environment,
) -> Result<Credentials, CredentialsError> {
    let Some(secret_ref) = env.spec.repository.secret_ref.as_ref() else {
        return Ok(Credentials::None);
    };
    check_transport(&env.spec.repository)?;
    let ns = env.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get_opt(&secret_ref.name)
        .await?
        .ok_or_else(|| CredentialsError::SecretNotFound {
            namespace: ns.clone(),
            name: secret_ref.name.clone(),
        })?;
    from_secret(&secret_ref.name, &secret)
}

/// Refuses a repository whose credentials would cross the network in clear text: a plain
/// `http://` URL, unless `spec.repository.insecure` allows it. Called when the Environment
/// has a Secret; without one nothing secret is sent.
pub fn check_transport(repo: &RepositorySpec) -> Result<(), CredentialsError> {
    let plain = repo
        .url
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    if plain && !repo.insecure {
        return Err(CredentialsError::InsecureTransport {
            url: redact_url(&repo.url),
        });
    }
    Ok(())
}

/// The credentials in a Secret's data: username/password, or an SSH identity.
pub fn from_secret(name: &str, secret: &Secret) -> Result<Credentials, CredentialsError> {
    let empty = Default::default();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let get = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .filter(|s| !s.is_empty())
    };
    match (get("username"), get("password"), get("identity")) {
        (Some(username), Some(password), _) => Ok(Credentials::Basic { username, password }),
        (_, _, Some(identity)) => Ok(Credentials::Ssh {
            identity,
            known_hosts: get("known_hosts"),
        }),
        _ => Err(CredentialsError::InvalidSecret {
            name: name.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn basic_ssh_and_invalid_secrets() {
        assert!(matches!(
            from_secret("s", &secret(&[("username", "u"), ("password", "p")])),
            Ok(Credentials::Basic { .. })
        ));
        assert!(matches!(
            from_secret("s", &secret(&[("identity", "key")])),
            Ok(Credentials::Ssh {
                known_hosts: None,
                ..
            })
        ));
        let err = from_secret("s", &secret(&[("username", "u"), ("password", "")])).unwrap_err();
        assert!(matches!(err, CredentialsError::InvalidSecret { .. }));
    }

    #[test]
    fn credentials_go_over_plain_http_only_when_allowed() {
        let repo = |url: &str, insecure: bool| RepositorySpec {
            url: url.into(),
            insecure,
            ..Default::default()
        };
        for url in ["https://h/x.git", "ssh://git@h/x.git", "file:///tmp/x.git"] {
            assert!(check_transport(&repo(url, false)).is_ok(), "{url}");
        }
        for url in ["http://bot:tok@h/x.git", "HTTP://h/x.git"] {
            let err = check_transport(&repo(url, false)).unwrap_err();
            assert!(
                matches!(&err, CredentialsError::InsecureTransport { url } if !url.contains("tok")),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains("https://") && msg.contains("ssh://"), "{msg}");
            assert!(msg.contains("spec.repository.insecure"), "{msg}");
            assert!(check_transport(&repo(url, true)).is_ok(), "{url}");
        }
    }
}
