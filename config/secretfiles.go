package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// Files that hold secrets: a file every local user may read gives them
// away on a shared machine, so the program names each one at start.

// ExposedFile is a secret-bearing file that every local user may read.
type ExposedFile struct {
	Path string
	Mode fs.FileMode
}

// Fix is what to run about it: every file keeps its owner's and group's
// access, one of which is the user the proxy runs as (the unit's settings
// file is root's, and its group the service's).
func (e ExposedFile) Fix() string {
	return "chmod o-rwx " + e.Path
}

// SecretFiles lists the files this configuration's secrets are in: the
// settings file (ENV_FILE, and the systemd unit's), the tokens file (AUTH_TOKENS_FILE) and the private keys in
// CERT_DIR. Some may not exist.
func (c *Config) SecretFiles() []string {
	var out []string
	for _, p := range []string{c.EnvFile, systemdEnvFile, c.AuthTokensFile} {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, name := range []string{certs.PEMFile, certs.KeyFile, certs.CAKeyFile, certs.SecretKey} {
		out = append(out, filepath.Join(c.CertDir, name))
	}
	return out
}

// ExposedSecrets returns those of SecretFiles that exist and that every
// local user may read. Unix mode bits say nothing on Windows, where the
// service's folder and the keys the proxy writes carry an access list of
// their own (certs/, servicectl_windows.go): none there.
func (c *Config) ExposedSecrets() []ExposedFile {
	if runtime.GOOS == "windows" {
		return nil
	}
	return readableByOthers(c.SecretFiles())
}

// readableByOthers returns the files among paths (symlinks followed, as a
// Kubernetes Secret's are) whose mode lets every user read them.
func readableByOthers(paths []string) []ExposedFile {
	var out []ExposedFile
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if st.Mode().Perm()&0o004 != 0 {
			out = append(out, ExposedFile{Path: p, Mode: st.Mode().Perm()})
		}
	}
	return out
}
