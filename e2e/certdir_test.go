//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// The binary run by hand with no CERT_DIR, as the archives' users run it:
// the certificate is generated in the user's own data folder and served,
// for an ordinary user (who could not write the HAProxy container's path)
// and for root (who would have created /usr/local/etc/haproxy).
func TestCertDirDefaultByHand(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs the binary as an unprivileged user and needs root to do so")
	}
	t.Run("ordinary user", func(t *testing.T) {
		home := filepath.Join(t.TempDir(), "home")
		os.Mkdir(home, 0o700)
		for d := filepath.Dir(home); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // nobody can reach its home
		}
		if err := os.Chown(home, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		servesFromDataFolder(t, cmd, home)
	})
	t.Run("root", func(t *testing.T) {
		if _, err := os.Stat("/usr/local/etc/haproxy"); os.IsNotExist(err) {
			t.Cleanup(func() {
				if _, err := os.Stat("/usr/local/etc/haproxy"); err == nil {
					os.RemoveAll("/usr/local/etc/haproxy")
					t.Error("a run by hand as root created /usr/local/etc/haproxy")
				}
			})
		}
		servesFromDataFolder(t, exec.Command(binary), t.TempDir())
	})
}

// servesFromDataFolder starts cmd with HOME=home and no CERT_DIR and checks
// that it serves TLS with the certificate it generated in
// ~/.local/share/cloudxr-wss-proxy/certs.
func servesFromDataFolder(t *testing.T, cmd *exec.Cmd, home string) {
	t.Helper()
	b := backend(t)
	p := startProcCmd(t, cmd, "HOME="+home, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()))
	addr := p.addr()
	dir := filepath.Join(home, ".local/share/cloudxr-wss-proxy/certs")
	conn, err := tls.Dial("tcp", addr, trustPEM(t, filepath.Join(dir, "ca.crt")))
	if err != nil {
		t.Fatalf("TLS with the CA generated in %s: %v", dir, err)
	}
	conn.Close()
	if _, err := os.Stat(filepath.Join(dir, "server.pem")); err != nil {
		t.Errorf("no server.pem in the user's data folder: %v", err)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}
