# syntax=docker/dockerfile:1
# The controller image: a static-ish Rust binary on distroless, running as non-root.
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
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
 && install -D target/release/tumbler /out/tumbler

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tumbler /tumbler
USER 65532:65532
ENTRYPOINT ["/tumbler"]
CMD ["controller"]
