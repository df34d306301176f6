# syntax=docker/dockerfile:1.7
# alula-server: the control plane (admin and propeller are the same binary, split by ALULA_ROLE).
# Build from the repository root:
#   docker build -f deploy/docker/server.Dockerfile -t alula-server .

# alula-server needs Rust 1.89 (kube 5); the workspace's rust-version is the floor, not a pin.
ARG RUST_VERSION=1.90
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# Only what the workspace needs to resolve and build: the proto tree is read by rust/idl's build
# script, the lock file pins every dependency (--locked).
COPY Cargo.toml Cargo.lock ./
COPY proto ./proto
COPY rust ./rust
# The registry and target dir live in cache mounts, so rebuilds after a source change only
# recompile what changed; the binary is copied out of the mount before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p alula-server \
    && install -D -m 0755 target/release/alula-server /out/alula-server

FROM debian:bookworm-slim
# ca-certificates: TLS to S3, an external PostgreSQL and the Kubernetes API.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid, so that runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 alula \
    && useradd --system --uid 10001 --gid alula --home-dir /var/lib/alula --create-home alula
COPY --from=builder /out/alula-server /usr/local/bin/alula-server
USER 10001:10001
WORKDIR /var/lib/alula
# A container listens on its own address, so a server others can reach: with authentication
# off (ALULA_AUTH unset) it refuses to start and says what to set. Closed by default: choose
# ALULA_AUTH=builtin|oidc (the Helm chart's default is builtin), or accept an open API
# explicitly with ALULA_INSECURE_NO_AUTH=1; see the README's "Security".
ENV ALULA_HOST=0.0.0.0 \
    ALULA_STORAGE_ROOT=/var/lib/alula
# gRPC (flyteidl services), HTTP (REST gateway, signed data URLs, health and metrics).
EXPOSE 8089 8088
ENTRYPOINT ["/usr/local/bin/alula-server"]
