#!/usr/bin/env bash
# Assembles the Dockerfile's builder image from this machine's own Go
# toolchain and a static busybox, for machines that reach no container
# registry (CI among them): FROM scratch, COPY of GOROOT and busybox, no pull.
#
#   scripts/podman-builder.sh [tag]    # prints the tag it built
#   podman build --build-arg BUILDER_IMAGE=<tag> ...
#
# Needs podman and a static busybox (Debian: apt-get install podman
# busybox-static).
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
tag=${1:-localhost/cloudxr-wss-proxy-builder:$(go env GOVERSION)}
goroot=$(go env GOROOT)
busybox=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
	echo "$busybox is dynamically linked; a scratch image needs busybox-static" >&2
	exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Hard links when GOROOT is on the same file system: no copy of 270 MB.
cp -al "$goroot" "$ctx/go" 2>/dev/null || cp -a "$goroot" "$ctx/go"
cp "$busybox" "$ctx/busybox"
# The trust store the image copies into its final stage (the golang image
# has it from Debian's ca-certificates).
bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$bundle" ] || { echo "$bundle not found: apt-get install ca-certificates" >&2; exit 1; }
cp "$bundle" "$ctx/ca-certificates.crt"
cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY go /usr/local/go
COPY busybox /bin/busybox
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /go /root && chmod 1777 /tmp
ENV PATH=/usr/local/go/bin:/go/bin:/bin HOME=/root GOPATH=/go GOTOOLCHAIN=local
CONTAINERFILE
podman build --quiet --isolation chroot --layers=false -t "$tag" "$ctx" >&2
echo "$tag"
