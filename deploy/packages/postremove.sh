#!/bin/sh
# After the files are gone: systemd forgets the unit; a purge also removes
# the certificates and state the service kept. The user stays, as Debian
# leaves system users (files elsewhere may still be theirs).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/cloudxr-wss-proxy /etc/cloudxr-wss-proxy
fi
exit 0
