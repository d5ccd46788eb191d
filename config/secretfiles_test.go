package config

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// The settings file, the tokens file and the keys in CERT_DIR are named
// when every user may read them, and only then (a symlink as the file it
// names); a missing file, a public certificate and group access are not.
func TestExposedSecrets(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits mean nothing on Windows; the access lists are checked under Wine (e2e)")
	}
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	os.Mkdir(certDir, 0o755)
	file := func(path string, mode os.FileMode) string {
		t.Helper()
		if err := os.WriteFile(path, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // the umask does not decide
			t.Fatal(err)
		}
		return path
	}
	envFile := file(filepath.Join(dir, "env"), 0o644)
	tokens := file(filepath.Join(dir, "tokens"), 0o640)
	key := file(filepath.Join(certDir, certs.KeyFile), 0o604)
	caKey := file(filepath.Join(certDir, certs.CAKeyFile), 0o600)
	file(filepath.Join(certDir, certs.CertFile), 0o644) // a certificate is public
	os.Symlink(key, filepath.Join(certDir, certs.SecretKey))
	c := &Config{EnvFile: envFile, AuthTokensFile: tokens, CertDir: certDir}

	got := map[string]os.FileMode{}
	for _, e := range c.ExposedSecrets() {
		got[e.Path] = e.Mode
	}
	want := map[string]os.FileMode{envFile: 0o644, key: 0o604, filepath.Join(certDir, certs.SecretKey): 0o604}
	if len(got) != len(want) {
		t.Fatalf("exposed %v, want %v", got, want)
	}
	for p, m := range want {
		if got[p] != m {
			t.Errorf("%s: got mode %04o, want %04o", p, got[p], m)
		}
	}
	for _, p := range []string{envFile, tokens, caKey, systemdEnvFile} {
		if !slices.Contains(c.SecretFiles(), p) {
			t.Errorf("SecretFiles lacks %s", p)
		}
	}

	os.Chmod(envFile, 0o600)
	os.Chmod(key, 0o600)
	if e := c.ExposedSecrets(); len(e) != 0 {
		t.Errorf("after chmod: %v", e)
	}
}

// The fix names the file, and keeps the owner's and the group's access,
// the proxy's user being one of them.
func TestExposedFileFix(t *testing.T) {
	if got := (ExposedFile{Path: "/x/tokens"}).Fix(); got != "chmod o-rwx /x/tokens" {
		t.Errorf("tokens: %q", got)
	}
	if systemdEnvFile != "" {
		// The unit's settings file is read by the program, in the service's group.
		if got := (ExposedFile{Path: systemdEnvFile}).Fix(); got != "chmod o-rwx "+systemdEnvFile {
			t.Errorf("unit's settings: %q", got)
		}
	}
}
