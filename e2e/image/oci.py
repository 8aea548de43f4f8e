#!/usr/bin/env python3
"""An OCI image archive from a directory, without Docker and without a registry.

    e2e/image/oci.py ROOTFS NAME:TAG OUT.tar [--config image.json] [--user U]
                     [--entrypoint JSON] [--cmd JSON] [--env K=V ...]

One uncompressed layer holding ROOTFS (owners and modes kept, times zeroed, entries sorted:
the same tree gives the same digest), its config, a manifest, and both an OCI layout
(index.json, naming the image for `ctr images import`) and a docker-archive manifest.json
(for `docker load`).
"""
import argparse
import hashlib
import io
import json
import os
import tarfile


def layer_tar(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                arc = os.path.relpath(path, rootfs)
                info = tar.gettarinfo(path, arcname=arc)
                info.mtime = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rootfs")
    p.add_argument("name")
    p.add_argument("out")
    p.add_argument("--config")
    p.add_argument("--user")
    p.add_argument("--entrypoint")
    p.add_argument("--cmd")
    p.add_argument("--env", action="append", default=[])
    a = p.parse_args()

    conf = {}
    if a.config:
        with open(a.config) as f:
            conf = json.load(f)
    user = a.user or conf.get("user", "")
    entrypoint = json.loads(a.entrypoint) if a.entrypoint else conf.get("entrypoint")
    cmd = json.loads(a.cmd) if a.cmd else conf.get("cmd")
    env = conf.get("env", []) + a.env

    layer = layer_tar(a.rootfs)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {k: v for k, v in {"User": user, "Entrypoint": entrypoint, "Cmd": cmd, "Env": env}.items() if v},
        "rootfs": {"type": "layers", "diff_ids": [blob(layer)]},
        "history": [{"created_by": "e2e/image/oci.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": blob(manifest_bytes),
            "size": len(manifest_bytes),
            "annotations": {"io.containerd.image.name": a.name, "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]},
        }],
    }
    path = lambda d: "blobs/sha256/" + d.split(":", 1)[1]
    docker = [{"Config": path(blob(config_bytes)), "RepoTags": [a.name], "Layers": [path(blob(layer))]}]

    with tarfile.open(a.out, "w") as out:
        def put(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            out.addfile(info, io.BytesIO(data))
        put("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        put("index.json", json.dumps(index, sort_keys=True).encode())
        put("manifest.json", json.dumps(docker).encode())
        for data in (layer, config_bytes, manifest_bytes):
            put(path(blob(data)), data)
    print(blob(manifest_bytes))


if __name__ == "__main__":
    main()
