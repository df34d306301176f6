# syntax=docker/dockerfile:1.7
# The default task image (the SDK's default, ghcr.io/alula-dev/alula-task:<version>): Python with
# the alula SDK, so that the task pods' entrypoints (alula-execute, alula-map-execute,
# alula-fast-execute) are on PATH, and alula-copilot, the init container and sidecar of
# raw-container tasks (the chart's tasks.copilot.image is this image). Build from the repository
# root:
#   docker build -f deploy/docker/task.Dockerfile -t alula-task .
# Images of your own: `pip install alula` (or this wheel) on top of any Python >= 3.10 image.

ARG RUST_VERSION=1.90
ARG PYTHON_VERSION=3.11
FROM rust:${RUST_VERSION}-bookworm AS builder
# maturin drives cargo and packs alula._native with the python/ sources (pyproject.toml). The
# extension is abi3 (Python >= 3.10), so the builder's python3 only runs maturin.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --no-cache-dir 'maturin>=1.8,<2'
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY proto ./proto
COPY rust ./rust
COPY python ./python
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    /opt/maturin/bin/maturin build --release --locked --out /wheels \
    && cargo build --release --locked -p alula-copilot \
    && install -D -m 0755 target/release/alula-copilot /out/alula-copilot

# The same Debian release as the builder: the wheel links against its glibc.
FROM python:${PYTHON_VERSION}-slim-bookworm
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/alula-*.whl
COPY --from=builder /out/alula-copilot /usr/local/bin/alula-copilot
RUN groupadd --system --gid 10001 alula \
    && useradd --system --uid 10001 --gid alula --home-dir /home/alula --create-home alula
USER 10001:10001
WORKDIR /home/alula
ENV PYTHONUNBUFFERED=1
