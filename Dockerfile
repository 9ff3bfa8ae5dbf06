# rtpbridge container image: Debian trixie, static minimal FFmpeg, non-root, port 9100.
#
#   docker build -t rtpbridge .
#
#   # Host networking (for real use, and for WebRTC): media_ip is an address of the host that
#   # the peers reach; the control port, which has no authentication, on loopback only.
#   docker run -d --name rtpbridge --stop-timeout 330 --network host --read-only --tmpfs /tmp \
#       -v /srv/rtpbridge/recordings:/var/lib/rtpbridge/recordings \
#       rtpbridge -c /etc/rtpbridge/rtpbridge.toml --listen 127.0.0.1:9100 --media-ip <host address>
#
#   # Bridge networking (local tries only): media_ip must be the container's own address, so
#   # give it a fixed one; publish control on loopback and the RTP range 1:1.
#   docker network create --subnet 172.28.0.0/24 rtpbridge-media
#   docker run -d --name rtpbridge --stop-timeout 330 --network rtpbridge-media --ip 172.28.0.10 \
#       -p 127.0.0.1:9100:9100 -p 30000-30199:30000-30199/udp \
#       rtpbridge -c /etc/rtpbridge/rtpbridge.toml --media-ip 172.28.0.10
#
# rtpbridge refuses to start when it cannot bind media_ip (e.g. the host's address given to a
# container on a bridge network) and creates cache_dir (/tmp/rtpbridge-cache) at start-up:
# with --read-only add --tmpfs /tmp, and mount recordings writable for the container's uid
# (10001, or --user). See deploy/README.md for networking (media_ip, host networking vs
# published UDP ports) and for graceful shutdown timing (`docker stop` waits only 10 s by
# default: give it more than shutdown_max_wait_secs, e.g. --stop-timeout 330).
#
# Nothing here names a package mirror: apt uses the sources the base images ship with, and Go
# uses its default module proxy. Both can be redirected at build time without editing this file:
#   --build-arg GOPROXY=...            (Go module proxy)
#   --build-arg FFMPEG_APT_MIRROR=...  (Debian archive URI for the FFmpeg source package)

# The Go toolchain of the build stage. It must be at least go.mod's `go` line: the official
# golang images set GOTOOLCHAIN=local, so an older toolchain fails instead of downloading one.
# deploy/deploy_test.go checks that the two stay in step.
ARG GO_VERSION=1.26.8

# ---------------------------------------------------------------------------------------------
# Build stage: Go + cgo against a static, audio-only FFmpeg built from Debian trixie's source.
#
# Base images are pinned by tag. For bit-for-bit reproducible builds also pin the digest, e.g.
#   FROM golang:1.26.8-trixie@sha256:<digest> AS build
#   FROM debian:trixie-slim@sha256:<digest>
# (`docker buildx imagetools inspect golang:1.26.8-trixie` prints it) and let a bot bump both.
FROM golang:${GO_VERSION}-trixie AS build

WORKDIR /src

# FFmpeg first, as its own layer: it depends only on ffmpeg/ (versions.env, configure.flags and
# build.sh pin everything), changes more rarely than go.mod and takes the longest, so a Go
# dependency bump or a source change never rebuilds it. build.sh installs its Debian build
# packages itself (we are root here), fetches Debian's `ffmpeg` source package through apt from
# the archive in the image's own apt sources, checks the pinned SHA-256 and installs into
# /opt/ffmpeg. The work tree is removed in the same layer to keep the layer small.
ARG FFMPEG_APT_MIRROR
ARG FFMPEG_JOBS
COPY ffmpeg/ ffmpeg/
RUN bash ffmpeg/build.sh /opt/ffmpeg \
 && rm -rf ffmpeg/build

# Go modules next: this layer is reused until go.mod or go.sum change.
ARG GOPROXY
COPY go.mod go.sum ./
RUN go mod download && go mod verify

# The binary: cgo links the static FFmpeg and libopus libraries found through pkg-config; at run
# time it needs only libc and libm.
COPY . .
ENV CGO_ENABLED=1 \
    PKG_CONFIG_PATH=/opt/ffmpeg/lib/pkgconfig
RUN go build -trimpath -ldflags "-s -w" -o /out/rtpbridge ./cmd/rtpbridge

# ---------------------------------------------------------------------------------------------
# Runtime stage: debian:trixie-slim with CA certificates (for URL playback over HTTPS), nothing
# else: FFmpeg and libopus are linked statically. No tini: rtpbridge is the only process, starts
# no children (FFmpeg is linked in), and installs its own SIGINT/SIGTERM handlers, so as PID 1 it receives SIGTERM and
# drains exactly as on a host. The exec-form ENTRYPOINT keeps it PID 1 (no shell in between).
FROM debian:trixie-slim

# Package versions are not pinned (hadolint DL3008): Debian stable replaces a version in place on
# every security update, so pins break builds; the trixie release and the digest pin it instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid (10001) so volume ownership is predictable on every host and in Kubernetes
# (runAsUser/fsGroup 10001). Directories are those of the default configuration;
# /var/lib/rtpbridge stays traversable (0755) so the image also runs under another uid
# (`--user`, compose RTPBRIDGE_USER) with its own volumes mounted below it. cache_dir
# (/tmp/rtpbridge-cache) is deliberately not created here: rtpbridge creates it at start-up in
# the world-writable /tmp (or the tmpfs mounted there), so it belongs to whichever uid runs.
RUN groupadd --gid 10001 rtpbridge \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/rtpbridge \
        --shell /usr/sbin/nologin rtpbridge \
 && install -d -o rtpbridge -g rtpbridge -m 0755 /var/lib/rtpbridge /var/lib/rtpbridge/media \
 && install -d -o rtpbridge -g rtpbridge -m 0750 /var/lib/rtpbridge/recordings \
 && install -d -m 0755 /etc/rtpbridge

COPY --from=build /out/rtpbridge /usr/local/bin/rtpbridge
COPY deploy/docker/rtpbridge.toml /etc/rtpbridge/rtpbridge.toml

# Fail the build, not the first start, if the binary needs a shared library this image lacks.
RUN out=$(ldd /usr/local/bin/rtpbridge 2>&1 || true); echo "$out"; \
    case "$out" in *"not found"*) echo "rtpbridge needs a library missing from this image" >&2; exit 1;; esac

# Numeric, so Kubernetes can verify runAsNonRoot without a runAsUser of its own.
USER 10001:10001
WORKDIR /var/lib/rtpbridge

# Control plane: WebSocket + HTTP (/health, /ready, /metrics, /sessions, /recordings).
EXPOSE 9100/tcp
# The control port has no authentication: publish it on loopback (`-p 127.0.0.1:9100:9100`),
# or with `--network host` pass `--listen 127.0.0.1:9100`.
# Media is UDP and is deliberately not EXPOSEd: plain RTP uses rtp_port_range (30000-30199 in the
# bundled config) and WebRTC uses OS-chosen ports, all on media_ip, which is also the address
# written into SDP. Run with `--network host` (needed for WebRTC and for peers off this host),
# or publish the RTP range 1:1 (`-p 30000-30199:30000-30199/udp`, never `-P`, which would
# remap ports; every published port costs a docker-proxy process unless the daemon has
# "userland-proxy": false). deploy/README.md explains the choice.

# Docker health check without curl/wget: bash (always present, Essential in Debian) sends a real
# HTTP request to GET /health and requires status 200. /health, not /ready: a draining
# container must not be reported unhealthy (an orchestrator would kill it and cut its calls);
# /ready is for load balancers. It assumes the listen address includes 127.0.0.1:9100 or
# 0.0.0.0:9100; with another listen address override it (compose `healthcheck:`, or
# `--no-healthcheck`). Kubernetes ignores it and uses the probes in deploy/kubernetes/.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r proto status rest <&3 && [ \"$status\" = 200 ]"]

# SIGTERM starts the graceful drain (PROTOCOL.md §27, D21); the stop timeout of the runtime must
# exceed shutdown_max_wait_secs or the drain is cut short by SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rtpbridge"]
CMD ["-c", "/etc/rtpbridge/rtpbridge.toml"]
