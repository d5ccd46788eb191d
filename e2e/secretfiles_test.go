//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A settings file and a tokens file that every local user may read are
// named at start, one warning each with the mode and the chmod that fixes
// it; the keys the proxy generates (0600) are not; after the chmod the
// proxy starts without a warning.
func TestSecretFilesReadableByOthersWarned(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(envFile, fmt.Appendf(nil, "BACKEND_HOST=127.0.0.1\nBACKEND_PORT=%d\n", b.Port()), 0o644)
	os.WriteFile(tokens, []byte("quest-a\n"), 0o644)
	for _, f := range []string{envFile, tokens} {
		os.Chmod(f, 0o644) // whatever the umask
	}
	certDir := t.TempDir()
	warned := func() map[string]map[string]any {
		p := startProc(t, "ENV_FILE="+envFile, "AUTH_TOKENS_FILE="+tokens, "CERT_DIR="+certDir)
		p.addr() // the checks are made before the listener opens
		p.stop()
		p.waitLog("stopped")
		out := map[string]map[string]any{}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range p.lines {
			if l["msg"] == "a file holding secrets is readable by every local user" {
				out[fmt.Sprint(l["file"])] = l
			}
		}
		return out
	}

	got := warned()
	files := make([]string, 0, len(got))
	for f := range got {
		files = append(files, f)
	}
	slices.Sort(files)
	if want := []string{envFile, tokens}; !slices.Equal(files, want) {
		t.Fatalf("warned about %v, want %v", files, want)
	}
	for _, f := range files {
		if l := got[f]; l["level"] != "warn" || l["mode"] != "0644" || l["fix"] != "chmod o-rwx "+f {
			t.Errorf("warning %v", l)
		}
	}
	for _, key := range []string{"ca.key", "server.key", "server.pem"} {
		if _, err := os.Stat(filepath.Join(certDir, key)); err != nil {
			t.Errorf("the proxy did not generate %s: %v", key, err)
		}
	}

	os.Chmod(envFile, 0o600)
	os.Chmod(tokens, 0o640)
	if got := warned(); len(got) != 0 {
		t.Errorf("warned after chmod: %v", got)
	}
}
