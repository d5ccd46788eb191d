//go:build !windows

package certs

import "os"

// createTemp makes the file writeAtomic fills; writeAtomic sets its mode.
func createTemp(dir, pattern string, _ os.FileMode) (*os.File, error) {
	return os.CreateTemp(dir, pattern)
}
