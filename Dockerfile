# syntax=docker/dockerfile:1
# A drop-in for the HAProxy "wss-proxy" image: same port, variables and
# certificate directory. Build: docker build -t cloudxr-wss-proxy . (both
# platforms: docker buildx build --platform linux/amd64,linux/arm64 ...)
# Base images by their full name: Podman without unqualified-search
# registries (Debian's stock configuration) refuses a short name.
ARG BUILDER_IMAGE=docker.io/library/golang:1.26-bookworm

# The build stage runs on the build machine's own platform and cross-compiles
# for each target (the binary is pure Go), so a multi-platform build needs no
# emulation: `--platform linux/amd64,linux/arm64`.
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
# The version stamped, as make build stamps it: --build-arg VERSION="$(make -s version)".
ARG VERSION=dev
# The module proxy the build downloads from, for a mirror of your own (CI
# uses the machine's module cache as a file:// proxy).
ARG GOPROXY
WORKDIR /src
COPY . .
# No separate `go mod download` step: it wants the go.mod of every module in
# the graph, tests' dependencies included, while `go build` fetches only what
# the binary compiles, so a file:// proxy over a cache that built the binary
# is always enough.
# The binary gets CAP_NET_BIND_SERVICE as a permitted file capability (as
# `setcap cap_net_bind_service=p`; the build stage has no setcap), so that
# PROXY_PORT=443 works for the unprivileged user below. Permitted only, not
# effective: a container with the capability dropped still starts it
# (internal/bindcap says why). COPY keeps the attribute.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/cloudxr-wss-proxy . \
 && CGO_ENABLED=0 go run ./internal/bindcap/setcap /out/cloudxr-wss-proxy \
 && mkdir -p /out/certs

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="cloudxr-wss-proxy" \
      org.opencontainers.image.description="TLS (wss://) front door for the CloudXR Runtime's WebSocket signaling" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/cloudxr-wss-proxy/cloudxr-wss-proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/cloudxr-wss-proxy /cloudxr-wss-proxy
# The system's trust store, for an identity provider reached over HTTPS
# (AUTH_OIDC_ISSUER); SSL_CERT_FILE names another bundle for a private CA.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/certs /usr/local/etc/haproxy/certs
# LOG_FORMAT stays auto: JSON lines under `docker run -d` (what log
# collectors read), a console format under `docker run -it`.
ENV CERT_DIR=/usr/local/etc/haproxy/certs
USER 65532:65532
VOLUME ["/usr/local/etc/haproxy/certs"]
EXPOSE 48322
# The image has no shell or curl: the binary checks itself (a TLS handshake
# and GET /status.json on its own port).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/cloudxr-wss-proxy", "healthcheck"]
ENTRYPOINT ["/cloudxr-wss-proxy"]
