#!/usr/bin/env bash
# Runs every test with the race detector, one package at a time: the
# end-to-end tests (real sockets, Chromium, testssl.sh, Podman) share the
# machine's two cores and are steadier alone. The output streams as usual;
# when something fails, the failing tests and their own messages are
# repeated at the end, where CI's tail of the output shows them.
set -uo pipefail
log=$(mktemp /tmp/cloudxr-wss-proxy-test-XXXXXX.log)
go test -race -count=1 -p 1 -timeout 60m "$@" ./... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# The allocation and idle-memory budgets are measured without the race
# detector, which changes allocation counts and sizes.
go test -count=1 -run '^(TestSessionAllocations|TestIdleSessionMemory)$' -v ./proxy 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
if [ "$rc" -eq 0 ]; then
	rm -f "$log" # a passing run leaves nothing behind
else
	echo
	echo "=== what failed (the whole output is in $log)"
	grep -E '^\s*--- FAIL|^\s+[A-Za-z0-9_]+\.go:[0-9]+: |^panic:|^FAIL\s|^# ' "$log" | grep -v '"level":' | cut -c1-400 | head -80
fi
exit "$rc"
