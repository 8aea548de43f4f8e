# syntax=docker/dockerfile:1
# The controller image: the release binary, the shared libraries it needs and a nonroot
# user, on an empty base, running as 65532. The filesystem is made by e2e/image/rootfs.sh,
# the same script that builds the image without Docker for the local cluster's real node
# (e2e/node.sh), so both ways give one layout; USER, ENTRYPOINT and CMD are those of
# e2e/image/image.json (tests/image.rs checks both).
# Build: docker build -t ghcr.io/tumbler-dev/tumbler:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits reuse the cached layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/e2e \
 && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
 && echo 'fn main() {}' > benches/tumbler.rs && echo 'fn main() {}' > tests/e2e/main.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
COPY e2e/image/rootfs.sh ./e2e/image/rootfs.sh
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
 && e2e/image/rootfs.sh target/release/tumbler /rootfs

FROM scratch
COPY --from=build /rootfs /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/tumbler"]
CMD ["controller"]
