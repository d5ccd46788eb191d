//go:build e2e

package e2e

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make dist's release (release/): every platform's archive with the
// binary, README and licence, the Linux packages for amd64 and arm64, and
// SHA256SUMS. The .deb passes lintian, installs with dpkg into a scratch
// root (its maintainer scripts run there), has its files where they go,
// keeps a changed settings file on reinstall, and purges cleanly.
func TestReleaseArtifacts(t *testing.T) {
	need(t, "lintian", "dpkg", "dpkg-deb", "rpm", "busybox", "qemu-aarch64-static")
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./release", "-out", out, "-version", "1.2.3")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release: %v\n%s", err, b)
	}
	sums := checkSums(t, out)
	for _, target := range targets {
		goos, goarch, _ := strings.Cut(target, "/")
		name := fmt.Sprintf("cloudxr-wss-proxy_1.2.3_%s_%s", goos, goarch)
		exe := "cloudxr-wss-proxy"
		if goos == "windows" {
			name += ".zip"
			exe += ".exe"
		} else {
			name += ".tar.gz"
		}
		if !sums[name] {
			t.Errorf("%s is not in SHA256SUMS", name)
		}
		got := archiveNames(t, filepath.Join(out, name))
		dir := strings.TrimSuffix(strings.TrimSuffix(name, ".zip"), ".tar.gz")
		for _, want := range []string{exe, "README.md", "SECURITY.md", "LICENSE", "docs/configuration.md", "docs/platforms.md"} {
			if !got[dir+"/"+want] {
				t.Errorf("%s lacks %s (has %v)", name, want, got)
			}
		}
	}
	for _, pkg := range []string{"cloudxr-wss-proxy_1.2.3_amd64.deb", "cloudxr-wss-proxy_1.2.3_arm64.deb",
		"cloudxr-wss-proxy-1.2.3-1.x86_64.rpm", "cloudxr-wss-proxy-1.2.3-1.aarch64.rpm"} {
		if !sums[pkg] {
			t.Errorf("%s is not in SHA256SUMS", pkg)
		}
	}
	if !sums["cloudxr-wss-proxy-1.2.3.tgz"] {
		t.Error("the Helm chart cloudxr-wss-proxy-1.2.3.tgz is not in SHA256SUMS")
	}
	checkReleasedChart(t, filepath.Join(out, "cloudxr-wss-proxy-1.2.3.tgz"), "1.2.3")
	deb := filepath.Join(out, "cloudxr-wss-proxy_1.2.3_amd64.deb")
	if b, err := exec.Command("lintian", "--fail-on", "error", deb).CombinedOutput(); err != nil {
		t.Errorf("lintian: %v\n%s", err, b)
	}
	checkArm64Deb(t, filepath.Join(out, "cloudxr-wss-proxy_1.2.3_arm64.deb"))
	checkRPM(t, filepath.Join(out, "cloudxr-wss-proxy-1.2.3-1.aarch64.rpm"), "aarch64")
	installDeb(t, deb)
}

// checkSums verifies SHA256SUMS and returns the names it lists.
func checkSums(t *testing.T, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, _ := strings.Cut(sc.Text(), "  ")
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || fmt.Sprintf("%x", sha256.Sum256(data)) != sum {
			t.Errorf("SHA256SUMS: %s does not match (%v)", name, err)
		}
		names[name] = true
	}
	return names
}

// archiveNames lists the files in a .tar.gz or .zip.
func archiveNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			names[f.Name] = true
		}
		return names
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
}

// checkArm64Deb: the arm64 package says so, and its binary is one that
// runs on arm64 (under qemu-user here) with the release's version.
func checkArm64Deb(t *testing.T, deb string) {
	t.Helper()
	arch, err := exec.Command("dpkg-deb", "-f", deb, "Architecture").Output()
	if err != nil || strings.TrimSpace(string(arch)) != "arm64" {
		t.Errorf("arm64 .deb: Architecture %q (%v)", arch, err)
	}
	dir := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	v, err := exec.Command("qemu-aarch64-static", filepath.Join(dir, "usr/bin/cloudxr-wss-proxy"), "--version").Output()
	if err != nil || !strings.Contains(string(v), "1.2.3") {
		t.Errorf("the arm64 binary's --version: %q (%v)", v, err)
	}
}

// checkRPM: the .rpm's architecture, files and scripts.
func checkRPM(t *testing.T, path, arch string) {
	t.Helper()
	q, err := exec.Command("rpm", "-qp", "--queryformat", "%{ARCH}", path).Output()
	if err != nil || string(q) != arch {
		t.Errorf("rpm architecture %q (%v)", q, err)
	}
	files, err := exec.Command("rpm", "-qlp", path).Output()
	for _, want := range []string{"/usr/bin/cloudxr-wss-proxy", "/usr/lib/systemd/system/cloudxr-wss-proxy.service",
		"/usr/lib/sysusers.d/cloudxr-wss-proxy.conf", "/etc/cloudxr-wss-proxy/env"} {
		if err != nil || !strings.Contains(string(files), want+"\n") {
			t.Errorf("rpm lacks %s (%v):\n%s", want, err, files)
		}
	}
}

// packageFiles are where the .deb puts its files.
var packageFiles = []string{"usr/bin/cloudxr-wss-proxy", "usr/lib/systemd/system/cloudxr-wss-proxy.service",
	"usr/lib/sysusers.d/cloudxr-wss-proxy.conf", "etc/cloudxr-wss-proxy/env",
	"usr/share/doc/cloudxr-wss-proxy/copyright", "usr/share/doc/cloudxr-wss-proxy/changelog.gz"}

// installDeb installs the package with dpkg into a scratch root (a
// static busybox is its shell, so the maintainer scripts run there, never
// on this machine), checks its files and unit and the settings file's
// mode (0600 root), reinstalls over a settings file with another mode and
// then other text (both kept), removes it (the settings stay) and purges
// it (nothing of it stays).
func installDeb(t *testing.T, deb string) {
	t.Helper()
	root := scratchRoot(t)
	dpkg := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("dpkg", append([]string{"--root=" + root}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	dpkg("-i", deb)
	for _, f := range packageFiles {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/cloudxr-wss-proxy.service"))
	for _, want := range []string{"ExecStart=/usr/bin/cloudxr-wss-proxy", "User=cloudxr-wss-proxy", "ProtectSystem=strict", "\nCapabilityBoundingSet=\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the packaged unit lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is missing (make test installs it)")
	}
	check := filepath.Join(t.TempDir(), "cloudxr-wss-proxy.service")
	os.WriteFile(check, []byte(strings.ReplaceAll(string(unit), "/usr/bin/cloudxr-wss-proxy", filepath.Join(root, "usr/bin/cloudxr-wss-proxy"))), 0o644)
	if out, err := exec.Command(analyze, "verify", check).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	settings := filepath.Join(root, "etc/cloudxr-wss-proxy/env")
	checkSettingsMode(t, settings)
	// A reinstall (an upgrade) keeps the mode the administrator gave the
	// file, whether or not they changed its text.
	keepsMode := func(when string) {
		t.Helper()
		if st, err := os.Stat(settings); err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("a reinstall %s changed the settings file's mode: %v %v", when, st.Mode(), err)
		}
	}
	os.Chmod(settings, 0o640)
	dpkg("-i", deb)
	keepsMode("over the packaged text")
	os.WriteFile(settings, []byte("BACKEND_HOST=gpu-1\n"), 0o600) // the file's mode stays 0640
	dpkg("-i", deb)
	if b, _ := os.ReadFile(settings); string(b) != "BACKEND_HOST=gpu-1\n" {
		t.Errorf("a reinstall replaced the administrator's settings: %q", b)
	}
	keepsMode("over changed text")
	dpkg("--remove", "cloudxr-wss-proxy")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/cloudxr-wss-proxy")); err == nil {
		t.Error("remove left the binary")
	}
	if _, err := os.Stat(settings); err != nil {
		t.Errorf("remove took the settings, which only a purge does: %v", err)
	}
	dpkg("--purge", "cloudxr-wss-proxy")
	for _, f := range append(packageFiles, "etc/cloudxr-wss-proxy") {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Errorf("purge left %s", f)
		}
	}
}

// scratchRoot is an empty root dpkg can install into: its database, /dev/null
// and a static busybox as the shell the maintainer scripts run with.
func scratchRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "bin", "dev", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	bb, _ := exec.LookPath("busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755)
	for _, applet := range []string{"sh", "rm", "cat", "mkdir"} {
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	if b, err := exec.Command("mknod", "-m", "666", filepath.Join(root, "dev/null"), "c", "1", "3").CombinedOutput(); err != nil {
		t.Fatalf("mknod: %v\n%s", err, b)
	}
	return root
}
