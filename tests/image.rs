//! The controller image built without Docker (e2e/image/rootfs.sh + e2e/image/oci.py, what
//! the local cluster's real node runs) and the Dockerfile agree: the Dockerfile's final
//! stage is the script's filesystem on an empty base with the USER, ENTRYPOINT, CMD and ENV
//! of e2e/image/image.json; the script's layout (the reference) is the binary, every
//! library it links at ldd's path, a nonroot user 65532, the CA bundle, /tmp and
//! /home/nonroot; and the archive oci.py writes holds exactly that file list and that
//! configuration. No Docker needed.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn image_json() -> Value {
    let text = std::fs::read_to_string(root().join("e2e/image/image.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The instructions of the Dockerfile's last stage, as (INSTRUCTION, rest), continuation
/// lines joined.
fn final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let word = word.to_uppercase();
        if word == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("an instruction before FROM")
            .push((word, rest.trim().to_string()));
    }
    stages.pop().expect("a FROM in the Dockerfile")
}

/// Every path under `dir`, relative, with a trailing `/` for directories.
fn file_list(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"));
                walk(base, &e.path(), out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dockerfile_final_stage_is_the_scripts_layout_with_the_images_configuration() {
    let stage = final_stage();
    let conf = image_json();
    let get = |word: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(w, _)| w == word)
            .map(|(_, r)| r.as_str())
            .collect()
    };
    assert_eq!(get("FROM"), ["scratch"], "the final stage starts empty");
    assert_eq!(
        get("COPY"),
        ["--from=build /rootfs /"],
        "only the script's filesystem is copied"
    );
    assert!(get("RUN").is_empty() && get("ADD").is_empty(), "{stage:?}");
    assert_eq!(get("USER"), [conf["user"].as_str().unwrap()]);
    let json_of = |word: &str| -> Value { serde_json::from_str(get(word)[0]).unwrap() };
    assert_eq!(json_of("ENTRYPOINT"), conf["entrypoint"]);
    assert_eq!(json_of("CMD"), conf["cmd"]);
    let env: BTreeSet<String> = get("ENV")
        .iter()
        .flat_map(|r| r.split_whitespace())
        .map(String::from)
        .collect();
    let want: BTreeSet<String> = conf["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(env, want);
    // The build stage makes /rootfs with the same script from the release binary.
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        text.contains("e2e/image/rootfs.sh target/release/tumbler /rootfs"),
        "the Dockerfile's build stage must run e2e/image/rootfs.sh"
    );
}

#[test]
fn script_layout_and_its_oci_archive_hold_the_binary_its_libraries_and_the_nonroot_user() {
    // This test's own executable links the libraries a Rust binary of this crate does.
    let binary = std::env::current_exe().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    run(Command::new(root().join("e2e/image/rootfs.sh"))
        .arg(&binary)
        .arg(&rootfs));
    let files = file_list(&rootfs);

    let mut want: BTreeSet<String> = [
        "tumbler",
        "etc/",
        "etc/passwd",
        "etc/group",
        "etc/ssl/",
        "etc/ssl/certs/",
        "home/",
        "home/nonroot/",
        "tmp/",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        want.insert("etc/ssl/certs/ca-certificates.crt".into());
    }
    let ldd = run(Command::new("ldd").arg(&binary));
    let mut libs = 0;
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if !path.starts_with('/') {
            continue; // linux-vdso
        }
        libs += 1;
        let rel = path.trim_start_matches('/');
        let mut dir = Path::new(rel).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            want.insert(format!("{}/", d.display()));
            dir = d.parent();
        }
        want.insert(rel.to_string());
    }
    assert!(libs >= 2, "libc and the loader at least: {ldd}");
    assert_eq!(files, want, "the script's layout");

    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    let user = image_json()["user"].as_str().unwrap().to_string();
    let (uid, gid) = user.split_once(':').unwrap();
    assert!(
        passwd.contains(&format!("nonroot:x:{uid}:{gid}:nonroot:/home/nonroot:")),
        "{passwd}"
    );
    use std::os::unix::fs::PermissionsExt;
    let tmp_mode = std::fs::metadata(rootfs.join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(tmp_mode & 0o7777, 0o1777);

    // The archive: one layer holding exactly these files, the configuration of image.json,
    // and the name ctr imports it under.
    let archive = tmp.path().join("image.tar");
    run(Command::new("python3")
        .arg(root().join("e2e/image/oci.py"))
        .arg(&rootfs)
        .arg("ghcr.io/tumbler-dev/tumbler:test")
        .arg(&archive)
        .arg("--config")
        .arg(root().join("e2e/image/image.json")));
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp.path()));
    let read_json = |rel: &str| -> Value {
        let mut s = String::new();
        std::fs::File::open(tmp.path().join(rel))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let index = read_json("index.json");
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "ghcr.io/tumbler-dev/tumbler:test"
    );
    let manifest = read_json(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    let conf = image_json();
    assert_eq!(config["config"]["User"], conf["user"]);
    assert_eq!(config["config"]["Entrypoint"], conf["entrypoint"]);
    assert_eq!(config["config"]["Cmd"], conf["cmd"]);
    assert_eq!(config["config"]["Env"], conf["env"]);
    let layer = tmp
        .path()
        .join(blob(manifest["layers"][0]["digest"].as_str().unwrap()));
    let layer_files: BTreeSet<String> = run(Command::new("tar").arg("-tf").arg(&layer))
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        layer_files, files,
        "the archive's layer is the script's layout"
    );
}
