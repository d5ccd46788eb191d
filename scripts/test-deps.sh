#!/usr/bin/env bash
# Installs what the tests need beyond Go, from Debian's packages, when it is
# missing: chromium (the browser test) and certutil (an NSS database that
# trusts the test CA), systemd-analyze (checks the unit `make install`
# writes), testssl (the TLS scan). Used by `make test` and so by CI.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v make >/dev/null || need+=(make)
command -v prlimit >/dev/null || need+=(util-linux)
command -v testssl >/dev/null || need+=(testssl.sh)
((${#need[@]})) || exit 0
echo "installing test dependencies: ${need[*]}"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${need[@]}"
