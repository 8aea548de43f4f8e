//! Git credentials of an Environment, read from its Secret. Shared by the controller and the
//! CLI; the values leave this module only inside [`Credentials`], whose `Debug` is redacted.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use crate::api::Environment;
use crate::gitops::Credentials;

/// Why an Environment's credentials cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "Secret {name:?} not found in namespace {namespace:?}: create it with keys username/password or identity/known_hosts, or fix spec.repository.secretRef"
    )]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {name:?} has neither username/password nor identity keys")]
    InvalidSecret { name: String },
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
}
