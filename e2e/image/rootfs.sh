#!/usr/bin/env bash
# The controller image's filesystem, without Docker: the tumbler binary at /tumbler, the
# shared libraries it needs at the paths ldd resolves them to (the dynamic loader
# included), a passwd/group with the nonroot user 65532, the CA bundle, /tmp and
# /home/nonroot. The Dockerfile runs this same script in its build stage and copies the
# result into an empty image, so both ways of building give one layout; this script is the
# reference (tests/image.rs checks the Dockerfile against it and against image.json).
#
#   e2e/image/rootfs.sh BINARY DEST
set -euo pipefail
binary=${1:?usage: rootfs.sh BINARY DEST} dest=${2:?usage: rootfs.sh BINARY DEST}
[ -x "$binary" ] || { echo "rootfs: $binary is not an executable" >&2; exit 1; }
rm -rf "$dest"; mkdir -p "$dest"
install -m 0755 "$binary" "$dest/tumbler"
# Every library ldd resolves, and the loader (the line without '=>').
libs=$(ldd "$binary" | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(0x/ {print $1}')
for lib in $libs; do
  real=$(readlink -f "$lib")
  install -D -m 0755 "$real" "$dest$lib"
done
mkdir -p "$dest/etc/ssl/certs" "$dest/home/nonroot" "$dest/tmp"
chmod 1777 "$dest/tmp"
chown 65532:65532 "$dest/home/nonroot" 2>/dev/null || true
cat > "$dest/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$dest/etc/group" <<GROUP
root:x:0:
nonroot:x:65532:
GROUP
# git over https (libgit2 with its vendored OpenSSL) verifies against the system bundle.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
fi
