//go:build windows

package config

import (
	"os"
	"path/filepath"
)

// platformDefaults are the defaults that differ from the struct's tags on
// Windows: certificates live under %ProgramData%, where a service keeps
// its data (the HAProxy container's path means nothing there).
func platformDefaults() map[string]string {
	data := os.Getenv("ProgramData")
	if data == "" {
		data = `C:\ProgramData`
	}
	return map[string]string{"CERT_DIR": filepath.Join(data, "cloudxr-wss-proxy", "certs")}
}
