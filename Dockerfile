# The liberator image: static binaries on distroless, run as non-root:
# /liberator (the entrypoint: controller, CLI, and `liberator agent`) and
# /liberator-agent, the agent alone (cmd/liberator-agent), which the agent
# DaemonSet runs for its smaller memory footprint.
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse --short HEAD) \
#       --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t ghcr.io/liberator-dev/liberator:v0.1.0 .
#
# `make image` runs this where a Docker engine answers, and otherwise writes
# the same image, on an empty base, with hack/imagebuild (no engine needed).
# Needs BuildKit (the default builder of Docker 23 and later). Both
# platforms in one index: docker buildx build --platform linux/amd64,linux/arm64 ...
#
# Every base is pinned by digest (name:tag@sha256:...): the digest decides
# what is pulled, the tag only says where it was taken from. To move a base,
# take the tag's current index digest from the registry (crane digest
# golang:1.26, or docker buildx imagetools inspect) and update the FROM line
# and the stage's org.opencontainers.image.base.digest label together
# (hack/imagebuild's TestDockerfileBasesPinned checks they agree).

FROM --platform=$BUILDPLATFORM golang:1.26@sha256:3aff6657219a4d9c14e27fb1d8976c49c29fddb70ba835014f477e1c70636647 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
    -ldflags "-s -w \
      -X github.com/liberator-dev/liberator/internal/cli.Version=${VERSION} \
      -X github.com/liberator-dev/liberator/internal/cli.Commit=${COMMIT} \
      -X github.com/liberator-dev/liberator/internal/cli.Date=${DATE}" \
    -o /out/liberator ./cmd/liberator \
    && GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
    -ldflags "-s -w -X main.Version=${VERSION} -X main.Commit=${COMMIT} -X main.Date=${DATE}" \
    -o /out/liberator-agent ./cmd/liberator-agent

# The same binaries on Debian with the ClusterLabs fence agents, for fence
# classes with provider fence-agent (docs/fencing.md), which run
# fence_ipmilan & co. as child processes. Not built by default:
#   docker build --target fence-agents -t ghcr.io/liberator-dev/liberator:v0.1.0-fence-agents .
FROM debian:bookworm-slim@sha256:7b140f374b289a7c2befc338f42ebe6441b7ea838a042bbd5acbfca6ec875818 AS fence-agents
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fence-agents ipmitool ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd -g 65532 nonroot && useradd -u 65532 -g 65532 -M -d /home/nonroot -s /usr/sbin/nologin nonroot
LABEL org.opencontainers.image.title="liberator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.source="https://github.com/liberator-dev/liberator" \
      org.opencontainers.image.base.name="debian:bookworm-slim" \
      org.opencontainers.image.base.digest="sha256:7b140f374b289a7c2befc338f42ebe6441b7ea838a042bbd5acbfca6ec875818"
COPY --from=build /out/liberator /liberator
COPY --from=build /out/liberator-agent /liberator-agent
USER 65532:65532
ENTRYPOINT ["/liberator"]

# The default image (the last stage). distroless/static: CA certificates,
# tzdata, /etc/passwd with the nonroot user (65532); no shell, no package
# manager.
FROM gcr.io/distroless/static:nonroot@sha256:f7f8f729987ad0fdf6b05eeeae94b26e6a0f613bdf46feea7fc40f7bd72953e6
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
LABEL org.opencontainers.image.title="liberator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.source="https://github.com/liberator-dev/liberator" \
      org.opencontainers.image.base.name="gcr.io/distroless/static:nonroot" \
      org.opencontainers.image.base.digest="sha256:f7f8f729987ad0fdf6b05eeeae94b26e6a0f613bdf46feea7fc40f7bd72953e6"
COPY --from=build /out/liberator /liberator
COPY --from=build /out/liberator-agent /liberator-agent
USER 65532:65532
ENTRYPOINT ["/liberator"]
