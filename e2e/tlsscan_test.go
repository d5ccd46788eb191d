//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testssl.sh (Debian's package) scans the running proxy: no SSL or TLS
// below 1.2, only AEAD suites with forward secrecy for 1.2, and no flagged
// vulnerability.
func TestTLSScan(t *testing.T) {
	testssl, err := exec.LookPath("testssl")
	if err != nil {
		t.Fatal("testssl is needed for this test (apt-get install testssl.sh; make test installs it)")
	}
	p := startProc(t, "CERT_DIR="+t.TempDir(), "ADMIN_ADDRESS=off")
	addr := p.addr()
	out := filepath.Join(t.TempDir(), "scan.json")
	cmd := exec.Command(testssl, "--quiet", "--warnings", "off", "--color", "0", "--jsonfile", out, "-p", "-s", "-f", "-U", addr)
	if b, err := cmd.CombinedOutput(); err != nil && !exists(out) {
		t.Fatalf("testssl: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var findings []struct{ ID, Severity, Finding string }
	if err := json.Unmarshal(data, &findings); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range findings {
		got[f.ID] = f.Finding
		switch f.Severity {
		case "OK", "INFO", "LOW":
		default:
			t.Errorf("%s: %s %s", f.ID, f.Severity, f.Finding)
		}
	}
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
		"cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"} {
		if !strings.HasPrefix(got[id], "not offered") {
			t.Errorf("%s: %q, want not offered", id, got[id])
		}
	}
	for _, id := range []string{"TLS1_2", "TLS1_3", "cipherlist_STRONG", "PFS"} {
		if !strings.HasPrefix(got[id], "offered") {
			t.Errorf("%s: %q, want offered", id, got[id])
		}
	}
	for _, id := range []string{"heartbleed", "CCS", "ROBOT", "CRIME_TLS", "POODLE_SSL", "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4"} {
		if f, ok := got[id]; !ok || !strings.HasPrefix(f, "not vulnerable") {
			t.Errorf("%s: %q, want not vulnerable", id, f)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
