// Package certtest helps tests lay out certificate files the way real
// deployments do.
package certtest

import (
	"os"
	"path/filepath"
)

// WriteSecret lays out a kubernetes.io/tls Secret volume in dir as the
// kubelet does: tls.crt and tls.key are symlinks through ..data, which
// points at a timestamped directory; an update writes a new directory and
// swaps ..data atomically with a rename.
func WriteSecret(dir, version string, crt, key []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ts := filepath.Join(dir, "..2026_11_25_"+version)
	if err := os.Mkdir(ts, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ts, "tls.crt"), crt, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ts, "tls.key"), key, 0o600); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for _, n := range []string{"tls.crt", "tls.key"} {
		link := filepath.Join(dir, n)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", n), link); err != nil {
			return err
		}
	}
	return nil
}
