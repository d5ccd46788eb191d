//go:build !windows

package config

import (
	"path/filepath"
	"runtime"
	"strings"
)

// platformDefaults are the defaults that differ from the struct's tags on
// this system, given the environment: CERT_DIR is the service's state
// folder under systemd (its StateDirectory=, /var/lib/cloudxr-wss-proxy),
// else a folder of the user's own (userCertDir). The container image sets
// CERT_DIR itself (the HAProxy container's path).
func platformDefaults(environ map[string]string) map[string]string {
	if sd, _, _ := strings.Cut(environ["STATE_DIRECTORY"], ":"); filepath.IsAbs(sd) {
		return map[string]string{"CERT_DIR": filepath.Join(sd, "certs")}
	}
	if dir := userCertDir(runtime.GOOS, environ["XDG_DATA_HOME"], environ["HOME"]); dir != "" {
		return map[string]string{"CERT_DIR": dir}
	}
	return nil
}

// userCertDir is CERT_DIR for a binary run by hand, in the user's data
// folder as Caddy keeps its own (root included: its $HOME):
// $XDG_DATA_HOME/cloudxr-wss-proxy/certs, else
// ~/.local/share/cloudxr-wss-proxy/certs, on macOS
// ~/Library/Application Support/cloudxr-wss-proxy/certs. "" with no home
// known: the struct's default (the HAProxy container's path) stays.
func userCertDir(goos, xdgDataHome, home string) string {
	// The XDG Base Directory spec: a relative path is to be ignored.
	if filepath.IsAbs(xdgDataHome) {
		return filepath.Join(xdgDataHome, appName, "certs")
	}
	if !filepath.IsAbs(home) {
		return ""
	}
	if goos == "darwin" {
		return filepath.Join(home, "Library", "Application Support", appName, "certs")
	}
	return filepath.Join(home, ".local", "share", appName, "certs")
}

// appName names the folder under the user's data folder.
const appName = "cloudxr-wss-proxy"

// systemdEnvFile is the settings file the systemd unit names (ENV_FILE):
// its mode is checked even when the program runs without it.
const systemdEnvFile = "/etc/cloudxr-wss-proxy/env"
