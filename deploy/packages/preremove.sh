#!/bin/sh
# Before the files go on removal (not on an upgrade): stop and disable.
set -e
case "$1" in
	remove|purge|0)
		if [ -d /run/systemd/system ]; then
			systemctl disable --now cloudxr-wss-proxy >/dev/null 2>&1 || true
		fi
		;;
esac
exit 0
