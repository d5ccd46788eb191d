//go:build windows

package config

import (
	"path/filepath"

	"golang.org/x/sys/windows"
)

// platformDefaults are the defaults that differ from the struct's tags on
// Windows: certificates live under DataDir, where a service keeps its data
// (the HAProxy container's path means nothing there).
func platformDefaults(map[string]string) map[string]string {
	return map[string]string{"CERT_DIR": filepath.Join(DataDir(), "certs")}
}

// systemdEnvFile: no systemd here; the service's settings file is ENV_FILE.
const systemdEnvFile = ""

// DataDir is %ProgramData%\cloudxr-wss-proxy: the service's settings file,
// its logs and the certificates. The folder is asked of the system rather
// than read from the environment, which a service may not share with the
// administrator's terminal that installed it.
func DataDir() string {
	data, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil {
		data = `C:\ProgramData`
	}
	return filepath.Join(data, "cloudxr-wss-proxy")
}
