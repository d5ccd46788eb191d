//go:build !windows

package config

import (
	"path/filepath"
	"runtime"
)

// platformDefaults are the defaults that differ from the struct's tags on
// this system, given the environment: CERT_DIR is a folder of the user's
// own (userCertDir). The container image and the systemd unit set CERT_DIR
// themselves (the HAProxy container's path; /var/lib/cloudxr-wss-proxy).
func platformDefaults(environ map[string]string) map[string]string {
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

// systemdEnvFile is the settings file the systemd unit names
// (EnvironmentFile): systemd reads it, as root, before the program starts,
// so the program never opens it, but its mode is checked all the same.
const systemdEnvFile = "/etc/cloudxr-wss-proxy/env"
