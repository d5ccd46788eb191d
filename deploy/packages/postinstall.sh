#!/bin/sh
# After the files are in place: the service's user, and systemd told of the
# unit. The service is not started: settings first (/etc/cloudxr-wss-proxy/env),
# then `systemctl enable --now cloudxr-wss-proxy`.
set -e
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers cloudxr-wss-proxy.conf
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	# An upgrade restarts a running service with the new binary.
	if systemctl is-active --quiet cloudxr-wss-proxy; then
		systemctl restart cloudxr-wss-proxy || true
	fi
fi
exit 0
