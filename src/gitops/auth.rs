//! libgit2 callbacks for credentials and SSH host keys, and the mapping of libgit2's errors
//! to `GitError` with secrets removed.

use std::cell::Cell;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};

use super::{Credentials, GitError, WriterOptions, redact_text};

/// Callbacks that answer the first credential request and refuse the next (libgit2 asks
/// again after a rejection, forever if allowed).
pub fn callbacks<'a>(
    creds: &'a Credentials,
    host: &'a str,
    asked: &'a Cell<u32>,
) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |_url, username, allowed| {
        asked.set(asked.get() + 1);
        if asked.get() > 1 {
            return Err(git2::Error::new(
                ErrorCode::Auth,
                ErrorClass::Http,
                "credentials rejected",
            ));
        }
        match creds {
            Credentials::Basic { username, password }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, password)
            }
            Credentials::Ssh { identity, .. }
                if allowed.contains(CredentialType::SSH_KEY)
                    || allowed.contains(CredentialType::SSH_MEMORY) =>
            {
                Cred::ssh_key_from_memory(username.unwrap_or("git"), None, identity, None)
            }
            Credentials::Ssh { .. } if allowed.contains(CredentialType::USERNAME) => {
                Cred::username(username.unwrap_or("git"))
            }
            _ => Err(git2::Error::new(
                ErrorCode::Auth,
                ErrorClass::Http,
                "no credentials for this repository",
            )),
        }
    });
    cb.certificate_check(move |cert, _host| {
        let (
            Credentials::Ssh {
                known_hosts: Some(known),
                ..
            },
            Some(hostkey),
        ) = (creds, cert.as_hostkey())
        else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(key) = hostkey.hostkey() else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        if known_hosts_match(known, host, key) {
            Ok(CertificateCheckStatus::CertificateOk)
        } else {
            Err(git2::Error::new(
                ErrorCode::Certificate,
                ErrorClass::Ssh,
                "host key not in known_hosts",
            ))
        }
    });
    cb
}

/// Whether `known_hosts` lists `key` for `host` (plain host names; hashed entries and
/// markers are not supported).
pub fn known_hosts_match(known_hosts: &str, host: &str, key: &[u8]) -> bool {
    known_hosts.lines().any(|line| {
        let mut parts = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let host_matches = hosts.split(',').any(|h| {
            let h = h.trim_start_matches('[');
            let h = h.split(']').next().unwrap_or(h);
            h == host
        });
        host_matches && decode_base64(b64).is_some_and(|k| k == key)
    })
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | TABLE.iter().position(|t| *t == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The host of a URL, for known_hosts.
pub fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    authority.split(':').next().unwrap_or(authority).to_string()
}

/// Maps a libgit2 error of the network operation `operation` (`fetch`, `push`) to a
/// `GitError`, scrubbing secrets. `GitFailed` means libgit2 did not blame the network.
pub fn network_error(
    err: &git2::Error,
    url: &str,
    creds: &Credentials,
    asked: u32,
    operation: &str,
    opts: &WriterOptions,
) -> GitError {
    let url = redact_text(url);
    let mut message = redact_text(err.message());
    for secret in creds.secrets() {
        if !secret.is_empty() {
            message = message.replace(secret, "<redacted>");
        }
    }
    let lower = message.to_lowercase();
    // libgit2 1.9: "failed to connect to <host>: Operation timed out" (connect_timeout) and
    // "could not read from socket: timed out" / "could not write to socket: timed out"
    // (io_timeout, code GIT_TIMEOUT); libssh2 says "timed out waiting ...".
    if err.code() == ErrorCode::Timeout || lower.contains("timed out") {
        let limit = if lower.contains("connect") {
            opts.connect_timeout
        } else {
            opts.io_timeout
        };
        return GitError::Timeout {
            url,
            operation: operation.to_string(),
            after_secs: super::secs_ceil(limit),
        };
    }
    if err.code() == ErrorCode::Auth
        || lower.contains("authentication")
        || lower.contains("401")
        || lower.contains("credentials")
        || (asked > 1 && lower.contains("auth"))
    {
        return GitError::AuthenticationFailed { url };
    }
    if err.code() == ErrorCode::Certificate {
        return GitError::AuthenticationFailed { url };
    }
    match err.class() {
        ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssh | ErrorClass::Os | ErrorClass::Ssl => {
            GitError::RepositoryUnreachable { url, message }
        }
        _ if lower.contains("could not find repository")
            || lower.contains("not found")
            || lower.contains("failed to resolve path") =>
        {
            GitError::RepositoryUnreachable { url, message }
        }
        _ => GitError::GitFailed { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_scheme_user_and_port() {
        assert_eq!(
            host_of("ssh://git@github.com:22/acme/gitops.git"),
            "github.com"
        );
        assert_eq!(
            host_of("https://user:tok@git.example.com/x.git"),
            "git.example.com"
        );
    }

    #[test]
    fn known_hosts_matches_host_and_key() {
        let key = b"\x00\x00\x00\x0bssh-ed25519key";
        let b64 = "AAAAC3NzaC1lZDI1NTE5a2V5";
        assert_eq!(decode_base64(b64).unwrap(), key);
        let known = format!("github.com,140.82.112.3 ssh-ed25519 {b64}\n");
        assert!(known_hosts_match(&known, "github.com", key));
        assert!(!known_hosts_match(&known, "gitlab.com", key));
        assert!(!known_hosts_match(&known, "github.com", b"other"));
    }
}
