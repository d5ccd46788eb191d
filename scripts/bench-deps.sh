#!/usr/bin/env bash
# Installs HAProxy from Debian's packages when it is missing: make bench
# measures it side by side with cloudxr-wss-proxy.
set -euo pipefail
command -v haproxy >/dev/null && exit 0
echo "installing haproxy"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y haproxy
