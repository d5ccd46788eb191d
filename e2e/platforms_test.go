//go:build e2e

package e2e

// The other platforms, run for real on this Linux machine: the Windows
// build under Wine (as a console program and as a service in Wine's service
// manager), the arm64 build under qemu-user, and every target cross-built
// and vetted.

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// targets are the platforms the proxy is built and released for.
var targets = []string{"linux/amd64", "linux/arm64", "windows/amd64", "windows/arm64", "darwin/amd64", "darwin/arm64"}

// need fails the test when a tool it uses is missing: make test installs
// them all (scripts/test-deps.sh), so a missing one is a broken set-up,
// never a reason to skip.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (scripts/test-deps.sh installs it): %v", tool, err)
		}
	}
}

// crossBuild builds the proxy for goos/goarch into dir.
func crossBuild(t *testing.T, goos, goarch, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "cloudxr-wss-proxy-"+goos+"-"+goarch)
	if goos == "windows" {
		out += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building for %s/%s: %v\n%s", goos, goarch, err, b)
	}
	return out
}

// Every target builds without cgo, and go vet passes for each, tests
// included.
func TestEveryTargetBuildsAndVets(t *testing.T) {
	dir := t.TempDir()
	for _, target := range targets {
		goos, goarch, _ := strings.Cut(target, "/")
		crossBuild(t, goos, goarch, dir)
		vet := exec.Command("go", "vet", "./...")
		vet.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		if b, err := vet.CombinedOutput(); err != nil {
			t.Errorf("go vet for %s: %v\n%s", target, err, b)
		}
	}
}

// The tunnel's tests, where the code differs per architecture (raw system
// calls, TCP_INQ's control message, epoll), run on arm64 under qemu-user.
func TestTunnelUnitTestsOnArm64(t *testing.T) {
	need(t, "qemu-aarch64-static")
	cmd := exec.Command("go", "test", "-count=1", "-exec", "qemu-aarch64-static", "./tunnel")
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test ./tunnel on arm64: %v\n%s", err, b)
	}
}

// The arm64 binary (DGX Spark, Jetson Thor) under qemu-user does what the
// native one does: a session echoes through it with the header set on the
// 101, a preflight is answered, and SIGTERM drains and stops it.
func TestArm64BinaryUnderQemu(t *testing.T) {
	need(t, "qemu-aarch64-static")
	bin := crossBuild(t, "linux", "arm64", t.TempDir())
	b := backend(t)
	dir := t.TempDir()
	p := startProcCmd(t, exec.Command("qemu-aarch64-static", bin), "CERT_DIR="+dir,
		fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	checkPlatformSession(t, p.addr(), trustPEM(t, filepath.Join(dir, "ca.crt")))
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	p.waitLog("stopped")
}

// checkPlatformSession opens a session through the proxy at addr and
// echoes, checks the 101's header set, and sends a preflight.
func checkPlatformSession(t *testing.T, addr string, trust *tls.Config) {
	t.Helper()
	c, err := wstest.Dial(addr, "/sign_in?peer_id=7", trust, "Origin: https://client.example")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Echo("through another platform's build", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	h := c.Response.Header
	if h.Get("Access-Control-Allow-Private-Network") != "true" || h.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("the 101 lacks the header set: %v", h)
	}
	req, _ := http.NewRequest(http.MethodOptions, "https://"+addr+"/sign_in", nil)
	req.Header.Set("Origin", "https://client.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Private-Network", "true")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("preflight: %s %v", resp.Status, resp.Header)
	}
}

// winePrefix makes a Wine prefix that runs the Windows build (see
// scripts/wine/prefix.sh) and returns the environment that uses it.
func winePrefix(t *testing.T) []string {
	t.Helper()
	need(t, "wine", "wineserver", "x86_64-w64-mingw32-gcc")
	// Once on CI, wineboot ended at once with exit status 53 (0x35, the
	// low byte of STATUS_DLL_NOT_FOUND) right after the previous Wine test,
	// and never here. The script now prints wineboot's own output when it
	// fails; a second, fresh prefix is tried before the test fails, and
	// the first failure stays in the test's log.
	var prefix string
	for try := 1; ; try++ {
		prefix = t.TempDir()
		b, err := exec.Command("scripts/wine/prefix.sh", prefix).CombinedOutput()
		if err == nil {
			break
		}
		if try == 2 {
			t.Fatalf("making the Wine prefix (second try): %v\n%s", err, b)
		}
		t.Logf("making the Wine prefix failed, trying a fresh one: %v\n%s", err, b)
	}
	env := []string{"WINEPREFIX=" + prefix, "WINEDEBUG=-all", "HOME=" + os.Getenv("HOME")}
	// The Wine server is told to go and then waited for, so that the next
	// test's Wine starts on a machine where this one is gone.
	t.Cleanup(func() {
		for _, arg := range []string{"-k", "-w"} {
			k := exec.Command("wineserver", arg)
			k.Env = append(os.Environ(), env...)
			k.Run()
		}
	})
	return env
}

// winPath is a Linux path as a Wine program names it (Wine's Z: drive).
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

// The Windows build runs as a console program: it generates its
// certificate in a fresh CERT_DIR, takes settings from --env-file, serves a
// session and a preflight, and Ctrl+C (SIGINT) drains and stops it.
func TestWindowsBuildUnderWine(t *testing.T) {
	env := winePrefix(t)
	exe := crossBuild(t, "windows", "amd64", t.TempDir())
	b := backend(t)
	dir := t.TempDir()
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, fmt.Appendf(nil, "# the settings file, as the service reads it\nBACKEND_HOST=127.0.0.1\nBACKEND_PORT=%d\n", b.Port()), 0o644)
	p := startProcCmd(t, exec.Command("wine", exe, "--env-file", winPath(envFile)),
		append(env, "CERT_DIR="+winPath(dir))...)
	start := p.waitLog("starting")
	if start["BACKEND_PORT"] != fmt.Sprint(b.Port()) {
		t.Errorf("the settings file was not read: %v", start)
	}
	checkPlatformSession(t, p.addr(), trustPEM(t, filepath.Join(dir, "ca.crt")))
	p.cmd.Process.Signal(syscall.SIGINT)
	p.waitLog("stopped")
}

// aclReader builds e2e/testdata/sddl, which prints a path's access list as
// Windows reports it (GetNamedSecurityInfo, in SDDL): Wine's icacls and
// cacls are stubs. Wine keeps no access list of its own: it reports one
// made from the file's Unix mode (the owner's bits for this user, the
// others' for Everyone, WD), and maps the list a file or folder is created
// with onto that mode, so what it shows is what other users may do.
func aclReader(t *testing.T, env []string) func(path string) string {
	t.Helper()
	reader := filepath.Join(t.TempDir(), "sddl.exe")
	build := exec.Command("go", "build", "-o", reader, "./e2e/testdata/sddl")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the access-list reader: %v\n%s", err, b)
	}
	return func(path string) string {
		t.Helper()
		cmd := exec.Command("wine", reader, path)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("reading the access list of %s: %v", path, err)
		}
		_, sddl, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
		return sddl
	}
}

// checkPrivateACL: an access list (SDDL) that lets in no group of local
// users: no entry allowing Everyone, Users, Authenticated Users or
// Interactive, and not a null list, which lets everyone in.
func checkPrivateACL(t *testing.T, sddl string) {
	t.Helper()
	dacl, ok := strings.CutPrefix(sddl, "D:")
	if !ok || strings.HasPrefix(dacl, "NO_ACCESS_CONTROL") || !strings.Contains(dacl, "(A;") {
		t.Errorf("access list %q: not a list that lets only some in", sddl)
		return
	}
	for _, ace := range strings.Split(dacl, "(")[1:] {
		f := strings.Split(strings.TrimSuffix(strings.TrimSuffix(ace, ")"), ")"), ";")
		if len(f) == 6 && f[0] == "A" && slices.Contains([]string{"WD", "BU", "AU", "IU", "S-1-1-0", "S-1-5-32-545", "S-1-5-11", "S-1-5-4"}, f[5]) {
			t.Errorf("access list %q lets %s in (%s)", sddl, f[5], f[2])
		}
	}
}
