//go:build !windows

package config

// platformDefaults are the defaults that differ from the struct's tags on
// this system: none here.
func platformDefaults() map[string]string { return nil }

// systemdEnvFile is the settings file the systemd unit names (ENV_FILE):
// its mode is checked even when the program runs without it.
const systemdEnvFile = "/etc/cloudxr-wss-proxy/env"
