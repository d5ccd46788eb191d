//go:build !windows

package config

// platformDefaults are the defaults that differ from the struct's tags on
// this system: none here.
func platformDefaults() map[string]string { return nil }

// systemdEnvFile is the settings file the systemd unit names
// (EnvironmentFile): systemd reads it, as root, before the program starts,
// so the program never opens it, but its mode is checked all the same.
const systemdEnvFile = "/etc/cloudxr-wss-proxy/env"
