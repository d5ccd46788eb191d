//go:build !windows

package config

// platformDefaults are the defaults that differ from the struct's tags on
// this system: none here.
func platformDefaults() map[string]string { return nil }
