#!/usr/bin/env bash
# Installs what the tests need beyond Go, from Debian's packages, when it is
# missing: chromium (the browser test) and certutil (an NSS database that
# trusts the test CA), systemd-analyze (checks the unit `make install`
# writes), testssl (the TLS scan), podman, runc and busybox-static (the
# container image test), Wine, MinGW-w64 and qemu-user (the Windows and arm64
# builds), lintian and rpm (the release's packages), BIND 9 (DNS-01 for the
# ACME tests), Prometheus and promtool (the monitoring tests). Used by `make test` and so by CI.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v make >/dev/null || need+=(make)
command -v prlimit >/dev/null || need+=(util-linux)
command -v testssl >/dev/null || need+=(testssl.sh)
command -v ip >/dev/null || need+=(iproute2) # network namespaces for the vanished-client test
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates) # the container image's trust store
# The container test: rootful Podman with runc, and a static busybox for the
# builder image assembled from this machine's Go (scripts/podman-builder.sh).
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
{ command -v busybox >/dev/null && ! ldd "$(command -v busybox)" >/dev/null 2>&1; } || need+=(busybox-static)
# The other platforms' builds, run here: the Windows build under Wine (with
# MinGW-w64 for the stand-in DLL of scripts/wine), the arm64 one under qemu.
command -v wine >/dev/null || need+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64-win32)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
# The release's packages: lintian checks the .deb, rpm reads the .rpm.
command -v lintian >/dev/null || need+=(lintian)
command -v rpm >/dev/null || need+=(rpm)
# CERT_MODE=acme's DNS-01 over RFC 2136: a real DNS server taking TSIG-signed
# updates (BIND 9; tsig-keygen comes with it).
command -v named >/dev/null || need+=(bind9)
# Monitoring: promtool checks and unit-tests the alerting rules, and a real
# Prometheus scrapes a real proxy.
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
((${#need[@]})) || exit 0
echo "installing test dependencies: ${need[*]}"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${need[@]}"
