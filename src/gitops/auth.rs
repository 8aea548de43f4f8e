//! libgit2 callbacks for credentials and SSH host keys, and the mapping of libgit2's errors
//! to `GitError` with secrets removed.

use std::cell::Cell;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{Credentials, GitError, WriterOptions, redact_text};

/// Callbacks that answer the first credential request and refuse the next (libgit2 asks
/// again after a rejection, forever if allowed). `host` is the server's name in
/// known_hosts ([`known_hosts_name`]).
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

/// Whether `known_hosts` lists `key` for `host`, the name OpenSSH looks up (`host`, or
/// `[host]:port` off port 22: see [`known_hosts_name`]). Host fields are comma-separated
/// names, compared exactly, or hashed entries as `ssh-keyscan -H` / `ssh-keygen -H` write
/// them (`|1|<base64 salt>|<base64 HMAC-SHA1 of the name keyed by the salt>`). A
/// `@revoked` line for the key refuses it; `@cert-authority` lines (certificates) and
/// wildcard patterns are not supported and match nothing.
pub fn known_hosts_match(known_hosts: &str, host: &str, key: &[u8]) -> bool {
    let mut listed = false;
    for line in known_hosts.lines() {
        let mut parts = line.split_whitespace();
        let Some(mut hosts) = parts.next() else {
            continue;
        };
        let marker = hosts.strip_prefix('@');
        if marker.is_some() {
            let Some(next) = parts.next() else { continue };
            hosts = next;
        }
        let (Some(_kind), Some(b64)) = (parts.next(), parts.next()) else {
            continue;
        };
        if hosts.starts_with('#') || decode_base64(b64).is_none_or(|k| k != key) {
            continue;
        }
        if !hosts.split(',').any(|pattern| host_matches(pattern, host)) {
            continue;
        }
        match marker {
            None => listed = true,
            Some("revoked") => return false,
            Some(_) => {}
        }
    }
    listed
}

/// Whether one host pattern of a known_hosts line names `host` (exactly, or hashed).
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("|1|") {
        Some(hashed) => {
            let Some((salt, hash)) = hashed.split_once('|') else {
                return false;
            };
            let (Some(salt), Some(hash)) = (decode_base64(salt), decode_base64(hash)) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
                return false;
            };
            mac.update(host.as_bytes());
            // Constant-time comparison, as the hmac crate does it.
            mac.verify_slice(&hash).is_ok()
        }
        None => pattern == host,
    }
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

/// The name known_hosts lists a repository URL's server under: its host, or `[host]:port`
/// when the URL names a port other than 22 (as `ssh` looks it up and `ssh-keyscan -p`
/// writes it).
pub fn known_hosts_name(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
    // `git@host:path` (scp-like, no scheme) has a path, not a port, after the colon.
    let port = if url.contains("://") { port } else { "" };
    match port.parse::<u16>() {
        Ok(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    }
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
    fn known_hosts_names_carry_ports_other_than_22() {
        assert_eq!(
            known_hosts_name("ssh://git@github.com:22/acme/gitops.git"),
            "github.com"
        );
        assert_eq!(
            known_hosts_name("ssh://git@git.example.com:2222/acme/gitops.git"),
            "[git.example.com]:2222"
        );
        assert_eq!(
            known_hosts_name("https://user:tok@git.example.com/x.git"),
            "git.example.com"
        );
        assert_eq!(known_hosts_name("git@github.com:acme/x.git"), "github.com");
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
        let port = format!("[git.example.com]:2222 ssh-ed25519 {b64}\n");
        assert!(known_hosts_match(&port, "[git.example.com]:2222", key));
        assert!(!known_hosts_match(&port, "git.example.com", key));
        assert!(!known_hosts_match(&port, "[git.example.com]:2200", key));
    }

    /// A real ed25519 host key (`ssh-keygen -t ed25519`; its private half was discarded).
    const HOST_KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIKfGpzbmg4qJk1teHqMUeG2O8swC9aPNmexZpNgLJLZo";

    /// `github.com` and `[git.example.com]:2222` with [`HOST_KEY`], hashed once by
    /// `ssh-keygen -H -f known_hosts` (OpenSSH 9.2p1); `ssh-keygen -F` finds both names in it.
    const HASHED_FIXTURE: &str = "\
|1|DJaSkg10s7YPXzLTzGsuzKi5yKs=|J0unIdxqmvz0PTr1pwFKOlPxOWQ= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKfGpzbmg4qJk1teHqMUeG2O8swC9aPNmexZpNgLJLZo
|1|GzIYI2NAn9Ge3gsj8XPNnrkQaMY=|GEAAUMgc5jm3xC3Tg9OSXgsOarE= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKfGpzbmg4qJk1teHqMUeG2O8swC9aPNmexZpNgLJLZo
";

    fn check_hashed(known: &str) {
        let key = decode_base64(HOST_KEY).unwrap();
        assert!(known.lines().all(|l| l.starts_with("|1|")), "{known}");
        assert!(known_hosts_match(known, "github.com", &key), "{known}");
        assert!(known_hosts_match(known, "[git.example.com]:2222", &key));
        assert!(!known_hosts_match(known, "git.example.com", &key));
        assert!(!known_hosts_match(known, "gitlab.com", &key));
        assert!(!known_hosts_match(known, "github.com", b"another key"));
    }

    #[test]
    fn hashed_known_hosts_entries_match_their_host_and_port() {
        check_hashed(HASHED_FIXTURE);
    }

    /// The same, hashed by this machine's `ssh-keygen -H` when there is one (new salts).
    #[test]
    fn known_hosts_hashed_by_ssh_keygen_match() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            format!(
                "github.com ssh-ed25519 {HOST_KEY}\n[git.example.com]:2222 ssh-ed25519 {HOST_KEY}\n"
            ),
        )
        .unwrap();
        let hashed = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .output();
        match hashed {
            Ok(out) if out.status.success() => {
                check_hashed(&std::fs::read_to_string(&file).unwrap());
            }
            _ => eprintln!("ssh-keygen not available: only the fixture is checked"),
        }
    }

    #[test]
    fn revoked_keys_and_malformed_hashes_do_not_match() {
        let key = decode_base64(HOST_KEY).unwrap();
        let revoked = format!(
            "github.com ssh-ed25519 {HOST_KEY}\n@revoked github.com ssh-ed25519 {HOST_KEY}\n"
        );
        assert!(!known_hosts_match(&revoked, "github.com", &key));
        let ca = format!("@cert-authority github.com ssh-ed25519 {HOST_KEY}\n");
        assert!(!known_hosts_match(&ca, "github.com", &key));
        for bad in [
            "|1|",
            "|1|abc",
            "|1|!!|!!",
            "|2|DJaSkg10s7YPXzLTzGsuzKi5yKs=|J0unIdxqmvz0PTr1pwFKOlPxOWQ=",
        ] {
            let line = format!("{bad} ssh-ed25519 {HOST_KEY}\n");
            assert!(!known_hosts_match(&line, "github.com", &key), "{bad}");
        }
    }
}
