//go:build windows

package certs

import (
	"os"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/winacl"
)

// createTemp makes the file writeAtomic fills. Mode bits mean nothing on
// Windows, where a file takes its folder's access list: a private one (a
// key: no access for group or others in mode) is created with an access
// list of its own, SYSTEM, the Administrators and this process's user.
func createTemp(dir, pattern string, mode os.FileMode) (*os.File, error) {
	if mode&0o077 == 0 {
		return winacl.CreateTemp(dir, pattern)
	}
	return os.CreateTemp(dir, pattern)
}
