//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

// The Windows service, in Wine's service manager, as a user meets it:
// installed from the folder the archive was unzipped into (which is then
// deleted: the service runs its copy in C:\Program Files), its settings
// file in Windows words, a start that fails on a port in use said in words
// with the log's last line, the first start after Wine's server (re)starts
// (Wine then starts the automatic service itself, as Windows does at
// boot), a session through it, an upgrade in place, a stop with a drain
// (its log file says so), and uninstalled, leaving the data folder. Its
// data folder, and the keys it writes in certs\, let no local user but
// SYSTEM and the Administrators in, as far as Wine shows access lists
// (aclReader).
func TestWindowsServiceUnderWine(t *testing.T) {
	env := winePrefix(t)
	prefix := strings.TrimPrefix(env[0], "WINEPREFIX=")
	downloads := filepath.Join(t.TempDir(), "Downloads")
	os.Mkdir(downloads, 0o755)
	unzipped := crossBuild(t, "windows", "amd64", downloads)
	acl := aclReader(t, env)
	persistWineServer(t, env)
	wine := wineRunner(t, env)

	out := mustWine(t, wine, unzipped, "service", "install")
	installed := filepath.Join(prefix, "drive_c", "Program Files", "cloudxr-wss-proxy", "cloudxr-wss-proxy.exe")
	checkInstalledCopy(t, wine, out, unzipped, installed)
	os.RemoveAll(downloads) // the user's clean-up: the service must not need it

	data := filepath.Join(prefix, "drive_c", "ProgramData", "cloudxr-wss-proxy")
	if !strings.Contains(out, `C:\ProgramData\cloudxr-wss-proxy\env`) {
		t.Fatalf("install did not name the settings file:\n%s", out)
	}
	checkWindowsSettingsFile(t, filepath.Join(data, "env"))
	checkPrivateACL(t, acl(`C:\ProgramData\cloudxr-wss-proxy`))

	b := backend(t)
	port := freePort(t)
	os.WriteFile(filepath.Join(data, "env"), fmt.Appendf(nil,
		"BACKEND_HOST=127.0.0.1\nBACKEND_PORT=%d\nPROXY_PORT=%d\nLISTEN_ADDRESS=127.0.0.1\nADMIN_ADDRESS=off\nCLIENT_MAX_CONNECTIONS=0\n",
		b.Port(), port), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	checkStartFailureInWords(t, wine, installed, addr)

	// Wine's server goes and comes back, as after the install in a new
	// terminal: its service manager starts the automatic service as it
	// starts, before `service start` asks for it.
	restartWineServer(t, env)
	if out, err := wine(installed, "service", "start"); err != nil || !strings.Contains(out, "is running") {
		t.Fatalf("the first start after Wine's server started: %v\n%s", err, out)
	}
	waitListening(t, addr)
	certs := filepath.Join(data, "certs")
	checkPlatformSession(t, addr, trustPEM(t, filepath.Join(certs, "ca.crt")))
	for _, key := range []string{"ca.key", "server.key", "server.pem"} {
		checkPrivateACL(t, acl(`C:\ProgramData\cloudxr-wss-proxy\certs\`+key))
	}

	// An upgrade: install again, from a new build, while the service runs.
	upgrade := crossBuild(t, "windows", "amd64", t.TempDir())
	if out := mustWine(t, wine, upgrade, "service", "install"); !strings.Contains(out, "upgraded") || !strings.Contains(out, "is running") {
		t.Errorf("install over a running service:\n%s", out)
	}
	waitListening(t, addr)

	mustWine(t, wine, installed, "service", "stop")
	log, err := os.ReadFile(filepath.Join(data, "logs", "cloudxr-wss-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"session ended"`, `"why":"service stop"`, `"msg":"stopped"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the service's log lacks %s:\n%s", want, log)
		}
	}
	if out := mustWine(t, wine, upgrade, "service", "uninstall"); !strings.Contains(out, "removed") {
		t.Errorf("uninstall: %s", out)
	}
	if _, err := os.Stat(filepath.Dir(installed)); !os.IsNotExist(err) {
		t.Errorf("uninstall left %s: %v", filepath.Dir(installed), err)
	}
	if _, err := os.Stat(filepath.Join(data, "env")); err != nil {
		t.Errorf("uninstall took the settings file: %v", err)
	}
}

// checkInstalledCopy: install copied the program to Program Files, said
// so, and registered that copy.
func checkInstalledCopy(t *testing.T, wine wineFunc, out, unzipped, installed string) {
	t.Helper()
	if !strings.Contains(out, `C:\Program Files\cloudxr-wss-proxy\cloudxr-wss-proxy.exe`) {
		t.Errorf("install did not name the program's copy in Program Files:\n%s", out)
	}
	a, err := os.ReadFile(unzipped)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(installed); err != nil || !bytes.Equal(a, b) {
		t.Fatalf("the program was not copied to %s: %v", installed, err)
	}
	reg, err := wine("reg", "query", `HKLM\System\CurrentControlSet\Services\cloudxr-wss-proxy`, "/v", "ImagePath")
	if err != nil || !strings.Contains(reg, `"C:\Program Files\cloudxr-wss-proxy\cloudxr-wss-proxy.exe" service run`) {
		t.Errorf("the service does not run the copy: %v\n%s", err, reg)
	}
}

// checkWindowsSettingsFile: the settings file install writes speaks of
// Windows, not of the Linux package.
func checkWindowsSettingsFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "BACKEND_HOST") {
		t.Fatalf("the settings file was not written from the example: %v", err)
	}
	for _, linux := range []string{"/etc/", "systemctl", "chmod", "systemd"} {
		if strings.Contains(string(b), linux) {
			t.Errorf("the settings file speaks of %q:\n%s", linux, b)
		}
	}
	for _, windows := range []string{`C:\ProgramData\cloudxr-wss-proxy\env`, "service restart", "Administrators"} {
		if !strings.Contains(string(b), windows) {
			t.Errorf("the settings file does not say %q", windows)
		}
	}
}

// checkStartFailureInWords: with PROXY_PORT taken by another program,
// `service start` fails at once, saying so in words with the service's
// last log line.
func checkStartFailureInWords(t *testing.T, wine wineFunc, exe, addr string) {
	t.Helper()
	taken, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	start := time.Now()
	out, err := wine(exe, "service", "start")
	if err == nil {
		t.Fatalf("service start succeeded with PROXY_PORT taken:\n%s", out)
	}
	for _, want := range []string{"the cloudxr-wss-proxy service stopped as it started: PROXY_PORT", "is in use by another program", `C:\ProgramData\cloudxr-wss-proxy\logs\cloudxr-wss-proxy.log`} {
		if !strings.Contains(out, want) {
			t.Errorf("the start failure does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "state") || time.Since(start) > 20*time.Second {
		t.Errorf("the start failure took %v and said:\n%s", time.Since(start), out)
	}
}

type wineFunc func(exe string, args ...string) (string, error)

// wineRunner runs a Windows program in the prefix and returns its output.
func wineRunner(t *testing.T, env []string) wineFunc {
	return func(exe string, args ...string) (string, error) {
		// The output goes to a file, not a pipe: the service manager's
		// processes inherit it and outlive the command, and a pipe would
		// be waited on until they end.
		out, err := os.CreateTemp(t.TempDir(), "wine-out")
		if err != nil {
			return "", err
		}
		defer out.Close()
		cmd := exec.Command("wine", append([]string{exe}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = out, out
		err = cmd.Run()
		b, _ := os.ReadFile(out.Name())
		return string(b), err
	}
}

func mustWine(t *testing.T, wine wineFunc, exe string, args ...string) string {
	t.Helper()
	out, err := wine(exe, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// persistWineServer keeps the Wine server up while no Windows program
// runs: the service manager's processes live as long as it does.
func persistWineServer(t *testing.T, env []string) {
	t.Helper()
	persist := exec.Command("wineserver", "-p", "120")
	persist.Env = append(os.Environ(), env...)
	// No pipe for its output: the server it may start keeps it open.
	if err := persist.Run(); err != nil {
		t.Fatalf("wineserver -p: %v", err)
	}
}

// restartWineServer ends the Wine server and every program in it, and
// waits until it is gone; the next Windows program starts a new one.
func restartWineServer(t *testing.T, env []string) {
	t.Helper()
	for _, arg := range []string{"-k", "-w"} {
		k := exec.Command("wineserver", arg)
		k.Env = append(os.Environ(), env...)
		k.Run()
	}
	persistWineServer(t, env)
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "the service's listener on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
