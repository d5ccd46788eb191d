package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// File names inside CERT_DIR, as the HAProxy container uses them.
const (
	PEMFile  = "server.pem" // certificate chain and key, read at start
	CertFile = "server.crt" // generated certificate alone, for clients to trust
	KeyFile  = "server.key" // generated key alone
)

// ErrNotWritable means CERT_DIR holds no certificate and one cannot be
// written there.
var ErrNotWritable = errors.New("not writable")

// Loaded is the certificate the proxy serves and where it came from.
type Loaded struct {
	Cert *tls.Certificate
	Path string
	// Generated is true when this start created the certificate.
	Generated bool
}

// Fingerprint is the SHA-256 fingerprint of the leaf certificate.
func (l *Loaded) Fingerprint() string { return Fingerprint(l.Cert.Leaf) }

// Ensure returns the certificate in dir/server.pem, generating a self-signed
// one for names when there is none. A file that is there is only read,
// never rewritten, so a read-only mount works.
func Ensure(dir string, names []string, now time.Time) (*Loaded, error) {
	path := filepath.Join(dir, PEMFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		c, err := ParseKeyPair(data)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", path, err)
		}
		return &Loaded{Cert: &c, Path: path}, nil
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}

	g, err := GenerateSelfSigned(names, now)
	if err != nil {
		return nil, err
	}
	if err := writeGenerated(dir, g); err != nil {
		return nil, fmt.Errorf("CERT_DIR %s holds no %s and a certificate cannot be generated there (%w); mount a writable directory or volume there, or put your certificate and key in %s: %w",
			dir, PEMFile, ErrNotWritable, path, err)
	}
	c, err := ParseKeyPair(append(append([]byte{}, g.CertPEM...), g.KeyPEM...))
	if err != nil {
		return nil, fmt.Errorf("reading back the generated certificate: %w", err)
	}
	return &Loaded{Cert: &c, Path: path, Generated: true}, nil
}

// writeGenerated writes server.crt, server.key and, last, server.pem: the
// file whose presence means "done", so an interrupted start regenerates.
func writeGenerated(dir string, g Generated) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pemData := append(append([]byte{}, g.CertPEM...), g.KeyPEM...)
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CertFile, g.CertPEM, 0o644},
		{KeyFile, g.KeyPEM, 0o600},
		{PEMFile, pemData, 0o600},
	} {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
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
