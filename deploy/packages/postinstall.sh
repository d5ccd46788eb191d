#!/bin/sh
# After the files are in place: the service's user, and systemd told of the
# unit. A first install does not start the service: settings first
# (/etc/cloudxr-wss-proxy/env), then `systemctl enable --now cloudxr-wss-proxy`.
set -e
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers cloudxr-wss-proxy.conf
fi
# The program reads its settings file itself (so that `systemctl reload`
# applies a changed line): the service's group may read it, nobody else. A
# group the administrator chose is left as it is.
env=/etc/cloudxr-wss-proxy/env
if [ -f "$env" ] && getent group cloudxr-wss-proxy >/dev/null 2>&1 && [ "$(stat -c %g "$env")" = 0 ]; then
	chgrp cloudxr-wss-proxy "$env"
	chmod g+r,g-wx,o-rwx "$env"
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if systemctl is-active --quiet cloudxr-wss-proxy; then
		# A running service that can upgrade in place (it keeps a PID file)
		# is handed over to the new binary: open sessions carry on in the
		# old process until they end. One started by an older package,
		# which cannot, is restarted.
		if [ -f /run/cloudxr-wss-proxy/pid ]; then
			systemctl reload cloudxr-wss-proxy || true
		else
			systemctl restart cloudxr-wss-proxy || true
		fi
	fi
fi
exit 0
