package certs

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// File names inside CERT_DIR. server.pem is the HAProxy container's name;
// tls.crt and tls.key are how a kubernetes.io/tls Secret (and cert-manager)
// lay a certificate out.
const (
	PEMFile    = "server.pem" // certificate chain and key, the file served
	CertFile   = "server.crt" // the generated certificate alone
	KeyFile    = "server.key" // the generated key alone
	CAFile     = "ca.crt"     // the local CA, for clients to trust
	CAKeyFile  = "ca.key"     // the local CA's key
	RecordFile = "generated-by-cloudxr-wss-proxy.json"
	SecretCert = "tls.crt"
	SecretKey  = "tls.key"
)

// ErrNotWritable means CERT_DIR holds no certificate and one cannot be
// written there.
var ErrNotWritable = errors.New("not writable")

// record is kept beside a certificate the proxy generated. Its presence,
// with a fingerprint that matches server.pem, is what makes server.pem the
// proxy's own to re-issue; a user's server.pem has none and is never touched.
type record struct {
	Mode        Mode   `json:"mode"`
	Fingerprint string `json:"fingerprint"`
	// Previous is the certificate being replaced while a re-issue is
	// written, so an interrupted re-issue is still recognised.
	Previous string    `json:"previous_fingerprint,omitempty"`
	Names    []string  `json:"names"`
	Issued   time.Time `json:"issued"`
}

func readRecord(dir string) (*record, error) {
	data, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", RecordFile, err)
	}
	return &r, nil
}

// owns reports whether the record vouches for the certificate with
// fingerprint fp.
func (r *record) owns(fp string) bool {
	return r != nil && (r.Fingerprint == fp || r.Previous == fp)
}

func writeRecord(dir string, r record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, RecordFile), append(data, '\n'), 0o644)
}

// exists reports whether path names a file (following symlinks).
func exists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// absent reports whether a read error means "no such file": a path under a
// regular file is absent too.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func digest(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// writeAtomic writes through a temporary file and a rename, so a reader
// never sees half a file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
