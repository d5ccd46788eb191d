//go:build e2e

package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// make install puts the binary, a hardened systemd unit, its user and an
// environment file under DESTDIR; a port below 1024 adds exactly one
// capability. systemd-analyze checks the unit.
func TestMakeInstall(t *testing.T) {
	for _, port := range []string{"48322", "443"} {
		t.Run("PROXY_PORT="+port, func(t *testing.T) {
			dest := t.TempDir()
			cmd := exec.Command("make", "install", "DESTDIR="+dest, "PROXY_PORT="+port)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make install: %v\n%s", err, out)
			}
			bin := filepath.Join(dest, "usr/local/bin/cloudxr-wss-proxy")
			if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
				t.Fatalf("binary: %v %v", st, err)
			}
			unitPath := filepath.Join(dest, "usr/local/lib/systemd/system/cloudxr-wss-proxy.service")
			unit, err := os.ReadFile(unitPath)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"User=cloudxr-wss-proxy", "ExecStart=/usr/local/bin/cloudxr-wss-proxy", "ExecReload=/bin/kill -HUP $MAINPID",
				"Type=notify", "NotifyAccess=all", "Environment=ENV_FILE=/etc/cloudxr-wss-proxy/env",
				"Environment=PID_FILE=/run/cloudxr-wss-proxy/pid", "PIDFile=/run/cloudxr-wss-proxy/pid", "RuntimeDirectory=cloudxr-wss-proxy",
				"StateDirectory=cloudxr-wss-proxy", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
				"PrivateTmp=yes", "\nCapabilityBoundingSet=\n", "\nAmbientCapabilities=\n",
			} {
				if !strings.Contains(string(unit), want) {
					t.Errorf("unit lacks %q", want)
				}
			}
			for _, f := range []string{"usr/local/lib/sysusers.d/cloudxr-wss-proxy.conf", "etc/cloudxr-wss-proxy/env"} {
				if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
					t.Error(err)
				}
			}
			checkSettingsMode(t, filepath.Join(dest, "etc/cloudxr-wss-proxy/env"))
			dropIn := filepath.Join(dest, "usr/local/lib/systemd/system/cloudxr-wss-proxy.service.d/low-port.conf")
			d, err := os.ReadFile(dropIn)
			env, _ := os.ReadFile(filepath.Join(dest, "etc/cloudxr-wss-proxy/env"))
			if port == "443" {
				if err != nil || !strings.Contains(string(d), "AmbientCapabilities=CAP_NET_BIND_SERVICE") || !strings.Contains(string(env), "PROXY_PORT=443") {
					t.Errorf("low port: drop-in %q (%v), env %q", d, err, env)
				}
			} else if err == nil {
				t.Error("a capability granted for an unprivileged port")
			}

			// A second install (an upgrade) leaves the administrator's
			// settings file alone: its text and the mode they gave it.
			settings := filepath.Join(dest, "etc/cloudxr-wss-proxy/env")
			before, _ := os.ReadFile(settings)
			os.Chmod(settings, 0o640)
			cmd = exec.Command("make", "install", "DESTDIR="+dest, "PROXY_PORT="+port)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make install again: %v\n%s", err, out)
			}
			after, _ := os.ReadFile(settings)
			if st, err := os.Stat(settings); err != nil || st.Mode().Perm() != 0o640 || string(after) != string(before) {
				t.Errorf("a second install changed the settings file: %v %v, %q", st.Mode(), err, after)
			}

			// systemd's own check, with ExecStart pointing at the installed
			// binary under DESTDIR.
			analyze, err := exec.LookPath("systemd-analyze")
			if err != nil {
				t.Fatal("systemd-analyze is needed for this test (apt-get install systemd; make test installs it)")
			}
			check := filepath.Join(t.TempDir(), "cloudxr-wss-proxy.service")
			os.WriteFile(check, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/cloudxr-wss-proxy", bin)), 0o644)
			out, err := exec.Command(analyze, "verify", check).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
}

// make uninstall takes away what make install put under DESTDIR and leaves
// exactly what it says it leaves: the settings file and the certificates,
// which PURGE=1 removes too. The system user is not under DESTDIR: the output
// says it stays and how to remove it.
func TestMakeUninstall(t *testing.T) {
	dest := t.TempDir()
	mk := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("make", append(args, "DESTDIR="+dest)...).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	mk("install", "PROXY_PORT=443")
	// What the running service would have written: its CA's key.
	key := filepath.Join(dest, "var/lib/cloudxr-wss-proxy/certs/ca.key")
	if err := os.MkdirAll(filepath.Dir(key), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}

	out := mk("uninstall")
	files, ours := installedUnder(t, dest)
	if want := []string{"etc/cloudxr-wss-proxy/env", "var/lib/cloudxr-wss-proxy/certs/ca.key"}; !slices.Equal(files, want) {
		t.Errorf("after make uninstall, files left: %q, want %q", files, want)
	}
	if want := []string{"etc/cloudxr-wss-proxy", "etc/cloudxr-wss-proxy/env", "var/lib/cloudxr-wss-proxy",
		"var/lib/cloudxr-wss-proxy/certs", "var/lib/cloudxr-wss-proxy/certs/ca.key"}; !slices.Equal(ours, want) {
		t.Errorf("after make uninstall, left with the program's name: %q, want %q", ours, want)
	}
	for _, says := range []string{"kept: " + dest + "/etc/cloudxr-wss-proxy (settings)", "PURGE=1", "userdel cloudxr-wss-proxy"} {
		if !strings.Contains(out, says) {
			t.Errorf("make uninstall does not say %q:\n%s", says, out)
		}
	}

	mk("uninstall", "PURGE=1")
	if files, ours := installedUnder(t, dest); len(files)+len(ours) > 0 {
		t.Errorf("after make uninstall PURGE=1, left: files %q, named after the program %q", files, ours)
	}
	mk("uninstall") // again, with nothing left to remove: no error
}

// installedUnder lists the files under dest, and every path there that
// carries the program's name, relative and sorted.
func installedUnder(t *testing.T, dest string) (files, ours []string) {
	t.Helper()
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dest {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		if !d.IsDir() {
			files = append(files, rel)
		}
		if strings.Contains(rel, "cloudxr-wss-proxy") {
			ours = append(ours, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, ours
}

// checkSettingsMode: the settings file, where the README puts the DNS
// provider's token and the TSIG and EAB keys, is root's and readable by
// the service's group alone (the program reads it on each reload), or by
// root alone where that group does not exist (yet).
func checkSettingsMode(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	group := ""
	if g, err := user.LookupGroupId(strconv.Itoa(int(sys.Gid))); err == nil {
		group = g.Name
	}
	ok := sys.Uid == 0 && (st.Mode().Perm() == 0o600 || st.Mode().Perm() == 0o640 && group == "cloudxr-wss-proxy")
	if !ok {
		t.Errorf("%s: mode %04o, owner uid %d, group %q; want 0640 root:cloudxr-wss-proxy or 0600 root", path, st.Mode().Perm(), sys.Uid, group)
	}
}
