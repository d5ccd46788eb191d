#!/bin/sh
# Makes a Wine prefix that runs the proxy's Windows build: Debian 12's Wine 8
# lacks bcryptprimitives.dll, which Go's Windows runtime loads at start, so a
# stand-in (bcryptprimitives.c) is built with MinGW-w64 and put in the
# prefix's system32. Usage: scripts/wine/prefix.sh DIR (the prefix to make).
set -eu
prefix=${1:?usage: prefix.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
for tool in wine x86_64-w64-mingw32-gcc; do
	command -v "$tool" >/dev/null || { echo "prefix.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
mkdir -p "$prefix"
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# wineboot's output is kept and shown only when it fails.
log="$prefix/wineboot.log"
status=0
wineboot -i >"$log" 2>&1 || status=$?
if [ "$status" != 0 ]; then
	echo "prefix.sh: wineboot -i failed (exit status $status):" >&2
	cat "$log" >&2
	ls -la "/tmp/.wine-$(id -u)" >&2 2>/dev/null || true
	exit "$status"
fi
wineserver -w
x86_64-w64-mingw32-gcc -shared -O2 -o "$prefix/bcryptprimitives.dll" \
	"$here/bcryptprimitives.c" "$here/bcryptprimitives.def" -ladvapi32
cp "$prefix/bcryptprimitives.dll" "$prefix/drive_c/windows/system32/bcryptprimitives.dll"
